"""The run folder of ``cnn train``: which files a run writes, whether ``--out`` may be used as asked
(``--resume``, ``--overwrite``), its description ``run.json``, and clearing it.

A run folder holds only these files (:data:`RUN_FILES`), and only they are ever replaced or removed:

* ``run.json``: the run's options (:class:`cnn.options.TrainOptions`), so ``--resume`` needs only ``--out``,
  and, once finished, the data, class names, parameter count and test scores;
* ``checkpoint.npz``: replaced atomically after each epoch (:mod:`cnn.checkpoint`);
* ``metrics.json``: the metrics per epoch (:mod:`cnn.history`);
* ``curves.png``: the loss and accuracy curves;
* ``model.npz``: at the end, weights and configuration plus the class names, what ``cnn evaluate`` and
  ``cnn predict`` read.

Besides these, a run that is working in the folder holds ``.lock`` (:func:`lock_run_dir`), so that a second
``cnn train`` into the same folder fails at once instead of both writing there; the lock goes with the run
(on success, an error or Ctrl-C), and one left by a killed run is taken over.

Every check here runs before anything is written or removed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from pathlib import Path

from .checkpoint import CHECKPOINT_FILE
from .files import is_temporary_of, load_archive, save_archive, write_json
from .history import METRICS_FILE
from .options import TrainOptions

__all__ = ["RUN_FILE", "MODEL_FILE", "PLOT_FILE", "METRICS_FILE", "CHECKPOINT_FILE", "RUN_FILES", "LOCK_FILE",
           "RunFolderError", "RunFolderBusy", "RunLock", "default_run_dir", "choose_run_dir", "existing_run_files",
           "check_run_dir", "lock_run_dir", "lock_default_run_dir", "remove_stale_temporaries", "read_run_file",
           "read_changes", "write_run_file", "clear_run_dir", "save_model", "read_class_names"]

RUN_FILE = "run.json"
MODEL_FILE = "model.npz"
PLOT_FILE = "curves.png"
#: Every file ``cnn train`` writes in a run folder; only these are ever replaced or removed.
RUN_FILES = (RUN_FILE, CHECKPOINT_FILE, METRICS_FILE, PLOT_FILE, MODEL_FILE)
#: Held by the run working in the folder: its process id, host and start time, one per line.
LOCK_FILE = ".lock"
_FORMAT = "cnn-run-1"


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked (or a ``run.json`` that cannot be read); the message names
    the folder and what to do instead."""


class RunFolderBusy(RunFolderError):
    """Another process holds the run folder's lock (:func:`lock_run_dir`)."""


def default_run_dir(root: Path = Path("runs")) -> Path:
    """``runs/<date>-<time>``, with a counter when two runs start in the same second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    return path


def existing_run_files(folder: Path) -> list[str]:
    return [name for name in RUN_FILES if (folder / name).exists()]


def choose_run_dir(out: str | None, resume: bool, overwrite: bool) -> Path:
    """The run folder ``--out`` names (``runs/<date-time>`` when None), after the checks that need no look at
    the disk: ``--resume`` with ``--overwrite``, ``--resume`` without ``--out``, an empty ``--out``."""
    if resume and overwrite:
        raise RunFolderError("--resume continues a run and --overwrite replaces it: give one of them")
    if out is None:
        if resume:
            raise RunFolderError("--resume needs --out DIR, the folder of the run to continue")
        return default_run_dir()
    if not out.strip():
        raise RunFolderError(f"--out {out!r}: expected the path of a folder; an empty one would be the current "
                             "folder (write --out . to mean it)")
    return Path(out)


def check_run_dir(folder: Path, resume: bool, overwrite: bool) -> TrainOptions | None:
    """When resuming, the options recorded in ``folder``; refuses a folder that cannot be used as asked (one
    that holds a run without ``--resume`` or ``--overwrite``, one that holds none with ``--resume``). Nothing
    is written or removed here; under :func:`lock_run_dir` the answer stays true until the lock goes."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"--out {folder}: exists and is not a folder")
    existing = existing_run_files(folder) if folder.is_dir() else []
    if resume:
        if not existing:
            raise RunFolderError(f"--resume: {folder} holds no run to continue (no {CHECKPOINT_FILE} or {RUN_FILE})")
        return read_run_file(folder)
    if existing and not overwrite:
        raise RunFolderError(f"{folder} already holds a run ({', '.join(existing)}); continue it with --resume, "
                             "replace it with --overwrite, or choose another --out")
    return None


# ---------------------------------------------------------------------------------------------------
# The lock: one run at a time in a folder


class RunLock:
    """The hold of one process on a run folder (:func:`lock_run_dir`). :meth:`release` removes the lock file,
    then the folders the lock created if the run left them empty (a run refused before its first file leaves
    nothing behind); ``taken_over`` describes the stale lock it replaced, if any."""

    def __init__(self, folder: Path, handle, created: list[Path], taken_over: str | None):
        self.folder, self._handle, self._created, self.taken_over = folder, handle, created, taken_over

    def release(self) -> None:
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.folder / LOCK_FILE)  # before closing: no one may lock the file we are about to remove
        self._handle.close()
        self._handle = None
        _remove_empty(self._created)

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _create_folders(folder: Path, option: str) -> list[Path]:
    """Create ``folder`` and its missing parents; the ones created, outermost first. ``RunFolderError`` naming
    ``option`` for a path that cannot be a folder (under a file, in /proc, read-only, no permission)."""
    missing = []
    path = folder.absolute()
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    created = []
    try:
        for path in reversed(missing):
            path.mkdir()
            created.append(path)
    except FileExistsError:  # another process made it in between: fine, unless it is not a folder
        if not folder.is_dir():
            raise RunFolderError(f"{option} {folder}: exists and is not a folder") from None
    except OSError as error:
        _remove_empty(created)
        raise RunFolderError(f"{option} {folder}: cannot create the folder: {_reason(error)}") from None
    return created


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders in ``created`` (outermost first) that are empty, deepest first."""
    for path in reversed(created):
        with contextlib.suppress(OSError):  # not empty: it holds something of someone's, it stays
            path.rmdir()


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _holder(text: str) -> tuple[int | None, str, str]:
    """The pid, host and start time written in a lock file (what is missing or unreadable: None or '')."""
    lines = text.splitlines() + ["", "", ""]
    pid = int(lines[0]) if lines[0].strip().isdigit() else None
    return pid, lines[1].strip(), lines[2].strip()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):  # no process can have such an id
        return False
    except OSError:  # it exists, but belongs to another user
        return True
    return True


try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the lock file's process id says whether it is held
    fcntl = None


def _held_without_flock(text: str) -> bool:
    """Without ``flock``: a lock file whose process still runs on this host is held."""
    if fcntl is not None or not text.strip():
        return False
    pid, host, _ = _holder(text)
    return pid is not None and host == socket.gethostname() and _process_alive(pid)


def _try_lock(handle) -> bool:
    """An exclusive, non-blocking ``flock`` on the open file; True when taken (always, where there is none)."""
    if fcntl is None:  # pragma: no cover - Windows
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def lock_default_run_dir(root: Path = Path("runs"), tries: int = 20) -> RunLock:
    """Lock a new ``runs/<date-time>`` folder: when another run started in the same second and holds the one
    :func:`default_run_dir` names, the next name (``<date-time>-2``...) is taken instead."""
    for _ in range(tries):
        try:
            return lock_run_dir(default_run_dir(root))
        except RunFolderBusy:
            time.sleep(0.01)
    raise RunFolderError(f"no free run folder in {root}: give one with --out DIR")


def lock_run_dir(folder: Path, option: str = "--out") -> RunLock:
    """Create ``folder`` (and its parents) and take its lock, before anything else is written there.

    The lock is ``folder/.lock``, held with ``flock`` while the process lives: the kernel lets it go when
    the process dies, however it dies, so a lock file left by a killed run is taken over (and said so in
    ``RunLock.taken_over``). Raises :class:`RunFolderError` naming ``option`` when the folder cannot be
    created or written (so a bad ``--out`` fails before any data is read), or when another process holds it.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{option} {folder}: exists and is not a folder")
    created = _create_folders(folder, option)
    try:
        return _take(folder, folder / LOCK_FILE, created, option)
    except BaseException:
        _remove_empty(created)
        raise


def _take(folder: Path, lock: Path, created: list[Path], option: str) -> RunLock:
    for _ in range(10):  # a lock file removed while we opened it: open the new one
        try:
            handle = open(lock, "a+", encoding="utf-8")
        except OSError as error:
            raise RunFolderError(f"{option} {folder}: cannot write in this folder: {_reason(error)}") from None
        handle.seek(0)
        previous = handle.read()
        if not _try_lock(handle) or _held_without_flock(previous):
            handle.close()
            pid, host, since = _holder(previous)
            who = f"process {pid} on {host or 'this host'}" if pid else "another process"
            raise RunFolderBusy(f"{option} {folder}: another cnn train is writing in this folder ({who}, since "
                                 f"{since or 'an unknown time'}); wait for it to finish or choose another {option} "
                                 f"(remove {lock} only if no such process runs)")
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            handle.close()
            continue
        handle.seek(0)
        previous = handle.read()  # again: the holder we waited on may have written it since
        taken_over = None
        if previous.strip():
            pid, host, since = _holder(previous)
            taken_over = (f"took over the lock left in {folder} by process {pid or '?'} on "
                          f"{host or 'an unknown host'} (started {since or 'at an unknown time'}), which is gone")
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n{socket.gethostname()}\n{time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n")
            handle.flush()
        except OSError as error:
            handle.close()
            raise RunFolderError(f"{option} {folder}: cannot write in this folder: {_reason(error)}") from None
        return RunLock(folder, handle, created, taken_over)
    raise RunFolderError(f"{option} {folder}: its lock file keeps changing; is another cnn train starting there?")


def remove_stale_temporaries(folder: Path) -> list[str]:
    """Remove the temporary files a killed write of a run file left (``.checkpoint.npz.a1b2c3d4.tmp``); only
    names :func:`cnn.files.atomic_write` makes for :data:`RUN_FILES`. Call it holding the folder's lock, when
    no write of this run can be under way. Returns the names removed."""
    removed = []
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False) and any(is_temporary_of(entry.name, n) for n in RUN_FILES):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return sorted(removed)


def read_run_file(folder: Path) -> TrainOptions | None:
    """The options recorded in ``folder``'s ``run.json``; None when there is none."""
    path = folder / RUN_FILE
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise RunFolderError(f"{path} cannot be read as a run description: {error}") from None
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        raise RunFolderError(f"{path} is not a run description written by cnn train")
    try:
        return TrainOptions.from_json(document.get("options", {}))
    except (ValueError, TypeError) as error:
        raise RunFolderError(f"{path}: its options cannot be read: {error}") from None


def read_changes(folder: Path) -> list[dict]:
    """The ``changes`` list of ``folder``'s ``run.json`` (what resumes changed, :func:`write_run_file`);
    empty when there is none."""
    path = Path(folder) / RUN_FILE
    try:
        changes = json.loads(path.read_text(encoding="utf-8")).get("changes", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [c for c in changes if isinstance(c, dict)] if isinstance(changes, list) else []


def write_run_file(folder: Path, options: TrainOptions, *, data: str, class_names, parameters: int,
                   test: dict | None, changes: list[dict] = ()) -> None:
    """Atomically (re)write ``run.json``: the options and what the run was made of; ``test`` once known.

    ``options`` are those the run trains with now; ``changes`` lists what a ``--resume`` changed, one
    ``{"epoch", "option", "from", "to"}`` per option, ``epoch`` the first epoch (from 1) trained with ``to``."""
    write_json(folder / RUN_FILE, {
        "format": _FORMAT,
        "options": options.to_json(),
        "data": data,
        "class_names": list(class_names),
        "parameters": parameters,
        "test": test,
        "changes": list(changes),
    })


def clear_run_dir(folder: Path) -> None:
    """``--overwrite``: remove the run's own files (:data:`RUN_FILES`), once everything else has been checked."""
    for name in existing_run_files(folder):
        (folder / name).unlink()


def save_model(model, path, class_names, data: str) -> None:
    """:meth:`cnn.Model.save`'s archive plus the class names and the data set's name, so that
    ``cnn predict`` can name classes without the data."""
    save_archive(path, model.state_arrays(), {"model": model.config(), "class_names": list(class_names), "data": data})


def read_class_names(path) -> list[str]:
    """The class names stored in a model file by :func:`save_model` (none for a plain :meth:`cnn.Model.save`)."""
    _, document = load_archive(path, "model file")
    return [str(n) for n in document.get("class_names", [])]
