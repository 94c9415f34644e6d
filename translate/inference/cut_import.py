"""Import a CUT / FastCUT generator saved by taesungp/contrastive-unpaired-translation as a run folder.

``import_cut("pretrained_models.tar", "runs/h2z", experiment="horse2zebra_cut_pretrained")`` writes a ``cut``
run that ``translate apply``, ``translate info`` and ``Translator.from_run`` use as they use a trained one.

- **Reading**: the authors' ``latest_net_G.pth`` (their ``--epoch`` ``latest``), or an archive that holds
  it as ``checkpoints/NAME/latest_net_G.pth`` (their ``pretrained_models.tar``, six models; ``experiment``
  is their ``--name`` and picks one). The file is read as junyanz's are
  (``translate.inference.junyanz.read_state_dict``): ``torch.load(weights_only=True)`` only, a flat state
  dict of tensors, a DataParallel ``module.`` prefix stripped.
- **Mapping**: their ``ResnetGenerator`` with its default anti-aliasing (blur-pool down-sampling, blur
  up-sampling + 3x3 conv) is our ``antialiased_resnet`` under the same state-dict keys, the fixed
  ``filt`` buffers included. Channels, ``ngf`` and the number of residual blocks are read from the shapes;
  every key and shape is then checked against ours, and the first disagreement is a one-line
  ``ImportMismatch`` (naming ``translate import junyanz`` when the file is a pix2pix/CycleGAN generator).
  Only their default ``--normG instance`` (no norm weights) and ``--no_dropout`` are imported.
- **The run**: a ``cut`` or ``fastcut`` task (``cut_mode``, their ``--CUT_mode``: it only names the recipe;
  both translate alike) holding the generator. The file has no discriminator or patch sampler (their
  test.py loads G alone): the run's are few-parameter untrained placeholders, so it translates but is no
  starting point for training. One export, named ``direction``, from ``domains[0]`` to ``domains[1]``,
  in eval mode (instance norm without dropout: each image on its own statistics, as their test.py).
- **Conventions** are the toolkit's already: inputs in ``[-1, 1]``, tanh outputs.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import torch

from translate.engine.checkpoint import file_sha256
from translate.errors import CheckpointError, ConfigError, ImportMismatch
from translate.inference.junyanz import (
    PLACEHOLDER_DISCRIMINATOR,
    build_imported_task,
    check_destination,
    file_channels,
    matching_architectures,
    read_state_dict,
    write_imported_run,
)
from translate.registry import GENERATORS, TASKS

MODES = {"cut": "cut", "fastcut": "fastcut"}
"""The authors' ``--CUT_mode`` (case-insensitive) -> our task."""
MODE_NAMES = {"cut": "CUT", "fastcut": "FastCUT"}
GENERATOR = "antialiased_resnet"
PLACEHOLDER_PATCH_WIDTH = 1
"""The run's patch sampler heads' width: the file holds none (a few hundred untrained parameters)."""
IMAGE_SIZE = 256
"""The size the published models were trained and tested at (``--crop_size``, ``--load_size`` at test)."""
DEFAULT_DOMAINS = ("A", "B")
RUN_DATA_KEYS = ("in_channels", "out_channels", "domains", "direction")
"""Task arguments that a run's data gives (not its ``model`` config)."""
BLOCK = re.compile(r"^model\.(\d+)\.conv_block\.")
LAYER_WEIGHT = re.compile(r"^model\.(\d+)\.weight$")


@dataclass(frozen=True)
class CUTArch:
    """The authors' ``ResnetGenerator(input_nc, output_nc, ngf, n_blocks)`` with instance norm and their
    default anti-aliasing."""

    input_nc: int
    output_nc: int
    ngf: int
    n_blocks: int

    @property
    def label(self) -> str:
        return (
            f"a CUT generator with {self.n_blocks} residual blocks ({self.input_nc} -> {self.output_nc} "
            f"channels, ngf {self.ngf}, instance norm, anti-aliased)"
        )

    def generator_spec(self) -> dict[str, Any]:
        """The toolkit's generator spec (``GENERATORS``)."""
        return {"name": GENERATOR, "base_channels": self.ngf, "num_blocks": self.n_blocks, "norm": "instance"}

    def expected(self) -> dict[str, torch.Size]:
        """Our generator's state-dict keys and shapes (built on the meta device: no memory)."""
        with torch.device("meta"):
            generator = GENERATORS.build(
                self.generator_spec(), in_channels=self.input_nc, out_channels=self.output_nc
            )
        return {key: value.shape for key, value in generator.state_dict().items()}


@dataclass
class ImportedCUT:
    """What ``import_cut`` wrote: the run folder and how the file was read."""

    run: Path
    export: str
    arch: CUTArch
    mode: str
    domains: tuple[str, str]
    source: str
    """The file read: ``FILE`` or ``ARCHIVE:MEMBER``."""
    tensors: int
    sha256: str = ""

    def describe(self) -> str:
        return (
            f"{self.run}: {MODE_NAMES[self.mode]} generator from {self.source} (anti-aliased ResNet, "
            f"{self.arch.n_blocks} residual block{'s' * (self.arch.n_blocks != 1)}, instance norm, "
            f"{self.arch.input_nc} -> {self.arch.output_nc} channels, ngf {self.arch.ngf}), {self.tensors} "
            f"tensors, export "
            f"{self.export!r} ({self.domains[0]} -> {self.domains[1]}), eval mode"
        )


# ---------------------------------------------------------------------------------------------- mapping
def file_arch(state: Mapping[str, torch.Tensor]) -> CUTArch:
    """The generator configuration the file's shapes give: the first conv ``model.1`` ``(ngf, input_nc, 7,
    7)``, the last conv's ``(output_nc, ngf, 7, 7)``, one ``model.N.conv_block`` per residual block."""
    first = state.get("model.1.weight")
    layers = sorted(int(m.group(1)) for key in state if (m := LAYER_WEIGHT.match(key)))
    if first is None or first.dim() != 4 or not layers:
        raise ImportMismatch(
            "the file is not a taesungp/contrastive-unpaired-translation ResnetGenerator (no first conv "
            f"model.1.weight): its tensors are {_names(state)}{_junyanz_hint(state)}"
        )
    last = state[f"model.{layers[-1]}.weight"]
    blocks = {int(m.group(1)) for key in state if (m := BLOCK.match(key))}
    return CUTArch(int(first.shape[1]), int(last.shape[0]), int(first.shape[0]), len(blocks))


def convert_state_dict(state: Mapping[str, torch.Tensor]) -> tuple[CUTArch, dict[str, torch.Tensor]]:
    """The authors' state dict ``state`` as our generator's weights (float32), with the configuration it
    is; an ImportMismatch names the first key or shape that disagrees."""
    arch = file_arch(state)
    expected = arch.expected()
    if "model.2.weight" in state or any(key.endswith("running_mean") for key in state):
        raise ImportMismatch(
            "the file's generator has norm weights and statistics (--normG batch): only the authors' "
            f"default --normG instance is imported{_junyanz_hint(state)}"
        )
    problem = _first_disagreement(state, expected)
    if problem:
        raise ImportMismatch(f"the file does not fit {arch.label}: {problem}{_junyanz_hint(state)}")
    floats = [key for key in expected if not state[key].is_floating_point()]
    if floats:
        raise ImportMismatch(f"the file's {floats[0]} is a {state[floats[0]].dtype} tensor, not a float one")
    return arch, {key: state[key].float() for key in expected}


def _first_disagreement(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Size]) -> str:
    """The first key the file lacks, holds besides ours or holds in another shape, in words ('' if none)."""
    missing = [key for key in expected if key not in state]
    extra = [key for key in state if key not in expected]
    counts = f"{len(expected)} tensors, the file {len(state)}; " if missing or extra else ""
    if missing:
        return f"{counts}the file has no {missing[0]} of shape {list(expected[missing[0]])}"
    if extra:
        return f"{counts}the file's {extra[0]} of shape {list(state[extra[0]].shape)} is none of ours"
    for key, shape in expected.items():
        if state[key].shape != shape:
            return f"the file's {key} has shape {list(state[key].shape)} where ours has {list(shape)}"
    return ""


def _junyanz_hint(state: Mapping[str, torch.Tensor]) -> str:
    """A hint for a pix2pix/CycleGAN generator (or a CUT one trained with --no_antialias and
    --no_antialias_up, the same network), which ``translate import junyanz`` reads."""
    fits = matching_architectures(state, *file_channels(state))
    if not fits:
        return ""
    return f"; it is a pix2pix/CycleGAN generator ({fits[0].label}): use `translate import junyanz`"


def _names(state: Mapping[str, torch.Tensor]) -> str:
    names = list(state)
    return ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")


# ---------------------------------------------------------------------------------------------- reading
def read_generator(
    path: Path, experiment: str | None, epoch: str, scratch: Path
) -> tuple[dict[str, torch.Tensor], str, Path]:
    """The generator's state dict, what it was read from (``FILE`` or ``ARCHIVE:MEMBER``) and the file
    holding it (an archive's member extracted into ``scratch``)."""
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    if not tarfile.is_tarfile(path):
        return read_state_dict(path), path.name, path
    try:
        with tarfile.open(path) as archive:
            member = choose_member(path, archive, experiment, epoch)
            file = scratch / PurePosixPath(member.name).name
            with archive.extractfile(member) as source, file.open("wb") as sink:  # type: ignore[union-attr]
                shutil.copyfileobj(source, sink)
    except (tarfile.TarError, EOFError) as exc:
        raise CheckpointError(f"{path} is a damaged tar archive ({exc})") from None
    label = f"{path}:{member.name}"
    try:
        return read_state_dict(file), f"{path.name}:{member.name}", file
    except CheckpointError as exc:
        raise type(exc)(str(exc).replace(str(file), label)) from None


def choose_member(
    path: Path, archive: tarfile.TarFile, experiment: str | None, epoch: str = "latest"
) -> tarfile.TarInfo:
    """The generator to import from ``archive``: ``experiment/<epoch>_net_G.pth`` (``experiment``: the
    authors' ``--name``), or the archive's only ``NAME/<epoch>_net_G.pth``."""
    models = archive_models(archive, epoch)
    if experiment is not None and experiment in models:
        return models[experiment]
    if experiment is None and len(models) == 1:
        return next(iter(models.values()))
    if not models:
        raise ImportMismatch(f"{path} is a tar archive with no NAME/{epoch}_net_G.pth in it")
    listed = ", ".join(models)
    if experiment is None:
        raise ImportMismatch(f"{path} holds several models ({listed}): name one with --name")
    raise ImportMismatch(f"{path} holds no {experiment}/{epoch}_net_G.pth; its models: {listed}")


def archive_models(archive: tarfile.TarFile, epoch: str = "latest") -> dict[str, tarfile.TarInfo]:
    """``{experiment: member}``: the regular files ``.../NAME/<epoch>_net_G.pth`` of ``archive``."""
    found: dict[str, tarfile.TarInfo] = {}
    for member in archive.getmembers():
        parts = PurePosixPath(member.name).parts
        if member.isfile() and len(parts) >= 2 and parts[-1] == f"{epoch}_net_G.pth":
            found.setdefault(parts[-2], member)
    return found


# ---------------------------------------------------------------------------------------------- writing
def import_cut(
    path: str | Path,
    out: str | Path,
    *,
    experiment: str | None = None,
    epoch: str = "latest",
    cut_mode: str | None = None,
    direction: str = "a2b",
    domains: Sequence[str] | None = None,
    image_size: int | None = None,
    source: Mapping[str, Any] | None = None,
) -> ImportedCUT:
    """Write the authors' CUT generator in ``path`` as the run folder ``out`` (which must not hold anything).

    Args:
        path: a ``latest_net_G.pth`` state dict, or a tar archive holding ``NAME/latest_net_G.pth`` files
            (``pretrained_models.tar``).
        out: the run folder to write.
        experiment: the authors' ``--name`` of the model in an archive (``horse2zebra_cut_pretrained``);
            None: the archive's only one.
        epoch: their ``--epoch``: the archive member ``NAME/<epoch>_net_G.pth``.
        cut_mode: their ``--CUT_mode``, ``CUT`` or ``FastCUT`` (case-insensitive); None: FastCUT when the
            experiment's name says ``fastcut``, else CUT.
        direction: the name of the export (``a2b``, ``horse2zebra``...).
        domains: the source and target domains' names (default ``A``, ``B``).
        image_size: the size it was trained at (default 256, the authors' ``--crop_size``).
        source: more provenance for the metadata (URL, licence, zoo name).

    Returns:
        What was written (``describe()`` says it in one line).
    """
    path, out = Path(path), Path(out)
    check_destination(out, direction)
    mode = _mode(cut_mode, experiment)
    pair = _domains(domains)
    with tempfile.TemporaryDirectory(prefix="cut-import-") as scratch:
        state, read_from, file = read_generator(path, experiment, epoch, Path(scratch))
        arch, weights = convert_state_dict(state)
        sha256 = file_sha256(file)
    task_kwargs = _task_kwargs(mode, arch, pair)
    task = build_imported_task(task_kwargs, weights, mode)
    (export,) = task.exports().values()
    imported = {
        "format": "taesungp/contrastive-unpaired-translation",
        "file": read_from,
        "sha256": sha256,
        "experiment": experiment,
        "cut_mode": MODE_NAMES[mode],
        "ngf": arch.ngf,
        "n_blocks": arch.n_blocks,
        "norm": "instance",
        "test_mode": "eval (instance norm, no dropout: as the authors' test.py)",
        "discriminator": "untrained placeholder (the file holds only the generator)",
        "patch_sampler": "untrained placeholder (the file holds only the generator)",
        **dict(source or {}),
    }
    model = {k: v for k, v in task_kwargs.items() if k not in RUN_DATA_KEYS}
    data = {
        "image_size": image_size or IMAGE_SIZE,
        "in_channels": arch.input_nc,
        "out_channels": arch.output_nc,
        "direction": "a2b",
        "domains": list(pair),
    }
    config = {"task": mode, "model": model, "data": data}
    write_imported_run(out, task, task_kwargs, config, imported, {direction: export.to_dict()})
    return ImportedCUT(out, direction, arch, mode, pair, read_from, len(state), sha256)


def _mode(cut_mode: str | None, experiment: str | None) -> str:
    """Our task for the authors' ``--CUT_mode`` (or the experiment's name)."""
    if cut_mode is None:
        return "fastcut" if experiment and "fastcut" in experiment.lower() else "cut"
    if cut_mode.lower() not in MODES:
        raise ConfigError(f"--cut-mode must be CUT or FastCUT; got {cut_mode!r}")
    return MODES[cut_mode.lower()]


def _domains(domains: Sequence[str] | None) -> tuple[str, str]:
    if domains is None:
        return DEFAULT_DOMAINS
    if len(domains) != 2 or not all(isinstance(d, str) and d for d in domains):
        raise ConfigError(f"--domains names the source and the target domain; got {list(domains)}")
    return domains[0], domains[1]


def _task_kwargs(mode: str, arch: CUTArch, domains: tuple[str, str]) -> dict[str, Any]:
    """The task's arguments: the recipe's model settings (the authors' for that mode), the file's
    generator, placeholder discriminator and patch sampler heads."""
    defaults = TASKS.get(mode).default_config["model"]
    return {
        **defaults,
        "generator": arch.generator_spec(),
        "discriminator": dict(PLACEHOLDER_DISCRIMINATOR),
        "patch_width": PLACEHOLDER_PATCH_WIDTH,
        "direction": "a2b",
        "domains": list(domains),
        "in_channels": arch.input_nc,
        "out_channels": arch.output_nc,
    }


__all__ = ["CUTArch", "ImportedCUT", "archive_models", "convert_state_dict", "file_arch", "import_cut"]
