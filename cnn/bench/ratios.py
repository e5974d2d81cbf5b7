"""The ratios of ``cnn bench train``: fastcnn over each peer and over the best peer of each column, and, with
``--rounds R``, every round's rows and ratios combined (medians of the figures, medians of each round's own
ratios: the engines of one round run back to back, so their ratio is the side-by-side figure)."""

from __future__ import annotations

import statistics

from cnnbase.checks import invalid

from .tables import _fmt

__all__ = ["MAX_ROUNDS", "PEERS", "ROUND_FIGURES", "best_peer_summary", "check_rounds", "median_row", "ratios_of",
           "round_ratios", "rounds_note", "train_summary"]


def train_summary(rows: list[dict], anchor: str = "torch") -> dict:
    """Ratios of the fastcnn row over the ``anchor`` row, torch or keras (None when either is missing or
    failed): images/s (above 1: fastcnn faster) and peak memory (below 1: fastcnn uses less)."""
    by_engine = {r["engine"]: r for r in rows if not r.get("error")}
    fast, ref = by_engine.get("fastcnn"), by_engine.get(anchor)

    def ratio(key):
        if fast is None or ref is None or fast.get(key) is None or ref.get(key) is None:
            return None
        return fast[key] / ref[key]

    return {f"train_fastcnn_over_{anchor}": ratio("train_images_per_s"),
            f"inference_fastcnn_over_{anchor}": ratio("inference_images_per_s"),
            f"peak_rss_fastcnn_over_{anchor}": ratio("peak_rss_mib")}


#: The peers fastcnn is measured against.
PEERS = ("torch", "keras")


def best_peer_summary(rows: list[dict]) -> dict:
    """fastcnn against the best peer of each column (issue 16: "ratios are against the faster peer"): the
    faster one for training and for inference, the smaller one for peak memory; the peer's name beside each
    ratio. None where fastcnn or every peer is missing or failed."""
    by_engine = {r["engine"]: r for r in rows if not r.get("error")}
    fast = by_engine.get("fastcnn")
    out = {}
    for key, ratio_key, pick in (("train_images_per_s", "train", max), ("inference_images_per_s", "inference", max),
                                 ("peak_rss_mib", "peak_rss", min)):
        peers = {p: by_engine[p][key] for p in PEERS if p in by_engine and by_engine[p].get(key) is not None}
        best = pick(peers, key=peers.get) if peers else None
        usable = best is not None and fast is not None and fast.get(key) is not None
        out[f"{ratio_key}_best_peer"] = best if usable else None
        out[f"{ratio_key}_fastcnn_over_best_peer"] = fast[key] / peers[best] if usable else None
    return out


#: The figures of a row that :func:`median_row` takes the median of over the rounds (peak memory: the largest).
ROUND_FIGURES = ("train_images_per_s", "inference_images_per_s", "train_mean_images_per_s",
                  "inference_mean_images_per_s", "train_step_ms_median", "inference_step_ms_median")


def median_row(rows: list[dict]) -> dict:
    """One engine's rows of every round as one: the first round's, each of :data:`ROUND_FIGURES` replaced by
    its median over the rounds and the peak memory by the largest; with several rounds, ``rounds`` lists each
    round's images/s. A round that failed makes the row that round's failed one."""
    row = dict(rows[0])
    if len(rows) == 1:
        return row
    failed = next((r for r in rows if r.get("error")), None)
    if failed is not None:  # the failed child's row, as with one round: no figures from the rounds that ran
        return dict(failed)
    for key in ROUND_FIGURES:
        values = [r[key] for r in rows if r.get(key) is not None]
        if values:
            row[key] = statistics.median(values)
    peaks = [r["peak_rss_mib"] for r in rows if r.get("peak_rss_mib") is not None]
    row["peak_rss_mib"] = max(peaks) if peaks else None
    row["rounds"] = [{k: r.get(k) for k in ("train_images_per_s", "inference_images_per_s")} for r in rows]
    return row


def ratios_of(rows: list[dict], has_keras: bool) -> dict:
    """The ratios of one set of rows: against torch, against Keras (when it ran), against the best peer."""
    return {**train_summary(rows), **(train_summary(rows, "keras") if has_keras else {}), **best_peer_summary(rows)}


def round_ratios(per_round: list[list[dict]], has_keras: bool) -> dict:
    """The ratios of the benchmark: one round's own, or with several rounds the median of each ratio over the
    rounds, each computed from that round's rows (the engines of a round run back to back, so their ratio is
    the side-by-side figure), the best peer named where most rounds found it; ``per_round`` lists the rounds'
    ratios."""
    each = [ratios_of(rows, has_keras) for rows in per_round]
    if len(each) == 1:
        return each[0]
    out = {}
    for key in each[0]:
        values = [r[key] for r in each if r.get(key) is not None]
        if any(isinstance(v, str) for v in values):  # a best peer's name: the one most rounds found
            out[key] = max(values, key=values.count)
        else:
            out[key] = statistics.median(values) if len(values) == len(each) else None
    out["per_round"] = each
    return out


def rounds_note(rounds: int, per_round: list[dict]) -> str:
    """The note that says how the rounds were combined, with each round's ratios against the best peer."""
    def listed(kind):
        return ", ".join(_fmt(r.get(f"{kind}_fastcnn_over_best_peer"), ".2f") for r in per_round)

    return (f"rounds: the engines ran in turn {rounds} times, each time in a fresh child; images/s and step times "
            "are medians over the rounds, peak memory the largest, and each ratio is the median of the rounds' own "
            f"ratios (fastcnn/best peer per round: train {listed('train')}; inference {listed('inference')}).")


#: ``--rounds`` at most: each round is every engine's whole benchmark again (a minute or more each).
MAX_ROUNDS = 20


def check_rounds(rounds) -> int:
    """``rounds`` (``cnn bench train --rounds``): an int from 1 to :data:`MAX_ROUNDS`."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= MAX_ROUNDS:
        raise ValueError(invalid("bench train", "rounds", f"an int from 1 to {MAX_ROUNDS}", rounds))
    return rounds

