"""PNG image folders: ``root/<class>/*.png`` or ``root/{train,test}/<class>/*.png`` (:func:`load_image_folder`).

Pillow is imported inside the reader: it comes with matplotlib, and only images need it, so ``import cnn``
does not pay for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnbase.checks import invalid

from .batching import validation_split
from .dataset import Dataset, DataError, _fail


def _png_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".png")


def _class_folders(root: Path) -> list[Path]:
    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def _read_png(path: Path) -> np.ndarray:
    """One image as uint8 (C, H, W), C = 1 for grayscale (modes 1, L) and 3 for colour (RGB, P)."""
    from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib; only image folders need it

    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("1", "L"):
                image, channels = image.convert("L"), 1
            elif mode in ("RGB", "P"):
                image, channels = image.convert("RGB"), 3
            else:
                raise _fail(path, "a grayscale (L) or RGB PNG", f"mode {mode}")
            pixels = np.asarray(image, dtype=np.uint8)
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise _fail(path, "a readable PNG image", f"{type(error).__name__}: {error}") from None
    return pixels.reshape(pixels.shape[0], pixels.shape[1], channels).transpose(2, 0, 1)


def _read_class_tree(root: Path, class_names: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Images of root/<class>/*.png, in class order then file-name order."""
    folders = _class_folders(root)
    names = tuple(f.name for f in folders)
    if not folders:
        raise _fail(root, "one folder per class holding .png images (root/<class>/*.png)", "no folders")
    if class_names is not None and names != class_names:
        raise _fail(root, f"the class folders of the training split {list(class_names)}", f"{list(names)}")
    images, labels, first = [], [], None
    for label, folder in enumerate(folders):
        files = _png_files(folder)
        if not files:
            raise _fail(folder, "at least one .png image in each class folder", "none")
        for path in files:
            image = _read_png(path)
            if first is None:
                first = (path, image.shape)
            elif image.shape != first[1]:
                raise _fail(path, f"an image of the same channels and size as {first[0]}, (C, H, W) = {first[1]}",
                            f"(C, H, W) = {image.shape}")
            images.append(image)
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), names


def load_image_folder(root, *, test_fraction: float | None = None, seed: int = 0, name: str | None = None) -> Dataset:
    """Load images from ``root/<class>/*.png``, or ``root/train/<class>/*.png`` with ``root/test/<class>/*.png``.

    Classes are the sub-folder names sorted by name; label k is the k-th. Images are grayscale or RGB
    PNGs, all of one size and channel count, else a :class:`DataError` names the first file that differs.
    Without a ``test`` folder the test split is empty unless ``test_fraction`` (0 < f < 1) is given: then
    :func:`validation_split` with ``seed`` moves that fraction of the images to the test split.
    """
    root = Path(root)
    if not root.is_dir():
        raise _fail(root, "a folder of class folders", "no such folder")
    if (root / "train").is_dir() and (root / "test").is_dir():
        if test_fraction is not None:
            raise ValueError(invalid("load_image_folder", "test_fraction",
                                     f"None, since {root} has its own test folder", test_fraction))
        x_train, y_train, names = _read_class_tree(root / "train", None)
        x_test, y_test, _ = _read_class_tree(root / "test", names)
        if x_test.shape[1:] != x_train.shape[1:]:
            raise _fail(root / "test", f"images of the training images' shape (C, H, W) = {x_train.shape[1:]}",
                        f"{x_test.shape[1:]}")
    else:
        x, y, names = _read_class_tree(root, None)
        if test_fraction is None:
            x_train, y_train, x_test, y_test = x, y, x[:0], y[:0]
        else:
            keep, held = validation_split(len(y), test_fraction, seed=seed)
            x_train, y_train, x_test, y_test = x[keep], y[keep], x[held], y[held]
    return Dataset(x_train, y_train, x_test, y_test, names, name or root.resolve().name, f"PNG images in {root}")
