"""Build cnn/datasets/fashion-mnist-small.npz, the Fashion-MNIST sample shipped with the package.

A stratified, seeded subset of Fashion-MNIST: for every class, PER_CLASS_TRAIN training images drawn
without replacement from that class's training images, and PER_CLASS_TEST test images from its test
images, by ``numpy.random.default_rng(SEED)``. The chosen images keep Fashion-MNIST's own order (which is
already shuffled), so the first N of the sample are close to stratified too.

Source: the IDX files of Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``),
or a folder given as the first argument. The licence notice is copied from the package's copyright file
(its Expat block, which is the MIT licence Fashion-MNIST is published under) into
cnn/datasets/fashion-mnist-LICENSE.txt, which must accompany the data.

Usage::

    python scripts/make_embedded_sample.py [FOLDER]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # runs from a checkout without installing, like the tests
    sys.path.insert(0, str(ROOT))

from cnn.data import EMBEDDED_SAMPLE, FASHION_MNIST_CLASSES, load_idx_folder  # noqa: E402

SEED = 2017
PER_CLASS_TRAIN = 1000
PER_CLASS_TEST = 200
SOURCE = Path("/usr/share/datasets/fashion-mnist")
COPYRIGHT = Path("/usr/share/doc/dataset-fashion-mnist/copyright")
LICENSE_FILE = EMBEDDED_SAMPLE.parent / "fashion-mnist-LICENSE.txt"


def stratified_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` indices of each class, drawn without replacement, returned in increasing order."""
    chosen = []
    for label in range(len(FASHION_MNIST_CLASSES)):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise SystemExit(f"class {label} has {len(members)} images; {per_class} are needed")
        chosen.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(chosen))


def expat_licence_text(copyright_file: Path) -> str:
    """The Expat block of a Debian copyright file, as plain text (DEP-5 indents lines and writes blank ones as ' .')."""
    lines = copyright_file.read_text().splitlines()
    # The stand-alone licence paragraph, not a `License: Expat` field of a Files paragraph: its text follows.
    start = next(i for i, line in enumerate(lines[:-1])
                 if line.strip() == "License: Expat" and lines[i + 1].startswith(" "))
    body = []
    for line in lines[start + 1:]:
        if not line.startswith(" "):
            break
        body.append("" if line.strip() == "." else line[1:].rstrip())
    return "\n".join(body) + "\n"


def licence_notice(copyright_file: Path) -> str:
    header = (
        "Fashion-MNIST\n"
        "https://github.com/zalandoresearch/fashion-mnist\n"
        "\n"
        "The file fashion-mnist-small.npz next to this notice holds a subset of Fashion-MNIST\n"
        f"({PER_CLASS_TRAIN * 10:,} training and {PER_CLASS_TEST * 10:,} test images, chosen by\n"
        "scripts/make_embedded_sample.py). Fashion-MNIST is published under the MIT (Expat) licence:\n"
        "\n"
        "The MIT License (MIT)\n"
        "\n"
        "Copyright (c) 2017 Zalando SE, https://tech.zalando.com\n"
        "\n"
    )
    return header + expat_licence_text(copyright_file)


def main(argv: list[str]) -> None:
    source = Path(argv[1]) if len(argv) > 1 else SOURCE
    full = load_idx_folder(source, class_names=FASHION_MNIST_CLASSES)
    rng = np.random.default_rng(SEED)
    train = stratified_indices(full.y_train, PER_CLASS_TRAIN, rng)
    test = stratified_indices(full.y_test, PER_CLASS_TEST, rng)
    np.savez_compressed(
        EMBEDDED_SAMPLE,
        x_train=full.x_train[train, 0],  # (N, 28, 28): the loader adds the channel axis
        y_train=full.y_train[train].astype(np.uint8),
        x_test=full.x_test[test, 0],
        y_test=full.y_test[test].astype(np.uint8),
        class_names=np.array(FASHION_MNIST_CLASSES),
        # Provenance: which Fashion-MNIST images these are (indices into its training and test files).
        train_indices=train.astype(np.uint16),
        test_indices=test.astype(np.uint16),
    )
    LICENSE_FILE.write_text(licence_notice(COPYRIGHT))
    print(f"wrote {EMBEDDED_SAMPLE} ({EMBEDDED_SAMPLE.stat().st_size:,} bytes) and {LICENSE_FILE}")


if __name__ == "__main__":
    main(sys.argv)
