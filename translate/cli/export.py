"""``translate export``: one export of a trained model as an ONNX or TorchScript file with its contract."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("run_path", metavar="RUN", type=click.Path())
@click.option(
    "--format", "file_format", type=click.Choice(["onnx", "torchscript"]), default="onnx", show_default=True
)
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The file to write (.onnx, .pt).")
@click.option(
    "--export", "name", help="Which export of the model (CycleGAN: a2b or b2a; see `translate info`)."
)
@click.option(
    "--without-dropout",
    is_flag=True,
    help="pix2pix models that translate with dropout on (test_mode batch_statistics): export them with "
    "dropout off.",
)
def export(run_path: str, file_format: str, out: str, name: str | None, without_dropout: bool) -> None:
    """Write one export of RUN as an ONNX (onnxruntime) or TorchScript file: dynamic batch and image size
    (multiples of the network's size multiple), the contract (kind, inputs, range [-1, 1], channels, size
    multiple, image size, labels or classes) in its metadata; checked against PyTorch on random inputs."""
    from translate.inference.portable import check_parity, export_model

    written = export_model(run_path, Path(out), file_format, name, without_dropout)
    worst, sizes = check_parity(run_path, written, name, without_dropout)
    size = written.stat().st_size / 2**20
    click.echo(f"wrote {written} ({size:.1f} MB); max |difference| from PyTorch {worst:.1e} at {sizes}")
