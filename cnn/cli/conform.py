"""``cnn conform``: check an engine, a file or a module against the specification, op by op; and
``cnn conform-matrix``: every installed implementation at once, written as ``specs/conformance-matrix.md``.

The checker (cases, randomized calls, target loading, reports, the matrix) is the conformance kit; this module
reads the options and turns the kit's verdict into the exit status. The matrix is its own command rather than
a ``--matrix`` flag of ``conform``: it takes no TARGET (or several), writes a file instead of printing a
report, and runs each implementation in its own dtype, so ``conform``'s ``--dtype``, ``--tolerance``,
``--json`` and ``--all`` would all be meaningless beside it.
"""

from __future__ import annotations

import click

import sys
import time
from pathlib import Path

from .common import EXIT_FAILED, FiniteFloat, fail

#: The most randomized calls per op: about a millisecond each on refcnn, so a minute or two per op at most.
MAX_EXAMPLES = 100_000


@click.command()
@click.argument("target")
@click.option("--ops", "ops_text", metavar="OP[,OP...]",
              help="Only these ops (a forward op brings its backward along), e.g. conv2d,max_pool2d.")
@click.option("--dtype", default="float64", show_default=True, type=click.Choice(["float64", "float32"]),
              help="Dtype of the float arrays handed to the target.")
@click.option("--tolerance", type=FiniteFloat(min=0.0), default=None,
              help="atol = rtol for every comparison (default: 1e-9 for float64, 1e-4 for float32).")
@click.option("--examples", default=25, show_default=True, type=click.IntRange(0, MAX_EXAMPLES),
              help=f"Randomized calls per op (0: named cases only; at most {MAX_EXAMPLES:,}).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the randomized calls.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--all", "show_all", is_flag=True, help="List the ops the target does not offer as rows too.")
def conform(target, ops_text, dtype, tolerance, examples, seed, as_json, show_all):
    """Check TARGET against the specification, op by op.

    TARGET is refcnn, fastcnn, torch, onnxruntime, tensorflow, jax, a path to a .py file, or an importable
    module (package.module, or package.module:attribute) exposing some of the spec's functions
    (specs/adapter.md). Exit status: 0 when everything run passed, 1 when anything failed, 2 for a usage
    error.
    """
    import cnnconform as checker

    try:
        ops = checker.select_ops(ops_text)
    except ValueError as error:
        fail(f"--ops: {error}")
    try:
        loaded = checker.load_target(target)
    except checker.TargetError as error:
        fail(str(error))
    options = checker.Options(dtype=dtype, tolerance=tolerance, examples=examples, seed=seed, ops=ops)
    report = checker.conform(loaded, options)
    rendered = checker.render_json(report) if as_json else checker.render_text(report, show_all=show_all)
    click.echo(rendered.rstrip("\n"))
    raise SystemExit(0 if report.passed else EXIT_FAILED)


@click.command("conform-matrix")
@click.argument("targets", nargs=-1, metavar="[TARGET]...")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("specs") / "conformance-matrix.md", show_default=True, help="The Markdown file to write.")
@click.option("--examples", default=25, show_default=True, type=click.IntRange(0, MAX_EXAMPLES),
              help="Randomized calls per op and implementation (0: named cases only).")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the randomized calls.")
@click.option("--ops", "ops_text", metavar="OP[,OP...]", help="Only these ops (a forward op brings its backward).")
def conform_matrix(targets, out, examples, seed, ops_text):
    """Check every installed implementation and write the conformance matrix (Markdown).

    TARGETs are built-in target names (default: all of refcnn, fastcnn, torch, onnxruntime, tensorflow, jax;
    those not installed are listed as not run). Each runs in float64, or float32 where its kernels lack
    float64 (the file says which). The file depends only on the seed, --examples and the versions, and is
    written atomically. Exit status: 0 when written, 2 for a usage error; disagreements are in the file.
    """
    import cnnconform as checker
    from cnnconform import matrix as conformance_matrix
    from cnnconform.targets import BUILTIN_TARGETS

    unknown = [name for name in targets if name not in BUILTIN_TARGETS]
    if unknown:
        fail(f"unknown target(s) {', '.join(unknown)}; the matrix runs built-in targets: {', '.join(BUILTIN_TARGETS)}")
    try:
        ops = checker.select_ops(ops_text)
    except ValueError as error:
        fail(f"--ops: {error}")
    start = time.perf_counter()
    result = conformance_matrix.run_matrix(targets or BUILTIN_TARGETS, examples=examples, seed=seed, ops=ops,
                                           progress=lambda text: click.echo(text, err=True))
    words = ["cnn conform-matrix", *targets, f"--examples {examples}", f"--seed {seed}"]
    if ops_text:
        words.append(f"--ops {ops_text}")
    if out != Path("specs") / "conformance-matrix.md":
        words.append(f"--out {out}")
    result.command = " ".join(words)
    conformance_matrix.write_atomically(out, conformance_matrix.render_markdown(result))
    click.echo(f"wrote {out} ({time.perf_counter() - start:.0f} s)", err=True)
    sys.stdout.flush()
