"""What every command of the ``cnn`` command line shares: exit statuses, the one-line error, the user errors
that are reported without a traceback, and the options several commands take (``--threads``, ``--engine``).

Exit statuses: 0 done; 1 the work failed (training stopped on a non-finite loss, a conformance check
failed); 2 a usage error (as click's own), including every mistake in the input: an unknown or malformed
data set, a model that cannot be built or read, a model and data of different shapes, a checkpoint of
another run, a run folder in the way; 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

import contextlib

import click

from cnnbase import netspec

from ..data import DataError
from ..files import CheckpointError
from ..model import ENGINES
from ..run import RunFolderError
from ..threads import set_threads as _set_threads

__all__ = ["EXIT_USAGE", "EXIT_FAILED", "EXIT_INTERRUPTED", "CONTEXT", "UsageProblem", "USER_ERRORS", "fail",
           "reported", "shape_text", "set_threads", "engine_option", "threads_option", "model_argument",
           "split_option"]

EXIT_USAGE = 2  # as click's own usage errors
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # the shell's status for a process stopped by Ctrl-C

#: ``-h`` as well as ``--help``; the group's subcommands inherit it, a command used on its own needs it.
CONTEXT = {"help_option_names": ["-h", "--help"]}


class UsageProblem(ValueError):
    """A mistake in what the user asked for, found by the command line; reported as one line, exit status 2."""


#: Exceptions that mean "the input is wrong", never "the program is wrong": reported without a traceback.
USER_ERRORS = (UsageProblem, DataError, netspec.NetSpecError, CheckpointError, RunFolderError)


def fail(message: str, status: int = EXIT_USAGE) -> None:
    """One line on stderr and the exit status (2 unless told): no traceback for a mistake in the input."""
    click.echo(f"cnn: error: {message}", err=True)
    raise SystemExit(status)


@contextlib.contextmanager
def reported(*also):
    """Turn the user errors (and the exception types ``also``) raised inside into one line and exit status 2."""
    try:
        yield
    except USER_ERRORS + also as error:
        fail(str(error))


def shape_text(shape) -> str:
    return "x".join(str(n) for n in shape)


def set_threads(threads: int | None) -> None:
    """fastcnn's kernel threads and the BLAS threads follow one count (:func:`cnn.threads.set_threads`)."""
    try:
        _set_threads(threads)
    except ValueError as error:
        raise UsageProblem(f"--threads: {error}") from None


def engine_option(help_text: str | None = None):
    """``--engine fastcnn|refcnn`` (default fastcnn)."""
    return click.option("--engine", default="fastcnn", show_default=True, type=click.Choice(list(ENGINES)),
                        help=help_text)


#: ``--threads N`` (default: as the process started).
threads_option = click.option("--threads", type=click.IntRange(min=1), help="Threads of fastcnn's kernels and of BLAS.")

#: The model file argument of ``cnn evaluate`` and ``cnn predict``.
model_argument = click.argument("model_path", metavar="MODEL.npz")

#: ``--split test|train`` of ``cnn evaluate`` and ``cnn predict``.
split_option = click.option("--split", default="test", show_default=True, type=click.Choice(["test", "train"]))
