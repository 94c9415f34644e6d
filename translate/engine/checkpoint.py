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

The key layout of ``state.safetensors`` is ``TrainingState``'s (written and read there alone):
``optim/<group>/<param index>/<state key>`` (optimizer moments), ``rng/torch``, ``rng/cuda/<i>`` and
``task/<key>`` (rank 0's random states and task state: what one process reads), ``rank<r>/rng/...`` and
``rank<r>/task/...`` (process r's), ``ema/raw/<key>``; its metadata ``meta`` holds step, samples_seen,
lr_scale, world_size, param_groups, optimizers, best, ema and the Python and NumPy random states (``rng``,
``rng_ranks``).

``checkpoints/best/`` (``train.best_metric``) is the checkpoint of the best evaluation: hard links to (or,
where the filesystem has none, copies of) the files of ``step_N``, plus ``best.json``; it is replaced in
the same atomic way and never rotated out. Which checkpoint of a run to load is ``run_folder``'s.

The folder is written under a temporary name, flushed to disk and renamed into place, so a crash
mid-write never leaves a half-written checkpoint; a write that fails (disk full) removes the temporary
folder and leaves the earlier checkpoints as they were. Loading reads tensors and JSON only: nothing is
unpickled.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from translate.engine.guards import non_finite
from translate.engine.integrity import file_sha256, verify_file
from translate.engine.run_folder import (  # the run folder's layout (some names re-exported here)
    MODEL_FILE,
    STATE_FILE,
    SUMS_FILE,
    best_info,  # noqa: F401
    checkpoint_dirs,
    fsync,
    latest_checkpoint,  # noqa: F401
    older_checkpoints_hint,
    put_in_place,
    resolve_model_file,
    select_checkpoint,  # noqa: F401
)
from translate.errors import CheckpointError, CorruptCheckpointError, StorageError

FORMAT = "translate-checkpoint-1"
OPTIM_PREFIX = "optim/"
RNG_PREFIX = "rng/"
TASK_PREFIX = "task/"
RAW_PREFIX = "ema/raw/"
"""Where ``state.safetensors`` keeps the trained (not averaged) weights of the networks under EMA."""

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
    path: Path | None = None
    """The file it was read from (None before it is written)."""
    ema: dict[str, Any] | None = None
    """When the weights of the generator are its moving average: ``decay``, ``warmup``, ``updates``."""
    extra: dict[str, Any] = field(default_factory=dict)
    """More metadata (an import's provenance, ``imported``)."""

    def metadata(self) -> dict[str, str]:
        """Returns: the file's metadata: strings, JSON where structured (``from_metadata`` reads it)."""
        extra = {"ema": self.ema, **self.extra} if self.ema is not None else self.extra
        return {
            "format": FORMAT,
            "task": self.task,
            "task_kwargs": json.dumps(self.task_kwargs),
            "config": json.dumps(self.config),
            "step": str(self.step),
            "exports": json.dumps(self.exports),
            **{key: json.dumps(value) for key, value in extra.items()},
        }

    @classmethod
    def from_metadata(
        cls, meta: dict[str, str], weights: dict[str, torch.Tensor], path: Path
    ) -> ModelCheckpoint:
        """Args: meta, weights: a ``model.safetensors`` file's metadata and tensors; path: the file."""
        known = ("format", "task", "task_kwargs", "config", "step", "exports", "ema")
        return cls(
            task=meta["task"],
            task_kwargs=json.loads(meta["task_kwargs"]),
            config=json.loads(meta["config"]),
            step=int(meta["step"]),
            weights=weights,
            exports=json.loads(meta.get("exports", "{}")),
            path=path,
            ema=json.loads(meta["ema"]) if "ema" in meta else None,
            extra={key: json.loads(value) for key, value in meta.items() if key not in known},
        )


def prefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` with ``prefix`` before each key (``rank1/`` + ``rng/torch``)."""
    return {prefix + key: value for key, value in tensors.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors whose keys start with ``prefix``, with it taken off (inverse of ``prefixed``)."""
    return {key[len(prefix) :]: value for key, value in tensors.items() if key.startswith(prefix)}


def rank_prefix(rank: int) -> str:
    """Where process ``rank``'s random states and task state are: rank 0's at the top (as a single
    process's), the others' under ``rank<r>/``."""
    return f"rank{rank}/" if rank else ""


def optimizer_prefix(group: str) -> str:
    """Where optimizer group ``group``'s moments are: ``optim/<group>/``."""
    return f"{OPTIM_PREFIX}{group}/"


@dataclass
class OptimizerState:
    """One optimizer's ``state_dict``: its tensors by ``<param index>/<state key>``, its param groups."""

    kind: str | None
    """The optimizer's class name (None in checkpoints from before it was stored)."""
    tensors: dict[str, torch.Tensor]
    param_groups: list[dict[str, Any]]

    @classmethod
    def of(cls, optimizer: torch.optim.Optimizer) -> OptimizerState:
        """Args: optimizer: an optimizer. Returns: its state (the tensors themselves, not copies)."""
        sd = optimizer.state_dict()
        tensors = {f"{i}/{key}": value for i, entry in sd["state"].items() for key, value in entry.items()}
        return cls(type(optimizer).__name__, tensors, sd["param_groups"])

    def load_into(self, optimizer: torch.optim.Optimizer, folder: Path, group: str) -> None:
        """Restore ``optimizer`` from this state; one that does not fit it is a CheckpointError.

        Args:
            optimizer: the optimizer (of the same parameters) to restore.
            folder: the checkpoint, named in errors.
            group: the optimizer group, named in errors.
        """
        misfit = f"{folder}: the saved {group} optimizer state does not fit this run's optim.{group}"
        configured = type(optimizer).__name__
        if (self.kind or configured) != configured:
            raise CheckpointError(f"{misfit} ({self.kind} was saved, {configured} is configured)")
        try:
            state: dict[int, dict[str, torch.Tensor]] = {}
            for key, value in self.tensors.items():
                index, name = key.split("/", 1)
                state.setdefault(int(index), {})[name] = value
            optimizer.load_state_dict({"state": state, "param_groups": self.param_groups})
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{misfit} (was the optimizer changed?): {exc}") from None
        # Moments were saved contiguous; a parameter in channels_last (train.channels_last) needs them in
        # its layout, which fused and foreach optimizers require.
        for param_group in optimizer.param_groups:
            for param in param_group["params"]:
                for name, value in optimizer.state.get(param, {}).items():
                    if value.shape == param.shape and value.stride() != param.stride():
                        optimizer.state[param][name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


@dataclass
class ProcessState:
    """One training process's random states (``random_state()``) and task state (``training_state()``)."""

    random: dict[str, torch.Tensor]
    random_meta: dict[str, Any]
    task: dict[str, torch.Tensor]

    def to_tensors(self) -> dict[str, torch.Tensor]:
        return {**prefixed(RNG_PREFIX, self.random), **prefixed(TASK_PREFIX, self.task)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], random_meta: dict[str, Any]) -> ProcessState:
        return cls(unprefixed(RNG_PREFIX, tensors), random_meta, unprefixed(TASK_PREFIX, tensors))


@dataclass
class TrainingState:
    """What ``state.safetensors`` holds to resume a run; ``to_tensors`` / ``from_tensors`` are its key
    layout (see the module's docstring)."""

    step: int
    samples_seen: int
    lr_scale: float = 1.0
    world_size: int = 1
    optimizers: dict[str, OptimizerState] = field(default_factory=dict)
    processes: list[ProcessState] = field(default_factory=list)
    """By rank (when read: those the file holds)."""
    best: dict[str, Any] | None = None
    ema: dict[str, Any] | None = None
    ema_raw: dict[str, torch.Tensor] = field(default_factory=dict)
    """The trained weights of the networks whose EMA ``model.safetensors`` holds."""

    def process(self, rank: int) -> ProcessState | None:
        """Args: rank: a process. Returns: its saved state, or None (the run had fewer processes)."""
        return self.processes[rank] if rank < len(self.processes) else None

    def optimizer_tensors(self) -> dict[str, torch.Tensor]:
        """Returns: the optimizers' tensors under their keys (``optim/<group>/...``)."""
        return {
            k: v
            for name, o in self.optimizers.items()
            for k, v in prefixed(optimizer_prefix(name), o.tensors).items()
        }

    def to_tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Returns: the tensors of ``state.safetensors`` and its metadata ``meta``."""
        tensors = {**prefixed(RAW_PREFIX, self.ema_raw), **self.optimizer_tensors()}
        meta: dict[str, Any] = {
            "step": self.step,
            "samples_seen": self.samples_seen,
            "lr_scale": self.lr_scale,
            "world_size": self.world_size,
            "param_groups": {name: o.param_groups for name, o in self.optimizers.items()},
            "optimizers": {name: o.kind for name, o in self.optimizers.items()},
            "best": self.best,
            **({"ema": self.ema} if self.ema is not None else {}),
        }
        for rank, process in enumerate(self.processes):
            tensors.update(prefixed(rank_prefix(rank), process.to_tensors()))
            if rank == 0:
                meta["rng"] = process.random_meta
            else:
                meta.setdefault("rng_ranks", {})[str(rank)] = process.random_meta
        return tensors, meta

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> TrainingState:
        """Args: tensors, meta: what ``load_training_state`` read. Returns: the state they hold."""
        world_size, kinds = int(meta.get("world_size", 1)), meta.get("optimizers", {})
        optimizers = {
            name: OptimizerState(kinds.get(name), unprefixed(optimizer_prefix(name), tensors), groups)
            for name, groups in meta.get("param_groups", {}).items()
        }
        processes = []
        for rank in range(world_size):
            random_meta = meta.get("rng") if rank == 0 else meta.get("rng_ranks", {}).get(str(rank))
            if random_meta is None:
                break
            processes.append(ProcessState.from_tensors(unprefixed(rank_prefix(rank), tensors), random_meta))
        return cls(
            step=int(meta["step"]),
            samples_seen=int(meta.get("samples_seen", 0)),
            lr_scale=float(meta.get("lr_scale", 1.0)),
            world_size=world_size,
            optimizers=optimizers,
            processes=processes,
            best=meta.get("best"),
            ema=meta.get("ema"),
            ema_raw=unprefixed(RAW_PREFIX, tensors),
        )


def write_checkpoint(run_dir: Path, model: ModelCheckpoint, state: TrainingState, keep: int = 3) -> Path:
    """Write ``checkpoints/step_N`` (``model.step``) atomically and keep only the newest ``keep``
    checkpoints (0: all). A failed write (disk full, read-only folder) is a StorageError; it leaves no
    temporary folder behind and the earlier checkpoints untouched.

    Args:
        run_dir: the run folder.
        model: the weights and architecture (``model.safetensors``).
        state: what resuming needs (``state.safetensors``).
        keep: how many checkpoints to keep.

    Returns:
        The checkpoint folder.
    """
    return _write_folder(Path(run_dir), model, state.to_tensors(), keep)


def save_checkpoint(
    run_dir, step, task, task_kwargs, config, weights, state, state_meta, exports, keep=3, model_meta=None
) -> Path:
    """``write_checkpoint`` in the form ``translate.inference.junyanz`` still calls: the model's fields,
    a free-form state (``state``, ``state_meta``) and more metadata (``model_meta``)."""
    extra = dict(model_meta or {})
    model = ModelCheckpoint(
        task, task_kwargs, config, step, weights, exports, ema=extra.pop("ema", None), extra=extra
    )
    return _write_folder(Path(run_dir), model, (state, state_meta), keep)


def _write_folder(
    run_dir: Path, model: ModelCheckpoint, state: tuple[dict, dict[str, Any]], keep: int
) -> Path:
    folder = run_dir / "checkpoints"
    final = folder / f"step_{model.step:07d}"
    tmp = folder / f".tmp-{final.name}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".tmp-step_*"):  # left by a kill mid-write (one writer per run)
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir()
        _write_tensors(model.weights, tmp / MODEL_FILE, model.metadata())
        _write_tensors(state[0], tmp / STATE_FILE, {"format": FORMAT, "meta": json.dumps(state[1])})
        sums = "".join(f"{file_sha256(tmp / name)}  {name}\n" for name in (MODEL_FILE, STATE_FILE))
        (tmp / SUMS_FILE).write_text(sums)
        fsync(tmp / SUMS_FILE)
        fsync(tmp)
        put_in_place(tmp, final)
    except (OSError, SafetensorError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StorageError(
            f"could not write checkpoint {final}: {reason}; the earlier checkpoints are intact"
        ) from None
    for stale in checkpoint_dirs(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def _write_tensors(tensors: dict[str, torch.Tensor], file: Path, metadata: dict[str, str]) -> None:
    save_file(_contiguous(tensors), file, metadata=metadata)
    fsync(file)


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
        raise CorruptCheckpointError(f"{exc}{older_checkpoints_hint(file)}") from None


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
    return ModelCheckpoint.from_metadata(meta, weights, file)


def load_training_state(checkpoint_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors of a checkpoint's ``state.safetensors`` and its metadata ``meta``, checked against its
    hash (``TrainingState.from_tensors`` reads them)."""
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
    state: TrainingState


def read_resumable(folder: Path) -> Resumable:
    """One checkpoint folder's weights and training state, checked against its hashes.

    Args:
        folder: a checkpoint folder (``checkpoints/step_N``).
    """
    model = _read_model_file(folder / MODEL_FILE)
    return Resumable(folder, model, TrainingState.from_tensors(*load_training_state(folder)))


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


_stored_configs: dict[tuple, dict[str, Any]] = {}


def stored_config(run_dir: str | Path) -> tuple[dict[str, Any], Path] | None:
    """The resolved config stored in the newest checkpoint of a run whose files match their hashes (the
    one ``--resume`` continues from), read from ``model.safetensors``'s metadata without its tensors, and
    that checkpoint's folder; None when the run has no intact checkpoint.

    Args:
        run_dir: the run folder.
    """
    for folder in reversed(checkpoint_dirs(Path(run_dir))):
        file = folder / MODEL_FILE
        try:
            key = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in (file, folder / STATE_FILE))
            if key not in _stored_configs:  # each file hashed once per process while it is unchanged
                verify_file(file)
                verify_file(folder / STATE_FILE)
                with safe_open(str(file), framework="pt") as handle:
                    meta = handle.metadata() or {}
                config = json.loads(meta["config"])
                if not isinstance(config, dict):
                    raise ValueError("no config")
                _stored_configs[key] = config
            return _stored_configs[key], folder
        except (CheckpointError, SafetensorError, OSError, KeyError, ValueError):
            continue
    return None


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load a state dict, turning missing/unexpected keys or shape mismatches into one clear error."""
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(f"{source} does not fit this {type(module).__name__} model: {first}") from None
