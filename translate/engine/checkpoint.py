"""Checkpoints: safetensors weights with the architecture beside them, plus the training state.

A checkpoint is a folder ``checkpoints/step_0001000/`` holding

- ``model.safetensors``: every network's weights; its metadata names the task, the keyword arguments
  that rebuild it, the step and the whole resolved config. This file alone is enough for inference.
- ``state.safetensors``: optimizer moments, random states, image pools and data position, for resuming.
- ``SHA256SUMS``: the sha256 of both files (``sha256sum -c SHA256SUMS`` checks them by hand); loading
  checks every file against it, so a truncated or damaged file is a ``CorruptCheckpointError``, never
  wrong weights.

With ``train.ema_decay`` on, ``model.safetensors`` holds the moving average of the generator's weights in
place of the trained ones (inference loads what it exports) and names it in its metadata (``ema``: decay,
updates); the trained weights of those networks are in ``state.safetensors`` under ``ema/raw/<key>``.

``checkpoints/best/`` (``train.best_metric``) is the checkpoint of the best evaluation: hard links to (or,
where the filesystem has none, copies of) the files of ``step_N``, plus ``best.json`` (metric, value, step,
mode); it is replaced in the same atomic way and never rotated out. ``select_checkpoint`` picks
``best``, ``latest`` or a step of a run.

The folder is written under a temporary name, flushed to disk and renamed into place, so a crash
mid-write never leaves a half-written checkpoint; a write that fails (disk full) removes the temporary
folder and leaves the earlier checkpoints as they were. Loading reads tensors and JSON only: nothing is
unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from translate.errors import CheckpointError, CorruptCheckpointError, StorageError

FORMAT = "translate-checkpoint-1"
MODEL_FILE = "model.safetensors"
STATE_FILE = "state.safetensors"
SUMS_FILE = "SHA256SUMS"
"""``<sha256>  <file name>`` per line, as ``sha256sum`` writes it."""
BEST = "best"
"""The folder (under ``checkpoints/``) of the best checkpoint by ``train.best_metric``."""
BEST_FILE = "best.json"

log = logging.getLogger("translate")


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
    ema: dict[str, Any] | None = None
    """When the weights of the generator are its moving average: ``decay``, ``warmup``, ``updates``."""


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


def select_checkpoint(run_dir: str | Path, which: str | int) -> Path:
    """The checkpoint folder of a run that ``which`` names: ``best`` (``checkpoints/best``), ``latest``
    or a step number (``2000`` or ``step_0002000``); one the run lacks is a CheckpointError listing those
    it has."""
    run_dir = Path(run_dir)
    text = str(which).strip().lower()
    found = checkpoint_dirs(run_dir)
    best = run_dir / "checkpoints" / BEST
    has_best = (best / MODEL_FILE).is_file()
    steps = [int(p.name[5:]) for p in found]
    listed = (["best"] if has_best else []) + (["latest"] if found else []) + [str(s) for s in steps]
    holds = f"; {run_dir} holds: {', '.join(listed)}" if listed else f"; {run_dir} holds no checkpoint"
    if text == BEST:
        if not has_best:
            raise CheckpointError(
                f"{run_dir} has no best checkpoint (kept when training with train.eval_every and "
                f"train.best_metric){holds}"
            )
        return best
    if text == "latest":
        if not found:
            raise CheckpointError(f"{run_dir} holds no checkpoint (expected checkpoints/step_*/{MODEL_FILE})")
        return found[-1]
    try:
        step = int(text.removeprefix("step_"))
    except ValueError:
        raise CheckpointError(f"--checkpoint takes best, latest or a step number; got {which!r}") from None
    if step not in steps:
        raise CheckpointError(f"{run_dir} has no checkpoint of step {step}{holds}")
    return found[steps.index(step)]


def resolve_model_file(path: str | Path, checkpoint: str | int | None = None) -> Path:
    """A run folder, a checkpoint folder or a ``model.safetensors`` file -> the weights file to load.
    ``checkpoint`` (``best``, ``latest``, a step) picks one of a run folder's checkpoints (default:
    the latest); given with a checkpoint folder or file it is an error unless it is ``latest``."""
    path = Path(path)
    if checkpoint is not None and str(checkpoint).strip().lower() != "latest":
        run = path.parent if path.name == "checkpoints" and path.is_dir() else path
        if not (run / "checkpoints").is_dir():
            kind = (
                "file" if path.is_file() else "checkpoint folder" if (path / MODEL_FILE).is_file() else None
            )
            what = f"is a {kind}" if kind else "is not a run folder"
            raise CheckpointError(
                f"--checkpoint {checkpoint} picks a checkpoint of a run folder; {path} {what} (give the run "
                f"folder, or leave --checkpoint out)"
            )
        return select_checkpoint(run, checkpoint) / MODEL_FILE
    if path.is_file():
        if path.suffix != ".safetensors":
            raise CheckpointError(f"{path} is a file, not a run folder, checkpoint folder or {MODEL_FILE}")
        return path
    if (path / MODEL_FILE).is_file():
        return path / MODEL_FILE
    if path.is_dir() and path.name == "checkpoints":  # a run's checkpoint folder: its newest
        path = path.parent
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
    model_meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``checkpoints/step_N`` atomically and keep only the newest ``keep`` checkpoints (0: all).
    ``model_meta``: more metadata of ``model.safetensors`` (``ema``), each value stored as JSON.

    A failed write (disk full, read-only folder) is a StorageError; it leaves no temporary folder behind
    and the earlier checkpoints untouched."""
    folder = Path(run_dir) / "checkpoints"
    final = folder / f"step_{step:07d}"
    tmp = folder / f".tmp-{final.name}"
    model_meta = {
        "format": FORMAT,
        "task": task,
        "task_kwargs": json.dumps(task_kwargs),
        "config": json.dumps(config),
        "step": str(step),
        "exports": json.dumps(exports),
        **{key: json.dumps(value) for key, value in (model_meta or {}).items()},
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".tmp-step_*"):  # left by a kill mid-write (one writer per run)
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
        _write_tensors(weights, tmp / MODEL_FILE, model_meta)
        _write_tensors(state, tmp / STATE_FILE, {"format": FORMAT, "meta": json.dumps(state_meta)})
        sums = "".join(f"{file_sha256(tmp / name)}  {name}\n" for name in (MODEL_FILE, STATE_FILE))
        (tmp / SUMS_FILE).write_text(sums)
        _fsync(tmp / SUMS_FILE)
        _fsync(tmp)
        _put_in_place(tmp, final)
    except (OSError, SafetensorError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StorageError(
            f"could not write checkpoint {final}: {reason}; the earlier checkpoints are intact"
        ) from None
    for stale in checkpoint_dirs(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _put_in_place(tmp: Path, final: Path) -> None:
    """Rename the complete folder ``tmp`` to ``final`` (replacing an older one) and flush the rename."""
    if final.exists():
        old = final.with_name(f".old-{final.name}")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)
    _fsync(final.parent)


def keep_as_best(run_dir: Path, step: int, info: dict[str, Any]) -> Path:
    """Make ``checkpoints/best`` the checkpoint of ``step`` (written before), with ``info`` (metric, value,
    step, mode) in ``best.json``: its files hard-linked (copied where links fail) into a temporary folder,
    flushed and renamed into place, as ``save_checkpoint`` does. A failed write is a StorageError that
    leaves the previous best as it was."""
    folder = Path(run_dir) / "checkpoints"
    source, final = folder / f"step_{step:07d}", folder / BEST
    tmp = folder / f".tmp-{BEST}"
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name in (MODEL_FILE, STATE_FILE, SUMS_FILE):
            try:
                os.link(source / name, tmp / name)
            except OSError:
                shutil.copyfile(source / name, tmp / name)
                _fsync(tmp / name)
        (tmp / BEST_FILE).write_text(json.dumps(info) + "\n")
        _fsync(tmp / BEST_FILE)
        _fsync(tmp)
        _put_in_place(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(
            f"could not write the best checkpoint {final}: {exc.strerror or exc}; the earlier ones are intact"
        ) from None
    return final


def best_info(run_dir: Path) -> dict[str, Any] | None:
    """``best.json`` of a run's best checkpoint (metric, value, step, mode), or None."""
    try:
        return json.loads((Path(run_dir) / "checkpoints" / BEST / BEST_FILE).read_text())
    except (OSError, ValueError):
        return None


def _write_tensors(tensors: dict[str, torch.Tensor], file: Path, metadata: dict[str, str]) -> None:
    save_file(_contiguous(tensors), file, metadata=metadata)
    _fsync(file)


def _fsync(path: Path) -> None:
    """Flush a file or folder (its entries) to disk, so a power cut cannot undo a completed rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(file: Path) -> None:
    """Check ``file`` against the ``SHA256SUMS`` beside it; a mismatch is a CorruptCheckpointError.
    Files without one (checkpoints from before hashes were stored, a copied weights file) are not checked."""
    sums_file = file.parent / SUMS_FILE
    if not sums_file.is_file():
        return
    try:
        lines = sums_file.read_text().splitlines()
        sums = {name.strip().lstrip("*"): digest for digest, name in (line.split(None, 1) for line in lines)}
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CorruptCheckpointError(f"{sums_file} is unreadable ({exc})") from None
    if file.name not in sums:
        raise CorruptCheckpointError(f"{sums_file} lists no hash for {file.name}")
    if file_sha256(file) != sums[file.name]:
        raise CorruptCheckpointError(
            f"{file} is corrupt: its content does not match the sha256 in {SUMS_FILE} (truncated or damaged)"
        )


def non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or infinity, or None (one host sync)."""
    names = [k for k, v in tensors.items() if v.is_floating_point() and v.numel()]
    if not names:
        return None
    bad = torch.stack([~torch.isfinite(tensors[k]).all() for k in names])
    return names[int(bad.to(torch.uint8).argmax())] if bool(bad.any()) else None


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


def load_model_checkpoint(path: str | Path, checkpoint: str | int | None = None) -> ModelCheckpoint:
    """Read weights and architecture from a run folder, checkpoint folder or weights file, checked
    against the checkpoint's hashes; a damaged file is a CorruptCheckpointError naming it. ``checkpoint``:
    ``best``, ``latest`` (default) or a step of a run folder (``select_checkpoint``)."""
    file = resolve_model_file(path, checkpoint)
    try:
        return _read_model_file(file)
    except CorruptCheckpointError as exc:
        raise CorruptCheckpointError(f"{exc}{_older_checkpoints_hint(file)}") from None


def _read_model_file(file: Path) -> ModelCheckpoint:
    verify_file(file)
    try:
        with safe_open(str(file), framework="pt") as handle:
            meta = handle.metadata() or {}
        weights = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptCheckpointError(f"{file} is not a readable safetensors checkpoint ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{file} is not a translate checkpoint (format {meta.get('format')!r})")
    bad = non_finite(weights)
    if bad is not None:
        raise CorruptCheckpointError(f"{file} holds non-finite weights ({bad}): its run had diverged")
    return ModelCheckpoint(
        task=meta["task"],
        task_kwargs=json.loads(meta["task_kwargs"]),
        config=json.loads(meta["config"]),
        step=int(meta["step"]),
        weights=weights,
        exports=json.loads(meta.get("exports", "{}")),
        path=file,
        ema=json.loads(meta["ema"]) if "ema" in meta else None,
    )


def _older_checkpoints_hint(file: Path) -> str:
    """``; older checkpoints: RUN/checkpoints/step_N ...`` when ``file`` is in a run's checkpoint folder."""
    folder = file.parent
    if folder.parent.name != "checkpoints":
        return ""
    older = [p for p in checkpoint_dirs(folder.parent.parent) if p.name < folder.name]
    return f"; older checkpoints: {', '.join(map(str, reversed(older)))}" if older else ""


def load_training_state(checkpoint_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    file = Path(checkpoint_dir) / STATE_FILE
    verify_file(file)
    try:
        with safe_open(str(file), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})["meta"])
        return load_file(str(file)), meta
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise CorruptCheckpointError(f"{file} is not a readable training state ({exc})") from None


@dataclass
class Resumable:
    """A checkpoint whose files are whole: its weights and architecture, and its training state."""

    folder: Path
    model: ModelCheckpoint
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any]


def read_resumable(folder: Path) -> Resumable:
    """One checkpoint folder's weights and training state, checked against its hashes."""
    model = _read_model_file(folder / MODEL_FILE)
    tensors, meta = load_training_state(folder)
    return Resumable(folder, model, tensors, meta)


def newest_intact(run_dir: Path, set_aside: bool = False) -> Resumable | None:
    """The newest checkpoint of a run whose files match their hashes (None when there is none). Newer,
    damaged ones are skipped with a warning; ``set_aside`` also renames them ``corrupt-step_N``, so that
    training on from the older one neither lists nor rotates them."""
    for folder in reversed(checkpoint_dirs(run_dir)):
        try:
            return read_resumable(folder)
        except CorruptCheckpointError as exc:
            if set_aside:
                aside = folder.with_name(f"corrupt-{folder.name}")
                shutil.rmtree(aside, ignore_errors=True)
                folder.rename(aside)
                log.warning("%s; moved the checkpoint to %s and using an older one", exc, aside)
            else:
                log.warning("%s; using an older checkpoint", exc)
    return None


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
    # Moments were saved contiguous; a parameter in channels_last (train.channels_last) needs them in its
    # layout, which fused and foreach optimizers require.
    for group in optimizer.param_groups:
        for param in group["params"]:
            for name, value in optimizer.state.get(param, {}).items():
                if value.shape == param.shape and value.stride() != param.stride():
                    optimizer.state[param][name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


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
