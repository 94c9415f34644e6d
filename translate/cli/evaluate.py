"""``translate eval``: score a trained model of any export kind on held-out data, next to its baseline.

    translate eval RUN --data PATH [--metrics fid,kid,is,...] [--n 2000] [--classifier clf.pt]
                       [--inception-weights FILE] [--json [FILE]]

The older paired mode (``--aligned DIR`` or ``--inputs DIR --targets DIR``: L1, PSNR, label accuracy) is
unchanged. The scoring itself is ``translate.evaluation`` (the code ``train.eval_every`` runs too).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from translate.cli.options import device_option
from translate.errors import ConfigError


@click.command("eval")
@click.argument("run_arg", metavar="RUN", required=False, type=click.Path())
@click.option("--run", "run_opt", type=click.Path(), help="Run folder or checkpoint (or give it as RUN).")
@click.option(
    "--data",
    type=click.Path(file_okay=False),
    help="The dataset whose held-out split is scored, in the run's layout (domain folders, A|B pairs, "
    "attribute file, class folders or IDX files).",
)
@click.option(
    "--metrics",
    default="all",
    show_default=True,
    help="Comma-separated: fid,kid,is (distribution, on Inception and the --classifier's features), "
    "lpips,ssim,psnr,l1 (against ground truth), domain (classifier scores), diversity, nn (memorisation).",
)
@click.option(
    "--n",
    "count",
    default=2000,
    show_default=True,
    type=click.IntRange(min=2),
    help="Inputs translated, samples drawn and reference images, at most.",
)
@click.option("--classifier", type=click.Path(dir_okay=False), help="From `translate classifier train`.")
@click.option(
    "--inception-weights",
    type=click.Path(dir_okay=False),
    help="Inception-v3 weights (default: pt_inception-2015-12-05-6726825d.pth in the torch hub cache).",
)
@click.option(
    "--json",
    "json_out",
    is_flag=False,
    flag_value="-",
    default=None,
    metavar="[FILE]",
    help="Print the scores as JSON instead of the table; --json FILE: write them to FILE too.",
)
@click.option(
    "--direction", help="Only this export (CycleGAN / UNIT: a2b or b2a); default: every image export."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Noise codes and subsets.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1))
@click.option("--aligned", type=click.Path(file_okay=False), help="Paired mode: a folder of A|B pairs.")
@click.option(
    "--inputs", type=click.Path(file_okay=False), help="Paired mode: input images (with --targets)."
)
@click.option(
    "--targets",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Paired mode: ground truth with the same file names (repeat to search several folders).",
)
@click.option(
    "--label-colors", type=int, help="Paired mode: also score label accuracy over this many colours."
)
@click.option(
    "--train-pairs",
    type=click.Path(file_okay=False),
    help="Paired mode, with --aligned and --label-colors: A|B training pairs whose most common label per "
    "pixel is scored as the trivial baseline.",
)
@click.option(
    "--size",
    type=int,
    help="Paired mode: resize to SIZE x SIZE (default: the image size the model trained at).",
)
@device_option
def evaluate(
    run_arg: str | None,
    run_opt: str | None,
    data: str | None,
    metrics: str,
    count: int,
    classifier: str | None,
    inception_weights: str | None,
    json_out: str | None,
    direction: str | None,
    seed: int,
    batch_size: int,
    aligned: str | None,
    inputs: str | None,
    targets: tuple[str, ...],
    label_colors: int | None,
    train_pairs: str | None,
    size: int | None,
    device: str,
) -> None:
    """Score a trained model: FID / KID / IS, SSIM / PSNR / L1 / LPIPS against ground truth, classifier
    scores (target domain, attributes, classes, coverage), diversity and memorisation; the untranslated
    input (noise models: real held-out images) is scored beside it as the baseline. Writes eval.json into
    the run."""
    if run_arg and run_opt and run_arg != run_opt:
        raise click.UsageError("give the run once: RUN or --run RUN")
    run = run_arg or run_opt
    if not run:
        raise click.UsageError("give the run to score: translate eval RUN --data PATH")
    if aligned or inputs or targets:
        check_paired_metrics(metrics)
        score_paired(run, aligned, inputs, targets, direction, label_colors, train_pairs, size, json_out)
        return
    if data is None:
        raise ConfigError(
            "give --data PATH (the dataset to score on), or for paired scores either --aligned DIR or both "
            "--inputs DIR and --targets DIR"
        )
    from translate.engine.device import resolve_device
    from translate.evaluation import parse_metrics, score_run, write_report

    report = score_run(
        run,
        data,
        parse_metrics(metrics),
        count,
        classifier,
        inception_weights,
        direction,
        seed,
        batch_size,
        resolve_device(device),
        explicit=metrics.strip().lower() != "all",
    )
    written = write_report(report, run)
    if json_out is None or json_out != "-":
        click.echo(report.table())
        click.echo(f"wrote {written}")
    show_json(report.to_dict(), json_out)


def check_paired_metrics(metrics: str) -> None:
    """The paired mode scores L1, PSNR and SSIM: another ``--metrics`` name is a usage error, not dropped."""
    unscored = set(metrics.strip().lower().split(",")) - {"all", "l1", "psnr", "ssim"}
    if unscored:
        raise click.UsageError(
            f"--aligned / --inputs score L1, PSNR and SSIM; {','.join(sorted(unscored))} need --data PATH"
        )


def score_paired(
    run: str,
    aligned: str | None,
    inputs: str | None,
    targets: tuple[str, ...],
    direction: str | None,
    label_colors: int | None,
    train_pairs: str | None,
    size: int | None,
    json_out: str | None,
) -> None:
    """The paired mode (``--aligned`` or ``--inputs`` / ``--targets``): the table, or its JSON."""
    from translate.evaluation import score_pairs

    scores = score_pairs(run, aligned, inputs, targets, direction, label_colors, train_pairs, size)
    if json_out != "-":
        click.echo(scores.table())
    show_json(dataclasses.asdict(scores), json_out)


def show_json(scores: dict, json_out: str | None) -> None:
    """``--json``: print the scores as JSON; ``--json FILE``: write them to FILE."""
    if json_out == "-":
        click.echo(json.dumps(scores, indent=2))
    elif json_out:
        Path(json_out).write_text(json.dumps(scores, indent=2))
