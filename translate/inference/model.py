"""Load one entry point (an ``Export``) of a trained model from its checkpoint, without the trainer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import translate.components  # noqa: F401  (registers every component)
from translate.engine.checkpoint import ModelCheckpoint, load_model_checkpoint, load_weights
from translate.engine.device import resolve_device
from translate.errors import CheckpointError
from translate.exports import Export
from translate.kinds import kind_of
from translate.registry import TASKS


@dataclass
class LoadedExport:
    name: str
    export: Export
    module: nn.Module
    checkpoint: ModelCheckpoint
    task: nn.Module
    """The whole trained task, for exports that use more than one network (StarGAN's classifier)."""


def model_exports(checkpoint: ModelCheckpoint) -> dict[str, Export]:
    """The exports stored in the checkpoint (checkpoints from before exports were stored: the task's)."""
    if checkpoint.exports:
        return {name: Export.from_dict(values) for name, values in checkpoint.exports.items()}
    return TASKS.build({"name": checkpoint.task, **checkpoint.task_kwargs}).exports()


def load_export(
    path: str | Path,
    name: str | None,
    kinds: tuple[str, ...],
    device: str | torch.device = "cpu",
    checkpoint: str | int | None = None,
) -> LoadedExport:
    """The network behind export ``name`` of the model at ``path`` (run folder, checkpoint folder or
    ``model.safetensors``), ready for inference on ``device``. ``checkpoint``: which of a run folder's
    checkpoints, ``best``, ``latest`` (default) or a step number. A checkpoint trained with
    ``train.ema_decay`` exports the moving average of the generator's weights.

    ``name`` None takes the only export of one of ``kinds`` (or ``a2b`` among several). An export of
    another kind is a CheckpointError that names the command to use instead.
    """
    checkpoint = load_model_checkpoint(path, checkpoint)
    exports = model_exports(checkpoint)
    usable = {n: e for n, e in exports.items() if e.kind in kinds}
    if not usable:
        kind = next(iter(exports.values())).kind
        raise CheckpointError(
            f"{path} is a {checkpoint.task} model of kind {kind}: use `{kind_of(kind).command}` for it"
        )
    if name is None:
        name = next(iter(usable)) if len(usable) == 1 else ("a2b" if "a2b" in usable else sorted(usable)[0])
    if name not in usable:
        raise CheckpointError(f"this {checkpoint.task} model offers {', '.join(usable)}; not {name}")
    task = build_model(checkpoint, device)
    export = usable[name]
    return LoadedExport(name, export, task.get_submodule(export.module), checkpoint, task)


def build_model(checkpoint: ModelCheckpoint, device: str | torch.device = "cpu") -> nn.Module:
    """The trained task of ``checkpoint``, every network with its weights, in eval mode on ``device``."""
    task = TASKS.build({"name": checkpoint.task, **checkpoint.task_kwargs})
    load_weights(task, checkpoint.weights, checkpoint.path)
    return task.to(resolve_device(device)).eval()


def load_model(
    path: str | Path, device: str | torch.device = "cpu", checkpoint: str | int | None = None
) -> nn.Module:
    """The whole trained model at ``path`` (run folder, checkpoint folder or ``model.safetensors``) in eval
    mode: every network, and the task's own methods, such as UNIT's ``encode(images, domain)`` and
    ``decode(z, domain)`` in its shared latent space. ``checkpoint``: ``best``, ``latest`` or a step."""
    return build_model(load_model_checkpoint(path, checkpoint), device)
