"""``translate report RUN``: one self-contained HTML page of a run (curves, metrics, sample grids, config)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("run_path", metavar="RUN", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out", type=click.Path(dir_okay=False), help="The HTML file to write (default: RUN/report.html)."
)
@click.option(
    "--grids",
    default=6,
    show_default=True,
    type=click.IntRange(min=0),
    help="Sample grids shown, evenly spread over the run (the first and the last included).",
)
def report(run_path: str, out: str | None, grids: int) -> None:
    """Write one HTML page about a run: loss and evaluation curves, the evaluation table (best marked),
    translate eval's scores (eval.json), sample grids over time, checkpoints and the resolved config.
    Every image is inline: the file can be mailed or attached as it is."""
    from translate.engine.report import write_report

    click.echo(f"wrote {write_report(Path(run_path), out, grids)}")
