"""``translate serve``: a web page to try a trained model (``translate.inference.serve``)."""

from __future__ import annotations

from pathlib import Path

import click

from translate.cli.options import checkpoint_option, device_option, max_pixels_option, precision_option
from translate.errors import ConfigError

DEFAULT_MAX_PENDING = 16
"""``translate.inference.serve.DEFAULT_MAX_PENDING``, written here so that ``--help`` needs no torch (a test
keeps the two equal)."""


def model_run(name: str) -> Path:
    """The run folder of model-zoo model ``name``, downloaded and imported when the cache lacks it:
    ``translate.cli.models.model_run`` (the zoo's ``model_run`` with the reference importer), else
    ``translate.catalog.zoo.model_run``; a one-line error where this version has no model zoo."""
    try:
        from translate.cli.models import model_run as zoo_model_run
    except ImportError:
        try:
            from translate.catalog.zoo import model_run as zoo_model_run
        except ImportError:
            raise ConfigError(
                f"--model {name}: this version has no model zoo (translate.catalog.zoo); give a run folder"
            ) from None
    return Path(zoo_model_run(name))


@click.command("serve")
@click.argument("run_path", metavar="[RUN]", required=False, type=click.Path())
@click.option(
    "--model", "model_name", metavar="NAME", help="A model of the model zoo, by name (instead of RUN)."
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one)."
)
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: a free one)."
)
@click.option(
    "--max-upload-mb",
    default=20.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Largest image upload, in MB.",
)
@click.option(
    "--max-megapixels",
    default=25.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Largest image the page takes, in megapixels (width x height); --max-pixels, the limit of every "
    "image read, also applies.",
)
@click.option(
    "--max-pending",
    default=DEFAULT_MAX_PENDING,
    show_default=True,
    type=click.IntRange(min=1),
    help="Translate and sample requests taken in at once (running or waiting for the model, which runs one "
    "at a time); one more is answered 503 with Retry-After.",
)
@click.option(
    "--fast/--no-fast",
    default=False,
    show_default=True,
    help="Run the compiled, checked copy of the generator (as translate apply): compiled once per image "
    "size, so the first uploads of each size wait for it. Default: the plain generator, each upload "
    "answered at once.",
)
@precision_option
@max_pixels_option
@device_option
@checkpoint_option
def serve(
    run_path: str | None,
    model_name: str | None,
    host: str,
    port: int,
    max_upload_mb: float,
    max_megapixels: float,
    max_pending: int,
    fast: bool,
    precision: str,
    device: str,
    checkpoint: str | None,
) -> None:
    """A web page to try a model: drop images, choose the direction (CycleGAN, UNIT), the target labels or
    domain (StarGAN), the number of random styles and their seed or a reference image (MUNIT), or the seed
    and class (GANs), see before and after, download the result.

    RUN: a run folder, checkpoint folder, model.safetensors, or a file of `translate export`. Listens on
    127.0.0.1 (this computer only) unless --host says otherwise; uploads and results stay in memory.
    Ctrl-C stops it."""
    from translate.engine.device import resolve_device
    from translate.inference.serve import ServeApp
    from translate.inference.serve import serve as run_server

    if (run_path is None) == (model_name is None):
        raise click.UsageError("give a run folder (RUN) or --model NAME, one of them")
    path = Path(run_path) if run_path is not None else model_run(model_name or "")
    app = ServeApp(
        path,
        device=resolve_device(device),
        checkpoint=checkpoint,
        max_bytes=int(max_upload_mb * 1e6),
        max_pixels=int(max_megapixels * 1e6),
        title=model_name,
        fast=fast,
        precision=precision,
    )
    kinds = ", ".join(f"{e.name} ({e.kind})" for e in app.entries.values())

    def ready(url: str) -> None:
        click.echo(f"serving {path} [{kinds}] at {url}  (Ctrl-C to stop)")

    run_server(app, host, port, ready, max_pending)
    click.echo("stopped")
