"""Reading files that may be damaged or hostile, within the size limits of :mod:`cnnbase.limits`.

Every reader of the library (the data loaders of :mod:`cnn.data`, :func:`cnn.files.load_archive`) opens its
files here, so that:

* only a regular file is read: a folder, a FIFO (which would block forever), a device such as ``/dev/null``,
  a socket, a symlink loop or a file without read permission is a :class:`FileProblem`;
* no size is trusted before it is checked: a file larger than ``CNN_MAX_FILE_BYTES`` is refused from its
  ``stat`` size, a gzip stream is decompressed in bounded steps and stopped one byte past the limit, a zip
  member is refused from its declared size (and read through a stream that never yields more than that
  size, so a lying header cannot expand further), and an ``.npy`` header's shape is checked against
  ``CNN_MAX_ARRAY_BYTES`` and against the member's size before the array is allocated;
* an ``.npy`` array of objects (whose elements would be unpickled) is refused from its header.

Two kinds of failure: a size beyond a limit is :class:`cnnbase.limits.SizeLimitError` (its message names the
file, the field, the size and the limit); anything else wrong with the file is :class:`FileProblem`, which
carries the path and the "expected ... found ..." parts so that each caller can word it as its own error
(:class:`cnn.data.DataError`, :class:`cnn.files.CheckpointError`).
"""

from __future__ import annotations

import errno
import io
import os
import stat
import zipfile
import zlib

import numpy as np

from cnnbase.checks import printable
from cnnbase.limits import SizeLimitError, check_bytes, format_bytes, limit, nbytes_of

__all__ = ["FileProblem", "file_type", "open_regular_file", "read_file", "gunzip", "read_npz"]

_FILE_LIMIT = "CNN_MAX_FILE_BYTES"
_ARRAY_LIMIT = "CNN_MAX_ARRAY_BYTES"
_CHUNK = 1 << 24  # decompress 16 MiB at a time: the overshoot past the limit is at most one chunk's worth
_GZIP_MAGIC = b"\x1f\x8b"
# dtype kinds an archive may hold: booleans, numbers and fixed-width strings; never objects ("O", unpickled on
# read), structured records ("V"), or dates.
_ARRAY_KINDS = "biufcUS"


class FileProblem(ValueError):
    """A file that cannot be read as asked: ``path``, what was ``expected`` and what was ``found``."""

    def __init__(self, path, expected: str, found: str):
        self.path, self.expected, self.found = path, expected, found
        super().__init__(f"{printable(os.fspath(path))}: expected {expected}; found {found}.")


def file_type(mode: int) -> str:
    """The type of a file, from its ``st_mode``, in words for a message ("a folder", "a FIFO (named pipe)")."""
    for test, words in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                        (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return words
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def _os_problem(path, error: OSError, expected: str = "a readable file") -> FileProblem:
    """An OSError (no such file, no permission, a symlink loop, ...) as a FileProblem naming the file."""
    reasons = {errno.ENOENT: "no such file", errno.EACCES: "no permission to read it",
               errno.EPERM: "no permission to read it", errno.ELOOP: "a loop of symbolic links",
               errno.ENOTDIR: "a path through something that is not a folder",
               errno.ENAMETOOLONG: "a name too long for the file system"}
    return FileProblem(path, expected, reasons.get(error.errno, error.strerror or type(error).__name__))


def open_regular_file(path) -> io.BufferedReader:
    """``path`` opened for binary reading, when it is a regular file.

    Opened non-blocking (a FIFO would otherwise wait for a writer forever), then checked with ``fstat`` on
    the open file itself, so that what is checked is what is read. Raises :class:`FileProblem`.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(os.fspath(path), flags)
    except OSError as error:
        raise _os_problem(path, error) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FileProblem(path, "a regular file", file_type(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_file_size(path, handle) -> int:
    size = os.fstat(handle.fileno()).st_size
    return check_bytes(size, what=f"{printable(os.fspath(path))}: the file", name=_FILE_LIMIT)


def read_file(path, *, gunzipped: bool = True) -> bytes | bytearray:
    """The bytes of a regular file no larger than ``CNN_MAX_FILE_BYTES``; decompressed with :func:`gunzip`
    when they start with the gzip magic bytes and ``gunzipped`` (whatever the file's name)."""
    with open_regular_file(path) as handle:
        _check_file_size(path, handle)
        try:
            raw = handle.read()
        except OSError as error:
            raise _os_problem(path, error) from None
    if gunzipped and raw[:2] == _GZIP_MAGIC:
        return gunzip(raw, path)
    return raw


def _too_large_gzip(path, bound: int) -> SizeLimitError:
    return SizeLimitError(
        f"{printable(os.fspath(path))}: the decompressed gzip stream needs more than {format_bytes(bound)} "
        f"(stopped at {bound + 1} bytes); the limit is {format_bytes(bound)} (set {_FILE_LIMIT} to raise it)")


def gunzip(raw: bytes, path="<gzip>") -> bytearray:
    """Decompress a gzip stream (one or more members, as ``gzip.decompress``) without ever holding more than
    ``CNN_MAX_FILE_BYTES`` of output: decompression runs in bounded steps and stops one byte past the limit.
    Returns the bytes in a bytearray (not copied into ``bytes``: the data may be up to the limit).

    Raises :class:`SizeLimitError` for a stream that expands beyond the limit, :class:`FileProblem` for a
    damaged or truncated one.
    """
    bound = limit(_FILE_LIMIT)
    out = bytearray()
    pending = raw
    try:
        while True:
            stream = zlib.decompressobj(16 + zlib.MAX_WBITS)  # 16+: the gzip header and trailer
            while not stream.eof:
                before = len(pending)
                chunk = stream.decompress(pending, min(_CHUNK, bound + 1 - len(out)))
                out += chunk
                if len(out) > bound:
                    raise _too_large_gzip(path, bound)
                pending = stream.unconsumed_tail
                if not chunk and len(pending) == before and not stream.eof:  # no progress: the input ran out
                    raise FileProblem(path, "a complete gzip stream", "a truncated one")
            pending = stream.unused_data
            if not pending.strip(b"\0"):  # gzip(1) allows zero padding after the last member
                return out
            if pending[:2] != _GZIP_MAGIC:
                raise FileProblem(path, "gzip members and nothing after them",
                                  f"{len(pending)} bytes of something else after the gzip data")
    except zlib.error as error:
        raise FileProblem(path, "a complete gzip stream", f"a damaged one ({error})") from None


# ---------------------------------------------------------------------------------------------------------------
# .npz archives (zips of .npy arrays)


def _npy_header(path, member: str, stream) -> tuple[tuple, bool, np.dtype]:
    """(shape, fortran_order, dtype) from an ``.npy`` header; the dtype must not hold objects."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(stream)
        else:
            raise ValueError(f"npy format version {version[0]}.{version[1]}, which is not read here")
    except (ValueError, EOFError, SyntaxError, TypeError) as error:
        # numpy's own checks (magic string, header length, dict keys, shape of ints) all raise ValueError.
        raise FileProblem(path, f"an .npy array in member {member!r}", printable(str(error))) from None
    if dtype.hasobject or dtype.kind not in _ARRAY_KINDS:
        raise FileProblem(path, f"numbers or strings in array {member!r}",
                          f"an object array (dtype {printable(str(dtype))}), refused: its elements would be unpickled"
                          if dtype.hasobject else f"dtype {printable(str(dtype))}")
    if dtype.itemsize == 0:
        raise FileProblem(path, f"a dtype of at least 1 byte in array {member!r}", f"dtype {printable(str(dtype))}")
    if any(n < 0 for n in shape):
        raise FileProblem(path, f"a shape of sizes >= 0 in array {member!r}", f"shape {shape}")
    return shape, fortran, dtype


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path, key: str) -> np.ndarray:
    """One member as an array: its header checked against the limits and its declared size, then exactly
    the bytes the header asks for, then the end of the stream (where zipfile checks the CRC)."""
    with archive.open(info) as stream:
        shape, fortran, dtype = _npy_header(path, key, stream)
        nbytes = nbytes_of(shape, dtype.itemsize)
        check_bytes(nbytes, what=f"{printable(os.fspath(path))}: array {key!r} of shape {shape} and dtype "
                                 f"{dtype}", name=_ARRAY_LIMIT)
        header = stream.tell()
        if header + nbytes != info.file_size:
            problem = "truncated" if header + nbytes > info.file_size else "longer than its header says"
            raise FileProblem(path, f"{header + nbytes} bytes in member {info.filename!r} for an array of shape "
                                    f"{shape} and dtype {dtype}", f"{info.file_size} ({problem})")
        buffer = bytearray(nbytes)  # allocated only now, its size checked above
        view = memoryview(buffer)
        done = 0
        while done < nbytes:
            got = stream.readinto(view[done:])
            if not got:
                raise FileProblem(path, f"{nbytes} bytes of data in member {info.filename!r}",
                                  f"{done} (truncated)")
            done += got
        if stream.read(1):
            raise FileProblem(path, f"{info.file_size} bytes in member {info.filename!r}", "more")
    flat = np.frombuffer(buffer, dtype=dtype)
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def _members(archive: zipfile.ZipFile, path, names) -> dict[str, zipfile.ZipInfo]:
    """The members to read, by key (the member name less ``.npy``), with their declared sizes checked."""
    members = {}
    for info in archive.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if key in members:
            raise FileProblem(path, "each array name once", f"{printable(key)!r} twice")
        members[key] = info
    wanted = {key: info for key, info in members.items() if names is None or key in names}
    where = printable(os.fspath(path))
    for key, info in wanted.items():
        check_bytes(info.file_size, what=f"{where}: member {printable(info.filename)!r} (its declared size)",
                    name=_FILE_LIMIT)
    check_bytes(sum(info.file_size for info in wanted.values()),
                what=f"{where}: the {len(wanted)} arrays together (their declared sizes)", name=_FILE_LIMIT)
    return wanted


def read_npz(path, names=None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file (a zip of ``.npy`` files), by name, as ``numpy.load`` would give
    them with ``allow_pickle=False``; only those in ``names`` when given (the others are not read).

    Every size is checked before it is used (see the module's docstring). Raises :class:`FileProblem` for a
    file that is not such an archive (not a zip, a damaged member, a bad CRC, an encrypted member, an object
    array, a member whose size disagrees with its header) and :class:`SizeLimitError` for a size beyond a
    limit.
    """
    with open_regular_file(path) as handle:
        _check_file_size(path, handle)
        try:
            with zipfile.ZipFile(handle) as archive:
                members = _members(archive, path, names)
                return {key: _read_member(archive, info, path, printable(key)) for key, info in members.items()}
        except (FileProblem, SizeLimitError):
            raise
        except zipfile.BadZipFile as error:
            raise FileProblem(path, "a .npz archive (a zip of .npy arrays)", printable(str(error))) from None
        except (OSError, EOFError, zlib.error, ValueError, RuntimeError, NotImplementedError,
                zipfile.LargeZipFile) as error:
            # zipfile's own complaints: a bad CRC, an encrypted member (RuntimeError), an unknown compression
            # method (NotImplementedError), a damaged deflate stream (zlib.error, EOFError).
            raise FileProblem(path, "a readable .npz archive",
                              f"{type(error).__name__}: {printable(str(error))}") from None
