"""Import a generator saved by yunjey/stargan (``200000-G.ckpt``) as a run folder.

``import_stargan("200000-G.ckpt", "runs/stargan-celeba-128")`` writes a ``stargan`` run that ``translate
apply --to ...``, ``translate info`` and ``Translator.from_run`` use as they use a trained one.

- **Reading**: ``torch.load(path, map_location="cpu", weights_only=True)`` only (the reader of
  ``translate.inference.junyanz``): a file that needs code to load is refused in one line, as is
  anything but a flat state dict of tensors. The published archives (``celeba-128x128-5attrs.zip``, which
  ``download.sh`` fetches) are read too: their ``*-G.ckpt`` and, beside it, ``*-D.ckpt``.
- **Mapping**: the reference's ``Generator`` is our ``stargan`` generator layer for layer:
  ``main.N.*`` keeps its name, the residual blocks' ``main.N.main.K.*`` become ``main.N.conv_block.K.*``.
  Its instance norms keep running statistics (``track_running_stats=True``), which its ``test()`` never
  uses (the generator stays in training mode: each image's own statistics) and ours do not have: they are
  dropped. Every name and shape is checked against ours; the first disagreement is a one-line
  ``ImportMismatch``. ``conv_dim`` (base channels), ``repeat_num`` (residual blocks) and ``c_dim`` (labels:
  the first conv takes ``3 + c_dim`` channels) are read from the shapes.
- **Labels**: ``attributes`` names the ``c_dim`` labels in the order the model was trained with
  (``--selected_attrs``); default CelebA's five, ``Black_Hair Blond_Hair Brown_Hair Male Young``, when the
  file has five. Hair colours form one exclusive group, as the reference's ``create_labels`` treats them;
  ``domains=True`` reads them as one-of-N domains (RaFD's expressions).
- **The critic**: ``discriminator`` (a ``*-D.ckpt``; by default the archive's, or the ``N-D.ckpt`` beside
  an ``N-G.ckpt``) gives the run the reference's classifier, so ``--to Blond_Hair=1`` can read each input's
  other labels; its names are ours already (``main.N``, ``conv1``, ``conv2``), and its shapes give the
  image size (the class head's kernel covers ``image_size / 2**repeat_num``). Without one the run's
  critic is a few-parameter untrained placeholder that the export does not name as its classifier: a
  translation then needs a full target or the inputs' labels (``--labels``).
- **Conventions** are the toolkit's already: inputs in ``[-1, 1]``, tanh outputs, target labels 0/1.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import translate.components  # noqa: F401  (registers every component)
from translate.engine.checkpoint import file_sha256
from translate.errors import CheckpointError, ConfigError, ImportMismatch
from translate.inference.junyanz import (
    build_imported_task,
    check_destination,
    read_state_dict,
    write_imported_run,
)
from translate.labels import HAIR_COLOURS, LabelSpace
from translate.registry import GENERATORS
from translate.tasks.stargan import CELEBA_ATTRIBUTES

TASK = "stargan"
EXPORT = "translate"
"""The name of the StarGAN task's export."""
DEFAULT_IMAGE_SIZE = 128
"""yunjey's ``--image_size`` default, the run's size when no critic file tells another."""
INSTANCE_STATS = ("running_mean", "running_var", "num_batches_tracked")
BLOCK = re.compile(r"^main\.(\d+)\.main\.(\d+)\.(\w+)$")
"""A residual block's tensor in the reference: ``main.N.main.K.<weight|bias|running_*>``."""


@dataclass(frozen=True)
class StarGANArch:
    """The reference ``Generator(conv_dim, c_dim, repeat_num)`` a file holds."""

    c_dim: int
    conv_dim: int = 64
    repeat_num: int = 6

    def generator_spec(self) -> dict[str, Any]:
        """The toolkit's generator spec (``GENERATORS``)."""
        return {"name": "stargan", "base_channels": self.conv_dim, "num_blocks": self.repeat_num}

    def expected(self) -> dict[str, torch.Size]:
        """Our generator's state-dict keys and shapes (built on the meta device: no memory)."""
        with torch.device("meta"):
            generator = GENERATORS.build(self.generator_spec(), num_labels=self.c_dim)
        return {key: value.shape for key, value in generator.state_dict().items()}


@dataclass(frozen=True)
class CriticArch:
    """The reference ``Discriminator(image_size, conv_dim, c_dim, repeat_num)`` a file holds."""

    image_size: int
    c_dim: int
    conv_dim: int = 64
    repeat_num: int = 6

    def spec(self) -> dict[str, Any]:
        return {"name": "stargan", "base_channels": self.conv_dim, "num_layers": self.repeat_num}


@dataclass
class ImportedStarGAN:
    """What ``import_stargan`` wrote: the run folder and how the file was read."""

    run: Path
    arch: StarGANArch
    labels: LabelSpace
    image_size: int
    tensors: int
    dropped: list[str] = field(default_factory=list)
    """Keys of the file left out: its instance norms' running statistics."""
    critic: str | None = None
    """The critic file imported as the classifier, or None (an untrained placeholder)."""
    sha256: str = ""
    export: str = EXPORT

    def describe(self) -> str:
        critic = f"critic from {self.critic} as the classifier" if self.critic else "no classifier"
        return (
            f"{self.run}: StarGAN generator (conv_dim {self.arch.conv_dim}, {self.arch.repeat_num} residual "
            f"blocks, {self.arch.c_dim} labels: {', '.join(self.labels.names)}), {self.tensors} tensors, "
            f"dropped {len(self.dropped)} instance-norm running statistics, {self.image_size} px, {critic}"
        )


# ---------------------------------------------------------------------------------------------- mapping
def file_arch(state: Mapping[str, torch.Tensor]) -> StarGANArch:
    """The ``Generator`` configuration ``state``'s shapes tell: ``c_dim`` from the first conv's input
    channels (``3 + c_dim``), ``conv_dim`` from its outputs, ``repeat_num`` from the residual blocks.
    An ImportMismatch when the file is no StarGAN generator."""
    first = state.get("main.0.weight")
    if first is None or first.dim() != 4 or tuple(first.shape[-2:]) != (7, 7):
        found = f"its main.0.weight has shape {list(first.shape)}" if first is not None else _names(state)
        raise ImportMismatch(
            "the file is not a yunjey/stargan generator: that starts with a 7x7 conv main.0.weight of shape "
            f"[conv_dim, 3 + c_dim, 7, 7]; {found}"
        )
    c_dim = int(first.shape[1]) - 3
    if c_dim < 1:
        raise ImportMismatch(
            f"the file's first conv takes {int(first.shape[1])} channels: a StarGAN generator takes 3 image "
            "channels and at least one label channel"
        )
    blocks = {int(m.group(1)) for m in map(BLOCK.match, state) if m}
    return StarGANArch(c_dim, int(first.shape[0]), len(blocks))


def _names(state: Mapping[str, torch.Tensor]) -> str:
    names = list(state)
    return f"its tensors are {', '.join(names[:4])}{' ...' if len(names) > 4 else ''}"


def convert_state_dict(
    state: Mapping[str, torch.Tensor], arch: StarGANArch | None = None
) -> tuple[StarGANArch, dict[str, torch.Tensor], list[str]]:
    """The reference generator's ``state`` as our generator's: ``(arch, weights, dropped keys)``.

    ``main.N.main.K.*`` -> ``main.N.conv_block.K.*``; instance-norm running statistics dropped; every
    other name and every shape must be ours (ImportMismatch at the first that is not)."""
    arch = arch or file_arch(state)
    dropped = [k for k in state if k.rsplit(".", 1)[-1] in INSTANCE_STATS]
    weights = {}
    for key, tensor in state.items():
        if key in dropped:
            continue
        block = BLOCK.match(key)
        weights[f"main.{block.group(1)}.conv_block.{block.group(2)}.{block.group(3)}" if block else key] = (
            tensor
        )
    expected = arch.expected()
    label = f"StarGAN generator (conv_dim {arch.conv_dim}, c_dim {arch.c_dim}, repeat_num {arch.repeat_num})"
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"it lacks {', '.join(_reference_name(k) for k in missing[:3])}")
        if unexpected:
            parts.append(
                f"it holds {', '.join(_reference_name(k) for k in unexpected[:3])}, which that has not"
            )
        raise ImportMismatch(f"the file is not a {label}: {'; '.join(parts)}")
    for key, shape in expected.items():
        tensor = weights[key]
        if tensor.shape != shape or not tensor.is_floating_point():
            raise ImportMismatch(
                f"the file is not a {label}: its {_reference_name(key)} is a {tensor.dtype} tensor of shape "
                f"{list(tensor.shape)} where that has {list(shape)}"
            )
        weights[key] = tensor.float()
    return arch, {key: weights[key] for key in expected}, dropped


def _reference_name(key: str) -> str:
    """Our key as the reference names it."""
    return re.sub(r"^main\.(\d+)\.conv_block\.", r"main.\1.main.", key)


def critic_arch(state: Mapping[str, torch.Tensor]) -> CriticArch:
    """The ``Discriminator`` configuration ``state``'s shapes tell (ImportMismatch when it is none)."""
    convs = sorted(int(m.group(1)) for m in map(re.compile(r"^main\.(\d+)\.weight$").match, state) if m)
    head, realness = state.get("conv2.weight"), state.get("conv1.weight")
    if not convs or head is None or realness is None or head.dim() != 4:
        raise ImportMismatch(
            "the critic file is not a yunjey/stargan discriminator (main.N convs, conv1 and conv2); "
            + _names(state)
        )
    repeat_num, kernel = len(convs), int(head.shape[-1])
    return CriticArch(
        kernel * 2**repeat_num, int(head.shape[0]), int(state["main.0.weight"].shape[0]), repeat_num
    )


def load_critic(discriminator: nn.Module, state: Mapping[str, torch.Tensor], arch: CriticArch) -> None:
    """The reference critic's weights into ours (the same names); ImportMismatch where they differ."""
    ours = discriminator.state_dict()
    if set(ours) != set(state):
        odd = sorted(set(ours) ^ set(state))
        raise ImportMismatch(
            f"the critic file does not fit a StarGAN discriminator of {arch.repeat_num} layers "
            f"(conv_dim {arch.conv_dim}): {', '.join(odd[:3])} differ"
        )
    for key, value in ours.items():
        if state[key].shape != value.shape:
            raise ImportMismatch(
                f"the critic file's {key} has shape {list(state[key].shape)} where the StarGAN discriminator "
                f"of {arch.image_size} px has {list(value.shape)}"
            )
    discriminator.load_state_dict({k: v.float() for k, v in state.items()})


# ---------------------------------------------------------------------------------------------- labels
def label_space(c_dim: int, attributes: Sequence[str] | None, domains: bool = False) -> LabelSpace:
    """The run's labels: ``attributes`` in training order (default CelebA's five when ``c_dim`` is 5),
    hair colours one exclusive group; ``domains``: one-of-N domains. A ConfigError when they do not fit."""
    if attributes is None:
        if c_dim != len(CELEBA_ATTRIBUTES) or domains:
            raise ConfigError(
                f"the file's generator takes {c_dim} labels: name them in the order it was trained with "
                f"({'--domains' if domains else '--attrs'} NAME ...); CelebA's five attributes are the "
                "default only for files with five"
            )
        attributes = CELEBA_ATTRIBUTES
    names = list(attributes)
    if len(names) != c_dim:
        raise ConfigError(
            f"the file's generator takes {c_dim} labels; {len(names)} were named ({', '.join(names)})"
        )
    if domains:
        return LabelSpace(names, "domains")
    return LabelSpace.with_groups(names, [HAIR_COLOURS])


# ---------------------------------------------------------------------------------------------- reading
def archive_members(path: Path) -> tuple[str, str | None] | None:
    """``(generator member, critic member or None)`` of a published archive (a zip holding ``*-G.ckpt``),
    or None when ``path`` is no such archive (a torch file is a zip too, of ``data.pkl`` and tensors)."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
    generators = sorted(n for n in names if n.endswith("-G.ckpt"))
    if not generators:
        return None
    if len(generators) > 1:
        listed = ", ".join(Path(n).name for n in generators)
        raise CheckpointError(f"{path} holds several generators ({listed}); extract the one to import")
    critic = generators[0][: -len("-G.ckpt")] + "-D.ckpt"
    return generators[0], critic if critic in names else None


def _extract(path: Path, member: str, folder: Path) -> Path:
    """One archive member, written to ``folder`` under a name of ours (never the member's path)."""
    target = folder / Path(member).name.replace("/", "_")
    with zipfile.ZipFile(path) as archive, archive.open(member) as source, target.open("wb") as sink:
        shutil.copyfileobj(source, sink)
    return target


# ---------------------------------------------------------------------------------------------- writing
def import_stargan(
    path: str | Path,
    out: str | Path,
    *,
    attributes: Sequence[str] | None = None,
    domains: bool = False,
    discriminator: str | Path | bool | None = None,
    image_size: int | None = None,
    source: Mapping[str, Any] | None = None,
) -> ImportedStarGAN:
    """Write the reference generator in ``path`` as the run folder ``out`` (which must not hold anything).

    Args:
        path: a ``*-G.ckpt`` state dict, or a published archive holding one (and its ``*-D.ckpt``).
        out: the run folder to write.
        attributes: the labels in training order (``--selected_attrs``); None: CelebA's five for a
            five-label file.
        domains: the labels are one-of-N domains (RaFD), not attributes.
        discriminator: the ``*-D.ckpt`` to use as the run's classifier; None: the archive's, or the
            ``N-D.ckpt`` beside an ``N-G.ckpt`` (as the reference's ``restore_model`` pairs them) when there
            is one; False: none (an untrained placeholder critic, no classifier).
        image_size: the size it was trained at (default: from the critic file, else 128).
        source: more provenance for the metadata (URL, licence, zoo name).

    Returns:
        What was written (``describe()`` says it in one line).
    """
    path, out = Path(path), Path(out)
    check_destination(out)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    with tempfile.TemporaryDirectory(prefix="stargan-import-") as scratch:
        generator_file, critic_file, critic_name = _locate_files(path, discriminator, Path(scratch))
        state = read_state_dict(generator_file)
        arch, weights, dropped = convert_state_dict(state)
        critic_state = read_state_dict(critic_file) if critic_file is not None else None
    labels = label_space(arch.c_dim, attributes, domains)
    critic = critic_arch(critic_state) if critic_state is not None else None
    size = _image_size(arch, critic, image_size)
    task_kwargs = _task_kwargs(arch, critic, labels, size)
    task = build_imported_task(task_kwargs, weights, TASK)
    if critic_state is not None:
        load_critic(task.discriminator, critic_state, critic)
    sha256 = file_sha256(path)
    imported = {
        "format": "yunjey/stargan",
        "file": path.name,
        "sha256": sha256,
        **{key: getattr(arch, key) for key in ("conv_dim", "repeat_num", "c_dim")},
        "labels": labels.names,
        "dropped": dropped,
        "discriminator": critic_name or "untrained placeholder (no critic file): not the classifier",
        "test_mode": "per-image statistics (instance norm), as the reference's test()",
        **dict(source or {}),
    }
    model = {k: v for k, v in task_kwargs.items() if k not in RUN_DATA_KEYS}
    config = {"task": TASK, "model": model, "data": {"image_size": size, "attributes": labels.names}}
    _write_run(out, task, task_kwargs, config, imported, classifier=critic is not None)
    return ImportedStarGAN(out, arch, labels, size, len(state) - len(dropped), dropped, critic_name, sha256)


RUN_DATA_KEYS = ("in_channels", "out_channels", "labels", "image_size")
"""Task arguments that the run's data gives (not its ``model`` config)."""


def _task_kwargs(
    arch: StarGANArch, critic: CriticArch | None, labels: LabelSpace, size: int
) -> dict[str, Any]:
    """The StarGAN task's arguments for the reference's generator (and critic, or a placeholder)."""
    return {
        "generator": arch.generator_spec(),
        "discriminator": critic.spec() if critic is not None else placeholder_critic(size),
        "adversarial_loss": "wgangp",
        "labels": labels.to_dict(),
        "image_size": size,
        "in_channels": 3,
        "out_channels": 3,
    }


def _locate_files(
    path: Path, discriminator: str | Path | bool | None, scratch: Path
) -> tuple[Path, Path | None, str | None]:
    """The generator file, the critic file (None: none) and the critic's name for the metadata: from a
    published archive (extracted into ``scratch``), a ``*-G.ckpt`` with its ``*-D.ckpt`` beside it, or the
    ``discriminator`` given (False: none)."""
    critic_file = Path(discriminator) if isinstance(discriminator, str | Path) else None
    members = archive_members(path)
    if members is not None:
        generator_file = _extract(path, members[0], scratch)
        if discriminator is None and members[1] is not None:
            critic_file = _extract(path, members[1], scratch)
            return generator_file, critic_file, f"{path.name}:{critic_file.name}"
        return generator_file, critic_file, critic_file.name if critic_file else None
    if discriminator is None and path.name.endswith("-G.ckpt"):
        beside = path.with_name(path.name[: -len("-G.ckpt")] + "-D.ckpt")
        critic_file = beside if beside.is_file() else None
    return path, critic_file, critic_file.name if critic_file else None


def _image_size(arch: StarGANArch, critic: CriticArch | None, image_size: int | None) -> int:
    """The size the model was trained at: the critic's (which must fit the generator and ``image_size``),
    else ``image_size``, else the published models' 128."""
    if critic is None:
        return image_size or DEFAULT_IMAGE_SIZE
    if critic.c_dim != arch.c_dim:
        raise ImportMismatch(
            f"the critic classifies {critic.c_dim} labels, the generator takes {arch.c_dim}: not one model"
        )
    if image_size is not None and image_size != critic.image_size:
        raise ConfigError(
            f"the critic file is for {critic.image_size} px images, not --image-size {image_size}"
        )
    return critic.image_size


def placeholder_critic(image_size: int) -> dict[str, Any]:
    """A critic of one base channel with as many layers (up to the reference's 6) as ``image_size`` divides
    by: the task needs one, the file holds none (some 12,000 untrained parameters at 128 px)."""
    layers = 6
    while layers > 1 and image_size % 2**layers:
        layers -= 1
    return {"name": "stargan", "base_channels": 1, "num_layers": layers}


def _write_run(
    out: Path,
    task: nn.Module,
    task_kwargs: dict[str, Any],
    config: dict[str, Any],
    imported: dict[str, Any],
    classifier: bool,
) -> None:
    """``task`` as the run folder ``out``; without a critic file the export names no classifier (the
    placeholder would misread every input)."""
    exports = {name: export.to_dict() for name, export in task.exports().items()}
    if not classifier:
        for export in exports.values():
            export.get("options", {}).pop("classifier", None)
    write_imported_run(out, task, task_kwargs, config, imported, exports)


__all__ = [
    "CriticArch",
    "ImportMismatch",
    "ImportedStarGAN",
    "StarGANArch",
    "convert_state_dict",
    "file_arch",
    "import_stargan",
    "label_space",
]
