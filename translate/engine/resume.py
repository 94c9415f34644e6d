"""What a checkpoint holds of a ``Trainer``, and how a trainer comes back from one, written side by side:
``capture`` makes the checkpoint's two parts from the trainer and ``restore`` puts them back (the key
layout of those parts is ``translate.engine.checkpoint``'s)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from translate.engine import checkpoint as ckpt
from translate.engine import distributed
from translate.engine.guards import check_finite
from translate.engine.random_state import random_state, seed_everything, set_random_state
from translate.errors import CheckpointError

if TYPE_CHECKING:
    from translate.engine.trainer import Trainer
    from translate.tasks.base import Task

log = logging.getLogger("translate")


def process_state(task: Task) -> ckpt.ProcessState:
    """Args: task: this process's task. Returns: this process's random states and task state, on the CPU."""
    tensors, meta = random_state()
    task_state = {k: v.detach().cpu() for k, v in task.training_state().items()}
    return ckpt.ProcessState(tensors, meta, task_state)


def capture(
    trainer: Trainer, processes: list[ckpt.ProcessState]
) -> tuple[ckpt.ModelCheckpoint, ckpt.TrainingState]:
    """The checkpoint of the trainer's step (rank 0's part of ``Trainer.save_checkpoint``); a NaN or
    infinite weight, EMA weight or optimizer moment raises NonFinite first.

    Args:
        trainer: the trainer.
        processes: every process's ``process_state``, by rank.

    Returns:
        ``model.safetensors``'s and ``state.safetensors``'s content.
    """
    since, step = trainer.saved_step or 0, trainer.step
    weights = trainer.task.state_dict()
    check_finite(weights, "weight", since, step)
    exports = {name: export.to_dict() for name, export in trainer.task.exports().items()}
    config = trainer.config
    model = ckpt.ModelCheckpoint(config.task, trainer.task_kwargs, config.to_dict(), step, weights, exports)
    state = ckpt.TrainingState(step, trainer.samples_seen, trainer.lr_scale, trainer.world.size)
    state.processes, state.best = processes, trainer.best
    if trainer.ema is not None:  # the average is exported; the trained weights go on in the state
        averaged = trainer.ema.state_dict()
        check_finite(averaged, "EMA weight", since, step)
        state.ema_raw = {k: weights[k] for k in averaged}
        model.weights = {**weights, **averaged}
        model.ema = state.ema = trainer.ema.meta()
    state.optimizers = {name: ckpt.OptimizerState.of(g.optimizer) for name, g in trainer.optimizers.items()}
    check_finite(state.optimizer_tensors(), "optimizer state", since, step)
    return model, state


def newest_intact(trainer: Trainer) -> ckpt.Resumable | None:
    """The newest intact checkpoint of the trainer's run (damaged newer ones set aside with a warning).
    With several processes rank 0 chooses it and every process reads that one."""
    world = trainer.world
    found: list[ckpt.Resumable | None] = [None]

    def choose():
        found[0] = ckpt.newest_intact(trainer.run_dir, set_aside=True)
        return found[0].folder if found[0] is not None else None

    folder = world.on_main(choose)
    if folder is None or world.is_main:
        return found[0]
    if not folder.is_dir():
        raise CheckpointError(
            f"{folder} is not visible to process {world.rank}: with several nodes, --run-dir "
            "must be on a filesystem that every node shares"
        )
    return ckpt.read_resumable(folder)


def resumable(trainer: Trainer) -> ckpt.Resumable:
    """The checkpoint ``--resume`` continues from: a CheckpointError when the run holds none or holds
    another task's; a warning when it was trained by another number of processes."""
    good = newest_intact(trainer)
    run_dir, config, world = trainer.run_dir, trainer.config, trainer.world
    if good is None:
        damaged = sorted((run_dir / "checkpoints").glob("corrupt-step_*"))
        detail = f" (only damaged ones: {', '.join(p.name for p in damaged)})" if damaged else ""
        raise CheckpointError(f"--resume: {run_dir} holds no checkpoint to resume from{detail}")
    if good.model.task != config.task:
        raise CheckpointError(f"{run_dir} holds a {good.model.task} run, not {config.task}")
    saved = good.state.world_size
    if saved != world.size:
        log.warning(
            "%s was trained by %d process(es) and resumes on %d: the data goes on from sample %d with "
            "%d images per batch (was %d); processes beyond the saved ones start with new random "
            "states and image pools, so the run is no longer identical to an uninterrupted one",
            run_dir,
            saved,
            world.size,
            good.state.samples_seen,
            config.train.batch_size * world.size,
            good.model.config.get("train", {}).get("batch_size", config.train.batch_size) * saved,
        )
    return good


def restore(trainer: Trainer, checkpoint: ckpt.Resumable) -> None:
    """Put weights, optimizer moments, random states, the task's state, step and data position back;
    the configured learning rates stay (``--set train.lr=...`` on resume takes effect). Each process
    restores its own random states and task state; one the checkpoint lacks (it was written by fewer
    processes) starts afresh."""
    state, exported = checkpoint.state, checkpoint.model.weights
    ckpt.load_weights(trainer.task, {**exported, **state.ema_raw}, checkpoint.folder)  # not their EMA
    if trainer.ema is not None:
        trainer.ema.resume(exported, state.ema, state.step)
    elif state.ema_raw:
        log.info("train.ema_decay is off: training goes on from the trained weights, without their EMA")
    best = state.best
    trainer.best = best if best and best.get("metric") == trainer.config.train.best_metric else None
    for name, group in trainer.optimizers.items():
        if name not in state.optimizers:
            raise CheckpointError(f"{checkpoint.folder} holds no optimizer state for group {name!r}")
        base_lrs = [g["initial_lr"] for g in group.optimizer.param_groups]  # the configured ones stay
        state.optimizers[name].load_into(group.optimizer, checkpoint.folder, name)
        for param_group, lr in zip(group.optimizer.param_groups, base_lrs):
            param_group["initial_lr"] = lr
    process, rank = state.process(trainer.world.rank), trainer.world.rank
    if process is not None:
        set_random_state(process.random, process.random_meta)
        trainer.task.load_training_state(process.task)
    else:
        seed_everything(distributed.rank_seed(trainer.config.train.seed + state.step, rank))
        trainer.task.load_training_state({})
    trainer.step, trainer.samples_seen, trainer.lr_scale = state.step, state.samples_seen, state.lr_scale
    trainer.saved_step = state.step
