"""``translate latent interpolate | traverse | arithmetic``: the latent space of a noise -> image model.

A seed's code is the one ``translate sample -n 1 --seed SEED`` draws. Every command writes its images, a
``grid.png`` and the codes as ``.npy`` beside them, so a result can be drawn again or refined from Python
(``Sampler.from_run(RUN)(torch.from_numpy(np.load(...)))``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from translate.cli.options import device_option
from translate.errors import ConfigError

if TYPE_CHECKING:
    import torch


def report(written: list[Path], folder: str | Path) -> None:
    """One line naming what was written (a numbered run of images as its first and last name)."""
    numbered = [p.name for p in written if p.stem.isdigit()]
    parts = [f"{len(numbered)} images {numbered[0]} .. {numbered[-1]}"] if numbered else []
    parts += [p.name for p in written if not p.stem.isdigit()]
    click.echo(f"wrote {', '.join(parts)} in {folder}")


def number_list(kind: type, example: str) -> Callable[[click.Context, click.Parameter, str], list]:
    """A click callback that reads ``1,5,9`` as a list of ``kind``; anything else is a ConfigError."""

    def parse(ctx: click.Context, param: click.Parameter, value: str) -> list:
        try:
            return [kind(v) for v in value.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(
                f"--{param.name}: {value!r} is not a comma-separated list of numbers, e.g. {example}"
            ) from None

    return parse


def common(out: str, label_default: str = "row i draws class i") -> Callable[[Any], Any]:
    """``--run``, ``--label``, ``--out`` (default ``out``) and ``--device`` of every latent command."""

    def decorate(command: Any) -> Any:
        command = device_option(command)
        command = click.option("--out", default=out, show_default=True, type=click.Path(), help="Folder.")(
            command
        )
        command = click.option(
            "--label",
            help=f"Class to draw, by index or name (class-conditional models; default: {label_default}).",
        )(command)
        return click.option("--run", "run_path", required=True, type=click.Path(), help="Run folder.")(
            command
        )

    return decorate


def load(run_path: str, device: str) -> Any:
    from translate.engine.device import resolve_device
    from translate.inference import Sampler

    return Sampler.from_run(run_path, device=resolve_device(device))


def row_labels(sampler: Any, rows: int, per_row: int, label: str | None) -> torch.Tensor | None:
    """Labels of ``rows`` rows of ``per_row`` images: all ``label``, else row i draws class i."""
    labels = sampler.labels(rows, label)
    return None if labels is None else labels.repeat_interleave(per_row)


@click.group()
def latent() -> None:
    """Explore the latent space of a noise -> image model: interpolate, traverse, arithmetic."""


@latent.command()
@common("interpolation")
@click.option("--from", "seed_from", required=True, type=int, help="Seed of the first code.")
@click.option("--to", "seed_to", required=True, type=int, help="Seed of the last code.")
@click.option("--steps", default=8, show_default=True, type=int, help="Images per row, both ends included.")
@click.option("--mode", default="slerp", show_default=True, type=click.Choice(["slerp", "linear"]))
@click.option(
    "--rows", default=1, show_default=True, type=click.IntRange(min=1), help="Row i: seeds FROM+i -> TO+i."
)
def interpolate(
    run_path: str,
    seed_from: int,
    seed_to: int,
    steps: int,
    mode: str,
    rows: int,
    label: str | None,
    out: str,
    device: str,
) -> None:
    """Rows of images between two seeds' codes: spherical (slerp, the default) or linear.

    Writes 0000.png ... (row-major), grid.png (one row per seed pair), codes.npy (row i is image i) and
    labels.npy for a class-conditional model.
    """
    from translate.inference.sampler import save_images

    sampler = load(run_path, device)
    starts = sampler.codes([seed_from + i for i in range(rows)])
    ends = sampler.codes([seed_to + i for i in range(rows)])
    z = sampler.interpolate(starts, ends, steps, mode).flatten(0, 1)
    labels = row_labels(sampler, rows, steps, label)
    report(save_images(out, sampler(z, labels), z, labels, columns=steps), out)


@latent.command()
@common("traversal")
@click.option("--dim", required=True, type=int, help="The latent dimension to sweep (0-based).")
@click.option(
    "--values",
    default="-3,-1.5,0,1.5,3",
    show_default=True,
    callback=number_list(float, "-3,-1.5,0,1.5,3"),
    help="The values it takes, comma-separated.",
)
@click.option("--rows", default=4, show_default=True, type=click.IntRange(min=1), help="Base codes.")
@click.option("--seed", default=0, show_default=True, type=int, help="Row i's base code is seed SEED+i's.")
def traverse(
    run_path: str,
    dim: int,
    values: list[float],
    rows: int,
    seed: int,
    label: str | None,
    out: str,
    device: str,
) -> None:
    """Sweep one latent dimension over --values, the others fixed: one base code per row.

    Writes 0000.png ... (row-major), grid.png, codes.npy (row i is image i) and labels.npy for a
    class-conditional model.
    """
    from translate.inference.sampler import save_images

    sampler = load(run_path, device)
    z = sampler.traverse(sampler.codes([seed + i for i in range(rows)]), dim, values).flatten(0, 1)
    labels = row_labels(sampler, rows, len(values), label)
    report(save_images(out, sampler(z, labels), z, labels, columns=len(values)), out)


@latent.command()
@common("arithmetic", "class 0")
@click.option("--a", "a", required=True, callback=number_list(int, "1,5,9"), help="Seeds of group a: 1,5,9")
@click.option("--b", "b", required=True, callback=number_list(int, "1,5,9"), help="Seeds of group b.")
@click.option("--c", "c", required=True, callback=number_list(int, "1,5,9"), help="Seeds of group c.")
@click.option(
    "--around",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Also the mean image of N codes drawn around the result.",
)
@click.option(
    "--std", default=0.25, show_default=True, type=click.FloatRange(min=0), help="Spread of --around."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the --around codes.")
def arithmetic(
    run_path: str,
    a: list[int],
    b: list[int],
    c: list[int],
    around: int,
    std: float,
    seed: int,
    label: str | None,
    out: str,
    device: str,
) -> None:
    """Vector arithmetic (DCGAN): the mean code of each group of seeds, and mean(a) - mean(b) + mean(c).

    Writes each group's images (a_SEED.png ...), mean_a.png, mean_b.png, mean_c.png, result.png, with
    --around N around_mean.png (the mean image of N codes drawn around the result, --std apart, as the
    DCGAN paper shows), grid.png (a row per group ending in its mean, then the result) and the codes:
    a.npy, b.npy, c.npy, means.npy (a, b, c), result.npy, around.npy; labels.npy holds the one class of
    a class-conditional model (--label, default 0).
    """
    sampler = load(run_path, device)
    seeds = {"a": a, "b": b, "c": c}
    groups = {name: sampler.codes(group) for name, group in seeds.items()}
    result = sampler.arithmetic(*groups.values())
    label_index = None if not sampler.num_classes else sampler.class_index(label or 0)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    images, codes, rows = arithmetic_images(sampler, seeds, groups, result, label_index, around, std, seed)
    report(save_arithmetic(folder, images, codes, rows, label_index), out)


def arithmetic_images(
    sampler: Any,
    seeds: dict[str, list[int]],
    groups: dict[str, torch.Tensor],
    result: torch.Tensor,
    label: int | None,
    around: int,
    std: float,
    seed: int,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[list[torch.Tensor]]]:
    """What ``translate latent arithmetic`` draws from the codes of each group of ``seeds`` and their
    ``result``: the images by file name (each group's seeds, its mean, the result, the mean around the
    result), the codes by file name and the rows of the grid."""
    import torch

    def draw(z: torch.Tensor) -> torch.Tensor:
        return sampler(z, None if label is None else torch.full((len(z),), label)).float().cpu()

    images, codes, rows = {}, {}, []
    for name, z in groups.items():
        drawn = draw(torch.cat([z, z.mean(0, keepdim=True)]))
        images.update({f"{name}_{s}": image for s, image in zip(seeds[name], drawn)})
        images[f"mean_{name}"] = drawn[-1]
        codes[name] = z
        rows.append(list(drawn))
    codes["means"] = torch.stack([z.mean(0) for z in groups.values()])
    images["result"], codes["result"] = draw(result[None])[0], result
    last = [images["result"]]
    if around:
        codes["around"] = sampler.noise(around, seed, mean=result, std=std)
        images["around_mean"] = draw(codes["around"]).mean(0)
        last.insert(0, images["around_mean"])
    rows.append(last)
    return images, codes, rows


def save_arithmetic(
    folder: Path,
    images: dict[str, torch.Tensor],
    codes: dict[str, torch.Tensor],
    rows: list[list[torch.Tensor]],
    label: int | None,
) -> list[Path]:
    """Each image as ``NAME.png``, the grid of ``rows`` as ``grid.png``, each code as ``NAME.npy`` and the
    class as ``labels.npy`` in ``folder``; the paths written."""
    import numpy as np
    import torch

    from translate.inference.sampler import save_grid

    width = max(len(row) for row in rows)
    blank = torch.ones_like(images["result"])  # white
    written = [save_grid(image[None], folder / f"{name}.png", 1) for name, image in images.items()]
    written.append(save_grid(torch.stack(pad_rows(rows, blank, width)), folder / "grid.png", width))
    for name, z in codes.items():
        np.save(folder / f"{name}.npy", z.float().cpu().numpy())
        written.append(folder / f"{name}.npy")
    if label is not None:
        np.save(folder / "labels.npy", np.array([label]))
        written.append(folder / "labels.npy")
    return written


def pad_rows(rows: list[list[torch.Tensor]], blank: torch.Tensor, width: int) -> list[torch.Tensor]:
    """The group rows padded on the right up to their mean's column, the last row on the left, so each
    mean image and the result line up in the last column."""
    padded = []
    for i, row in enumerate(rows):
        fill = [blank] * (width - len(row))
        padded += fill + row if i == len(rows) - 1 else row[:-1] + fill + row[-1:]
    return padded
