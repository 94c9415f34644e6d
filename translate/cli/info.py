"""``translate list [KIND]`` (the registered components) and ``translate info RUN`` (a run's checkpoint
metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from translate.cli.options import checkpoint_option
from translate.registry import ALL as REGISTRIES
from translate.registry import read_index


@click.command("list")
@click.argument("kind", required=False, type=click.Choice(list(REGISTRIES)))
def list_components(kind: str | None) -> None:
    """List the built-in components of one kind (or of every kind)."""
    for name, entries in read_index().items():
        if kind in (None, name):
            click.echo(f"{name}:")
            for entry, description in entries.items():
                click.echo(f"  {entry:<18} {description}")


@click.command("info")
@click.argument("run_path", metavar="RUN", type=click.Path())
@click.option("--config", "show_config", is_flag=True, help="Also print the whole resolved config.")
@checkpoint_option
def info(run_path: str, show_config: bool, checkpoint: str | None) -> None:
    """Describe a run or checkpoint from its checkpoint metadata: method, networks, exports, data, steps."""
    from translate.engine.checkpoint import load_model_checkpoint

    loaded = load_model_checkpoint(run_path, checkpoint)
    describe_checkpoint(loaded, Path(run_path))
    describe_exports(loaded)
    if show_config:
        import yaml

        click.echo("config:")
        click.echo(yaml.safe_dump(loaded.config, sort_keys=False).rstrip())


def describe_checkpoint(checkpoint: Any, run_path: Path) -> None:
    """The lines of ``translate info`` above the exports: path, method, steps, weights, best, data,
    networks and labels."""
    from translate.engine.checkpoint import best_info

    config = checkpoint.config
    data, train = config.get("data", {}), config.get("train", {})
    click.echo(f"checkpoint: {checkpoint.path}")
    click.echo(f"method:     {checkpoint.task}")
    click.echo(f"steps:      {checkpoint.step} of {train.get('steps')}")
    if checkpoint.ema:
        ema = checkpoint.ema
        click.echo(f"weights:    EMA of the generator (decay {ema['decay']:g}, {ema['updates']} updates)")
    best = best_info(run_path) if run_path.is_dir() else None
    if best:
        value = f"{best['metric']} {best['value']:.4g}"
        click.echo(f"best:       step {best['step']}, {value} (--checkpoint best)")
    click.echo(f"data:       {data.get('root')}  domains {data.get('domains')}  {data.get('image_size')} px")
    click.echo("networks:")
    for key, value in checkpoint.task_kwargs.items():
        click.echo(f"  {key}: {value}")
    if "labels" in checkpoint.task_kwargs:
        from translate.labels import LabelSpace

        click.echo(f"labels:     {LabelSpace.from_dict(checkpoint.task_kwargs['labels']).describe()}")


def describe_exports(checkpoint: Any) -> None:
    """One line per export of the checkpoint: kind, network, channels, batch statistics, options."""
    from translate.inference.model import model_exports

    click.echo("exports:")
    for name, export in model_exports(checkpoint).items():
        options = ", ".join(f"{k}={v}" for k, v in export.options.items())
        mode = ", batch statistics" if export.batch_statistics else ""
        click.echo(
            f"  {name:<8} {export.kind} ({export.module}: {export.in_channels} -> {export.out_channels} "
            f"channels{mode}) {options}"
        )
