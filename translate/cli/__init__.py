"""Command line: a thin click layer over the Python API (``translate.api``, ``translate.inference``).

The only package that imports click.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from translate import __version__
from translate.cli.datasets import datasets as datasets_group
from translate.errors import StorageError, TrainingInterrupted, TranslateError
from translate.registry import ALL as REGISTRIES


class ManyValues(click.Option):
    """An option that takes every following argument up to the next option: ``--domains a b c``."""

    def add_to_parser(self, parser: Any, ctx: click.Context) -> None:
        super().add_to_parser(parser, ctx)
        option = next(parser._long_opt.get(n) or parser._short_opt.get(n) for n in self.opts)
        process = option.process

        def take_all(value: str, state: Any) -> None:
            values = [value]
            while state.rargs and not state.rargs[0].startswith("-"):
                values.append(state.rargs.pop(0))
            process(tuple(values), state)

        option.process = take_all


class FriendlyGroup(click.Group):
    """Turns every TranslateError (bad config, data, checkpoint) and every OSError (unwritable or full
    disk) into a one-line ``Error: ...`` and its exit status; an interrupted training run exits with
    130 (Ctrl-C) or 143 (SIGTERM), after the line that says how to resume."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TrainingInterrupted as exc:
            ctx.exit(exc.exit_code)  # the trainer has logged where it stopped and how to resume
        except TranslateError as exc:
            # Errors raised in data-loader workers arrive wrapped in the worker's traceback: keep the message.
            message = str(exc)
            if "Original Traceback" in message:  # last line: "translate.errors.DataError: <message>"
                message = message.strip().splitlines()[-1].split(": ", 1)[-1]
            error = click.ClickException(message)
            error.exit_code = exc.exit_code
            raise error from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None
        except KeyboardInterrupt:
            click.echo("Aborted.", err=True)
            ctx.exit(130)


def device_option(command: Any) -> Any:
    """``--device`` of the inference commands: ``auto`` is CUDA when available, else the CPU."""
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        help="auto (CUDA when available), cpu, cuda, cuda:1 ...",
    )(command)


def checkpoint_option(command: Any) -> Any:
    """``--checkpoint best|latest|STEP``: which of a run folder's checkpoints an inference command loads."""
    return click.option(
        "--checkpoint",
        metavar="best|latest|STEP",
        help="Which checkpoint of the run: latest (default), best (kept by train.best_metric) or a step.",
    )(command)


def check_writable(folder: Path) -> None:
    """Fail before any work when files cannot be written in ``folder`` (``--out``); folders made for the
    check are removed again, so a later error leaves nothing behind."""
    import tempfile

    made = []
    try:
        for parent in [*reversed(folder.parents), folder]:
            if not parent.exists():
                parent.mkdir()
                made.append(parent)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise StorageError(f"cannot write to --out {folder}: {exc.strerror or exc}") from None
    finally:
        for parent in reversed(made):
            parent.rmdir()


@click.group(cls=FriendlyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="translate")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
def main(verbose: bool) -> None:
    """translate: image-to-image translation (pix2pix, CycleGAN, ...)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(levelname)s: %(message)s")
    logging.getLogger("PIL").setLevel(logging.WARNING)


def command_line(ctx: click.Context, leave_out: tuple[str, ...] = ()) -> list[str]:
    """The arguments that reach ``ctx``'s command again, as a list (with the group's ``-v``): what the
    processes that ``--nproc`` starts are given."""
    args = ["-v"] if ctx.parent is not None and ctx.parent.params.get("verbose") else []
    args.append(ctx.command.name or "")
    options = []
    for param in ctx.command.params:
        name = param.name or ""
        value = ctx.params.get(name)
        if name in leave_out or ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        if isinstance(param, click.Argument):
            args += [str(v) for v in (value if isinstance(value, tuple) else [value])]
        elif isinstance(param, click.Option) and param.is_flag:
            options.append(param.opts[0])
        elif isinstance(param, click.Option) and param.multiple:
            for item in value:
                options += [param.opts[0], str(item)]
        elif isinstance(value, tuple):  # ManyValues: --domains a b
            options += [param.opts[0], *map(str, value)]
        else:
            options += [param.opts[0], str(value)]
    return args + options


@main.command()
@click.argument("method")
@click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), help="YAML recipe (may use _base_)."
)
@click.option("--data-root", type=click.Path(), help="Data folder (default: current folder, else demo data).")
@click.option(
    "--domains",
    cls=ManyValues,
    type=tuple,
    help="Domain folder names under the data root, e.g. --domains photo anime (CycleGAN and UNIT take two, "
    "StarGAN any number).",
)
@click.option(
    "--attrs",
    cls=ManyValues,
    type=tuple,
    help="Attribute-file data (StarGAN): the attributes to learn, e.g. --attrs Black_Hair Blond_Hair Male.",
)
@click.option(
    "--direction", type=click.Choice(["a2b", "b2a"]), help="Aligned pairs: which half is the input."
)
@click.option("--run-dir", type=click.Path(file_okay=False), help="Run folder (default runs/METHOD-DATA).")
@click.option("--steps", type=int, help="Training steps (generator updates).")
@click.option("--image-size", type=int, help="Crop size fed to the networks.")
@click.option("--batch-size", type=int)
@click.option("--seed", type=int)
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
@click.pass_context
def train(
    ctx: click.Context,
    method: str,
    config_file: str | None,
    data_root: str | None,
    domains: tuple[str, ...] | None,
    attrs: tuple[str, ...] | None,
    direction: str | None,
    run_dir: str | None,
    steps: int | None,
    image_size: int | None,
    batch_size: int | None,
    seed: int | None,
    device: str | None,
    resume: bool,
    keep_schedule: bool,
    on_nan: str | None,
    sets: tuple[str, ...],
    nproc: int | None,
) -> None:
    """Train METHOD (see `translate list tasks`) and write a run folder.

    Ctrl-C or SIGTERM stops after the current step with a checkpoint (exit status 130 / 143)."""
    import os

    from translate.api import train as run_training
    from translate.config import parse_override

    if nproc is not None and nproc > 1:
        from translate.engine.distributed import launch

        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise click.UsageError("--nproc starts the processes itself: leave it out under torchrun")
        ctx.exit(launch(nproc, command_line(ctx, leave_out=("nproc",))))

    flags = {
        "data": {
            "root": data_root,
            "domains": list(domains) if domains else None,
            "attributes": list(attrs) if attrs else None,
            "direction": direction,
            "image_size": image_size,
        },
        "train": {
            "steps": steps,
            "batch_size": batch_size,
            "seed": seed,
            "device": device,
            "on_nan": on_nan,
        },
    }
    flags = {section: {k: v for k, v in values.items() if v is not None} for section, values in flags.items()}
    overrides = [flags, *(parse_override(item) for item in sets)]
    run = run_training(
        method, config_file, overrides, run_dir=run_dir, resume=resume, keep_schedule=keep_schedule
    )
    if int(os.environ.get("RANK", "0")) == 0:  # one line from several processes (torchrun)
        click.echo(f"run folder: {run}")


@main.command()
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
@click.option("--out", "out_dir", default="translated", show_default=True, type=click.Path(file_okay=False))
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
    "--faces",
    is_flag=True,
    help="Face models: find each face in each photo (MTCNN), translate it aligned as the training faces "
    "were, and paste it back; photos without a face are copied. Needs the faces extra: "
    'pip install -e ".[faces]".',
)
@click.option(
    "--overwrite", is_flag=True, help="Translate again images whose output exists (default: skip them)."
)
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(min=1))
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
    'pip install "translate[onnx]"). Default: torch, or what an exported --run file needs.',
)
@click.option(
    "--fast/--no-fast",
    default=None,
    help="Run a compiled copy of the generator (compiled once per image size, checked against the plain "
    "one: used only where it matches to 1e-4). Default: on for the CPU, unless TRANSLATE_FAST=0.",
)
@device_option
@checkpoint_option
def apply(
    inputs: tuple[str, ...],
    run_path: str | None,
    model: str | None,
    out_dir: str,
    direction: str | None,
    target: str | None,
    labels_file: str | None,
    faces: bool,
    overwrite: bool,
    batch_size: int,
    quality: int,
    tile: int | None,
    overlap: int,
    backend: str | None,
    fast: bool | None,
    device: str,
    checkpoint: str | None,
) -> None:
    """Translate image files and folders (recursively) with a trained model; an interrupted run resumes
    where it stopped (existing outputs are skipped)."""
    from translate.engine.device import resolve_device
    from translate.inference import Translator

    if (run_path is None) == (model is None):
        raise click.UsageError("give the model as --run RUN or --model NAME (one of the two)")
    if model is not None:
        from translate.cli.models import model_run

        run_path = str(model_run(model))
    translator = Translator.from_run(
        run_path,
        direction=direction,
        device=resolve_device(device),
        checkpoint=checkpoint,
        backend=backend,
        tile=tile,
        overlap=overlap,
        fast=fast,
    )
    check_writable(Path(out_dir))
    written = translator.apply_paths(
        [Path(p) for p in inputs],
        Path(out_dir),
        batch_size=batch_size,
        target=target,
        labels_file=labels_file,
        faces=faces,
        overwrite=overwrite,
        quality=quality,
    )
    report = translator.report
    for path, reason in report.failed:
        click.echo(f"failed: {path}: {reason}", err=True)
    click.echo(f"{report.summary()}; wrote {len(written)} images to {out_dir}")


@main.command("list")
@click.argument("kind", required=False, type=click.Choice(list(REGISTRIES)))
def list_components(kind: str | None) -> None:
    """List the registered components of one kind (or of every kind)."""
    for name, registry in REGISTRIES.items():
        if kind in (None, name):
            click.echo(f"{name}:")
            for entry in registry.names():
                click.echo(f"  {entry:<18} {registry.describe(entry)}")


@main.command()
@click.argument("run_path", metavar="RUN", type=click.Path())
@click.option("--config", "show_config", is_flag=True, help="Also print the whole resolved config.")
@checkpoint_option
def info(run_path: str, show_config: bool, checkpoint: str | None) -> None:
    """Describe a run or checkpoint from its checkpoint metadata: method, networks, exports, data, steps."""
    import yaml

    from translate.engine.checkpoint import best_info, load_model_checkpoint
    from translate.inference import model_exports

    which = checkpoint
    checkpoint = load_model_checkpoint(run_path, which)
    config = checkpoint.config
    data, train = config.get("data", {}), config.get("train", {})
    click.echo(f"checkpoint: {checkpoint.path}")
    click.echo(f"method:     {checkpoint.task}")
    click.echo(f"steps:      {checkpoint.step} of {train.get('steps')}")
    if checkpoint.ema:
        ema = checkpoint.ema
        click.echo(f"weights:    EMA of the generator (decay {ema['decay']:g}, {ema['updates']} updates)")
    best = best_info(Path(run_path)) if Path(run_path).is_dir() else None
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
    click.echo("exports:")
    for name, export in model_exports(checkpoint).items():
        options = ", ".join(f"{k}={v}" for k, v in export.options.items())
        mode = ", batch statistics" if export.batch_statistics else ""
        click.echo(
            f"  {name:<8} {export.kind} ({export.module}: {export.in_channels} -> {export.out_channels} "
            f"channels{mode}) {options}"
        )
    if show_config:
        click.echo("config:")
        click.echo(yaml.safe_dump(config, sort_keys=False).rstrip())


@main.command()
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
        from translate.cli.latent import report

        report(written, out)


main.add_command(datasets_group, "datasets")

from translate.cli.latent import latent as latent_group  # noqa: E402  (uses device_option above)

main.add_command(latent_group, "latent")

from translate.cli.classifier import classifier as classifier_group  # noqa: E402
from translate.cli.evaluate import evaluate as evaluate_command  # noqa: E402  (uses device_option above)

main.add_command(evaluate_command, "eval")
main.add_command(classifier_group, "classifier")

from translate.cli.report import report as report_command  # noqa: E402

main.add_command(report_command, "report")

from translate.cli.export import export as export_command  # noqa: E402

main.add_command(export_command, "export")

from translate.cli.models import import_checkpoint as import_group  # noqa: E402
from translate.cli.models import models as models_group  # noqa: E402

main.add_command(models_group, "models")
main.add_command(import_group, "import")

from translate.cli.serve import serve as serve_command  # noqa: E402  (uses device_option above)

main.add_command(serve_command, "serve")
