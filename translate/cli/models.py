"""``translate models list | download`` (the zoo of published generators) and ``translate import junyanz |
stargan | cut`` (a generator file of junyanz/pytorch-CycleGAN-and-pix2pix, of yunjey/stargan or of
taesungp/contrastive-unpaired-translation as a run folder): two click groups that the main CLI adds as
``models`` and ``import``.

``model_run(name)`` is ``translate.catalog.zoo.model_run`` with the importer of the model's format bound:
the run folder of a zoo model, downloaded and imported on first use (what ``apply --model NAME`` needs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from translate.cli.options import ManyValues, ManyValuesCommand, OneLineErrors


def importer(file_format: str) -> Callable[..., Any]:
    """The importer of files of ``file_format`` (``translate.catalog.zoo.FORMATS``): ``import_stargan`` for
    yunjey/stargan files, ``import_cut`` for the CUT authors', else ``import_junyanz``."""
    if file_format == "stargan":
        from translate.inference.stargan_import import import_stargan

        return import_stargan
    if file_format == "cut":
        from translate.inference.cut_import import import_cut

        return import_cut
    from translate.inference.junyanz import import_junyanz

    return import_junyanz


def model_run(name: str, root: str | Path | None = None, download: bool = True, **options: Any) -> Path:
    """The run folder of zoo model ``name``, downloaded and imported into the cache when absent
    (``translate.catalog.zoo.model_run`` with the importer of its format; ``options``: its keywords)."""
    from translate.catalog.zoo import get_model
    from translate.catalog.zoo import model_run as zoo_model_run

    entry = get_model(name)
    return zoo_model_run(entry, root, download, importer=importer(entry.format), **options)


def apply_line(run: Path, labels: Sequence[str] | None = None, domains: bool = False) -> str:
    """How to translate with the run folder ``run``; a StarGAN model (``labels``) needs a target."""
    target = ""
    if labels:
        target = f" --to {labels[0]}" if domains else f" --to {labels[0]}=1"
    return f"translate with: translate apply IMAGES --run {run}{target}"


# ---------------------------------------------------------------------------------------------- models
@click.group(cls=OneLineErrors)
def models() -> None:
    """Published pix2pix/CycleGAN/StarGAN/CUT generators: list them, download one as a run folder."""


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
    networks = {name: f"{entry.arch}+{entry.norm}" for name, entry in catalog.items()}
    net_width = max(24, *map(len, networks.values()))
    header = f"{'name':<{width}}  {'family':<8}  {'network':<{net_width}}  {'size':>8}  {'export':<14}"
    click.echo(f"{header}  description")
    for entry in catalog.values():
        mark = " (downloaded)" if is_imported(cache / entry.name) else ""
        click.echo(
            f"{entry.name:<{width}}  {entry.family:<8}  {networks[entry.name]:<{net_width}}  "
            f"{entry.size_text:>8}  {entry.direction:<14}  {entry.description}{mark}"
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
    "--url",
    help="Fetch from a mirror (http/https) or use a local copy (path or file://) of the model's file "
    "(.pth; .zip for StarGAN; the authors' .tar for CUT).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--retries", default=3, show_default=True, type=click.IntRange(0), help="Resumes after a cut connection."
)
@click.option("--keep-file", is_flag=True, help="Keep the downloaded file in ROOT/.partial/.")
def download(
    name: str, root: str | None, url: str | None, no_progress: bool, retries: int, keep_file: bool
) -> None:
    """Download model NAME and import it as the run folder ROOT/NAME (once; then it is reused). The other
    models of the same download (the CUT authors publish six in one archive) are imported with it."""
    from translate.catalog.zoo import bundled_with, get_model, is_imported, models_root

    entry = get_model(name)
    cache = models_root(root)
    run = cache / entry.name
    existed = is_imported(run)
    missing = [e.name for e in bundled_with(entry) if not is_imported(cache / e.name)]
    if not existed:
        click.echo(f"{entry.name}: {entry.description} ({entry.size_text}) from {url or entry.url}", err=True)
    path = model_run(
        entry.name, root, url=url, progress=not no_progress, retries=retries, keep_file=keep_file
    )
    also = [other for other in missing if is_imported(cache / other)]
    if also:
        click.echo(f"from the same download: {', '.join(also)} (in {cache})")
    state = "already downloaded (delete the folder to download it again)" if existed else "ready"
    labels = f"; labels {' '.join(entry.attributes)}" if entry.attributes else ""
    click.echo(
        f"{entry.name} {state}: {path} ({entry.arch}, {entry.norm} norm; export {entry.direction}{labels})"
    )
    if entry.licence:
        click.echo(f"licence: {entry.licence}")
    click.echo(apply_line(path, entry.attributes))


# ---------------------------------------------------------------------------------------------- import
@click.group("import", cls=OneLineErrors)
def import_checkpoint() -> None:
    """Turn a generator saved by another implementation into a run folder (apply, info, the Python API)."""


def import_command(name: str, **settings: Any) -> Callable[[Callable[..., None]], click.Command]:
    """A command ``translate import NAME FILE --out RUN`` (the arguments every importer takes)."""

    def decorate(function: Callable[..., None]) -> click.Command:
        function = click.option(
            "--out", required=True, type=click.Path(file_okay=False), help="The run folder to write (new)."
        )(function)
        function = click.argument("file", type=click.Path(dir_okay=False))(function)
        return import_checkpoint.command(name, **settings)(function)

    return decorate


def report_import(result: Any, labels: Sequence[str] | None = None, domains: bool = False) -> None:
    """What an importer wrote (``result.describe()``) and how to translate with it."""
    click.echo(f"imported {result.describe()}")
    click.echo(apply_line(result.run, labels, domains))


@import_command("junyanz")
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
    report_import(result)


@import_command("stargan", cls=ManyValuesCommand)
@click.option(
    "--attrs",
    cls=ManyValues,
    metavar="NAME ...",
    help="The labels in the order it was trained with (its --selected_attrs), after FILE. Default for a "
    "file of five labels: CelebA's Black_Hair Blond_Hair Brown_Hair Male Young, as the published models.",
)
@click.option(
    "--domains",
    cls=ManyValues,
    metavar="NAME ...",
    help="Instead of --attrs: the labels are one-of-N domains (RaFD's expressions), in training order.",
)
@click.option(
    "--image-size",
    type=click.IntRange(1),
    help="The size it was trained at (its --image_size: 128 or 256 for the published models). Default: "
    "from the critic file's shapes, else 128.",
)
@click.option(
    "--critic",
    type=click.Path(dir_okay=False),
    help="The *-D.ckpt to make the run's classifier (default: the archive's, or the N-D.ckpt beside an "
    "N-G.ckpt).",
)
@click.option(
    "--no-critic",
    is_flag=True,
    help="Import the generator alone: no classifier, so a translation needs a full target or --labels.",
)
def stargan(
    file: str,
    out: str,
    attrs: tuple[str, ...] | None,
    domains: tuple[str, ...] | None,
    image_size: int | None,
    critic: str | None,
    no_critic: bool,
) -> None:
    """Import FILE, a generator's state dict saved by yunjey/stargan (200000-G.ckpt) or a published archive
    (celeba-128x128-5attrs.zip, with its critic), as the run folder --out.

    Read with torch.load(weights_only=True) only; the instance norms' running statistics, which the
    reference's test() never uses, are dropped; every tensor's name and shape is checked. It translates as
    that test() does: each image on its own statistics."""
    from translate.inference.stargan_import import import_stargan

    if attrs and domains:
        raise click.UsageError("name the labels with --attrs or with --domains, not both")
    if critic and no_critic:
        raise click.UsageError("give --critic FILE or --no-critic, not both")
    result = import_stargan(
        file,
        out,
        attributes=attrs or domains,
        domains=bool(domains),
        discriminator=False if no_critic else critic,
        image_size=image_size,
    )
    report_import(result, result.labels.names, bool(domains))


@import_command("cut")
@click.option(
    "--name",
    "experiment",
    help="The authors' --name of the model in an archive (pretrained_models.tar: horse2zebra_cut_pretrained, "
    "cat2dog_fastcut_pretrained, ...): its NAME/latest_net_G.pth. Default: the archive's only model.",
)
@click.option(
    "--epoch", default="latest", show_default=True, help="The authors' --epoch: NAME/<epoch>_net_G.pth."
)
@click.option(
    "--cut-mode",
    type=click.Choice(["CUT", "FastCUT"], case_sensitive=False),
    help="The authors' --CUT_mode (names the run's recipe; both translate alike). Default: FastCUT when "
    "--name says fastcut, else CUT.",
)
@click.option(
    "--direction",
    default="a2b",
    show_default=True,
    help="Name of the run's export, e.g. horse2zebra: a CUT generator translates one way only.",
)
@click.option(
    "--domains",
    nargs=2,
    metavar="SOURCE TARGET",
    help="The names of the domains it translates from and to, e.g. horse zebra (default A B).",
)
@click.option("--image-size", type=click.IntRange(1), help="The size it was trained at (default 256).")
def cut(
    file: str,
    out: str,
    experiment: str | None,
    epoch: str,
    cut_mode: str | None,
    direction: str,
    domains: tuple[str, str] | None,
    image_size: int | None,
) -> None:
    """Import FILE, a CUT or FastCUT generator saved by taesungp/contrastive-unpaired-translation
    (latest_net_G.pth) or the authors' archive of them (pretrained_models.tar, with --name), as the run
    folder --out.

    Read with torch.load(weights_only=True) only; every tensor's name and shape is checked against the
    toolkit's anti-aliased ResNet. It translates as the authors' test.py does (instance norm: each image on
    its own statistics)."""
    from translate.inference.cut_import import import_cut

    result = import_cut(
        file,
        out,
        experiment=experiment,
        epoch=epoch,
        cut_mode=cut_mode,
        direction=direction,
        domains=domains or None,
        image_size=image_size,
    )
    report_import(result)
