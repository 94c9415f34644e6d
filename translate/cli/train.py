"""``translate train METHOD``: train a method and write a run folder (``translate.api.train``)."""

from __future__ import annotations

import os
from typing import Any

import click

from translate.cli.options import ManyValues, ManyValuesCommand, command_line, max_pixels_option


@click.command("train", cls=ManyValuesCommand)
@click.argument("method")
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="YAML recipe (may use _base_)."
)
@click.option("--data-root", type=click.Path(), help="Data folder (default: current folder, else demo data).")
@click.option(
    "--domains",
    cls=ManyValues,
    help="Domain folder names under the data root, e.g. --domains photo anime (CycleGAN and UNIT take two, "
    "StarGAN any number).",
)
@click.option(
    "--attrs",
    cls=ManyValues,
    help="Attribute-file data (StarGAN): the attributes to learn, e.g. --attrs Black_Hair Blond_Hair Male.",
)
@click.option(
    "--direction", type=click.Choice(["a2b", "b2a"]), help="Aligned pairs: which half is the input."
)
@click.option("--run-dir", type=click.Path(file_okay=False), help="Run folder (default runs/METHOD-DATA).")
@click.option("--steps", type=int, help="Training steps (generator updates).")
@click.option("--image-size", type=int, help="Crop size fed to the networks.")
@click.option(
    "--batch-size",
    type=int,
    help="Images per batch (of each process with --nproc); default: the method's or the recipe's (1).",
)
@click.option(
    "--seed",
    type=int,
    help="Seed of the weights' initialisation, the data order, the augmentation and the noise (default 0).",
)
@click.option("--device", help="auto, cpu, cuda, cuda:1 ...")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its latest checkpoint.")
@click.option(
    "--keep-schedule",
    is_flag=True,
    help="With --resume and a new --steps: keep the LR decay where the run's original steps put it "
    "(default: stretch it over the new steps).",
)
@click.option(
    "--on-nan",
    type=click.Choice(["stop", "rollback"]),
    help="When a loss or weight becomes NaN/inf: stop (default) or roll back to the last good checkpoint "
    "with half the learning rate.",
)
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any config key, e.g. --set train.lr=1e-4 --set model.generator.name=unet_128.",
)
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    help="Train with N processes on this machine (as torchrun --standalone --nproc_per_node N): one per GPU "
    "with NCCL, or N CPU processes with gloo. --batch-size is per process. Several machines: see torchrun.",
)
@max_pixels_option
@click.pass_context
def train(
    ctx: click.Context,
    method: str,
    config_file: str | None,
    run_dir: str | None,
    resume: bool,
    keep_schedule: bool,
    sets: tuple[str, ...],
    nproc: int | None,
    **flags: Any,
) -> None:
    """Train METHOD (see `translate list tasks`) and write a run folder.

    Ctrl-C or SIGTERM stops after the current step with a checkpoint (exit status 130 / 143)."""
    from translate.api import demo_eval_command
    from translate.api import train as run_training
    from translate.config_files import parse_override

    if nproc is not None and nproc > 1:
        launch_processes(ctx, nproc)
    overrides = [flag_overrides(**flags), *(parse_override(item) for item in sets)]
    run = run_training(
        method, config_file, overrides, run_dir=run_dir, resume=resume, keep_schedule=keep_schedule
    )
    if int(os.environ.get("RANK", "0")) == 0:  # one line from several processes (torchrun)
        click.echo(f"run folder: {run}")
        score = demo_eval_command(run)
        if score:
            click.echo(f"score it against the demo's paired test scenes: {score}")


def launch_processes(ctx: click.Context, nproc: int) -> None:
    """``--nproc N``: start N processes of this command line (without ``--nproc``) and exit as they do; the
    pixel limit of ``--max-pixels`` reaches them in the environment (``TRANSLATE_MAX_PIXELS``)."""
    from translate.engine.distributed import launch

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise click.UsageError("--nproc starts the processes itself: leave it out under torchrun")
    ctx.exit(launch(nproc, command_line(ctx, leave_out=("nproc", "max_pixels"))))


def flag_overrides(
    data_root: str | None,
    domains: tuple[str, ...] | None,
    attrs: tuple[str, ...] | None,
    direction: str | None,
    image_size: int | None,
    steps: int | None,
    batch_size: int | None,
    seed: int | None,
    device: str | None,
    on_nan: str | None,
) -> dict[str, dict[str, Any]]:
    """The config override of the flags that were given (``--data-root`` -> ``data.root`` ...)."""
    flags = {
        "data": {
            "root": data_root,
            "domains": list(domains) if domains else None,
            "attributes": list(attrs) if attrs else None,
            "direction": direction,
            "image_size": image_size,
        },
        "train": {"steps": steps, "batch_size": batch_size, "seed": seed, "device": device, "on_nan": on_nan},
    }
    return {section: {k: v for k, v in values.items() if v is not None} for section, values in flags.items()}
