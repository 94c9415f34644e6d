"""What a ``Translator`` is made of, read from a run, a checkpoint, a weights file or an exported file.

``Translator.from_run`` and ``Translator.from_exported`` call these: each returns the Translator's keyword
arguments (the network, its channels, the device, batch statistics, the training image size, and what its
kind adds: labels and classifier, style codes).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translate.errors import CheckpointError, ConfigError
from translate.kinds import kind_of, kinds_with

TRANSLATOR_KINDS = kinds_with("image")
"""The export kinds a Translator runs: those whose input is an image."""


def kind_arguments(
    kind: str, options: dict[str, Any], path: str | Path, task: nn.Module | None = None
) -> dict[str, Any]:
    """Check that a Translator runs exports of ``kind``, and what the kind adds to its arguments.

    Args:
        kind, options: the export's (an exported file's: its stored contract's).
        path: the model, named in the error.
        task: the trained task, holding the classifier; None for an exported file (which holds none).

    Returns:
        ``Translator`` keyword arguments (``Kind.translator_arguments`` and ``kind``); a kind whose input is
        no image is a CheckpointError naming the command for it.
    """
    found = kind_of(kind)
    if kind not in TRANSLATOR_KINDS:
        raise CheckpointError(f"{path} holds a {kind} model: use `{found.command}` for it")
    return {**found.translator_arguments(options, task), "kind": kind}


def run_arguments(
    path: str | Path,
    direction: str | None,
    device: str | torch.device,
    backend: str | None,
    checkpoint: str | int | None,
) -> dict[str, Any]:
    """The Translator of a run folder, checkpoint folder or ``model.safetensors`` (``Translator.from_run``).

    Returns:
        Its keyword arguments; an exported file, or ``backend="onnxruntime"``, goes through
        ``exported_arguments``.
    """
    from translate.inference.model import load_export
    from translate.inference.portable import BACKENDS, export_model, is_exported

    if backend not in (None, *BACKENDS):
        raise ConfigError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
    if checkpoint is not None:  # that checkpoint's weights file
        from translate.engine.checkpoint import resolve_model_file

        path = resolve_model_file(path, checkpoint)
    if is_exported(path):
        return exported_arguments(path, device, backend)
    if backend == "onnxruntime":
        with tempfile.TemporaryDirectory() as folder:
            onnx = export_model(path, Path(folder) / "model.onnx", "onnx", direction)
            return exported_arguments(onnx, device, backend)
    loaded = load_export(path, direction, TRANSLATOR_KINDS, device)
    export = loaded.export
    return {
        "generator": loaded.module,
        "in_channels": export.in_channels,
        "out_channels": export.out_channels,
        "device": device,
        "batch_statistics": export.batch_statistics,
        "face_size": loaded.checkpoint.config.get("data", {}).get("image_size", 128),
        **kind_arguments(export.kind, export.options, path, loaded.task),
    }


def exported_arguments(path: str | Path, device: str | torch.device, backend: str | None) -> dict[str, Any]:
    """The Translator of a file written by ``translate export`` (``Translator.from_exported``): its network
    and the pre- and post-processing its stored contract names."""
    from translate.inference.portable import load_exported

    network, contract = load_exported(path, device, backend)
    return {
        "generator": network,
        "in_channels": contract["in_channels"],
        "out_channels": contract["out_channels"],
        "device": network.device,
        "face_size": contract.get("image_size") or 128,
        **kind_arguments(contract["kind"], contract["options"], path),
    }
