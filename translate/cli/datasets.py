"""``translate datasets list | download | inspect | combine``: a click group the main CLI adds as
``datasets``."""

from __future__ import annotations

from pathlib import Path

import click

from translate.cli.options import OneLineErrors


@click.group(cls=OneLineErrors)
def datasets() -> None:
    """Public datasets: list them, download one, inspect a dataset folder, combine A and B folders."""


@datasets.command("list")
@click.option("--verbose", "-v", "verbose", is_flag=True, help="Also show URL, licence and layout notes.")
def list_datasets(verbose: bool) -> None:
    """The datasets `download` knows (from translate/catalog/datasets.yaml)."""
    from translate.catalog.catalog import catalog_path, load_catalog
    from translate.catalog.checkout import default_dataset_root

    catalog = load_catalog()
    width = max(len(n) for n in catalog)
    click.echo(f"{'name':<{width}}  {'family':<8}  {'layout':<10}  {'size':>8}  description")
    for entry in catalog.values():
        size = "manual" if entry.manual else entry.size_text
        click.echo(
            f"{entry.name:<{width}}  {entry.family:<8}  {entry.layout:<10}  {size:>8}  {entry.description}"
        )
        if verbose:
            click.echo(f"{'':<{width}}  url: {entry.url or '-'}")
            click.echo(f"{'':<{width}}  licence: {entry.licence or '-'}")
    click.echo(f"\nsizes are approximate (as published); catalog: {catalog_path()}")
    click.echo("download one with: translate datasets download NAME [--root DIR] [--url MIRROR_OR_FILE]")
    click.echo(f"(without --root, into {default_dataset_root()}/NAME)")


@datasets.command("download")
@click.argument("name")
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    help="Folder that receives NAME/. Default: $TRANSLATE_DATA_ROOT, else datasets/ of the translate "
    "checkout you are in, else ./data.",
)
@click.option("--url", help="Fetch from a mirror (http/https) or a local archive (path or file://) instead.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option(
    "--retries", default=3, show_default=True, type=click.IntRange(0), help="Resumes after a cut connection."
)
@click.option("--keep-archive", is_flag=True, help="Keep the downloaded archive in ROOT/.partial/.")
@click.option(
    "--max-extracted-ratio",
    type=click.FloatRange(min=0, min_open=True),
    help="Refuse an archive that unpacks to more than this many times the catalog's size (default 4, "
    "env TRANSLATE_MAX_EXTRACTED_RATIO; inf: no cap).",
)
def download(
    name: str,
    root: str | None,
    url: str | None,
    no_progress: bool,
    retries: int,
    keep_archive: bool,
    max_extracted_ratio: float | None,
) -> None:
    """Download NAME into ROOT/NAME/, verified and safely extracted, ready for `translate train`."""
    from translate.catalog.catalog import get_entry
    from translate.catalog.checkout import default_dataset_root
    from translate.catalog.commands import suggested_command
    from translate.catalog.download import ManualDownloadError, download_dataset
    from translate.data.layout import detect_layout

    entry = get_entry(name)
    if entry.manual and not url:
        click.echo(entry.manual_steps_text())
        raise ManualDownloadError(entry)
    root = Path(root).expanduser() if root else default_dataset_root()
    target = root / entry.name
    existed = target.is_dir() and any(target.iterdir())
    if not existed:
        click.echo(f"{entry.name}: {entry.description} ({entry.size_text}) from {url or entry.url}", err=True)
    path = download_dataset(
        entry,
        root,
        url=url,
        progress=not no_progress,
        retries=retries,
        keep_archive=keep_archive,
        max_extracted_ratio=max_extracted_ratio,
    )
    layout = detect_layout(path, prefer=entry.layout)
    state = "already present (delete the folder to download again)" if existed else "ready"
    click.echo(f"{entry.name} {state}: {path} ({layout.kind}: {layout.description})")
    if entry.licence:
        click.echo(f"licence: {entry.licence}")
    command = suggested_command(layout)
    if command:
        click.echo(f"train with: {command}")


@datasets.command("inspect")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--min-size",
    default=32,
    show_default=True,
    type=click.IntRange(1),
    help="Images whose smaller side is under this many pixels are reported as tiny.",
)
@click.option("--deep", is_flag=True, help="Decode every image fully (slower; finds damage inside the data).")
@click.option(
    "--layout",
    "kind",
    type=click.Choice(["aligned", "cyclegan", "domains", "attributes", "flat", "idx"]),
    help="Read the folder as this layout when it fits several.",
)
@click.option(
    "--max-problems", type=click.IntRange(0), help="List at most this many problems (default: all)."
)
def inspect_command(path: str, min_size: int, deep: bool, kind: str | None, max_problems: int | None) -> None:
    """What PATH holds (layout, splits, domains, counts, sizes, channels, attributes) and each bad file."""
    from translate.catalog.inspect import inspect_dataset, render_report
    from translate.data.layout import detect_layout

    layout = detect_layout(path, prefer=kind)
    report = inspect_dataset(path, min_size=min_size, deep=deep, layout=layout)
    click.echo(render_report(report, max_problems=max_problems))
    if report.usable == 0:
        raise click.ClickException(f"no usable images in {path}")


@datasets.command("combine")
@click.argument("a_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("b_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace pairs that OUT_DIR holds already.")
@click.option(
    "--quality", default=95, show_default=True, type=click.IntRange(1, 100), help="JPEG / WebP quality."
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def combine(a_dir: str, b_dir: str, out_dir: str, overwrite: bool, quality: int, no_progress: bool) -> None:
    """Pair each image of A_DIR with the one of the same name in B_DIR (any extension) into OUT_DIR as one
    A|B image, A left: pix2pix's aligned format. Split sub-folders (train/, val/, test/) are paired
    folder by folder. Sizes must match; nothing is overwritten without --overwrite."""
    from translate.catalog.combine import combine_folders, summary
    from translate.catalog.commands import suggested_command
    from translate.data.layout import detect_layout

    plan = combine_folders(
        a_dir, b_dir, out_dir, overwrite=overwrite, quality=quality, progress=not no_progress
    )
    for line in summary(plan, Path(a_dir), Path(b_dir), Path(out_dir)):
        click.echo(line)
    layout = detect_layout(out_dir)
    if layout.kind == "aligned":
        click.echo(f"train with: {suggested_command(layout)}")
