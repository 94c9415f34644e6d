"""``translate sample --run RUN``: images drawn from a noise -> image model, with their latent codes."""

from __future__ import annotations

import click

from translate.cli.latent import report
from translate.cli.options import checkpoint_option, device_option


@click.command("sample")
@click.option("--run", "run_path", required=True, type=click.Path(), help="Run folder or checkpoint.")
@click.option(
    "--out",
    default="samples",
    show_default=True,
    type=click.Path(),
    help="Folder for the images, grid.png, codes.npy (and labels.npy); a name ending in .png: only the grid.",
)
@click.option(
    "--n", "-n", "--count", "count", default=64, show_default=True, type=click.IntRange(min=1), help="Images."
)
@click.option("--seed", default=0, show_default=True, type=int, help="The same seed gives the same images.")
@click.option("--mean", default=0.0, show_default=True, type=float, help="Shift of the latent codes.")
@click.option(
    "--std", default=1.0, show_default=True, type=click.FloatRange(min=0), help="Scale of the latent codes."
)
@click.option("--label", help="Class to draw, by index or name (class-conditional models).")
@click.option(
    "--labels",
    type=click.Choice(["all"]),
    help="Cycle through every class, one class per grid column (the default for class-conditional models).",
)
@device_option
@checkpoint_option
def sample(
    run_path: str,
    out: str,
    count: int,
    seed: int,
    mean: float,
    std: float,
    label: str | None,
    labels: str | None,
    device: str,
    checkpoint: str | None,
) -> None:
    """Draw images from a noise -> image model: one PNG each, a grid, and their latent codes.

    The codes are the model's noise (normal or uniform) drawn with --seed, times --std, plus --mean: the
    same seed (and options) always gives the same images. codes.npy row i (and labels.npy entry i) is
    image i; `translate latent` explores the space between and around such codes.
    """
    from translate.engine.device import resolve_device
    from translate.inference import Sampler

    if label is not None and labels is not None:
        raise click.UsageError("give --label K or --labels all, not both")
    sampler = Sampler.from_run(run_path, device=resolve_device(device), checkpoint=checkpoint)
    written = sampler.save(out, count, seed, label, mean, std)
    if len(written) == 1:
        click.echo(f"wrote {count} samples to {written[0]}")
    else:
        report(written, out)
