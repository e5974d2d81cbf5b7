"""PNG images: one file for a model (:func:`read_image`, what ``cnn predict`` reads) and folders of class
folders (:func:`load_image_folder`).

Both go through one decoder, :func:`_decode_png`, so they accept the same modes (:data:`PNG_MODES`) and turn
them into the same pixels. Pillow is imported inside the functions: it comes with matplotlib, and only
images need it, so ``import cnn`` does not pay for it.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from cnnbase.checks import invalid, printable
from cnnbase.limits import SizeLimitError, check_bytes, check_count, limit

from .batching import validation_split
from .dataset import Dataset, DataError, _check_class_names, _fail
from .reading import _entries, _open_regular

#: Modes Pillow converts to gray or RGB without guessing; alpha is dropped, not composited.
PNG_MODES = ("1", "L", "LA", "P", "RGB", "RGBA")
_GRAY_MODES = ("1", "L", "LA")  # read as one channel when the caller does not ask for a channel count

# Pillow's errors for a file it cannot decode: mostly OSError (UnidentifiedImageError, "image file is
# truncated"), ValueError and SyntaxError, but a decoder fed a hostile file can raise almost anything (struct.error,
# IndexError, ...); every one is worded as a DataError naming the file. Our own errors pass through.
_UNREADABLE = Exception
_OURS = (DataError, SizeLimitError)


def _pixel_limit_error(path, error: Exception) -> SizeLimitError:
    """Pillow's DecompressionBombError (an image over twice the limit) in the words of the other limits."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    what = f"{printable(path)}: the image (its header)"
    if found:
        try:
            check_count(int(found.group(1)), what=what)
        except SizeLimitError as ours:
            return ours
    return SizeLimitError(f"{what} has more than {2 * limit('CNN_MAX_IMAGE_PIXELS'):,} pixels; the limit is "
                          f"{limit('CNN_MAX_IMAGE_PIXELS'):,} (set CNN_MAX_IMAGE_PIXELS to raise it)")


def _decode_png(path, channels: int | None = None, size: tuple[int, int] | None = None,
                resize: bool = False) -> np.ndarray:
    """One image file as uint8 (C, H, W).

    ``channels`` 1 converts to gray and 3 to RGB; None keeps the image's own kind (gray for 1, L and LA,
    colour for P, RGB and RGBA). ``size`` is (W, H), Pillow's order: an image of another size is a
    :class:`DataError` unless ``resize``, which scales it bilinearly. A mode outside :data:`PNG_MODES`
    (16-bit, CMYK, ...) and an animation are :class:`DataError`; so is a path that is not a regular file
    (a FIFO, a device, a folder). The pixel count is read from the header and checked against
    ``CNN_MAX_IMAGE_PIXELS`` (:class:`SizeLimitError`) before anything is decoded; Pillow's own guard,
    ``Image.MAX_IMAGE_PIXELS``, is set to the same limit. Pillow's own errors for an undecodable file are
    left to the caller, which words them for its reader.
    """
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = limit("CNN_MAX_IMAGE_PIXELS")
    with _open_regular(path) as handle:
        try:
            with warnings.catch_warnings():
                # Between the limit and twice it Pillow only warns; the check below refuses those as well.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(handle)
        except Image.DecompressionBombError as error:
            raise _pixel_limit_error(path, error) from None
        with image:
            check_count(image.width * image.height,
                        what=f"{printable(path)}: the image of {image.width}x{image.height} (its header)")
            if image.mode not in PNG_MODES:
                raise DataError(printable(f"{path}: image mode {image.mode} (e.g. 16-bit) is not supported; "
                                          "save it as 8-bit gray or RGB"))
            if getattr(image, "is_animated", False):
                raise _fail(path, "one still image", f"an animation of {image.n_frames} frames")
            image.load()
            return _pixels(path, image, channels, size, resize)


def _pixels(path, image, channels, size, resize) -> np.ndarray:
    """A loaded image as uint8 (C, H, W) of ``channels`` (None: its own kind) and ``size``."""
    from PIL import Image

    if channels is None:
        channels = 1 if image.mode in _GRAY_MODES else 3
    if image.mode == "P":
        image = image.convert("RGBA")  # a palette's transparency (as bytes) would make Pillow warn on the way
    image = image.convert("L" if channels == 1 else "RGB")
    if size is not None and image.size != tuple(size):
        width, height = size
        if not resize:
            raise DataError(printable(f"{path}: the image is {image.width}x{image.height} pixels (width x "
                                      f"height) but the model takes {width}x{height}; pass --resize to scale it"))
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels.reshape(pixels.shape[0], pixels.shape[1], channels).transpose(2, 0, 1)


def read_image(path, input_shape: tuple, resize: bool) -> np.ndarray:
    """One PNG as uint8 (C, H, W) for a model taking ``input_shape``: colour becomes gray for a 1-channel
    model and gray becomes RGB for a 3-channel one; a different size is an error unless ``resize``.

    Raises :class:`DataError` for an ``input_shape`` that is not 1xHxW or 3xHxW, a missing or unreadable
    file, a mode outside :data:`PNG_MODES`, an animation, or another size without ``resize``;
    :class:`SizeLimitError` for an image of more than ``CNN_MAX_IMAGE_PIXELS`` pixels.
    """
    if len(input_shape) != 3 or input_shape[0] not in (1, 3):
        shape = "x".join(str(n) for n in input_shape)
        raise DataError(f"the model takes inputs of {shape}; images fit a model taking "
                        "1xHxW (gray) or 3xHxW (RGB)")
    channels, height, width = input_shape
    try:
        return _decode_png(path, channels, (width, height), resize)
    except _OURS:
        raise
    except _UNREADABLE as error:
        raise _fail(path, "a readable image", f"{type(error).__name__}: {error}") from None


def _read_png(path: Path) -> np.ndarray:
    """One image of a class folder as uint8 (C, H, W), keeping its own kind (gray or colour)."""
    try:
        return _decode_png(path)
    except _OURS:
        raise
    except _UNREADABLE as error:
        raise _fail(path, "a readable PNG image", f"{type(error).__name__}: {error}") from None


def _png_files(folder: Path) -> list[Path]:
    """The regular files named ``*.png`` in ``folder``, by name (a FIFO or a loop of links is not one)."""
    return [p for p in _entries(folder) if p.suffix.lower() == ".png" and p.is_file()]


def _class_folders(root: Path) -> list[Path]:
    """The class folders of ``root`` (hidden ones left out), by name."""
    return [p for p in _entries(root) if not p.name.startswith(".") and p.is_dir()]


def _read_class_tree(root: Path, class_names: tuple[str, ...] | None) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Images of root/<class>/*.png, in class order then file-name order."""
    folders = _class_folders(root)
    if not folders:
        raise _fail(root, "one folder per class holding .png images (root/<class>/*.png)", "no folders")
    names = _check_class_names(root, (f.name for f in folders), "class folders")
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
            # Each image is within CNN_MAX_IMAGE_PIXELS, but a folder of highly compressible PNGs adds up: the
            # array they become is checked as it grows, not once it no longer fits.
            check_bytes(len(images) * image.nbytes,
                        what=f"load_image_folder: the {len(images)} images of {printable(root)} read so far, (C, H, W) "
                             f"= {image.shape}")
    return np.stack(images), np.asarray(labels, dtype=np.int64), names


def load_image_folder(root, *, test_fraction: float | None = None, seed: int = 0, name: str | None = None) -> Dataset:
    """Load images from ``root/<class>/*.png``, or ``root/train/<class>/*.png`` with ``root/test/<class>/*.png``.

    Classes are the sub-folder names sorted by name; label k is the k-th. Images are PNGs of a mode in
    :data:`PNG_MODES`, read as gray (1, L, LA: C = 1) or colour (P, RGB, RGBA: C = 3) with any alpha
    dropped, as :func:`read_image` reads them; all of one size and channel count, else a :class:`DataError`
    names the first file that differs.
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
