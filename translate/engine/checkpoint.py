"""Checkpoints: safetensors weights with the architecture beside them, plus the training state.

A checkpoint is a folder ``checkpoints/step_0001000/`` holding

- ``model.safetensors``: every network's weights; its metadata names the task, the keyword arguments
  that rebuild it, the step and the whole resolved config. This file alone is enough for inference.
- ``state.safetensors``: optimizer moments, random states, image pools and data position, for resuming.

The folder is written under a temporary name and renamed into place, so a crash mid-write never leaves
a half-written checkpoint. Loading reads tensors and JSON only: nothing is unpickled.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from translate.errors import CheckpointError

FORMAT = "translate-checkpoint-1"
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"


@dataclass
class ModelCheckpoint:
    """What ``model.safetensors`` holds: the architecture, the weights and where they came from."""

    task: str
    task_kwargs: dict[str, Any]
    config: dict[str, Any]
    step: int
    weights: dict[str, torch.Tensor]
    exports: dict[str, dict[str, Any]]
    """What the model can be asked, by name: ``Export.to_dict()`` of each of the task's exports (empty
    for checkpoints written before exports were stored: build the task to know them)."""
    path: Path


def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.glob("step_*") if (p / MODEL_FILE).is_file() and (p / STATE_FILE).is_file()
    )


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = checkpoint_dirs(run_dir)
    return found[-1] if found else None


def resolve_model_file(path: str | Path) -> Path:
    """A run folder, a checkpoint folder or a ``model.safetensors`` file -> the weights file to load."""
    path = Path(path)
    if path.is_file():
        if path.suffix != ".safetensors":
            raise CheckpointError(f"{path} is a file, not a run folder, checkpoint folder or {MODEL_FILE}")
        return path
    if (path / MODEL_FILE).is_file():
        return path / MODEL_FILE
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(
                f"{path} holds no checkpoint (expected {path}/checkpoints/step_*/{MODEL_FILE})"
            )
        return latest / MODEL_FILE
    raise CheckpointError(f"no run folder or checkpoint at {path}")


def save_checkpoint(
    run_dir: Path,
    step: int,
    task: str,
    task_kwargs: dict[str, Any],
    config: dict[str, Any],
    weights: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    state_meta: dict[str, Any],
    exports: dict[str, dict[str, Any]],
    keep: int = 3,
) -> Path:
    """Write ``checkpoints/step_N`` atomically and keep only the newest ``keep`` checkpoints."""
    folder = Path(run_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step_{step:07d}"
    tmp = folder / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    model_meta = {
        "format": FORMAT,
        "task": task,
        "task_kwargs": json.dumps(task_kwargs),
        "config": json.dumps(config),
        "step": str(step),
        "exports": json.dumps(exports),
    }
    save_file(_contiguous(weights), tmp / MODEL_FILE, metadata=model_meta)
    save_file(
        _contiguous(state), tmp / STATE_FILE, metadata={"format": FORMAT, "meta": json.dumps(state_meta)}
    )
    if final.exists():
        old = folder / f".old-{final.name}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)
    for stale in checkpoint_dirs(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(stale)
    return final


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, each with its own memory: a module shared by two networks appears under
    both names (safetensors refuses shared memory; loading fills both names again)."""
    out, storages = {}, set()
    for key, value in tensors.items():
        value = value.detach().contiguous().cpu()
        storage = value.untyped_storage().data_ptr()
        out[key] = value.clone() if storage in storages else value
        storages.add(storage)
    return out


def load_model_checkpoint(path: str | Path) -> ModelCheckpoint:
    """Read weights and architecture from a run folder, checkpoint folder or weights file."""
    file = resolve_model_file(path)
    try:
        with safe_open(str(file), framework="pt") as handle:
            meta = handle.metadata() or {}
        weights = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{file} is not a readable safetensors checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not a translate checkpoint (format {meta.get('format')!r})")
    return ModelCheckpoint(
        task=meta["task"],
        task_kwargs=json.loads(meta["task_kwargs"]),
        config=json.loads(meta["config"]),
        step=int(meta["step"]),
        weights=weights,
        exports=json.loads(meta.get("exports", "{}")),
        path=file,
    )


def load_training_state(checkpoint_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    file = Path(checkpoint_dir) / STATE_FILE
    try:
        with safe_open(str(file), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["meta"])
        return load_file(str(file)), meta
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{file} is not a readable training state ({exc})") from None


def optimizer_to_tensors(
    prefix: str, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], Any]:
    """Split ``optimizer.state_dict()`` into flat tensors and JSON-able param groups."""
    sd = optimizer.state_dict()
    tensors = {
        f"{prefix}/{index}/{key}": value
        for index, entry in sd["state"].items()
        for key, value in entry.items()
    }
    return tensors, sd["param_groups"]


def optimizer_from_tensors(
    prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], param_groups: Any
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "/"):
            index, name = key[len(prefix) + 1 :].split("/", 1)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": param_groups})


def random_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every random generator training draws from: torch (CPU and CUDA), Python and NumPy."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"rng/cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
    }
    return tensors, meta


def set_random_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load a state dict, turning missing/unexpected keys or shape mismatches into one clear error."""
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(f"{source} does not fit this {type(module).__name__} model: {first}") from None
