"""``translate apply INPUTS --run RUN``: translate image files and folders with a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from translate.cli.options import (
    check_writable,
    checkpoint_option,
    device_option,
    max_pixels_option,
    precision_option,
)

INPUTS_FAILED_EXIT = 3
"""Exit status of ``translate apply`` when any input could not be translated (the others were written);
1 is an error that stopped the command, 2 a usage error."""


@click.command("apply")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--run",
    "run_path",
    type=click.Path(),
    help="Run folder, checkpoint folder or model.safetensors; or a file of `translate export` (.onnx, .pt).",
)
@click.option(
    "--model",
    help="A model of the zoo instead of --run (`translate models list`), downloaded on first use.",
)
@click.option(
    "--out",
    "out_dir",
    default="translated",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Output folder: a file keeps its name, a folder's images keep their paths under the folder's name.",
)
@click.option("--direction", help="Which export of the model (CycleGAN: a2b or b2a; see `translate info`).")
@click.option(
    "--to",
    "target",
    metavar="TARGET",
    help="StarGAN: the target, e.g. --to Blond_Hair=1,Male=0 (attributes not named keep the input's values) "
    "or --to happy (folder domains). `translate info RUN` lists the model's labels.",
)
@click.option(
    "--labels",
    "labels_file",
    type=click.Path(dir_okay=False),
    help="StarGAN: attribute file (list_attr_celeba.txt format) with the inputs' own labels; images it does "
    "not list, or all without it, are read by the model's classifier.",
)
@click.option(
    "--styles",
    type=click.IntRange(min=1),
    metavar="N",
    help="MUNIT: N translations of each image, in random styles drawn from --seed, written as "
    "NAME-seedS-style0.png ... (style i of a seed is the same for any N above i).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="The random styles of --styles: the same seed gives the same styles.",
)
@click.option(
    "--style-from",
    "style_from",
    metavar="IMAGE",
    type=click.Path(dir_okay=False),
    help="MUNIT: translate in the style of IMAGE, an image of the target domain (read by the model's style "
    "encoder), written as NAME-style-IMAGESTEM.png.",
)
@click.option(
    "--faces",
    is_flag=True,
    help="Face models: find each face in each photo (MTCNN), translate it aligned as the training faces "
    "were, and paste it back; photos without a face are copied. Needs the faces extra: "
    'pip install "translate-gan[faces]" (in a checkout: pip install -e ".[faces]").',
)
@click.option(
    "--overwrite", is_flag=True, help="Translate again images whose output exists (default: skip them)."
)
@click.option(
    "--gallery",
    is_flag=True,
    help="Also write OUT/index.html: each input beside its output(s), failed inputs at the end (a page "
    "with relative links that opens from disk; outputs that existed are shown too).",
)
@click.option(
    "--batch-size",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Images of one size translated together.",
)
@click.option(
    "--quality",
    default=95,
    show_default=True,
    type=click.IntRange(1, 100),
    help="JPEG and WebP outputs (from JPEG and WebP inputs; WebP at 100 is lossless); all others are PNG.",
)
@click.option(
    "--tile",
    type=click.IntRange(min=0),
    help="Translate in overlapping tiles of this many px, with whole-image statistics (bounded memory). "
    "Default: tiles of 512 px for images above 4 MP; 0: never.",
)
@click.option(
    "--overlap", default=64, show_default=True, type=click.IntRange(min=0), help="Overlap of the tiles in px."
)
@click.option(
    "--backend",
    type=click.Choice(["torch", "onnxruntime"]),
    help="onnxruntime: run the model exported to ONNX (a temporary file for a run folder; needs "
    'pip install "translate-gan[onnx]"). Default: torch, or what an exported --run file needs.',
)
@click.option(
    "--fast/--no-fast",
    default=None,
    help="Run a compiled copy of the generator (compiled once per image size, checked against the plain "
    "one: used only where it matches to 1e-4, or in bf16 by PSNR). Default: on for the CPU, unless "
    "TRANSLATE_FAST=0.",
)
@precision_option
@max_pixels_option
@device_option
@checkpoint_option
@click.pass_context
def apply(
    ctx: click.Context,
    inputs: tuple[str, ...],
    run_path: str | None,
    model: str | None,
    out_dir: str,
    target: str | None,
    labels_file: str | None,
    styles: int | None,
    seed: int,
    style_from: str | None,
    faces: bool,
    overwrite: bool,
    gallery: bool,
    batch_size: int,
    quality: int,
    **model_options: Any,
) -> None:
    """Translate image files and folders (recursively) with a trained model; an interrupted run resumes
    where it stopped (existing outputs are skipped).

    Exit status: 0 when every input was translated (or its output existed), 3 when some could not be
    (each is named on a `failed:` line; the others are written), 1 for an error that stopped the command,
    2 for a usage error."""
    if styles is None and ctx.get_parameter_source("seed") == ParameterSource.COMMANDLINE:
        raise click.UsageError("--seed draws the random styles of --styles N: give --styles too")
    translator = load_translator(run_path, model, **model_options)
    check_writable(Path(out_dir))
    written = translator.apply_paths(
        [Path(p) for p in inputs],
        Path(out_dir),
        batch_size=batch_size,
        target=target,
        labels_file=labels_file,
        styles=styles,
        seed=seed,
        style_from=style_from,
        faces=faces,
        overwrite=overwrite,
        quality=quality,
    )
    report = translator.report
    for path, reason in report.failed:
        click.echo(f"failed: {path}: {reason}", err=True)
    click.echo(f"{report.summary()}; wrote {len(written)} images to {out_dir}")
    if gallery:
        from translate.inference.gallery import write_gallery

        page = write_gallery(report.pairs, out_dir, f"translate apply: {model or run_path}", report.failed)
        click.echo(f"gallery: {page}")
    if report.failed:
        ctx.exit(INPUTS_FAILED_EXIT)


def load_translator(run_path: str | None, model: str | None, device: str, **options: Any) -> Any:
    """The ``Translator`` of ``--run RUN`` or of the zoo model ``--model NAME`` (downloaded on first use);
    ``options``: ``direction``, ``checkpoint``, ``backend``, ``tile``, ``overlap``, ``fast``,
    ``precision``."""
    from translate.engine.device import resolve_device
    from translate.inference import Translator

    if (run_path is None) == (model is None):
        raise click.UsageError("give the model as --run RUN or --model NAME (one of the two)")
    if model is not None:
        from translate.cli.models import model_run

        run_path = str(model_run(model))
    return Translator.from_run(run_path, device=resolve_device(device), **options)
