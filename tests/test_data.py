"""Data loaders: round trips through small files written here, one test per kind of damage, the embedded
sample, the full Fashion-MNIST when installed, and the batch order."""

import gzip
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from cnn import data
from cnn.data import (
    DataError, Dataset, batches, load_cifar10, load_dataset, load_idx_folder, load_image_folder, load_npz,
    read_idx, read_image, to_float, validation_split,
)
from cnn.data import catalog, idx

# --------------------------------------------------------------------------------------------------
# Writers for tiny files in the real formats


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    big_endian = array.astype(array.dtype.newbyteorder(">"))
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + big_endian.tobytes()


def write(path, content: bytes, *, gz: bool = False):
    path.write_bytes(gzip.compress(content) if gz else content)
    return path


def tiny_mnist(rng, n_train=7, n_test=3, side=5):
    return (
        rng.integers(0, 256, (n_train, side, side), dtype=np.uint8), rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, side, side), dtype=np.uint8), rng.integers(0, 10, n_test, dtype=np.uint8),
    )


def write_idx_folder(folder, arrays, *, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    return [write(folder / (name + suffix), idx_bytes(a), gz=gz) for name, a in zip(names, arrays)]


def cifar_records(x: np.ndarray, y: np.ndarray) -> bytes:
    return b"".join(bytes([label]) + image.tobytes() for image, label in zip(x, y))


def tiny_cifar(rng, n):
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write_cifar_binary(folder, rng, n=2):
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for stem in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x, y = tiny_cifar(rng, n)
        write(folder / f"{stem}.bin", cifar_records(x, y))
        parts.append((x, y))
    return parts


def write_cifar_python(folder, rng, n=2, protocol=2):
    folder.mkdir(parents=True, exist_ok=True)
    parts = []
    for stem in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x, y = tiny_cifar(rng, n)
        # The real files come from Python 2: bytes keys, `data` a uint8 array (N, 3072), `labels` a list.
        batch = {b"batch_label": b"tiny", b"labels": [int(v) for v in y], b"data": x.reshape(n, -1),
                 b"filenames": [b"a.png"] * n}
        (folder / stem).write_bytes(pickle.dumps(batch, protocol=protocol))
        parts.append((x, y))
    meta = {b"label_names": [name.encode() for name in data.CIFAR10_CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return parts


def write_png(path, pixels: np.ndarray):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def raises_data_error(path_or_word, *problem_words):
    """Context manager: a DataError whose message names the file and each word of the problem."""
    return _ErrorCheck(str(path_or_word), problem_words)


class _ErrorCheck:
    def __init__(self, name, words):
        self.name, self.words = name, words

    def __enter__(self):
        self._ctx = pytest.raises(DataError)
        self.info = self._ctx.__enter__()
        return self.info

    def __exit__(self, *exc):
        handled = self._ctx.__exit__(*exc)
        message = str(self.info.value)
        assert self.name in message, message
        for word in self.words:
            assert word in message, f"{word!r} not in {message!r}"
        return handled


# --------------------------------------------------------------------------------------------------
# IDX


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_round_trip(tmp_path, rng, gz):
    arrays = tiny_mnist(rng)
    write_idx_folder(tmp_path / "mnist", arrays, gz=gz)
    ds = load_idx_folder(tmp_path / "mnist")
    np.testing.assert_array_equal(ds.x_train, arrays[0][:, None])
    np.testing.assert_array_equal(ds.y_train, arrays[1])
    np.testing.assert_array_equal(ds.x_test, arrays[2][:, None])
    np.testing.assert_array_equal(ds.y_test, arrays[3])
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.class_names == data.DIGIT_CLASSES


def test_idx_folder_named_fashion_gets_fashion_class_names(tmp_path, rng):
    write_idx_folder(tmp_path / "my-fashion-mnist", tiny_mnist(rng))
    assert load_idx_folder(tmp_path / "my-fashion-mnist").class_names == data.FASHION_MNIST_CLASSES


@pytest.mark.parametrize("dtype, code", [(np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)])
def test_read_idx_other_types_in_native_byte_order(tmp_path, rng, dtype, code):
    array = (rng.standard_normal((2, 3, 4)) * 100).astype(dtype)
    x = read_idx(write(tmp_path / "a.idx", idx_bytes(array, code)))
    assert x.dtype == np.dtype(dtype) and x.dtype.isnative
    np.testing.assert_array_equal(x, array)


def test_idx_truncated(tmp_path, rng):
    content = idx_bytes(rng.integers(0, 256, (4, 5, 5), dtype=np.uint8))
    path = write(tmp_path / "train-images-idx3-ubyte", content[:-7])
    with raises_data_error(path, "truncated", "(4, 5, 5)"):
        read_idx(path)


def test_idx_longer_than_header(tmp_path, rng):
    content = idx_bytes(rng.integers(0, 256, (4, 5, 5), dtype=np.uint8))
    path = write(tmp_path / "x.idx", content + b"\0")
    with raises_data_error(path, "longer than its header"):
        read_idx(path)


def test_idx_truncated_gzip_stream(tmp_path, rng):
    content = gzip.compress(idx_bytes(rng.integers(0, 256, (40, 5, 5), dtype=np.uint8)))
    path = write(tmp_path / "train-images-idx3-ubyte.gz", content[: len(content) // 2])
    with raises_data_error(path, "gzip"):
        read_idx(path)


def test_idx_bad_magic(tmp_path):
    path = write(tmp_path / "x.idx", b"\x89PNG\r\n\x1a\n" + bytes(100))
    with raises_data_error(path, "2 zero bytes", "89504e47"):
        read_idx(path)


def test_idx_unknown_type_code(tmp_path):
    path = write(tmp_path / "x.idx", bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]))
    with raises_data_error(path, "type code", "0x07"):
        read_idx(path)


def test_idx_header_cut_short(tmp_path):
    path = write(tmp_path / "x.idx", bytes([0, 0, 8, 3, 0, 0]))
    with raises_data_error(path, "header of 16 bytes"):
        read_idx(path)


def test_idx_label_count_differs_from_image_count(tmp_path, rng):
    arrays = list(tiny_mnist(rng))
    arrays[1] = arrays[1][:-1]
    paths = write_idx_folder(tmp_path / "mnist", arrays)
    with raises_data_error(paths[1], "7 labels", "found 6 labels"):
        load_idx_folder(tmp_path / "mnist")


def test_idx_label_out_of_range(tmp_path, rng):
    arrays = list(tiny_mnist(rng))
    arrays[3] = arrays[3].copy()
    arrays[3][1] = 10
    paths = write_idx_folder(tmp_path / "mnist", arrays)
    with raises_data_error(paths[3], "labels in 0..9", "label 10 at index 1"):
        load_idx_folder(tmp_path / "mnist")


def test_idx_images_of_wrong_rank(tmp_path, rng):
    arrays = list(tiny_mnist(rng))
    arrays[0] = arrays[0].reshape(7, 25)
    paths = write_idx_folder(tmp_path / "mnist", arrays)
    with raises_data_error(paths[0], "3 dimensions (N, H, W)", "(7, 25)"):
        load_idx_folder(tmp_path / "mnist")


def test_idx_folder_missing_file(tmp_path, rng):
    paths = write_idx_folder(tmp_path / "mnist", tiny_mnist(rng))
    paths[2].unlink()
    with raises_data_error(tmp_path / "mnist", "t10k-images-idx3-ubyte"):
        load_idx_folder(tmp_path / "mnist")


# --------------------------------------------------------------------------------------------------
# CIFAR-10


def test_cifar_binary_round_trip(tmp_path, rng):
    parts = write_cifar_binary(tmp_path / "cifar-10-batches-bin", rng)
    (tmp_path / "cifar-10-batches-bin" / "batches.meta.txt").write_text("\n".join("abcdefghij") + "\n\n")
    ds = load_cifar10(tmp_path)  # the folder the archive unpacks into is found
    np.testing.assert_array_equal(ds.x_train, np.concatenate([x for x, _ in parts[:5]]))
    np.testing.assert_array_equal(ds.y_train, np.concatenate([y for _, y in parts[:5]]))
    np.testing.assert_array_equal(ds.x_test, parts[5][0])
    np.testing.assert_array_equal(ds.y_test, parts[5][1])
    assert ds.class_names == tuple("abcdefghij")
    assert ds.x_train.shape == (10, 3, 32, 32)


def test_cifar_binary_bad_record_size(tmp_path, rng):
    write_cifar_binary(tmp_path, rng)
    path = tmp_path / "data_batch_3.bin"
    write(path, path.read_bytes()[:-1])
    with raises_data_error(path, "records of 3073 bytes", "3072 bytes left over"):
        load_cifar10(tmp_path)


def test_cifar_binary_label_out_of_range(tmp_path, rng):
    write_cifar_binary(tmp_path, rng)
    path = tmp_path / "test_batch.bin"
    content = bytearray(path.read_bytes())
    content[3073] = 200  # the label byte of the second record
    write(path, bytes(content))
    with raises_data_error(path, "labels in 0..9", "label 200 at index 1"):
        load_cifar10(tmp_path)


def test_cifar_binary_missing_batch(tmp_path, rng):
    write_cifar_binary(tmp_path, rng)
    (tmp_path / "data_batch_4.bin").unlink()
    with raises_data_error(tmp_path, "data_batch_4.bin"):
        load_cifar10(tmp_path)


@pytest.mark.parametrize("protocol", [2, 5])
def test_cifar_python_round_trip_through_restricted_unpickler(tmp_path, rng, protocol):
    parts = write_cifar_python(tmp_path, rng, protocol=protocol)
    ds = load_cifar10(tmp_path)
    np.testing.assert_array_equal(ds.x_train, np.concatenate([x for x, _ in parts[:5]]))
    np.testing.assert_array_equal(ds.y_test, parts[5][1])
    assert ds.class_names == data.CIFAR10_CLASSES


class _Exploit:
    """Unpickling this calls os.system: what a hostile 'data set' would ship."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running(tmp_path, rng):
    write_cifar_python(tmp_path, rng)
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_2"
    path.write_bytes(pickle.dumps({b"data": _Exploit(marker), b"labels": []}, protocol=2))
    with raises_data_error(path, "refused", "system"):
        load_cifar10(tmp_path)
    assert not marker.exists()


def test_pickle_of_wrong_content(tmp_path, rng):
    write_cifar_python(tmp_path, rng)
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.float64), b"labels": [1, 2]}))
    with raises_data_error(path, "uint8 array (N, 3072)", "float64"):
        load_cifar10(tmp_path)


def test_truncated_pickle(tmp_path, rng):
    write_cifar_python(tmp_path, rng)
    path = tmp_path / "data_batch_1"
    path.write_bytes(path.read_bytes()[:100])
    with raises_data_error(path, "a complete pickle"):
        load_cifar10(tmp_path)


# --------------------------------------------------------------------------------------------------
# .npz


def save_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("layout, to_file", [
    ("NHW", lambda x: x[:, 0]),
    ("NCHW", lambda x: x),
    ("NHWC", lambda x: x.transpose(0, 2, 3, 1)),
])
def test_npz_round_trip_decides_layout(tmp_path, rng, layout, to_file):
    channels = 1 if layout == "NHW" else 3
    x_train = rng.integers(0, 256, (5, channels, 6, 7), dtype=np.uint8)
    x_test = rng.integers(0, 256, (2, channels, 6, 7), dtype=np.uint8)
    path = save_npz(tmp_path / "d.npz", x_train=to_file(x_train), y_train=np.array([0, 1, 2, 1, 0]),
                    x_test=to_file(x_test), y_test=np.array([[2], [0]]))
    ds = load_npz(path)
    np.testing.assert_array_equal(ds.x_train, x_train)
    np.testing.assert_array_equal(ds.x_test, x_test)
    np.testing.assert_array_equal(ds.y_test, [2, 0])
    assert ds.class_names == ("0", "1", "2") and ds.name == "d"


def test_npz_ambiguous_layout_needs_the_override(tmp_path, rng):
    x = rng.integers(0, 256, (2, 3, 4, 3), dtype=np.uint8)
    path = save_npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1]), x_test=x, y_test=np.array([1, 0]))
    with raises_data_error(path, "layout", "(2, 3, 4, 3)"):
        load_npz(path)
    np.testing.assert_array_equal(load_npz(path, layout="NHWC").x_train, x.transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(load_npz(path, layout="NCHW").x_train, x)


def test_npz_class_names_and_float_images(tmp_path, rng):
    x = rng.random((3, 1, 5, 5))
    path = save_npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1, 1]), x_test=x[:1], y_test=np.array([1]),
                    class_names=np.array(["cat", "dog"]))
    ds = load_npz(path)
    assert ds.class_names == ("cat", "dog") and ds.x_train.dtype == np.float32
    np.testing.assert_allclose(ds.x_train, x, rtol=1e-7)


def test_npz_label_beyond_class_names(tmp_path, rng):
    x = rng.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    path = save_npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 2, 1]), x_test=x, y_test=np.array([0, 1, 1]),
                    class_names=np.array(["cat", "dog"]))
    with raises_data_error(path, "y_train", "labels in 0..1", "label 2 at index 1"):
        load_npz(path)


def test_npz_object_array_is_refused(tmp_path, rng):
    x = rng.integers(0, 256, (2, 4, 4), dtype=np.uint8)
    labels = np.array([0, "one"], dtype=object)
    path = save_npz(tmp_path / "d.npz", x_train=x, y_train=labels, x_test=x, y_test=np.array([0, 1]))
    with raises_data_error(path, "y_train", "object array"):
        load_npz(path)


def test_npz_missing_array(tmp_path, rng):
    x = rng.integers(0, 256, (2, 4, 4), dtype=np.uint8)
    path = save_npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1]), x_test=x)
    with raises_data_error(path, "no y_test"):
        load_npz(path)


def test_npz_image_and_label_counts_differ(tmp_path, rng):
    x = rng.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    path = save_npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1]), x_test=x, y_test=np.array([0, 1, 1]))
    with raises_data_error(path, "3 labels in `y_train`"):
        load_npz(path)


def test_npz_float_pixels_outside_unit_interval(tmp_path, rng):
    x = rng.random((2, 4, 4)) * 255
    path = save_npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1]), x_test=x, y_test=np.array([0, 1]))
    with raises_data_error(path, "[0, 1]"):
        load_npz(path)


def test_npz_truncated(tmp_path, rng):
    x = rng.integers(0, 256, (20, 4, 4), dtype=np.uint8)
    path = save_npz(tmp_path / "d.npz", x_train=x, y_train=np.zeros(20, int), x_test=x, y_test=np.zeros(20, int))
    write(path, path.read_bytes()[:300])
    with raises_data_error(path, "npz"):
        load_npz(path)


# --------------------------------------------------------------------------------------------------
# Image folders


def test_png_folder_round_trip_gray_with_train_and_test(tmp_path, rng):
    images = {}
    for split, count in (("train", 2), ("test", 1)):
        for name in ("zebra", "ant"):
            for i in range(count):
                pixels = rng.integers(0, 256, (5, 4), dtype=np.uint8)
                write_png(tmp_path / split / name / f"{i}.png", pixels)
                images[split, name, i] = pixels
    ds = load_image_folder(tmp_path)
    assert ds.class_names == ("ant", "zebra")  # sorted by name
    assert ds.x_train.shape == (4, 1, 5, 4) and ds.x_test.shape == (2, 1, 5, 4)
    np.testing.assert_array_equal(ds.y_train, [0, 0, 1, 1])
    np.testing.assert_array_equal(ds.x_train[2, 0], images["train", "zebra", 0])
    np.testing.assert_array_equal(ds.x_test[0, 0], images["test", "ant", 0])


def test_png_folder_rgb_with_test_fraction(tmp_path, rng):
    for name in ("a", "b"):
        for i in range(5):
            write_png(tmp_path / name / f"{i}.png", rng.integers(0, 256, (3, 4, 3), dtype=np.uint8))
    ds = load_image_folder(tmp_path, test_fraction=0.2, seed=1)
    assert ds.x_train.shape == (8, 3, 3, 4) and ds.x_test.shape == (2, 3, 3, 4)
    assert load_image_folder(tmp_path).x_test.shape == (0, 3, 3, 4)


def test_png_folder_mixed_sizes(tmp_path, rng):
    write_png(tmp_path / "a" / "0.png", rng.integers(0, 256, (5, 5), dtype=np.uint8))
    write_png(tmp_path / "b" / "0.png", rng.integers(0, 256, (5, 6), dtype=np.uint8))
    with raises_data_error(tmp_path / "b" / "0.png", "same channels and size", "(1, 5, 6)"):
        load_image_folder(tmp_path)


def test_png_folder_damaged_image(tmp_path, rng):
    write_png(tmp_path / "a" / "0.png", rng.integers(0, 256, (5, 5), dtype=np.uint8))
    bad = write(tmp_path / "a" / "1.png", b"\x89PNG\r\n\x1a\n not really")
    with raises_data_error(bad, "readable PNG"):
        load_image_folder(tmp_path)


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_png_with_alpha_reads_the_same_in_a_class_folder_and_alone(tmp_path, rng, mode):
    from PIL import Image

    bands = [rng.integers(0, 256, (3, 5), dtype=np.uint8) for _ in mode]
    path = tmp_path / "a" / "0.png"
    path.parent.mkdir()
    Image.merge(mode, [Image.fromarray(band) for band in bands]).save(path)
    channels = len(mode) - 1  # the alpha band is dropped, not composited
    in_folder = load_image_folder(tmp_path).x_train[0]
    alone = read_image(path, (channels, 3, 5), resize=False)
    assert in_folder.shape == alone.shape == (channels, 3, 5)
    np.testing.assert_array_equal(in_folder, alone)
    np.testing.assert_array_equal(alone, np.stack(bands[:channels]))


def test_png_refused_modes_and_sizes_are_data_errors(tmp_path, rng):
    from PIL import Image

    deep = tmp_path / "a" / "0.png"
    deep.parent.mkdir()
    Image.fromarray(rng.integers(0, 65536, (3, 5), dtype=np.uint16)).save(deep)  # 16-bit gray
    for read in (lambda: load_image_folder(tmp_path), lambda: read_image(deep, (1, 3, 5), resize=False)):
        with raises_data_error(deep, "is not supported", "8-bit gray or RGB"):
            read()
    small = tmp_path / "small.png"
    write_png(small, rng.integers(0, 256, (3, 5), dtype=np.uint8))
    with raises_data_error(small, "5x3 pixels", "takes 4x6", "--resize"):
        read_image(small, (1, 6, 4), resize=False)
    assert read_image(small, (3, 6, 4), resize=True).shape == (3, 6, 4)
    with raises_data_error(tmp_path / "missing.png", "no such file"):
        read_image(tmp_path / "missing.png", (1, 3, 5), resize=False)
    with pytest.raises(DataError, match="1xHxW .gray. or 3xHxW"):
        read_image(small, (2, 3, 5), resize=False)


# --------------------------------------------------------------------------------------------------
# Names, paths, the embedded sample, the full set


def test_embedded_sample_is_stratified_with_documented_sizes():
    ds = load_dataset("fashion-mnist-small")
    assert ds.name == "fashion-mnist-small" and "embedded" in ds.source
    assert ds.x_train.shape == (10_000, 1, 28, 28) and ds.x_test.shape == (2_000, 1, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.class_names == data.FASHION_MNIST_CLASSES
    np.testing.assert_array_equal(np.bincount(ds.y_train), [1000] * 10)
    np.testing.assert_array_equal(np.bincount(ds.y_test), [200] * 10)
    assert data.EMBEDDED_SAMPLE.stat().st_size < 8_000_000
    assert (data.EMBEDDED_SAMPLE.parent / "fashion-mnist-LICENSE.txt").read_text().count("Zalando SE") == 1


def test_embedded_sample_is_the_fashion_mnist_images_it_names():
    folder = data.find_fashion_mnist()
    if folder is None:
        pytest.skip("the full Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    with np.load(data.EMBEDDED_SAMPLE) as sample:
        train_indices = sample["train_indices"].astype(np.int64)
        x_train = sample["x_train"]
    full = read_idx(idx._find_idx_file(folder, "x_train"))
    np.testing.assert_array_equal(x_train, full[train_indices])


def test_full_fashion_mnist_when_installed():
    if data.find_fashion_mnist() is None:
        pytest.skip("the full Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    ds = load_dataset("fashion-mnist")
    assert ds.x_train.shape == (60_000, 1, 28, 28) and ds.x_test.shape == (10_000, 1, 28, 28)
    np.testing.assert_array_equal(np.bincount(ds.y_train), [6000] * 10)
    assert ds.name == "fashion-mnist" and "full" in ds.source


def test_default_and_data_dir_variable(tmp_path, rng, monkeypatch):
    monkeypatch.setattr(catalog, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "not-installed")  # where it is read
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    assert load_dataset("default").name == "fashion-mnist-small"
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
    arrays = tiny_mnist(rng)
    write_idx_folder(tmp_path / "data" / "fashion-mnist", arrays, gz=True)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "data"))
    ds = load_dataset("default")
    assert ds.name == "fashion-mnist" and str(tmp_path / "data") in ds.source
    np.testing.assert_array_equal(ds.y_train, arrays[1])


def test_load_dataset_decides_by_content(tmp_path, rng):
    write_idx_folder(tmp_path / "idx", tiny_mnist(rng))
    write_cifar_binary(tmp_path / "cifar", rng)
    write_png(tmp_path / "png" / "a" / "0.png", rng.integers(0, 256, (4, 4), dtype=np.uint8))
    x = rng.integers(0, 256, (2, 4, 4), dtype=np.uint8)
    save_npz(tmp_path / "renamed.dat", x_train=x, y_train=np.array([0, 1]), x_test=x, y_test=np.array([0, 1]))
    assert load_dataset(tmp_path / "idx").source.startswith("IDX")
    assert load_dataset(tmp_path / "cifar").name == "cifar-10"
    assert load_dataset(tmp_path / "png").source.startswith("PNG")
    assert load_dataset(tmp_path / "renamed.dat.npz").x_train.shape == (2, 1, 4, 4)
    with raises_data_error(tmp_path / "nowhere", "data set name"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with raises_data_error(tmp_path / "empty", "none of these"):
        load_dataset(tmp_path / "empty")


def test_limit_keeps_the_first_training_images():
    full = load_dataset("fashion-mnist-small")
    ds = load_dataset("fashion-mnist-small", limit=100)
    np.testing.assert_array_equal(ds.x_train, full.x_train[:100])
    assert len(ds.y_test) == 2_000
    with pytest.raises(ValueError, match="limit"):
        load_dataset("fashion-mnist-small", limit=10_001)


def test_dataset_refuses_inconsistent_arrays():
    x = np.zeros((2, 1, 3, 3), np.uint8)
    with pytest.raises(ValueError, match="labels outside 0..1"):
        Dataset(x, np.array([0, 2]), x, np.array([0, 1]), ("a", "b"), "t", "test")


# --------------------------------------------------------------------------------------------------
# Preparing and batching


def test_to_float_scales_and_normalises():
    x = np.array([0, 51, 255, 102], np.uint8).reshape(1, 2, 1, 2)
    np.testing.assert_allclose(to_float(x), [[[[0, 0.2]], [[1, 0.4]]]], rtol=1e-6)
    assert to_float(x).dtype == np.float32
    normal = to_float(x, mean=[0.1, 0.5], std=[0.5, 0.25])
    np.testing.assert_allclose(normal, [[[[-0.2, 0.2]], [[2, -0.4]]]], rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="`std`"):
        to_float(x, std=[1, 2, 3])


def test_batch_order_is_a_pure_function_of_seed_and_epoch():
    first = [b.tolist() for b in batches(23, 5, seed=7, epoch=3)]
    again = [b.tolist() for b in batches(23, 5, seed=7, epoch=3)]
    assert first == again
    assert [len(b) for b in first] == [5, 5, 5, 5, 3]
    assert sorted(sum(first, [])) == list(range(23))
    assert first != [b.tolist() for b in batches(23, 5, seed=7, epoch=4)]
    assert first != [b.tolist() for b in batches(23, 5, seed=8, epoch=3)]
    assert [len(b) for b in batches(23, 5, 7, 3, drop_last=True)] == [5] * 4
    assert [b.tolist() for b in batches(5, 2, 0, 0, shuffle=False)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError, match="batch_size"):
        list(batches(5, 0, 0, 0))


def test_validation_split_last_fraction_or_seeded():
    train, val = validation_split(10, 0.3)
    np.testing.assert_array_equal(train, range(7))
    np.testing.assert_array_equal(val, [7, 8, 9])
    train, val = validation_split(10, 0.3, seed=5)
    assert len(val) == 3 and sorted(np.concatenate([train, val])) == list(range(10))
    np.testing.assert_array_equal(val, validation_split(10, 0.3, seed=5)[1])
    with pytest.raises(ValueError, match="fraction"):
        validation_split(10, 1.0)
    assert len(validation_split(3, 0.01)[1]) == 1  # Keras's count: never an empty validation part
    with pytest.raises(ValueError, match="at least 1"):
        validation_split(2, 0.99)


# --------------------------------------------------------------------------------------------------
# Reading within the limits (cnn.safe_reading); the hostile files themselves are tests/test_hostile_files.py


def _npz_bytes(compressed: bool, **arrays) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize("compressed", [False, True])
def test_read_npz_gives_what_numpy_load_gives(tmp_path, compressed):
    from cnn.safe_reading import read_npz

    arrays = {
        "fortran": np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
        "big_endian": np.arange(5, dtype=">i4"), "text": np.array(["a", "\N{SNOWMAN}", ""]),
        "raw": np.array([b"x\xff", b""]), "flags": np.array([True, False]), "complex": np.array([1 + 2j]),
        "empty": np.zeros((0, 3), np.float64), "scalar": np.array(7, np.int16),
    }
    path = tmp_path / "a.npz"
    path.write_bytes(_npz_bytes(compressed, **arrays))
    got = read_npz(path)
    with np.load(path, allow_pickle=False) as expected:
        assert sorted(got) == sorted(expected.files)
        for name in expected.files:
            assert got[name].dtype == expected[name].dtype and got[name].shape == expected[name].shape, name
            np.testing.assert_array_equal(got[name], expected[name])
    assert read_npz(path, {"text"}).keys() == {"text"}


def test_gunzip_reads_several_members_and_zero_padding_up_to_the_limit(monkeypatch):
    from cnn.safe_reading import gunzip
    from cnnbase.limits import SizeLimitError

    stream = gzip.compress(b"a" * 600) + gzip.compress(b"") + gzip.compress(b"b" * 400) + b"\0" * 16
    monkeypatch.setenv("CNN_MAX_FILE_BYTES", "1000")
    assert gunzip(stream) == b"a" * 600 + b"b" * 400  # exactly at the limit
    monkeypatch.setenv("CNN_MAX_FILE_BYTES", "999")
    with pytest.raises(SizeLimitError, match="CNN_MAX_FILE_BYTES"):
        gunzip(stream, "f.gz")


def test_gzip_bomb_stops_at_the_limit_without_expanding(tmp_path, rng, monkeypatch):
    """A gzip of 64 MiB of zeros (64 KB on disk) stops one byte past a 1 MiB limit: the IDX reader never sees
    the 64 MiB (gzip.decompress, which has no cap, held all of it)."""
    from cnnbase.limits import SizeLimitError

    folder = tmp_path / "mnist"
    write_idx_folder(folder, tiny_mnist(rng), gz=True)
    header = bytes([0, 0, 8, 3]) + struct.pack(">3I", 1 << 20, 8, 8)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header + bytes(64 << 20), 1))
    monkeypatch.setenv("CNN_MAX_FILE_BYTES", "1M")
    with pytest.raises(SizeLimitError, match=r"train-images-idx3-ubyte.gz: the decompressed gzip stream .*1.00 MiB"):
        load_idx_folder(folder)


def test_npy_header_claiming_a_huge_array_is_refused_before_reading(tmp_path):
    from cnn.files import load_archive
    from cnnbase.limits import SizeLimitError

    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,), }"
    header += b" " * (117 - len(header)) + b"\n"
    with zipfile.ZipFile(tmp_path / "m.npz", "w") as archive:
        archive.writestr("param/w.npy", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header)
    with pytest.raises(SizeLimitError, match=r"m.npz: array 'param/w' of shape \(1000000000000,\).*3.64 TiB"):
        load_archive(tmp_path / "m.npz")


def test_image_pixels_are_checked_from_the_header_and_set_pillows_guard(tmp_path, rng, monkeypatch):
    from PIL import Image

    from cnnbase.limits import SizeLimitError

    path = tmp_path / "big.png"
    write_png(path, rng.integers(0, 256, (20, 30), dtype=np.uint8))
    monkeypatch.setenv("CNN_MAX_IMAGE_PIXELS", "600")
    assert read_image(path, (1, 20, 30), resize=False).shape == (1, 20, 30)  # 600 pixels: at the limit
    assert Image.MAX_IMAGE_PIXELS == 600
    monkeypatch.setenv("CNN_MAX_IMAGE_PIXELS", "599")
    with pytest.raises(SizeLimitError, match=r"big.png: the image of 30x20 \(its header\) has 600 pixels"):
        read_image(path, (1, 20, 30), resize=False)


def test_palette_png_with_transparency_reads_without_a_warning(tmp_path):
    import warnings

    from PIL import Image

    image = Image.new("P", (4, 3))
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.putpixel((1, 1), 1)
    image.info["transparency"] = bytes([0, 255])  # transparency as bytes: Pillow warns converting it to RGB
    path = tmp_path / "p.png"
    image.save(path, transparency=bytes([0, 255]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pixels = read_image(path, (3, 3, 4), resize=False)
    assert pixels[:, 1, 1].tolist() == [255, 0, 0]


def test_class_names_are_kept_as_given_and_printed_escaped(tmp_path, rng):
    """Folder names are class names as they are (run.json and model files store them so); the data set's
    name, its description and every error message are one printable line."""
    root = tmp_path / "odd\nname\x1b[31m"
    for name in ("a\nb", "\x1b[2Jc"):
        write_png(root / name / "0.png", rng.integers(0, 256, (4, 4), dtype=np.uint8))
    ds = load_image_folder(root)
    assert ds.class_names == ("\x1b[2Jc", "a\nb")
    assert ds.name.isprintable() and ds.describe().isprintable() and "\\n" in ds.name
    write_png(root / "a\nb" / "1.png", rng.integers(0, 256, (5, 5), dtype=np.uint8))
    with pytest.raises(DataError) as info:
        load_image_folder(root)
    assert str(info.value).isprintable() and "a\\nb" in str(info.value)


def test_inferred_class_count_is_bounded(tmp_path, rng):
    x = rng.integers(0, 256, (6, 4, 4), dtype=np.uint8)
    y = np.array([0, 1, 2, 0, 1, 1023])
    path = save_npz(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:0], y_test=y[:0])
    assert load_npz(path).num_classes == 1024  # a few labels, classes up to INFERRED_CLASSES_FREE: accepted
    y[5] = 1024
    path = save_npz(tmp_path / "e.npz", x_train=x, y_train=y, x_test=x[:0], y_test=y[:0])
    with raises_data_error(path, "label 1024 at index 5 of `y_train`", "class_names"):
        load_npz(path)
    names = np.array([f"c{k}" for k in range(2000)])
    path = save_npz(tmp_path / "f.npz", x_train=x, y_train=y, x_test=x[:0], y_test=y[:0], class_names=names)
    assert load_npz(path).num_classes == 2000  # with class names, the labels only have to fit them


def test_to_float_checks_the_float_copy_against_the_array_limit(monkeypatch):
    from cnnbase.limits import SizeLimitError

    x = np.zeros((2, 1, 5, 5), np.uint8)
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "199")
    with pytest.raises(SizeLimitError, match=r"to_float: the float32 copy of `x` of shape \(2, 1, 5, 5\)"):
        to_float(x)
    monkeypatch.setenv("CNN_MAX_ARRAY_BYTES", "200")
    assert to_float(x).shape == x.shape


def test_load_npz_class_names_argument_must_be_strings(tmp_path, rng):
    x = rng.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    path = save_npz(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1, 0]), x_test=x, y_test=np.array([0, 1, 1]))
    assert load_npz(path, class_names=["a", "b"]).class_names == ("a", "b")
    with pytest.raises(TypeError, match="class_names"):
        load_npz(path, class_names=[0, 1])
