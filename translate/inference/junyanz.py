"""Import a generator saved by junyanz/pytorch-CycleGAN-and-pix2pix (``latest_net_G.pth``) as a run folder.

``import_junyanz("latest_net_G.pth", "runs/horse2zebra", arch="resnet_9blocks", norm="instance")`` writes a
run that ``translate apply``, ``translate info`` and ``Translator.from_run`` use as they use a trained one.

- **Reading**: ``torch.load(path, map_location="cpu", weights_only=True)`` only: a file that needs code to
  load (a pickled module or any class) is refused, as is anything but a flat state dict of tensors. A
  DataParallel ``module.`` prefix is stripped.
- **Mapping**: our ``resnet_*`` and ``unet_*`` generators match the reference's ``ResnetGenerator`` and
  ``UnetGenerator`` parameter for parameter and in the same order, so the file's tensors are matched to
  ours by position, each shape checked; the first mismatch (or a different count) is a one-line error
  naming both, and which ``--arch`` / ``--norm`` the file does fit when one does. Instance norm there has no
  affine parameters and no running statistics: files saved before PyTorch 0.4 still hold
  ``running_mean`` / ``running_var`` for it, which are dropped as the reference's own loader drops them.
  Batch norm files from before 0.4 have no ``num_batches_tracked``: it is set to 0 (unused at inference).
- **The run**: a ``pix2pix`` task holding the generator (the reference file has no discriminator: the run's
  is a few-parameter untrained placeholder, so the run translates but is no starting point for training),
  written by ``engine.checkpoint.save_checkpoint`` as ``checkpoints/step_0000000`` with the source file,
  its sha256 and the architecture in the metadata (``imported``). One export, named by ``direction``.
- **Conventions** are the toolkit's already: inputs in ``[-1, 1]``, tanh outputs.
- **Test mode**: the reference's ``test.py`` calls ``model.eval()`` only with ``--eval``; without it batch
  norm normalises each image by its own statistics and dropout stays on (the pix2pix paper's test-time
  noise). The import does the same by default (``test_mode: batch_statistics``, dropout seeded, so outputs
  repeat); ``eval_mode=True`` uses the running statistics and no dropout. For instance norm without dropout
  the two are the same and the run uses eval mode (images batched).
"""

from __future__ import annotations

import pickle
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

import translate.components  # noqa: F401  (registers every component)
from translate.engine.checkpoint import file_sha256, save_checkpoint
from translate.errors import CheckpointError, ConfigError
from translate.registry import GENERATORS, TASKS

ARCHS = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")
NORMS = ("instance", "batch")
TRAINED_SIZE = {"resnet_9blocks": 256, "resnet_6blocks": 128, "unet_256": 256, "unet_128": 128}
"""The image size each architecture is used at in the reference (the run's ``data.image_size``)."""
TASK = "pix2pix"
PLACEHOLDER_DISCRIMINATOR = {"name": "pixel", "base_channels": 1, "norm": "none"}
"""The run's discriminator: the reference file holds none; 13 untrained parameters keep the task whole."""
INSTANCE_STATS = ("running_mean", "running_var", "num_batches_tracked")
EXPORT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class JunyanzArch:
    """One generator configuration of the reference (``--netG``, ``--norm``, ``--ngf``, channels)."""

    arch: str
    norm: str
    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    dropout: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown reference architecture {self.arch!r}; known: {', '.join(ARCHS)}")
        if self.norm not in NORMS:
            raise ConfigError(f"unknown reference norm {self.norm!r}; known: {', '.join(NORMS)}")
        for name in ("input_nc", "output_nc", "ngf"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer; got {getattr(self, name)}")

    @property
    def label(self) -> str:
        return f"{self.arch} --norm {self.norm}"

    def generator_spec(self) -> dict[str, Any]:
        """The toolkit's generator spec (``GENERATORS``) for this configuration."""
        return {"name": self.arch, "norm": self.norm, "dropout": self.dropout, "base_channels": self.ngf}

    def expected(self) -> list[tuple[str, torch.Size]]:
        """Our generator's state-dict keys and shapes, in order (built on the meta device: no memory)."""
        with torch.device("meta"):
            generator = GENERATORS.build(
                self.generator_spec(), in_channels=self.input_nc, out_channels=self.output_nc
            )
        return [(key, value.shape) for key, value in generator.state_dict().items()]


@dataclass
class ImportedRun:
    """What ``import_junyanz`` wrote: the run folder, its export and how the file was read."""

    run: Path
    export: str
    arch: JunyanzArch
    test_mode: str
    tensors: int
    dropped: list[str] = field(default_factory=list)
    """Keys of the file left out: the running statistics of instance norms (pre-0.4 files)."""
    filled: int = 0
    """``num_batches_tracked`` buffers set to 0 because the file (pre-0.4) has none."""
    sha256: str = ""

    def describe(self) -> str:
        notes = []
        if self.dropped:
            notes.append(f"dropped {len(self.dropped)} instance-norm running statistics (pre-0.4 file)")
        if self.filled:
            notes.append(f"set {self.filled} num_batches_tracked to 0 (pre-0.4 file)")
        extra = f"; {'; '.join(notes)}" if notes else ""
        mode = "eval mode"
        if self.test_mode == "batch_statistics":
            mode = "batch statistics" + (", dropout on" if self.arch.dropout else "")
        return (
            f"{self.run}: {self.arch.arch} ({self.arch.norm} norm, {self.arch.input_nc} -> "
            f"{self.arch.output_nc} channels, ngf {self.arch.ngf}), {self.tensors} tensors, export "
            f"{self.export!r}, {mode}{extra}"
        )


# ---------------------------------------------------------------------------------------------- reading
def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, read with ``weights_only=True``; a DataParallel ``module.`` prefix is
    stripped. Anything else (code in the pickle, not a torch file, not a flat dict of tensors) is a
    one-line CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = re.search(r"unsupported GLOBAL ([\w.]+)|Unsupported global: GLOBAL ([\w.]+)", text)
        if found or re.search(r"call reduce for unrecognized|create new object for", text):
            what = f" (it pickles {found.group(1) or found.group(2)})" if found else ""
            raise CheckpointError(
                f"{path} needs code to load{what}: only plain state dicts of tensors are imported, read with "
                "torch.load(weights_only=True); save the generator's net.state_dict() instead"
            ) from None
        detail = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
        reason = detail.group(1).strip() if detail else _first_line(exc)
        raise CheckpointError(f"{path} is not a PyTorch checkpoint ({reason})") from None
    except (RuntimeError, EOFError, KeyError, ValueError, OSError, zipfile.BadZipFile) as exc:
        reason = _first_line(exc)  # a bare number is the legacy format's magic-number check: no news
        detail = f" ({reason})" if reason and not reason.isdigit() else ""
        raise CheckpointError(f"{path} is not a PyTorch checkpoint torch.load can read{detail}") from None
    if not isinstance(loaded, Mapping):
        raise CheckpointError(
            f"{path} holds a {type(loaded).__name__}, not a state dict (a mapping of names to tensors)"
        )
    others = [str(k) for k, v in loaded.items() if not isinstance(v, torch.Tensor) or not isinstance(k, str)]
    if others:
        nested = [str(k) for k, v in loaded.items() if isinstance(v, Mapping)]
        hint = f"; it nests {', '.join(nested[:3])}: save the generator's state dict alone" if nested else ""
        raise CheckpointError(
            f"{path} is not a state dict of tensors: {', '.join(others[:5])}"
            f"{' ...' if len(others) > 5 else ''} {'is' if len(others) == 1 else 'are'} not tensors{hint}"
        )
    if not loaded:
        raise CheckpointError(f"{path} holds an empty state dict")
    state = dict(loaded)
    if all(key.startswith("module.") for key in state):  # saved from nn.DataParallel
        state = {key[len("module.") :]: value for key, value in state.items()}
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------- mapping
class ArchitectureMismatch(CheckpointError):
    """The file's tensors do not fit the named architecture (count or shape)."""


def convert_state_dict(
    state: Mapping[str, torch.Tensor], arch: JunyanzArch
) -> tuple[dict[str, torch.Tensor], list[str], int]:
    """The reference's state dict ``state`` as our generator's: ``(weights, dropped keys, filled)``.

    Matched by position, shapes checked one by one. ``dropped``: instance-norm running statistics of
    pre-0.4 files (the reference drops them too); ``filled``: ``num_batches_tracked`` set to 0 where a
    pre-0.4 batch-norm file has none. Raises ArchitectureMismatch at the first disagreement."""
    items = list(state.items())
    dropped: list[str] = []
    if arch.norm == "instance":  # no batch norm here: every running statistic is an instance norm's
        dropped = [k for k, _ in items if k.rsplit(".", 1)[-1] in INSTANCE_STATS]
        items = [(k, v) for k, v in items if k.rsplit(".", 1)[-1] not in INSTANCE_STATS]
    expected = arch.expected()
    fill = arch.norm == "batch" and not any(k.endswith(".num_batches_tracked") for k, _ in items)
    matched = [(k, s) for k, s in expected if not (fill and k.endswith(".num_batches_tracked"))]
    first = next(
        (i for i, ((_, shape), (_, tensor)) in enumerate(zip(matched, items)) if tensor.shape != shape), None
    )
    if first is not None or len(matched) != len(items):
        besides = f" besides {len(dropped)} running statistics" if dropped else ""
        count = f"{arch.arch} has {len(matched)} tensors, the file {len(items)}{besides}; "
        count = count if len(matched) != len(items) else ""
        if first is None:
            where = f"the first {min(len(matched), len(items))} agree in shape"
        else:
            (ours, shape), (theirs, tensor) = matched[first], items[first]
            where = (
                f"the first mismatch is the file's tensor {first + 1} of {len(items)} ({theirs}) of shape "
                f"{list(tensor.shape)}, where {arch.arch} expects {list(shape)} ({ours})"
            )
        raise ArchitectureMismatch(f"the file does not fit {arch.label}: {count}{where}")
    weights: dict[str, torch.Tensor] = {}
    for (ours, _), (theirs, tensor) in zip(matched, items):
        if tensor.is_floating_point() != (not ours.endswith(".num_batches_tracked")):
            raise ArchitectureMismatch(
                f"the file's {theirs} is a {tensor.dtype} tensor where {arch.arch} has {ours}"
            )
        weights[ours] = tensor.float() if tensor.is_floating_point() else tensor.long()
    filled = 0
    if fill:
        for key, _ in expected:
            if key.endswith(".num_batches_tracked"):
                weights[key] = torch.tensor(0, dtype=torch.long)
                filled += 1
    return weights, dropped, filled


def matching_architectures(
    state: Mapping[str, torch.Tensor], input_nc: int = 3, output_nc: int = 3, ngf: int = 64
) -> list[JunyanzArch]:
    """Every ``(arch, norm)`` of the reference that ``state`` fits, with these channels."""
    found = []
    for arch in ARCHS:
        for norm in NORMS:
            candidate = JunyanzArch(arch, norm, input_nc, output_nc, ngf)
            try:
                convert_state_dict(state, candidate)
            except ArchitectureMismatch:
                continue
            found.append(candidate)
    return found


def file_channels(state: Mapping[str, torch.Tensor]) -> tuple[int, int, int]:
    """``(input_nc, output_nc, ngf)`` as the file's shapes tell them: every reference generator starts with
    a conv ``(ngf, input_nc, k, k)`` and ends with an output bias ``(output_nc,)``; (3, 3, 64) otherwise."""
    values = list(state.values())
    first, last = values[0], values[-1]
    if first.dim() == 4 and last.dim() == 1:
        return int(first.shape[1]), int(last.shape[0]), int(first.shape[0])
    return 3, 3, 64


def resolve_arch(
    state: Mapping[str, torch.Tensor],
    arch: str | None,
    norm: str | None,
    input_nc: int | None = None,
    output_nc: int | None = None,
    ngf: int | None = None,
) -> tuple[JunyanzArch, dict[str, torch.Tensor], list[str], int]:
    """The configuration to import ``state`` as: the one named, or (``arch``/``norm`` None) the only one
    the file fits; channels and ``ngf`` not given are read from the file (``file_channels``). Returns it
    with ``convert_state_dict``'s weights, dropped keys and filled count."""
    found_in, found_out, found_ngf = file_channels(state)
    input_nc = found_in if input_nc is None else input_nc
    output_nc = found_out if output_nc is None else output_nc
    ngf = found_ngf if ngf is None else ngf
    if arch is not None and norm is not None:
        chosen = JunyanzArch(arch, norm, input_nc, output_nc, ngf)
        try:
            weights, dropped, filled = convert_state_dict(state, chosen)
        except ArchitectureMismatch as exc:
            fits = [a.label for a in matching_architectures(state, input_nc, output_nc, ngf)]
            hint = f"; it fits --arch {' or --arch '.join(fits)}" if fits else ""
            raise ArchitectureMismatch(f"{exc}{hint}") from None
        return chosen, weights, dropped, filled
    every = matching_architectures(state, input_nc, output_nc, ngf)
    fits = [a for a in every if arch in (None, a.arch) and norm in (None, a.norm)]
    if len(fits) != 1:
        given = " ".join(f"--{k} {v}" for k, v in (("arch", arch), ("norm", norm)) if v)
        channels = f"{input_nc} -> {output_nc} channels, ngf {ngf}"
        if fits:
            found = f"it fits {' and '.join(a.label for a in fits)}"
        elif every:
            found = f"it fits --arch {' or --arch '.join(a.label for a in every)}, not {given}"
        else:
            found = f"it fits none of {', '.join(ARCHS)} with {' or '.join(NORMS)} norm"
        raise ArchitectureMismatch(
            f"cannot tell the architecture of the file ({channels}): {found}; name it with "
            f"--arch {'|'.join(ARCHS)} --norm {'|'.join(NORMS)} (and --input-nc, --output-nc, --ngf)"
        )
    weights, dropped, filled = convert_state_dict(state, fits[0])
    return fits[0], weights, dropped, filled


# ---------------------------------------------------------------------------------------------- writing
def import_junyanz(
    path: str | Path,
    out: str | Path,
    *,
    arch: str | None = None,
    norm: str | None = None,
    dropout: bool | None = None,
    eval_mode: bool = False,
    input_nc: int | None = None,
    output_nc: int | None = None,
    ngf: int | None = None,
    direction: str = "a2b",
    image_size: int | None = None,
    source: Mapping[str, Any] | None = None,
) -> ImportedRun:
    """Write the reference generator in ``path`` as the run folder ``out`` (which must not hold anything).

    ``arch``/``norm``: the reference's ``--netG`` / ``--norm`` (None: the only one the file fits).
    ``dropout``: whether it was trained with dropout (the reference's default: on for U-Nets, pix2pix;
    off for ResNets, CycleGAN's ``--no_dropout``); only matters in batch-statistics test mode.
    ``eval_mode``: translate with running statistics and without dropout (the reference's ``--eval``);
    default: as its test.py without ``--eval`` (see the module docstring). ``input_nc``, ``output_nc``,
    ``ngf``: the reference's options of those names (None: read from the file's shapes, ``file_channels``).
    ``direction``: the name of the export (``a2b``, ``horse2zebra``...). ``image_size``: the size it was
    trained at (default: the architecture's). ``source``: more provenance for the metadata (URL, licence,
    zoo name).
    """
    path, out = Path(path), Path(out)
    check_destination(out, direction)
    state = read_state_dict(path)
    chosen, weights, dropped, filled = resolve_arch(state, arch, norm, input_nc, output_nc, ngf)
    chosen = replace(chosen, dropout=chosen.arch.startswith("unet") if dropout is None else dropout)
    per_image = chosen.norm == "batch" or chosen.dropout
    test_mode = "batch_statistics" if per_image and not eval_mode else "eval"
    model = {
        "generator": chosen.generator_spec(),
        "discriminator": dict(PLACEHOLDER_DISCRIMINATOR),
        "adversarial_loss": "vanilla",
        "direction": direction,
        "test_mode": test_mode,
    }
    task_kwargs = {**model, "in_channels": chosen.input_nc, "out_channels": chosen.output_nc}
    task = build_imported_task(task_kwargs, weights)
    sha256 = file_sha256(path)
    imported = {**_provenance(path, sha256, chosen, test_mode, dropped, filled), **dict(source or {})}
    size = image_size or TRAINED_SIZE[chosen.arch]
    config = {
        "task": TASK,
        "model": model,
        "data": {"image_size": size, "in_channels": chosen.input_nc, "out_channels": chosen.output_nc},
    }
    write_imported_run(out, task, task_kwargs, config, imported)
    tensors = len(state) - len(dropped)
    return ImportedRun(out, direction, chosen, test_mode, tensors, dropped, filled, sha256)


def check_destination(out: Path, direction: str | None = None) -> None:
    """A ConfigError for a ``direction`` that cannot name an export; a CheckpointError for an ``out`` that
    holds anything."""
    if direction is not None and not EXPORT_NAME.match(direction):
        raise ConfigError(f"--direction names the export: letters, digits, '_', '-', '.'; got {direction!r}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(f"{out} exists and is not empty; choose another --out or delete it")


def build_imported_task(
    task_kwargs: dict[str, Any], weights: dict[str, torch.Tensor], task_name: str = TASK
) -> nn.Module:
    """The run's task (``pix2pix`` by default) holding the imported generator ``weights``; its other,
    placeholder networks seeded (the same bytes for the same file)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        task = TASKS.build({"name": task_name, **task_kwargs})
    generator: nn.Module = task.generator
    generator.load_state_dict(weights, strict=True)
    return task


def _provenance(
    path: Path, sha256: str, chosen: JunyanzArch, test_mode: str, dropped: list[str], filled: int
) -> dict[str, Any]:
    """The ``imported`` metadata of the run: the source file, its sha256, how it was read and mapped."""
    return {
        "format": "junyanz/pytorch-CycleGAN-and-pix2pix",
        "file": path.name,
        "sha256": sha256,
        "arch": chosen.arch,
        "norm": chosen.norm,
        "ngf": chosen.ngf,
        "dropout": chosen.dropout,
        "test_mode": test_mode,
        "dropped": dropped,
        "filled_num_batches_tracked": filled,
        "discriminator": "untrained placeholder (the reference file holds only the generator)",
    }


def write_imported_run(
    out: Path,
    task: nn.Module,
    task_kwargs: dict[str, Any],
    config: dict[str, Any],
    imported: dict[str, Any],
    exports: dict[str, dict[str, Any]] | None = None,
) -> None:
    """An imported ``task`` as the run folder ``out`` (``checkpoints/step_0000000``), written beside it
    and renamed into place.

    Args:
        out: the run folder (absent or empty).
        task: the task holding the imported weights; its name is ``config["task"]``.
        task_kwargs: its constructor's arguments.
        config: the resolved config.
        imported: the provenance stored in the model's metadata.
        exports: the exports as dicts (default: ``task.exports()``).
    """
    if exports is None:
        exports = {name: export.to_dict() for name, export in task.exports().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".import-{out.name}-", dir=out.parent))
    try:
        save_checkpoint(
            tmp,
            0,
            config["task"],
            task_kwargs,
            config,
            task.state_dict(),
            state={},
            state_meta={"step": 0, "imported": True},
            exports=exports,
            keep=0,
            model_meta={"imported": imported},
        )
        if out.is_dir():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
