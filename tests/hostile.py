"""A corpus of damaged and hostile files, built at test time (nothing here is committed as a blob), for every
reader of the library: IDX folders (raw and gzipped), CIFAR-10 folders (binary and Python), ``.npz`` data
sets, image folders and single images, model files (``cnn.load_model``) and JSON network files.

Each :class:`Case` builds its file or folder into a fresh folder and says which reader takes it and what that
reader must raise: the library's error (``DataError``, ``CheckpointError``, ``NetSpecError``) or
``SizeLimitError``, with a one-line message naming the file. ``tests/test_hostile_files.py`` runs every case
through its reader in-process and through the ``cnn`` commands that read it.

Run as a script to build the corpus into a folder and print, per category, how many inputs were tried, how
many failed cleanly and how many did not::

    PYTHONPATH=. python tests/hostile.py [FOLDER]
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

# ---------------------------------------------------------------------------------------------------------------
# The good files the hostile ones are made from (tiny: 12x12 gray images of 3 classes)

SIDE = 12
CLASSES = 3
MODEL_SPEC = "flatten, dense3 softmax"
IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR_STEMS = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def tiny_arrays(n_train=6, n_test=3, side=SIDE, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
            (np.arange(n_train) % CLASSES).astype(np.uint8),
            rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
            (np.arange(n_test) % CLASSES).astype(np.uint8))


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def idx_folder(folder: Path, replace: dict | None = None, gz: bool = False) -> Path:
    """The 4 IDX files of a tiny MNIST; ``replace`` maps a role (0..3) to the bytes to write instead."""
    folder.mkdir(parents=True, exist_ok=True)
    for role, (name, array) in enumerate(zip(IDX_NAMES, tiny_arrays())):
        content = (replace or {}).get(role, idx_bytes(array))
        if isinstance(content, bytes):
            (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(content) if gz else content)
        else:  # a callable that makes the entry itself (a FIFO, a folder, a link)
            content(folder / (name + (".gz" if gz else "")))
    return folder


def cifar_binary(folder: Path, n=2, labels=None, replace: dict | None = None, meta: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i, stem in enumerate(CIFAR_STEMS):
        y = labels if labels is not None else np.arange(n) % 10
        x = rng.integers(0, 256, (len(y), 3072), dtype=np.uint8)
        content = b"".join(bytes([int(label)]) + row.tobytes() for row, label in zip(x, y))
        content = (replace or {}).get(i, content)
        if callable(content):
            content(folder / f"{stem}.bin")
        else:
            (folder / f"{stem}.bin").write_bytes(content)
    if meta is not None:
        (folder / "batches.meta.txt").write_text(meta)
    return folder


def cifar_python(folder: Path, batch=None, meta=None, replace: dict | None = None, n=2, protocol=2) -> Path:
    """The Python version; ``batch`` replaces every batch's dict, ``replace`` maps an index to raw bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2)
    for i, stem in enumerate(CIFAR_STEMS):
        good = {b"labels": [int(v) for v in np.arange(n) % 10],
                b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
        content = (replace or {}).get(i, pickle.dumps(batch if batch is not None else good, protocol=protocol))
        (folder / stem).write_bytes(content)
    meta = meta if meta is not None else {b"label_names": [f"c{k}".encode() for k in range(10)]}
    (folder / "batches.meta").write_bytes(meta if isinstance(meta, bytes) else pickle.dumps(meta, protocol=2))
    return folder


def npz_file(path: Path, **overrides) -> Path:
    """A tiny data set .npz; ``overrides`` replace arrays (None removes one)."""
    x_train, y_train, x_test, y_test = tiny_arrays()
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test, **overrides}
    buffer = io.BytesIO()
    np.savez(buffer, **{k: v for k, v in arrays.items() if v is not None})
    path.write_bytes(buffer.getvalue())
    return path


def npy_header(shape, descr="<f4", fortran=False, version=1) -> bytes:
    """An .npy header as numpy writes it (for data that does not exist)."""
    text = "{'descr': %r, 'fortran_order': %r, 'shape': %r, }" % (descr, fortran, tuple(shape))
    size_field = 2 if version == 1 else 4
    pad = (64 - (6 + 2 + size_field + len(text) + 1) % 64) % 64
    text = text + " " * pad + "\n"
    length = struct.pack("<H" if version == 1 else "<I", len(text))
    return b"\x93NUMPY" + bytes([version, 0]) + length + text.encode("latin1")


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def zip_members(path: Path, members: dict, compression=zipfile.ZIP_STORED) -> Path:
    """A zip of raw members (name -> bytes): the place for members no numpy would write."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def data_members(**overrides) -> dict:
    x_train, y_train, x_test, y_test = tiny_arrays()
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
    members.update({f"{k}.npy": v for k, v in overrides.items()})
    return members


def patch_central(path: Path, member: str, offset: int, fmt: str, value) -> Path:
    """Overwrite one field of ``member``'s central-directory entry (the sizes, flags and method zipfile
    believes)."""
    data = bytearray(path.read_bytes())
    start = 0
    while True:
        start = data.index(b"PK\x01\x02", start)
        name_length = struct.unpack_from("<H", data, start + 28)[0]
        if data[start + 46:start + 46 + name_length].decode() == member:
            struct.pack_into(fmt, data, start + offset, value)
            path.write_bytes(bytes(data))
            return path
        start += 4


def png_file(path: Path, side=SIDE, mode="L", **save) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(3).integers(0, 256, (side, side), dtype=np.uint8)
    Image.fromarray(pixels, "L").convert(mode).save(path, **save)
    return path


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` gray pixels, with a few bytes of pixel data: what a
    decompression bomb looks like to a reader that trusts the header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    pixels = png_chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + header + pixels + png_chunk(b"IEND", b""))
    return path


def png_with_text_bomb(path: Path) -> Path:
    """A valid small PNG carrying a zTXt chunk that inflates to 8 MiB (Pillow stops text at 1 MiB)."""
    good = png_file(path).read_bytes()
    bomb = png_chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"\0" * (8 << 20), 9))
    end = good.rindex(b"IEND") - 4
    path.write_bytes(good[:end] + bomb + good[end:])
    return path


def image_folder(root: Path, classes=("a", "b", "c"), per_class=2, make=None) -> Path:
    """root/<class>/<k>.png; ``make(path)`` writes one image instead of the good one (for the first file)."""
    for c, name in enumerate(classes):
        for k in range(per_class):
            path = root / name / f"{k}.png"
            if make is not None and c == 0 and k == 0:
                path.parent.mkdir(parents=True, exist_ok=True)
                make(path)
            else:
                png_file(path)
    return root


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def loop(path: Path) -> Path:
    """A symbolic link that points at itself."""
    os.symlink(path.name, path)
    return path


def dangling(path: Path) -> Path:
    os.symlink(path.name + ".gone", path)
    return path


def unreadable(path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04 no permission")
    path.chmod(0)
    return path


def good_model_config() -> dict:
    return {"format": "cnn-model-1", "input_shape": [1, SIDE, SIDE],
            "layers": [{"type": "Flatten"}, {"type": "Dense", "units": CLASSES, "activation": "softmax"}],
            "dtype": "float32", "seed": 0, "name": "sequential", "frozen": []}


def good_weights() -> dict:
    rng = np.random.default_rng(4)
    return {"param/dense/weight": rng.standard_normal((CLASSES, SIDE * SIDE)).astype(np.float32),
            "param/dense/bias": np.zeros(CLASSES, np.float32)}


def model_file(path: Path, document=None, arrays=None, json_text=None, compressed=False) -> Path:
    """A model file as :func:`cnn.files.save_archive` writes it, with the parts given replaced."""
    document = {"model": good_model_config()} if document is None else document
    text = json.dumps(document) if json_text is None else json_text
    arrays = good_weights() if arrays is None else arrays
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, __json__=np.array([text]), **arrays)
    path.write_bytes(buffer.getvalue())
    return path


def model_with_config(path: Path, **changes) -> Path:
    config = good_model_config()
    config.update(changes)
    return model_file(path, {"model": config})


def network_file(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def write_support(folder: Path) -> dict:
    """The good files the commands need beside a hostile one: a model, a data set, an image."""
    folder.mkdir(parents=True, exist_ok=True)
    return {"model": model_file(folder / "good-model.npz"), "data": npz_file(folder / "good-data.npz"),
            "image": png_file(folder / "good-image.png")}


# ---------------------------------------------------------------------------------------------------------------
# The cases

#: What each reader must raise, by name (resolved lazily: importing this module imports no library code).
EXPECTED = {"data": "DataError", "size": "SizeLimitError", "checkpoint": "CheckpointError", "netspec": "NetSpecError"}

SIZE_AT_CLI = "needs SizeLimitError in cnn.cli.common.USER_ERRORS"
SIZE_THROUGH_LOAD_DATA = (", and cnn.cli.inputs.load_data to let it through (it words every ValueError of "
                          "load_dataset as a --limit mistake)")


@dataclass
class Case:
    category: str  # IDX, gzip, CIFAR, npz data, images, model files, JSON
    name: str
    build: Callable[[Path], Path]  # builds into an empty folder, returns the path given to the reader
    reader: str  # data, image, model, json: which loader and which commands take it
    expect: str  # a key of EXPECTED
    words: tuple = ()  # what the message must also say
    env: dict = field(default_factory=dict)  # limits lowered for this case
    load_xfail: str | None = None  # the in-process reader fails for a reason outside the data helper's files
    cli_xfail: str | None = None  # the command fails for such a reason
    unprivileged: bool = False  # meaningless as root (who may read any file)

    @property
    def id(self) -> str:
        return f"{self.category}: {self.name}".replace(" ", "-")


def _idx(name, replace, *words, expect="data", gz=False, env=None, unprivileged=False):
    category = "gzip" if gz else "IDX"
    return Case(category, name, lambda d: idx_folder(d / "mnist", replace, gz=gz), "data", expect, words,
                env or {}, unprivileged=unprivileged)


def _idx_header(code, dims, payload=b""):
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


IMAGES, LABELS, TEST_IMAGES, TEST_LABELS = range(4)
_img = tiny_arrays()[0]


def idx_cases() -> list[Case]:
    good = idx_bytes(_img)
    return [
        _idx("wrong magic", {IMAGES: b"\x01\x02" + good[2:]}, "2 zero bytes"),
        _idx("unknown type code", {IMAGES: b"\0\0\x07" + good[3:]}, "type code"),
        _idx("zero dimensions", {IMAGES: b"\0\0\x08\0"}, "0 dimensions"),
        _idx("header shorter than its dimensions", {IMAGES: b"\0\0\x08\x03\0\0\0\x06"}, "header"),
        _idx("empty file", {IMAGES: b""}, "4-byte header"),
        _idx("3 bytes", {IMAGES: b"\0\0\x08"}, "4-byte header"),
        _idx("dims whose product overflows int64", {IMAGES: _idx_header(8, [2**32 - 1] * 3)}, "CNN_MAX_ARRAY_BYTES",
             expect="size"),
        _idx("huge but valid-looking header", {IMAGES: _idx_header(0x0E, [60000, 28, 28 * 10**4])}, "needs",
             expect="size"),
        _idx("truncated data", {IMAGES: good[:-7]}, "truncated"),
        _idx("trailing bytes", {IMAGES: good + b"\0" * 5}, "longer than its header"),
        _idx("255 dimensions", {IMAGES: _idx_header(8, [1] * 255, b"\0")}, "dimensions"),
        _idx("int32 images", {IMAGES: idx_bytes(_img.astype(np.int32), 0x0C)}, "uint8 images"),
        _idx("4-D images", {IMAGES: idx_bytes(_img[:, None])}, "3 dimensions"),
        _idx("images of 0x0 pixels", {IMAGES: _idx_header(8, [6, 0, 0])}, "1x1 pixels"),
        _idx("0 training images", {IMAGES: _idx_header(8, [0, SIDE, SIDE]), LABELS: _idx_header(8, [0])},
             "at least 1 training image"),
        _idx("2-D labels", {LABELS: idx_bytes(np.zeros((6, 2), np.uint8))}, "1 dimension"),
        _idx("fewer labels than images", {LABELS: idx_bytes(np.zeros(5, np.uint8))}, "6 labels"),
        _idx("label 200 of 10 classes", {LABELS: idx_bytes(np.array([0, 1, 200, 2, 0, 1], np.uint8))},
             "label 200 at index 2"),
        _idx("test images of another size", {TEST_IMAGES: idx_bytes(np.zeros((3, 5, 5), np.uint8))}, "size"),
        _idx("a folder instead of a file", {IMAGES: lambda p: p.mkdir()}, "a folder"),
        _idx("a FIFO instead of a file", {IMAGES: fifo}, "FIFO"),
        _idx("a symlink loop", {IMAGES: loop}, "loop"),
        _idx("a dangling symlink", {IMAGES: dangling}, "no such file"),
        _idx("a link to /dev/null", {IMAGES: lambda p: os.symlink("/dev/null", p)}, "character device"),
        _idx("no read permission", {IMAGES: unreadable}, "permission", unprivileged=True),
        _idx("file larger than CNN_MAX_FILE_BYTES", {}, "CNN_MAX_FILE_BYTES", expect="size",
             env={"CNN_MAX_FILE_BYTES": "100"}),
    ]


def _gzip_bomb(size: int) -> bytes:
    """gzip of a valid IDX header for ``size`` bytes of zeros: a few KB that expand to ``size``."""
    header = _idx_header(8, [size // (SIDE * SIDE), SIDE, SIDE])
    stream = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [stream.compress(header)]
    block = b"\0" * (1 << 20)
    for _ in range(size // len(block)):
        out.append(stream.compress(block))
    return b"".join(out) + stream.flush()


def _raw_gzip(folder_maker):
    """Write the gzipped images' file as raw bytes (the other 3 gzipped normally)."""
    def write(path: Path) -> None:
        path.write_bytes(folder_maker())
    return write


def gzip_cases() -> list[Case]:
    good = gzip.compress(idx_bytes(_img))
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    bad_crc = bytearray(good)
    bad_crc[-8] ^= 0xFF
    bad_size = bytearray(good)
    bad_size[-1] ^= 0x01
    bomb_env = {"CNN_MAX_FILE_BYTES": "1M"}
    return [
        _idx("truncated stream", {IMAGES: _raw_gzip(lambda: good[:len(good) // 2])}, "truncated", gz=True),
        _idx("header only", {IMAGES: _raw_gzip(lambda: good[:10])}, "truncated", gz=True),
        _idx("magic only", {IMAGES: _raw_gzip(lambda: b"\x1f\x8b")}, "gzip", gz=True),
        _idx("damaged deflate data", {IMAGES: _raw_gzip(lambda: bytes(flipped))}, "gzip", gz=True),
        _idx("bad CRC", {IMAGES: _raw_gzip(lambda: bytes(bad_crc))}, "gzip", gz=True),
        _idx("wrong length in the trailer", {IMAGES: _raw_gzip(lambda: bytes(bad_size))}, "gzip", gz=True),
        _idx("garbage after the stream", {IMAGES: _raw_gzip(lambda: good + b"garbage")}, "after the gzip", gz=True),
        _idx("gzip of something that is not IDX", {IMAGES: _raw_gzip(lambda: gzip.compress(b"hello world"))},
             "IDX", gz=True),
        _idx("gzip bomb (3 MiB of zeros, limit 1 MiB)", {IMAGES: _raw_gzip(lambda: _gzip_bomb(3 << 20))},
             "CNN_MAX_FILE_BYTES", expect="size", gz=True, env=bomb_env),
        _idx("gzip bomb in the labels", {LABELS: _raw_gzip(lambda: _gzip_bomb(3 << 20))},
             "decompressed gzip", expect="size", gz=True, env=bomb_env),
        _idx("many members that together exceed the limit",
             {IMAGES: _raw_gzip(lambda: gzip.compress(b"\0" * (600 << 10)) * 3)}, "CNN_MAX_FILE_BYTES",
             expect="size", gz=True, env=bomb_env),
        _idx("a FIFO named .gz", {IMAGES: fifo}, "FIFO", gz=True),
    ]


def _cifar(name, maker, *words, expect="data", env=None):
    return Case("CIFAR", name, lambda d: maker(d / "cifar"), "data", expect, words, env or {})


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/cnn-hostile-pwned",))


def _nested_shared_list(depth=30, width=4):
    """A list that unpickles cheaply (shared references) but is width**depth ints when numpy walks it."""
    leaf = [0] * width
    for _ in range(depth):
        leaf = [leaf] * width
    return leaf


def cifar_cases() -> list[Case]:
    record = 3073
    good = {b"labels": [0, 1], b"data": np.zeros((2, 3072), np.uint8)}
    return [
        _cifar("binary batch of a wrong length", lambda d: cifar_binary(d, replace={0: b"\0" * (record + 5)}),
               "records"),
        _cifar("binary batch of 0 bytes", lambda d: cifar_binary(d, replace={0: b""}), "records"),
        _cifar("binary label 200", lambda d: cifar_binary(d, labels=[0, 200]), "label 200"),
        _cifar("binary batch is a FIFO", lambda d: cifar_binary(d, replace={2: fifo}), "FIFO"),
        _cifar("binary batch is a folder", lambda d: cifar_binary(d, replace={2: lambda p: p.mkdir()}), "folder"),
        _cifar("binary test batch missing", lambda d: cifar_binary(d, replace={5: lambda p: None}), "test_batch"),
        _cifar("binary meta with 11 names", lambda d: cifar_binary(d, meta="\n".join("abcdefghijk")), "10"),
        _cifar("binary meta with a name of 5000 characters",
               lambda d: cifar_binary(d, meta="\n".join(["x" * 5000] + list("abcdefghi"))), "characters"),
        _cifar("binary meta is a FIFO", lambda d: (cifar_binary(d), fifo(d / "batches.meta.txt"))[0], "FIFO"),
        _cifar("binary batch larger than CNN_MAX_FILE_BYTES", lambda d: cifar_binary(d), "CNN_MAX_FILE_BYTES",
               expect="size", env={"CNN_MAX_FILE_BYTES": "1000"}),
        _cifar("pickle that calls os.system", lambda d: cifar_python(d, replace={0: pickle.dumps(_Evil())}),
               "system", "refused"),
        _cifar("pickle of builtins.eval", lambda d: cifar_python(
            d, replace={0: b"cbuiltins\neval\n(S'1+1'\ntR."}), "refused"),
        _cifar("truncated pickle", lambda d: cifar_python(d, replace={0: pickle.dumps(good, protocol=2)[:40]}),
               "pickle"),
        _cifar("pickle with a persistent id", lambda d: cifar_python(d, replace={0: b"(S'x'\nP0\n."}),
               "persistent"),
        _cifar("pickle of a list", lambda d: cifar_python(d, batch=[1, 2, 3]), "dict"),
        _cifar("pickle of lists nested 100000 deep", lambda d: cifar_python(
            d, replace={0: b"]" * 100000 + b"a" * 99999 + b"."}), "dict"),
        _cifar("data of int64", lambda d: cifar_python(d, batch={b"labels": [0], b"data": np.zeros((1, 3072))}),
               "uint8"),
        _cifar("data of 100 columns", lambda d: cifar_python(
            d, batch={b"labels": [0], b"data": np.zeros((1, 100), np.uint8)}), "3072"),
        _cifar("labels nested through shared lists (4**30 ints)", lambda d: cifar_python(
            d, batch={b"labels": _nested_shared_list(), b"data": np.zeros((4, 3072), np.uint8)}), "labels"),
        _cifar("a label of 100 digits", lambda d: cifar_python(
            d, batch={b"labels": [10**100, 0], b"data": np.zeros((2, 3072), np.uint8)}), "labels"),
        _cifar("labels as strings", lambda d: cifar_python(
            d, batch={b"labels": ["a", "b"], b"data": np.zeros((2, 3072), np.uint8)}), "labels"),
        _cifar("a negative label", lambda d: cifar_python(
            d, batch={b"labels": [0, -1], b"data": np.zeros((2, 3072), np.uint8)}), "labels"),
        _cifar("fewer labels than rows", lambda d: cifar_python(
            d, batch={b"labels": [0], b"data": np.zeros((2, 3072), np.uint8)}), "2 ints"),
        _cifar("labels as a uint64 array with 2**64-1", lambda d: cifar_python(
            d, batch={b"labels": np.array([0, 2**64 - 1], np.uint64), b"data": np.zeros((2, 3072), np.uint8)}),
            "18446744073709551615"),
        _cifar("0 rows in every batch", lambda d: cifar_python(
            d, batch={b"labels": [], b"data": np.zeros((0, 3072), np.uint8)}, protocol=4), "at least 1 training image"),
        _cifar("meta of 11 names", lambda d: cifar_python(d, meta={b"label_names": [b"x"] * 11}), "10"),
        _cifar("meta label_names not a list", lambda d: cifar_python(d, meta={b"label_names": 7}), "label_names"),
        _cifar("meta that calls os.system", lambda d: cifar_python(d, meta=pickle.dumps(_Evil())), "system"),
    ]


def _npz(name, maker, *words, expect="data", env=None, unprivileged=False):
    return Case("npz data", name, lambda d: maker(d / "data.npz"), "data", expect, words, env or {},
                unprivileged=unprivileged)


def _members(overrides=None, compression=zipfile.ZIP_STORED):
    return lambda p: zip_members(p, data_members(**(overrides or {})), compression)


def _lying_size(path: Path, declared: int) -> Path:
    zip_members(path, data_members(), zipfile.ZIP_DEFLATED)
    return patch_central(path, "x_train.npy", 24, "<I", declared)


def _flip_stored_byte(path: Path) -> Path:
    zip_members(path, data_members())
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF  # inside x_train.npy's pixels
    path.write_bytes(bytes(data))
    return path


def _bomb_npz(path: Path) -> Path:
    """x_train of 3 MiB of zeros, deflated to a few KB."""
    images = np.zeros(((3 << 20) // SIDE**2, SIDE, SIDE), np.uint8)
    return zip_members(path, data_members(x_train=npy_bytes(images)), zipfile.ZIP_DEFLATED)


def npz_cases() -> list[Case]:
    x_train, y_train, x_test, y_test = tiny_arrays()
    n = len(y_train)
    big = 10**9
    return [
        _npz("garbage after PK", lambda p: network_file(p, b"PK\x03\x04" + b"\xff" * 100), ".npz"),
        _npz("truncated zip", lambda p: network_file(p, npz_file(p).read_bytes()[:300]), ".npz"),
        _npz("empty file", lambda p: network_file(p, b""), "empty"),
        _npz("not a zip at all", lambda p: network_file(p, b"hello"), ".npz"),
        _npz("header claims 10**12 floats", _members({"x_train": npy_header((10**12,))}), "CNN_MAX_ARRAY_BYTES",
             expect="size"),
        _npz("header claims 2**62 x 2**62 bytes", _members({"x_train": npy_header((2**62, 2**62), "|u1")}),
             "x_train", expect="size"),
        _npz("header claims more than the member holds", _members({"x_train": npy_header((6, SIDE, SIDE), "|u1")}),
             "truncated"),
        _npz("header claims less than the member holds",
             _members({"x_train": npy_header((1, SIDE, SIDE), "|u1") + bytes(6 * SIDE * SIDE)}), "longer"),
        _npz("zip bomb: declared size beyond the limit", _bomb_npz, "declared size", expect="size",
             env={"CNN_MAX_FILE_BYTES": "1M"}),
        _npz("members together beyond the limit", _compressed_npz, "together", expect="size",
             env={"CNN_MAX_FILE_BYTES": "1500"}),
        _npz("declared size smaller than the data", lambda p: _lying_size(p, 100), "x_train"),
        _npz("declared size larger than the data", lambda p: _lying_size(p, 5000), "x_train"),
        _npz("bad CRC", _flip_stored_byte, "CRC"),
        _npz("encrypted member", lambda p: patch_central(zip_members(p, data_members()), "x_train.npy", 8, "<H", 1),
             "encrypted"),
        _npz("unknown compression method", lambda p: patch_central(zip_members(p, data_members()), "x_train.npy",
                                                                    10, "<H", 99), "compression"),
        _npz("duplicate member", lambda p: _duplicate(p), "twice"),
        _npz("member that is not .npy", _members({"x_train": b"just some text, no npy magic"}), "x_train"),
        _npz("npy header of 100000 bytes", _members({"x_train": b"\x93NUMPY\x02\x00" + struct.pack("<I", 100000)
                                                     + b"{" + b" " * 99998 + b"\n"}), "x_train"),
        _npz("npy header that is not a dict", _members({"x_train": npy_header((2,))[:10] + b"[1, 2, 3]".ljust(
            struct.unpack("<H", npy_header((2,))[8:10])[0] - 1) + b"\n"}), "x_train"),
        _npz("npy version 9", _members({"x_train": b"\x93NUMPY\x09\x00" + npy_bytes(x_train)[8:]}), "version"),
        _npz("npy dtype of 0 bytes", _members({"x_train": npy_header((6, SIDE, SIDE), "|S0")}), "1 byte"),
        _npz("negative shape", _members({"x_train": npy_header((-6, SIDE, SIDE), "|u1")}), "x_train"),
        _npz("object array (pickled labels)", lambda p: npz_file(p, y_train=np.array([0, "a"] * 3, dtype=object)),
             "object array"),
        _npz("structured dtype", lambda p: npz_file(p, y_train=np.zeros(n, [("a", "i4"), ("b", "f4")])),
             "dtype"),
        _npz("datetime labels", lambda p: npz_file(p, y_train=np.zeros(n, "datetime64[s]")), "dtype"),
        _npz("no x_train", lambda p: npz_file(p, x_train=None), "no x_train"),
        _npz("5-D images", lambda p: npz_file(p, x_train=x_train[:, None, None]), "shape"),
        _npz("images of 0 channels", lambda p: npz_file(p, x_train=np.zeros((n, 0, SIDE, SIDE), np.uint8),
                                                        x_test=np.zeros((3, 0, SIDE, SIDE), np.uint8)), "channel"),
        _npz("images of 0x0 pixels", lambda p: npz_file(p, x_train=np.zeros((n, 0, 0), np.uint8),
                                                        x_test=np.zeros((3, 0, 0), np.uint8)), "1x1"),
        _npz("NaN pixels", lambda p: npz_file(p, x_train=np.full((n, SIDE, SIDE), np.nan, np.float32)), "finite"),
        _npz("float pixels beyond 1", lambda p: npz_file(p, x_train=np.full((n, SIDE, SIDE), 7.0)), "[0, 1]"),
        _npz("int pixels beyond 255", lambda p: npz_file(p, x_train=np.full((n, SIDE, SIDE), 300, np.int32)),
             "0..255"),
        _npz("complex pixels", lambda p: npz_file(p, x_train=np.zeros((n, SIDE, SIDE), complex)), "dtype"),
        _npz("bool pixels", lambda p: npz_file(p, x_train=np.zeros((n, SIDE, SIDE), bool)), "dtype"),
        _npz("float pixels beyond CNN_MAX_ARRAY_BYTES as float32",
             lambda p: npz_file(p, x_train=np.zeros((n, SIDE, SIDE), np.int16)), "float32", expect="size",
             env={"CNN_MAX_ARRAY_BYTES": "2000"}),
        _npz("more labels than images", lambda p: npz_file(p, y_train=np.zeros(n + 1, np.uint8)), "labels"),
        _npz("float labels", lambda p: npz_file(p, y_train=np.zeros(n, np.float32)), "integer labels"),
        _npz("NaN labels", lambda p: npz_file(p, y_train=np.full(n, np.nan)), "integer labels"),
        _npz("bool labels", lambda p: npz_file(p, y_train=np.zeros(n, bool)), "integer labels"),
        _npz("2-D labels (N, 2)", lambda p: npz_file(p, y_train=np.zeros((n, 2), np.int64)), "integer labels"),
        _npz("negative label", lambda p: npz_file(p, y_train=np.array([0, 1, -3, 0, 1, 2])), "label -3 at index 2"),
        _npz("label 10**9 (a billion class names)", lambda p: npz_file(p, y_train=np.array([0, 1, big, 0, 1, 2])),
             "label 1000000000 at index 2"),
        _npz("uint64 label 2**64-1", lambda p: npz_file(p, y_test=np.array([0, 2**64 - 1, 1], np.uint64)),
             "label 18446744073709551615 at index 1"),
        _npz("label beyond the stored class names", lambda p: npz_file(p, class_names=np.array(["a", "b"])),
             "label 2"),
        _npz("class names as ints", lambda p: npz_file(p, class_names=np.arange(3)), "class_names"),
        _npz("class names of 2-D", lambda p: npz_file(p, class_names=np.array([["a", "b", "c"]])), "class_names"),
        _npz("empty class names", lambda p: npz_file(p, class_names=np.array([], "U1")), "class_names"),
        _npz("class names of bytes that are not UTF-8",
             lambda p: npz_file(p, class_names=np.array([b"\xff\xfe", b"b", b"c"])), "UTF-8"),
        _npz("a class name of 5000 characters", lambda p: npz_file(p, class_names=np.array(["x" * 5000, "b", "c"])),
             "characters"),
        _npz("0 training images", lambda p: npz_file(p, x_train=np.zeros((0, SIDE, SIDE), np.uint8),
                                                     y_train=np.zeros(0, np.uint8)), "at least 1 training image"),
        _npz("x_test of another size", lambda p: npz_file(p, x_test=np.zeros((3, 5, 5), np.uint8)), "x_test"),
        _npz("a FIFO", fifo, "FIFO"),
        _npz("a symlink loop", loop, "loop"),
        _npz("a link to /dev/null", lambda p: (os.symlink("/dev/null", p), p)[1], "character device"),
        _npz("no read permission", unreadable, "permission", unprivileged=True),
        _npz("file larger than CNN_MAX_FILE_BYTES", lambda p: npz_file(p), "CNN_MAX_FILE_BYTES", expect="size",
             env={"CNN_MAX_FILE_BYTES": "100"}),
    ]


def _compressed_npz(path: Path) -> Path:
    """Members of about 1 KB each, deflated: the file and each member within 1,500 bytes, all together not."""
    zeros = np.zeros((6, SIDE, SIDE), np.uint8)
    np.savez_compressed(path, x_train=zeros, y_train=np.zeros(6, np.uint8), x_test=zeros, y_test=np.zeros(6, np.uint8))
    return path


def _duplicate(path: Path) -> Path:
    import warnings

    zip_members(path, data_members())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name: that is the point
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("x_train.npy", npy_bytes(tiny_arrays()[0]))
    return path


def _folder(name, maker, *words, expect="data", env=None, unprivileged=False):
    return Case("images", name, lambda d: maker(d / "pictures"), "data", expect, words, env or {},
                unprivileged=unprivileged)


def _image(name, maker, *words, expect="data", env=None):
    return Case("images", f"predict: {name}", lambda d: maker(d / "input.png"), "image", expect, words, env or {})


def _pil_save(mode, fmt="PNG", **kwargs):
    def make(path: Path) -> Path:
        from PIL import Image

        Image.new(mode, (SIDE, SIDE)).save(path, format=fmt, **kwargs)
        return path
    return make


def _animated(path: Path) -> Path:
    from PIL import Image

    frames = [Image.new("L", (SIDE, SIDE), v) for v in (0, 128, 255)]
    frames[0].save(path, format="PNG", save_all=True, append_images=frames[1:])
    return path


def _mismatched_classes(root: Path) -> Path:
    image_folder(root / "train")
    image_folder(root / "test", classes=("a", "b", "line\nbreak\x1b[31m"))
    return root


def _odd_name_folder(root: Path) -> Path:
    """Class folders named with a newline, an ANSI escape and bytes that are not UTF-8; one image of another
    size, so that the error message has to print a path through them."""
    image_folder(root, classes=("ok", "new\nline", "esc\x1b[2J"))
    odd = Path(os.fsdecode(os.fsencode(str(root)) + b"/\xff\xfe-latin"))
    png_file(odd / "0.png", side=SIDE + 1)
    return root


def image_cases() -> list[Case]:
    return [
        _folder("30000x30000 PNG (header only)", lambda r: image_folder(
            r, make=lambda p: png_header_only(p, 30000, 30000)), "CNN_MAX_IMAGE_PIXELS", expect="size"),
        _folder("image in Pillow's warning band", lambda r: image_folder(r), "CNN_MAX_IMAGE_PIXELS", expect="size",
                env={"CNN_MAX_IMAGE_PIXELS": "100"}),
        _folder("image beyond twice the limit", lambda r: image_folder(r), "CNN_MAX_IMAGE_PIXELS", expect="size",
                env={"CNN_MAX_IMAGE_PIXELS": "50"}),
        _folder("images together beyond CNN_MAX_ARRAY_BYTES", lambda r: image_folder(r), "CNN_MAX_ARRAY_BYTES",
                expect="size", env={"CNN_MAX_ARRAY_BYTES": "500"}),
        _folder("truncated PNG", lambda r: image_folder(
            r, make=lambda p: network_file(p, png_file(p).read_bytes()[:60])), "readable"),
        _folder("random bytes named .png", lambda r: image_folder(r, make=lambda p: network_file(p, os.urandom(200))),
                "readable"),
        _folder("empty .png", lambda r: image_folder(r, make=lambda p: network_file(p, b"")), "readable"),
        _folder("PNG with an 8 MiB zTXt bomb", lambda r: image_folder(r, make=png_with_text_bomb), "readable"),
        _folder("16-bit PNG", lambda r: image_folder(r, make=_pil_save("I;16")), "16-bit"),
        _folder("CMYK image (JPEG named .png)", lambda r: image_folder(r, make=_pil_save("CMYK", "JPEG")), "CMYK"),
        _folder("32-bit float TIFF named .png", lambda r: image_folder(r, make=_pil_save("F", "TIFF")), "mode F"),
        _folder("animated PNG", lambda r: image_folder(r, make=_animated), "animation"),
        _folder("animated GIF named .png", lambda r: image_folder(
            r, make=lambda p: (_animated(p.with_suffix(".apng")), _gif(p))[1]), "animation"),
        _folder("empty class folder", lambda r: (image_folder(r), (r / "d").mkdir())[0], "none"),
        _folder("class folder holding only a FIFO .png", lambda r: (image_folder(r), (r / "d").mkdir(),
                                                                    fifo(r / "d" / "0.png"))[0], "none"),
        _folder("images of two sizes", lambda r: image_folder(r, make=lambda p: png_file(p, side=SIDE + 1)),
                "same channels and size"),
        _folder("gray and colour mixed", lambda r: image_folder(r, make=lambda p: png_file(p, mode="RGB")),
                "same channels"),
        _folder("train and test with other classes, one named with escapes", _mismatched_classes, "class folders"),
        _folder("class folders named with a newline, an escape and non-UTF-8 bytes", _odd_name_folder, "size"),
        _folder("unreadable class folder", lambda r: (image_folder(r), (r / "b").chmod(0))[0], "permission",
                unprivileged=True),
        _folder("empty folder", lambda r: (r.mkdir(), r)[1], "nothing"),
        _folder("train without test holding no class folders", lambda r: ((r / "train").mkdir(parents=True), r)[1],
                ".png"),
        _image("30000x30000 PNG", lambda p: png_header_only(p, 30000, 30000), "CNN_MAX_IMAGE_PIXELS",
               expect="size"),
        _image("a FIFO", fifo, "FIFO"),
        _image("a folder", lambda p: (p.mkdir(), p)[1], "folder"),
        _image("missing", lambda p: p, "no such file"),
        _image("random bytes", lambda p: network_file(p, os.urandom(100)), "readable"),
        _image("16-bit PNG", _pil_save("I;16"), "16-bit"),
        _image("another size", lambda p: png_file(p, side=SIDE + 3), "--resize"),
    ]


def _gif(path: Path) -> Path:
    from PIL import Image

    frames = [Image.new("L", (SIDE, SIDE), v) for v in (0, 128, 255)]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:])
    return path


def _model(name, maker, *words, expect="checkpoint", env=None, load_xfail=None, cli_xfail=None):
    return Case("model files", name, lambda d: maker(d / "model.npz"), "model", expect, words, env or {},
                load_xfail=load_xfail, cli_xfail=cli_xfail or load_xfail)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def model_cases() -> list[Case]:
    weights = good_weights()
    return [
        _model("not a zip", lambda p: network_file(p, b"hello, not a model"), "readable"),
        _model("truncated", lambda p: network_file(p, model_file(p).read_bytes()[:400]), "readable"),
        _model("empty file", lambda p: network_file(p, b""), "readable"),
        _model("no __json__", lambda p: (np.savez(p, **weights), p)[1], "__json__"),
        _model("__json__ of ints", lambda p: (np.savez(p, __json__=np.arange(3), **weights), p)[1], "one string"),
        _model("JSON that does not parse", lambda p: model_file(p, json_text="{not json"), "does not parse"),
        _model("JSON nested 100000 deep", lambda p: model_file(p, json_text=_deep(100000)), "nested"),
        _model("JSON with a 5000-digit int", lambda p: model_file(p, json_text='{"model": ' + "9" * 5000 + "}"),
               "does not parse"),
        _model("JSON that is a list", lambda p: model_file(p, json_text="[1, 2]"), "object"),
        _model("JSON without model", lambda p: model_file(p, {"weights": 1}), "no model configuration"),
        _model("object array of weights", lambda p: model_file(p, arrays={
            **weights, "param/dense/bias": np.array([1, "a", None], dtype=object)}), "object array"),
        _model("weights of another shape", lambda p: model_file(p, arrays={
            **weights, "param/dense/bias": np.zeros(7, np.float32)}), "shape"),
        _model("weights of ints", lambda p: model_file(p, arrays={
            **weights, "param/dense/bias": np.zeros(3, np.int32)}), "float"),
        _model("header claims 10**12 floats", lambda p: _weights_header(p, npy_header((10**12,))),
               "CNN_MAX_ARRAY_BYTES", expect="size"),
        _model("zip bomb", lambda p: model_file(p, arrays={**weights, "param/extra": np.zeros(3 << 20, np.uint8)},
                                                compressed=True),
               "declared size", expect="size", env={"CNN_MAX_FILE_BYTES": "1M"}),
        _model("bad CRC", lambda p: _flip_model_byte(p), "CRC"),
        _model("a FIFO", fifo, "FIFO"),
        _model("a folder", lambda p: (p.mkdir(), p)[1], "folder"),
        _model("a link to /dev/null", lambda p: (os.symlink("/dev/null", p), p)[1], "character device"),
        _model("a symlink loop", loop, "loop"),
        _model("missing", lambda p: p, "no such"),
        _model("config format of another program", lambda p: model_with_config(p, format="keras"), "format"),
        _model("config that is a list", lambda p: model_file(p, {"model": [1, 2]}), "configuration"),
        _model("no layers key", lambda p: model_file(p, {"model": {k: v for k, v in good_model_config().items()
                                                                    if k != "layers"}}), "layers"),
        _model("layers of a string", lambda p: model_with_config(p, layers="dense"), "layer"),
        _model("an empty layer list", lambda p: model_with_config(p, layers=[]), "layer"),
        _model("an unknown layer type", lambda p: model_with_config(p, layers=[{"type": "Evil"}]), "Evil"),
        _model("dtype float16", lambda p: model_with_config(p, dtype="float16"), "dtype"),
        _model("dtype int32", lambda p: model_with_config(p, dtype="int32"), "dtype"),
        _model("seed 'abc'", lambda p: model_with_config(p, seed="abc"), "seed"),
        _model("seed -5", lambda p: model_with_config(p, seed=-5), "seed"),
        _model("seed 1.5", lambda p: model_with_config(p, seed=1.5), "seed"),
        _model("input_shape of strings", lambda p: model_with_config(p, input_shape=["a", "b"]), "cannot be built"),
        _model("frozen of an int", lambda p: model_with_config(p, frozen=7), "cannot be built"),
        _model("a dense layer of 10**9 units", lambda p: model_with_config(
            p, layers=[{"type": "Flatten"}, {"type": "Dense", "units": 10**9}]), "CNN_MAX_ARRAY_BYTES", expect="size"),
        _model("a class name with a newline and an escape in a model without config",
               lambda p: model_file(p, {"class_names": ["a\nb", "\x1b[2J"]}), "no model configuration"),
    ]


def _weights_header(path: Path, member: bytes) -> Path:
    model_file(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("param/huge.npy", member)
    return path


def _flip_model_byte(path: Path) -> Path:
    model_file(path)
    data = bytearray(path.read_bytes())
    at = data.index(b"param/dense/weight.npy") + len("param/dense/weight.npy") + 200
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _json(name, text, *words, expect="netspec", load_xfail=None, cli_xfail=None):
    return Case("JSON", name, lambda d: network_file(d / "net.json", text), "json", expect, words,
                load_xfail=load_xfail, cli_xfail=cli_xfail or load_xfail)


def json_cases() -> list[Case]:
    layers = good_model_config()["layers"]
    good = {"input_shape": [1, SIDE, SIDE], "layers": layers}
    return [
        _json("bad UTF-8", b'{"input_shape": [1, 12, 12], "layers": [\xff\xfe]}', "UTF-8"),
        _json("nested 5000 deep", _deep(5000), "nested"),
        _json("a 5000-digit int", '{"input_shape": [1, 12, 12], "layers": [{"type": "Dense", "units": '
              + "9" * 5000 + "}]}", "digits"),
        _json("an empty layer list", json.dumps({**good, "layers": []}), "layer"),
        _json("a list", "[1, 2, 3]", "object"),
        _json("empty file", "", "JSON"),
        _json("truncated", json.dumps(good)[:30], "JSON"),
        _json("an unknown layer type", json.dumps({**good, "layers": [{"type": "Evil"}]}), "Evil"),
        _json("layers of a string", json.dumps({**good, "layers": "dense"}), "layers"),
        _json("a layer with a negative size", json.dumps({**good, "layers": [{"type": "Dense", "units": -3}]}),
              "units"),
        _json("a NaN size", '{"input_shape": [1, 12, 12], "layers": [{"type": "Dense", "units": NaN}]}', "units"),
        _json("a layer name with a newline and an ANSI escape", json.dumps(
            {**good, "layers": [{"type": "Evil\n\x1b[31m"}]}), "Evil"),
    ]


def all_cases() -> list[Case]:
    return idx_cases() + gzip_cases() + cifar_cases() + npz_cases() + image_cases() + model_cases() + json_cases()


CATEGORIES = ("IDX", "gzip", "CIFAR", "npz data", "images", "model files", "JSON")


# ---------------------------------------------------------------------------------------------------------------
# Running a case through its reader in-process


def reader_of(case: Case):
    """The in-process call that reads the case's path."""
    import cnn
    from cnn import data
    from cnnbase import netspec

    return {
        "data": lambda path: data.load_dataset(path),
        "image": lambda path: data.read_image(path, (1, SIDE, SIDE), resize=False),
        "model": lambda path: cnn.load_model(path, engine="refcnn"),
        "json": lambda path: netspec.load_network(str(path)),
    }[case.reader]


def expected_type(case: Case) -> type:
    import cnn
    from cnnbase import limits, netspec

    return {"DataError": cnn.DataError, "SizeLimitError": limits.SizeLimitError,
            "CheckpointError": cnn.CheckpointError, "NetSpecError": netspec.NetSpecError}[EXPECTED[case.expect]]


def outcome(case: Case, folder: Path) -> tuple[str, str]:
    """('clean' | 'bad', what happened) for one case built into ``folder`` (the environment already set)."""
    from cnnbase.checks import printable

    path = case.build(folder)
    try:
        reader_of(case)(path)
    except expected_type(case) as error:
        message = str(error)
        if "\n" in message or not message.isprintable():
            return "bad", f"a message that is not one printable line: {message!r}"
        if printable(str(folder)) not in message:  # the case's path, or a file inside it
            return "bad", f"a message that does not name {path}: {message}"
        missing = [w for w in case.words if w not in message]
        if missing:
            return "bad", f"a message without {missing}: {message}"
        return "clean", message
    except Exception as error:  # anything else is what the corpus is here to find
        return "bad", f"{type(error).__name__}: {error}"[:300]
    return "bad", "no error"


def main(argv) -> int:
    import tempfile

    root = Path(argv[1]) if len(argv) > 1 else Path(tempfile.mkdtemp(prefix="cnn-hostile-"))
    root.mkdir(parents=True, exist_ok=True)
    table = {c: [0, 0, 0] for c in CATEGORIES}
    root_user = hasattr(os, "geteuid") and os.geteuid() == 0
    for i, case in enumerate(all_cases()):
        if case.unprivileged and root_user:
            continue
        folder = root / f"{i:03d}"
        folder.mkdir()
        saved = {k: os.environ.get(k) for k in case.env}
        os.environ.update(case.env)
        try:
            verdict, detail = outcome(case, folder)
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        table[case.category][0] += 1
        table[case.category][1 if verdict == "clean" else 2] += 1
        if verdict == "bad":
            note = f" (xfail: {case.load_xfail})" if case.load_xfail else ""
            print(f"BAD  {case.id}: {detail}{note}")
    print(f"\n{'category':<12} {'tried':>5} {'clean':>5} {'bad':>5}")
    for category, (tried, clean, bad) in table.items():
        print(f"{category:<12} {tried:>5} {clean:>5} {bad:>5}")
    print(f"\ncorpus in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
