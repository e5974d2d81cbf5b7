"""``cnn conform``: check an engine, a file or a module against the specification, op by op.

The checker (cases, randomized calls, target loading, reports) is the conformance kit; this module reads the
options and turns the kit's verdict into the exit status.
"""

from __future__ import annotations

import click

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

    TARGET is refcnn, fastcnn, torch, a path to a .py file, or an importable module (package.module, or
    package.module:attribute) exposing some of the spec's functions (specs/adapter.md). Exit status: 0 when
    everything run passed, 1 when anything failed, 2 for a usage error.
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
