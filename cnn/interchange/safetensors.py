"""The safetensors format, read and written here (without the ``safetensors`` package).

The format (Hugging Face's ``safetensors``, https://github.com/huggingface/safetensors, "Format"):

* 8 bytes: ``N``, the header's length, an unsigned 64-bit little-endian integer;
* ``N`` bytes: a UTF-8 JSON object ``{name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}}``,
  with an optional ``"__metadata__"`` entry, an object of strings to strings;
* the byte buffer: every tensor's bytes, little-endian, C order, at ``[begin, end)`` counted from the start of
  the buffer; the tensors cover the buffer exactly, one after another, without gaps or overlaps.

Our model in a safetensors file (:func:`save_model`): every array of :meth:`cnn.Model.state_arrays` under the
same name (``param/conv2d/weight``, ``buffer/batch_normalization/running_mean``: the names ``Model.save`` uses
in its ``.npz``, so one loader reads both), in the model's dtype, and the network description
(:meth:`cnn.Model.config`, as JSON text) in the metadata under :data:`MODEL_KEY`. :func:`load_model` reads it
back; a file without that key (a PyTorch ``state_dict`` saved with ``safetensors.torch.save_file``) is mapped
onto a network by :mod:`cnn.interchange.torch_state`.

Reading (:func:`read_safetensors`) treats the file as hostile: the header's length is checked against the
file's size before it is read, the JSON against a size and a nesting depth, each entry's dtype, shape and
offsets (in the buffer, contiguous, no overlap, ``end - begin == prod(shape) * itemsize``), and each array's
bytes against ``CNN_MAX_ARRAY_BYTES`` before anything is allocated. Every problem is one
:class:`~cnn.files.CheckpointError` line naming the file and the problem.
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np

from cnnbase.checks import printable
from cnnbase.limits import SizeLimitError, check_bytes, nbytes_of

from ..files import CheckpointError, atomic_write
from ._source import open_source

__all__ = ["DTYPES", "MODEL_KEY", "MAX_HEADER_BYTES", "encode", "write_safetensors", "read_safetensors", "save_model",
           "load_model", "read_metadata"]

#: The dtypes of the format, by their name in the header, as little-endian numpy dtypes. ``BF16`` has no
#: numpy dtype: it is read as its 16-bit patterns and widened to float32 (the top half of a float32).
DTYPES = {
    "BOOL": np.dtype("?"), "U8": np.dtype("u1"), "I8": np.dtype("i1"), "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"), "U32": np.dtype("<u4"), "I32": np.dtype("<i4"), "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"), "F32": np.dtype("<f4"),
    "F64": np.dtype("<f8"),
}
_NAME_OF = {"bool": "BOOL", "uint8": "U8", "int8": "I8", "uint16": "U16", "int16": "I16", "uint32": "U32",
            "int32": "I32", "uint64": "U64", "int64": "I64", "float16": "F16", "float32": "F32", "float64": "F64"}

#: The metadata key that holds our network description (:meth:`cnn.Model.config` as JSON text).
MODEL_KEY = "cnn_model"

#: The largest header read: the reference implementation refuses headers over 100,000,000 bytes; a header
#: that large is a file of millions of tensors or an attack.
MAX_HEADER_BYTES = 100_000_000

#: How deep the header's JSON may nest: a valid header nests 3 levels (entry, its fields, the lists in them).
_MAX_DEPTH = 4
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _header_entry(array: np.ndarray, begin: int) -> dict:
    name = _NAME_OF.get(array.dtype.name)
    if name is None:
        raise ValueError(f"write_safetensors: dtype {array.dtype} has no safetensors name; "
                         f"supported: {', '.join(sorted(_NAME_OF))}")
    return {"dtype": name, "shape": list(array.shape), "data_offsets": [begin, begin + array.nbytes]}


def encode(arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> bytes:
    """The bytes of a safetensors file holding ``arrays`` (in the order given) and ``metadata``."""
    header: dict = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("write_safetensors: the metadata must map strings to strings")
        header["__metadata__"] = dict(metadata)
    parts, offset = [], 0
    for name, value in arrays.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"write_safetensors: invalid tensor name {name!r}")
        array = np.ascontiguousarray(value)
        array = array.astype(array.dtype.newbyteorder("<"), copy=False)
        header[name] = _header_entry(array, offset)
        parts.append(array.tobytes())
        offset += array.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the reference writer pads the header to 8 bytes with spaces: aligned data
    return struct.pack("<Q", len(text)) + text + b"".join(parts)


def write_safetensors(path, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write ``arrays`` and ``metadata`` (strings to strings) to ``path`` atomically (:func:`cnn.files.atomic_write`:
    a reader sees the old file or the new one, never half of one)."""
    atomic_write(path, encode(arrays, metadata))


def save_model(model, path) -> None:
    """``model``'s arrays (:meth:`~cnn.Model.state_arrays` names, its dtype) with its description in the
    metadata under :data:`MODEL_KEY`, written atomically; :func:`load_model` reads it back."""
    write_safetensors(path, model.state_arrays(), {MODEL_KEY: json.dumps(model.config())})


# ---------------------------------------------------------------------------------------------------------------
# Reading


def _refuse(shown: str, problem: str) -> CheckpointError:
    return CheckpointError(f"{shown}: not a readable safetensors file: {problem}")


def _unique_keys(pairs):
    """``object_pairs_hook``: a key given twice is refused (JSON readers disagree on which one wins)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {printable(key)!r} appears twice in one object")
        out[key] = value
    return out


def _depth(value) -> int:
    """How deep lists and objects nest in ``value``, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= _MAX_DEPTH:  # no need to go further: it is already too deep
                stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _parse_header(shown: str, raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _refuse(shown, f"the header is not UTF-8 (byte {error.start})") from None
    try:
        header = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise _refuse(shown, "the header's JSON is nested thousands of levels deep") from None
    except ValueError as error:  # JSONDecodeError, a duplicate key, an int of thousands of digits
        raise _refuse(shown, f"the header is not valid JSON ({printable(str(error))})") from None
    if not isinstance(header, dict):
        raise _refuse(shown, f"the header must be a JSON object; it is a {type(header).__name__}")
    if _depth(header) > _MAX_DEPTH:
        raise _refuse(shown, f"the header nests deeper than {_MAX_DEPTH} levels (a valid one nests 3)")
    return header


def _metadata(shown: str, header: dict) -> dict[str, str]:
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _refuse(shown, "__metadata__ must be an object of strings to strings")
    return metadata


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_entry(shown: str, name: str, entry, buffer_size: int) -> tuple[np.dtype, str, tuple, int, int]:
    """One header entry checked: ``(dtype, dtype name, shape, begin, end)``; sizes before anything is allocated."""
    where = f"tensor {printable(name)!r}"
    if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
        keys = sorted(map(printable, entry)) if isinstance(entry, dict) else type(entry).__name__
        raise _refuse(shown, f"{where}: expected an object with the keys data_offsets, dtype, shape; found {keys}")
    kind = entry["dtype"]
    if kind not in DTYPES:
        raise _refuse(shown, f"{where}: dtype {printable(str(kind))!r} is not one read here "
                             f"({', '.join(DTYPES)})")
    shape = entry["shape"]
    if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
        raise _refuse(shown, f"{where}: shape must be a list of ints >= 0; found {printable(str(shape))[:80]}")
    offsets = entry["data_offsets"]
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(n) for n in offsets)):
        raise _refuse(shown, f"{where}: data_offsets must be [begin, end], two ints >= 0; found "
                             f"{printable(str(offsets))[:80]}")
    dtype, (begin, end) = DTYPES[kind], offsets
    nbytes = nbytes_of(shape, dtype.itemsize)
    check_bytes(nbytes, what=f"{shown}: tensor {printable(name)!r} of shape {tuple(shape)} and dtype {kind}")
    if end < begin or end - begin != nbytes:
        raise _refuse(shown, f"{where}: data_offsets [{begin}, {end}] hold {end - begin} bytes; shape "
                             f"{tuple(shape)} of {kind} needs {nbytes}")
    if end > buffer_size:
        raise _refuse(shown, f"{where}: data_offsets [{begin}, {end}] go past the end of the data "
                             f"({buffer_size} bytes)")
    return dtype, kind, tuple(shape), begin, end


def _check_layout(shown: str, entries: dict, buffer_size: int) -> list[str]:
    """The names in the order of their data: the tensors must cover the buffer exactly, without gaps or
    overlaps (the format's rule, which the reference reader enforces too)."""
    order = sorted(entries, key=lambda name: (entries[name][3], entries[name][4]))
    position = 0
    for name in order:
        begin, end = entries[name][3], entries[name][4]
        if begin != position:
            problem = "overlaps the tensor before it" if begin < position else f"leaves a gap at byte {position}"
            raise _refuse(shown, f"tensor {printable(name)!r} at data_offsets [{begin}, {end}] {problem}")
        position = end
    if position != buffer_size:
        raise _refuse(shown, f"the tensors end at byte {position} of a {buffer_size}-byte data buffer "
                             "(bytes left over after them)")
    return order


def _array(raw: bytes, dtype: np.dtype, kind: str, shape: tuple) -> np.ndarray:
    array = np.frombuffer(raw, dtype=dtype).reshape(shape)
    if kind == "BF16":  # bfloat16 is the top 16 bits of a float32
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_safetensors(path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(arrays, metadata)`` of a safetensors file, the arrays in the order of their data in the file.

    Raises :class:`~cnn.files.CheckpointError` naming the file and the problem for anything that is not a
    valid safetensors file, and :class:`~cnnbase.limits.SizeLimitError` for a file beyond
    ``CNN_MAX_FILE_BYTES`` or a tensor beyond ``CNN_MAX_ARRAY_BYTES`` (checked from the header, before the
    tensor is allocated)."""
    shown = printable(os.fspath(path))
    handle, size = open_source(path, shown)
    with handle:
        head = handle.read(8)
        if len(head) < 8:
            raise _refuse(shown, f"it has {len(head)} bytes; the header length alone takes 8")
        (length,) = struct.unpack("<Q", head)
        if length > size - 8:
            raise _refuse(shown, f"the header length says {length} bytes but only {size - 8} follow it")
        if length > MAX_HEADER_BYTES:
            raise _refuse(shown, f"the header length {length} is over the format's limit of {MAX_HEADER_BYTES}")
        header = _parse_header(shown, handle.read(length))
        metadata = _metadata(shown, header)
        buffer_size = size - 8 - length
        entries = {name: _check_entry(shown, name, entry, buffer_size) for name, entry in header.items()}
        order = _check_layout(shown, entries, buffer_size)
        arrays = {}
        for name in order:
            dtype, kind, shape, begin, end = entries[name]
            raw = handle.read(end - begin)
            if len(raw) != end - begin:
                raise _refuse(shown, f"tensor {printable(name)!r}: the file ends inside its data")
            arrays[name] = _array(raw, dtype, kind, shape)
    return arrays, metadata


def read_metadata(path) -> dict[str, str]:
    """The metadata of a safetensors file (read and checked as :func:`read_safetensors` does)."""
    return read_safetensors(path)[1]


def load_model(path, *, engine="fastcnn", arrays_and_metadata=None):
    """The model of a file written by :func:`save_model`. A file without our description (:data:`MODEL_KEY`)
    is a :class:`~cnn.files.CheckpointError` saying so (a PyTorch ``state_dict``: map it onto a network with
    :func:`cnn.interchange.torch_state.load_state_dict`). ``arrays_and_metadata``: the file already read."""
    from cnnbase import netspec

    from ..model import Model

    shown = printable(os.fspath(path))
    arrays, metadata = arrays_and_metadata or read_safetensors(path)
    if MODEL_KEY not in metadata:
        raise CheckpointError(f"{shown} holds no network description (no {MODEL_KEY!r} in its metadata): a "
                              "PyTorch state_dict? give the network it fits (cnn import ... --model)")
    try:
        config = json.loads(metadata[MODEL_KEY])
    except (ValueError, RecursionError) as error:
        raise CheckpointError(f"{shown}: its {MODEL_KEY!r} metadata is not JSON ({printable(str(error))})") from None
    try:
        model = Model.from_config(config, engine=engine)
    except SizeLimitError as error:
        raise SizeLimitError(f"{shown}: {error}") from None
    except (netspec.NetSpecError, CheckpointError, TypeError, ValueError, KeyError, RecursionError) as error:
        raise CheckpointError(f"{shown}: its network description cannot be built: {error}") from None
    model.load_state_arrays(arrays, shown)
    return model
