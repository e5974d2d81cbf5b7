"""Transfer learning on Fashion-MNIST, measured (issue 13): pretrain on classes 0-4, then learn classes 5-9
from a small labelled set (50 training images per class), four ways, with the same epochs and seed:

1. from scratch (the same network, randomly initialised);
2. bottleneck features + linear classifier (``cnn features --layer flatten``, then ``dense5 softmax``);
3. frozen base + head (``--init`` the pretrained model, ``--freeze-until flatten``: the convolutions keep
   their weights; the dense64 layer starts from its pretrained weights and learns, the output layer is new,
   ``--init-exclude dense_1``);
4. full fine-tune (``--init``, every layer learns), and the same with ``--lr-pretrained 0.1``.

Every step is a ``cnn`` command (printed before it runs), so the table can be reproduced by hand.
Test accuracy is on every test image of classes 5-9 (5,000). Run from a checkout::

    python scripts/transfer_experiment.py --out runs/transfer          # about 40 CPU-seconds in all (1 thread)
    python scripts/transfer_experiment.py --dry-run                    # only print the commands

Steps whose run folder already holds a finished ``run.json`` are not run again (``--redo`` to redo them).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETWORK = ("conv16k3 relu, maxpool2, conv32k3 relu, maxpool2, flatten, dense64 relu, dropout0.5, "
           "dense10 softmax")


def commands(args) -> list[tuple[str, list[str], Path]]:
    """``(label, cnn arguments, run folder whose run.json holds the test score, or the file it writes)``."""
    out = Path(args.out)
    common = ["--threads", str(args.threads), "--seed", str(args.seed)]
    small = ["--data", args.data, "--classes", "5-9", "--per-class", str(args.per_class)]
    train = ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)] + common
    pre = out / "pretrain-0-4"
    feats = out / "features-5-9.npz"
    # The classifier (dense_1) is left new: 5 classes there and 5 here, so it would load, scoring 0-4.
    init = ["--init", str(pre / "model.npz"), "--init-exclude", "dense_1"]
    return [  # (the features step's "folder" is its file: done when the file exists)
        ("pretrain on classes 0-4 (all their training images)",
         ["train", "--data", args.data, "--classes", "0-4", "--model", NETWORK, "--epochs", str(args.pretrain_epochs),
          "--out", str(pre), *common], pre),
        ("from scratch", ["train", *small, "--model", NETWORK, *train, "--out", str(out / "scratch")],
         out / "scratch"),
        ("bottleneck features (flatten)", ["features", str(pre / "model.npz"), "--layer", "flatten", *small,
                                            "--threads", str(args.threads), "--out", str(feats)], feats),
        ("bottleneck features + linear classifier",
         ["train", "--data", str(feats), "--model", "dense5 softmax", *train, "--out", str(out / "bottleneck")],
         out / "bottleneck"),
        ("frozen base (up to flatten) + head",
         ["train", *small, "--model", NETWORK, *init, "--freeze-until", "flatten",
          *train, "--out", str(out / "frozen")], out / "frozen"),
        ("full fine-tune", ["train", *small, "--model", NETWORK, *init, *train,
                            "--out", str(out / "finetune")], out / "finetune"),
        ("full fine-tune, --lr-pretrained 0.1",
         ["train", *small, "--model", NETWORK, *init, "--lr-pretrained", "0.1", *train,
          "--out", str(out / "finetune-lr0.1")], out / "finetune-lr0.1"),
    ]


def finished(folder: Path) -> dict | None:
    """The test scores of a finished run (its run.json records them; a written file: ``{}``), else None."""
    if folder.suffix == ".npz":
        return {} if folder.exists() else None
    if not (folder / "run.json").exists():
        return None
    return json.loads((folder / "run.json").read_text()).get("test")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/transfer", help="Folder of the runs (default runs/transfer).")
    parser.add_argument("--data", default="fashion-mnist", help="fashion-mnist (full, installed) or a path.")
    parser.add_argument("--pretrain-epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20, help="Epochs of each of the four ways (same for all).")
    parser.add_argument("--batch-size", type=int, default=25)
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--redo", action="store_true", help="Run every step again.")
    parser.add_argument("--dry-run", action="store_true", help="Print the commands only.")
    args = parser.parse_args(argv)
    rows = []
    for label, arguments, folder in commands(args):
        print(f"# {label}\ncnn {shlex.join(arguments)}", flush=True)
        if args.dry_run:
            continue
        if args.redo or finished(folder) is None:
            overwrite = ["--overwrite"] if arguments[0] == "train" and folder.exists() else []
            start = time.perf_counter()
            subprocess.run([sys.executable, str(ROOT / "cli.py"), *arguments, *overwrite], check=True)
            print(f"# {time.perf_counter() - start:.0f} s", flush=True)
        if arguments[0] == "train" and not args.dry_run:
            rows.append((label, finished(folder)))
    if rows:
        print("\n| way | test accuracy | test loss |\n|---|---|---|")
        for label, test in rows:
            print(f"| {label} | {test['accuracy']:.4f} | {test['loss']:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
