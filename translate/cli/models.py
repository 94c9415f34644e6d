"""``translate models list | download`` (the zoo of published generators) and ``translate import junyanz``
(a generator file of junyanz/pytorch-CycleGAN-and-pix2pix as a run folder): two click groups that the main
CLI adds as ``models`` and ``import``.

``model_run(name)`` is ``translate.catalog.zoo.model_run`` with the junyanz importer bound: the run folder
of a zoo model, downloaded and imported on first use (what ``apply --model NAME`` needs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from translate.cli.options import OneLineErrors


def model_run(name: str, root: str | Path | None = None, download: bool = True, **options: Any) -> Path:
    """The run folder of zoo model ``name``, downloaded and imported into the cache when absent
    (``translate.catalog.zoo.model_run`` with ``importer=import_junyanz``; ``options``: its keywords)."""
    from translate.catalog.zoo import model_run as zoo_model_run
    from translate.inference.junyanz import import_junyanz

    return zoo_model_run(name, root, download, importer=import_junyanz, **options)


# ---------------------------------------------------------------------------------------------- models
@click.group(cls=OneLineErrors)
def models() -> None:
    """Published pix2pix/CycleGAN generators: list them, download one as a run folder."""


ROOT_HELP = "Cache of model run folders (default $TRANSLATE_HOME/models, else ~/.cache/translate/models)."


@models.command("list")
@click.option("--verbose", "-v", "verbose", is_flag=True, help="Also show URL, licence and checksum.")
@click.option("--root", type=click.Path(file_okay=False), help=ROOT_HELP)
def list_models(verbose: bool, root: str | None) -> None:
    """The models `translate models download` knows (from translate/catalog/models.yaml)."""
    from translate.catalog.zoo import catalog_path, is_imported, load_models, models_root

    catalog = load_models()
    cache = models_root(root)
    width = max(len(n) for n in catalog)
    click.echo(f"{'name':<{width}}  {'family':<8}  {'network':<24}  {'size':>8}  {'export':<14}  description")
    for entry in catalog.values():
        network = f"{entry.arch}+{entry.norm}"
        mark = " (downloaded)" if is_imported(cache / entry.name) else ""
        click.echo(
            f"{entry.name:<{width}}  {entry.family:<8}  {network:<24}  {entry.size_text:>8}  "
            f"{entry.direction:<14}  {entry.description}{mark}"
        )
        if verbose:
            checksum = "none published"
            if entry.sha256 or entry.md5:
                checksum = f"sha256 {entry.sha256}" if entry.sha256 else f"md5 {entry.md5}"
            click.echo(f"{'':<{width}}  url: {entry.url}")
            click.echo(f"{'':<{width}}  licence: {entry.licence or '-'}")
            click.echo(f"{'':<{width}}  checksum: {checksum}; test mode: {entry.test_mode}")
    unchecked = [e.name for e in catalog.values() if not e.has_checksum]
    click.echo("")
    if unchecked:
        which = "any model" if len(unchecked) == len(catalog) else ", ".join(unchecked)
        click.echo(
            f"checksums: none published for {which}; a download is checked against the size the server "
            "announces only"
        )
    click.echo("sizes are approximate (computed from the architecture)")
    click.echo(f"catalog: {catalog_path()}; cache: {cache}")
    click.echo("download one with: translate models download NAME [--root DIR] [--url MIRROR_OR_FILE]")


@models.command("download")
@click.argument("name")
@click.option("--root", type=click.Path(file_okay=False), help=ROOT_HELP)
@click.option(
    "--url", help="Fetch from a mirror (http/https) or use a local copy (path or file://) of the .pth file."
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--retries", default=3, show_default=True, type=click.IntRange(0), help="Resumes after a cut connection."
)
@click.option("--keep-file", is_flag=True, help="Keep the downloaded .pth file in ROOT/.partial/.")
def download(
    name: str, root: str | None, url: str | None, no_progress: bool, retries: int, keep_file: bool
) -> None:
    """Download model NAME and import it as the run folder ROOT/NAME (once; then it is reused)."""
    from translate.catalog.zoo import get_model, is_imported, models_root

    entry = get_model(name)
    run = models_root(root) / entry.name
    existed = is_imported(run)
    if not existed:
        click.echo(f"{entry.name}: {entry.description} ({entry.size_text}) from {url or entry.url}", err=True)
    path = model_run(
        entry.name, root, url=url, progress=not no_progress, retries=retries, keep_file=keep_file
    )
    state = "already downloaded (delete the folder to download it again)" if existed else "ready"
    click.echo(f"{entry.name} {state}: {path} ({entry.arch}, {entry.norm} norm; export {entry.direction})")
    if entry.licence:
        click.echo(f"licence: {entry.licence}")
    click.echo(f"translate with: translate apply IMAGES --run {path}")


# ---------------------------------------------------------------------------------------------- import
@click.group("import", cls=OneLineErrors)
def import_checkpoint() -> None:
    """Turn a generator saved by another implementation into a run folder (apply, info, the Python API)."""


@import_checkpoint.command("junyanz")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="The run folder to write (new).")
@click.option(
    "--arch",
    type=click.Choice(["resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128"]),
    help="The reference's --netG (default: the one the file fits).",
)
@click.option(
    "--norm", type=click.Choice(["instance", "batch"]), help="The reference's --norm (default: as --arch)."
)
@click.option(
    "--dropout/--no-dropout",
    default=None,
    help="Trained with dropout (default: as the reference trains: on for unet_*, pix2pix; off for "
    "resnet_*, CycleGAN's --no_dropout). Matters without --eval only.",
)
@click.option(
    "--eval",
    "eval_mode",
    is_flag=True,
    help="Translate in eval mode: batch norm on its running statistics, no dropout (the reference's "
    "test.py --eval). Default: as its test.py without --eval, batch norm on each image's own statistics and "
    "dropout on (seeded: outputs repeat), which is how pix2pix is tested; instance norm without dropout "
    "gives the same either way.",
)
@click.option("--input-nc", type=click.IntRange(1), help="Input channels (default: from the file; 3).")
@click.option("--output-nc", type=click.IntRange(1), help="Output channels (default: from the file; 3).")
@click.option("--ngf", type=click.IntRange(1), help="The reference's --ngf (default: from the file; 64).")
@click.option(
    "--direction",
    default="a2b",
    show_default=True,
    help="Name of the run's export, e.g. horse2zebra: a CycleGAN file (latest_net_G_A.pth) translates one "
    "way only, the way it was trained.",
)
@click.option(
    "--image-size",
    type=click.IntRange(1),
    help="The size it was trained at (default 256; 128 for unet_128, resnet_6blocks).",
)
def junyanz(
    file: str,
    out: str,
    arch: str | None,
    norm: str | None,
    dropout: bool | None,
    eval_mode: bool,
    input_nc: int | None,
    output_nc: int | None,
    ngf: int | None,
    direction: str,
    image_size: int | None,
) -> None:
    """Import FILE, a generator's state dict saved by junyanz/pytorch-CycleGAN-and-pix2pix
    (latest_net_G.pth, a CycleGAN latest_net_G_A.pth, or a published model), as the run folder --out.

    Read with torch.load(weights_only=True) only; the tensors are matched to the toolkit's network in
    order, each shape checked. Inputs in [-1, 1] and the tanh output are the toolkit's conventions."""
    from translate.inference.junyanz import import_junyanz

    result = import_junyanz(
        file,
        out,
        arch=arch,
        norm=norm,
        dropout=dropout,
        eval_mode=eval_mode,
        input_nc=input_nc,
        output_nc=output_nc,
        ngf=ngf,
        direction=direction,
        image_size=image_size,
    )
    click.echo(f"imported {result.describe()}")
    click.echo(f"translate with: translate apply IMAGES --run {result.run}")
