"""Draw the per-epoch curves of several ``cnn train`` run folders in one PNG, and print a table.

Made for issue 12's comparison (the seeds' model with and without augmentation at equal epochs), but takes
any run folders whose ``metrics.json`` has the same metrics. With ``--validation-data test`` the runs log
``val_accuracy`` and ``val_loss`` per epoch: the test split's scores after that epoch.

Usage::

    python scripts/compare_runs.py --out docs/augment-comparison.png \\
        "full, no augmentation=runs/full-noaug" "full, hflip=runs/full-hflip" ...

Each argument is ``LABEL=FOLDER`` (split at the last ``=``); runs whose labels share the part before the first comma are drawn in
one panel (here: the full training set, and the 1,000-image subset).
"""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

from cnn.files import atomic_write


def read_epochs(folder: Path) -> list[dict]:
    return json.loads((folder / "metrics.json").read_text())["epochs"]


def read_test(folder: Path) -> dict | None:
    return json.loads((folder / "run.json").read_text()).get("test")


def table(runs: list[tuple[str, Path]]) -> str:
    """One row per run: epochs, final training accuracy, final test loss and accuracy, best test accuracy
    over the epochs (for reading the curve only; the result is the final one)."""
    rows = ["| run | epochs | train acc (last) | test loss | test acc | best epoch's test acc |",
            "|---|---|---|---|---|---|"]
    for label, folder in runs:
        epochs, test = read_epochs(folder), read_test(folder)
        best = max(epochs, key=lambda e: e.get("val_accuracy") or 0.0)
        rows.append(f"| {label} | {len(epochs)} | {epochs[-1]['accuracy']:.4f} | {test['loss']:.4f} | "
                    f"{test['accuracy']:.4f} | {best.get('val_accuracy', float('nan')):.4f} "
                    f"(epoch {best['epoch']}) |")
    return "\n".join(rows)


def draw(runs: list[tuple[str, Path]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels: dict[str, list[tuple[str, Path]]] = {}
    for label, folder in runs:
        panels.setdefault(label.split(",")[0].strip(), []).append((label, folder))
    figure = Figure(figsize=(11, 3.6 * len(panels)))
    FigureCanvasAgg(figure)
    for row, (panel, members) in enumerate(panels.items()):
        for column, metric in enumerate(("val_accuracy", "val_loss")):
            axes = figure.add_subplot(len(panels), 2, 2 * row + column + 1)
            for label, folder in members:
                epochs = read_epochs(folder)
                name = label.split(",", 1)[1].strip() if "," in label else label
                line, = axes.plot([e["epoch"] for e in epochs], [e[metric] for e in epochs], label=f"{name}: test")
                if metric == "val_accuracy":
                    axes.plot([e["epoch"] for e in epochs], [e["accuracy"] for e in epochs], linestyle=":",
                              color=line.get_color(), label=f"{name}: training")
            axes.set_title(f"{panel}: {'accuracy' if metric == 'val_accuracy' else 'test loss'}")
            axes.set_xlabel("epoch")
            axes.grid(alpha=0.3)
            axes.legend(fontsize=8)
            if metric == "val_accuracy":
                low = min(e["val_accuracy"] for _, f in members for e in read_epochs(f)[2:])
                axes.set_ylim(low - 0.01, 1.0)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    atomic_write(path, buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="LABEL=FOLDER")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    arguments = parser.parse_args()
    runs = [(text.rsplit("=", 1)[0], Path(text.rsplit("=", 1)[1])) for text in arguments.runs]
    draw(runs, arguments.out)
    print(table(runs))


if __name__ == "__main__":
    main()
