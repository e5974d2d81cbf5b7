"""What every command of the ``cnn`` command line shares: exit statuses, the one-line error, the user errors
that are reported without a traceback, and the options several commands take (``--threads``, ``--engine``).

Exit statuses: 0 done; 1 the work failed (training stopped on a non-finite loss, a conformance check
failed); 2 a usage error (as click's own), including every mistake in the input: an unknown or malformed
data set, a model that cannot be built or read, a model and data of different shapes, a checkpoint of
another run, a run folder in the way, a size over one of the limits (``cnnbase.limits``); 130 interrupted by
Ctrl-C. An error is always one line: :func:`fail` escapes control characters (a newline or an ANSI escape in
a name that came from a file), as everything printed from a file goes through :func:`cnnbase.checks.printable`.
"""

from __future__ import annotations

import contextlib
import math

import click

from cnnbase import netspec
from cnnbase.checks import INT64_MAX, printable
from cnnbase.limits import SizeLimitError

from ..data import DataError
from ..files import CheckpointError
from ..model import ENGINES
from ..run import RunFolderError
from ..threads import set_threads as _set_threads

__all__ = ["COUNT", "EXIT_USAGE", "EXIT_FAILED", "EXIT_INTERRUPTED", "CONTEXT", "UsageProblem", "USER_ERRORS", "fail",
           "reported", "shape_text", "set_threads", "engine_option", "threads_option", "model_argument",
           "split_option", "FiniteFloat", "printable"]

EXIT_USAGE = 2  # as click's own usage errors
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # the shell's status for a process stopped by Ctrl-C

#: ``-h`` as well as ``--help``; the group's subcommands inherit it, a command used on its own needs it.
CONTEXT = {"help_option_names": ["-h", "--help"]}


class UsageProblem(ValueError):
    """A mistake in what the user asked for, found by the command line; reported as one line, exit status 2."""


#: Exceptions that mean "the input is wrong", never "the program is wrong": reported without a traceback.
USER_ERRORS = (UsageProblem, DataError, netspec.NetSpecError, CheckpointError, RunFolderError, SizeLimitError)


def fail(message: str, status: int = EXIT_USAGE) -> None:
    """One line on stderr and the exit status (2 unless told): no traceback for a mistake in the input. The
    message is made printable (:func:`cnnbase.checks.printable`), so it stays one line whatever it quotes."""
    click.echo(f"cnn: error: {printable(message)}", err=True)
    raise SystemExit(status)


@contextlib.contextmanager
def reported(*also):
    """Turn the user errors (and the exception types ``also``) raised inside into one line and exit status 2,
    and Ctrl-C into one line and exit status 130 (every file is written atomically: nothing is half-written).

    Two nets below them: an ``OSError`` (a file the user named that cannot be read: a device, a folder, no
    permission) is one line naming it, exit status 2; a ``MemoryError`` one line, exit status 1."""
    try:
        yield
    except USER_ERRORS + also as error:
        fail(str(error))
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    except OSError as error:  # a path the user named that cannot be read (a device, a folder, no permission)
        fail(f"{error.filename}: {error.strerror}" if error.filename and error.strerror else str(error))
    except MemoryError:  # the size limits (cnnbase.limits) should have refused it first
        fail("not enough memory for what was asked (lower a size: --batch-size, --limit, the model's)",
             EXIT_FAILED)


class FiniteFloat(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` and ``inf`` (click's range lets NaN through: it compares
    false with every bound), so a learning rate of ``nan`` is a usage error when the options are read."""

    name = "float"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


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


#: The type of every count option (``--epochs``, ``--batch-size``, ``--limit``, ...): a positive int within int64,
#: as the library's own checks require, so that ``--batch-size 10**23`` is a usage error before anything runs.
COUNT = click.IntRange(1, INT64_MAX)

#: ``--threads N`` (default: as the process started).
threads_option = click.option("--threads", type=COUNT, help="Threads of fastcnn's kernels and of BLAS.")

#: The model file argument of ``cnn evaluate`` and ``cnn predict``.
model_argument = click.argument("model_path", metavar="MODEL.npz")

#: ``--split test|train`` of ``cnn evaluate`` and ``cnn predict``.
split_option = click.option("--split", default="test", show_default=True, type=click.Choice(["test", "train"]))
