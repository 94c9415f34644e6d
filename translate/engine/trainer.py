"""The one training loop: it runs the update schedule a task declares (``Task.schedule``) with the
optimizers, loss weights, LR schedule, seeding, logging, samples, checkpoints and resuming it owns.
Tasks only build networks and return named, unweighted losses."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import os
import random
import shlex
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from translate.config import Config
from translate.data.device_augment import DeviceAugment
from translate.data.sampler import ResumableSampler
from translate.engine import checkpoint as ckpt
from translate.engine import distributed
from translate.engine.device import resolve_device
from translate.engine.ema import EMA, RAW_PREFIX
from translate.engine.grid import save_grid
from translate.engine.optimizers import OptimizerGroup, build_optimizer_groups
from translate.engine.schedules import lr_factor
from translate.errors import CheckpointError, ConfigError, StorageError, TrainingDiverged
from translate.layers.init import init_weights
from translate.registry import DATASETS, TASKS
from translate.tasks.base import Batch, Task, Update

log = logging.getLogger("translate")

SQUARE_CROPS = ("resize_and_crop", "crop", "scale_width_and_crop")
"""Preprocess modes that feed the networks image_size x image_size crops."""
LOG_PREFIXES = {"generator": "G", "discriminator": "D"}
"""Short names of the usual optimizer groups in logs (``G/adv``, ``D/gp``); other groups log as named."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop training after the current step, with a checkpoint (Ctrl-C; schedulers, docker stop)."""
MAX_ROLLBACKS = 3
"""``train.on_nan: rollback`` gives up after this many rollbacks to one checkpoint."""
SIZE_ERRORS = (
    "spatial element",
    "value per channel",
    "Kernel size can't be greater",
    "Padding size should be less",
    "Output size is too small",
)
"""What PyTorch says when images are too small for a network (read on the first step only)."""


class NonFinite(Exception):
    """A loss or weight is NaN or infinite (internal: ``fit`` stops or rolls back)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class WorkerSignals:
    """The data-loader workers' ``worker_init_fn``: while the main process trains, they leave Ctrl-C and
    SIGTERM to it (it stops after the step and then shuts them down), so that a signal sent to the whole
    process group (a terminal's Ctrl-C, ``kill -- -PGID``, systemd) does not kill them mid-step. Outside
    ``training`` a SIGTERM ends them as usual (the data loader's and multiprocessing's shutdown use it)."""

    def __init__(self) -> None:
        self.training = multiprocessing.Value("b", 0, lock=False)

    def __call__(self, worker_id: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._terminate)

    def _terminate(self, signum: int, frame: Any) -> None:
        if not self.training.value:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)


def move_batch(batch: Batch, device: torch.device) -> Batch:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
    }


def channels_last_images(batch: Batch) -> Batch:
    """The batch's image tensors (4-D) in the channels_last memory format; other entries as they are."""

    def convert(v: Any) -> Any:
        is_image = isinstance(v, torch.Tensor) and v.dim() == 4
        return v.contiguous(memory_format=torch.channels_last) if is_image else v

    return {k: convert(v) for k, v in batch.items()}


def compile_networks(groups: dict[str, list[nn.Module]]) -> None:
    """``torch.compile`` each trained network in place: its state dict keeps its keys, so checkpoints,
    exports and EMA see the same parameters; calls other than ``forward`` stay eager."""
    for modules in groups.values():
        for module in modules:
            module.compile()


class Trainer:
    """Trains ``config.task`` into ``run_dir``; ``resume=True`` continues from its latest checkpoint.

    ``dataset`` replaces the one the config describes (benchmarks and tests pass in-memory data); it must
    index like the built-in ones and provide ``task_kwargs()``. ``eval_dataset``: the held-out data of
    ``train.eval_every`` (default: the config's held-out split, or ``dataset`` when one is given).

    Under torchrun (or in an initialised process group) each process trains a slice of every batch:
    ``train.batch_size`` is the batch of one process (see ``translate.engine.distributed``).
    """

    def __init__(
        self,
        config: Config,
        run_dir: str | Path,
        resume: bool = False,
        dataset: torch.utils.data.Dataset | None = None,
        world: distributed.World | None = None,
        eval_dataset: torch.utils.data.Dataset | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.world = world or distributed.setup()
        self.device = self.world.place(resolve_device(config.train.device, "train.device"))
        seed_everything(config.train.seed)

        self.dataset = dataset or DATASETS.build(TASKS.get(config.task).dataset, data=config.data, train=True)
        self.task_kwargs = {**self.dataset.task_kwargs(), **config.model}
        self.task: Task = TASKS.build({"name": config.task, **self.task_kwargs}).to(self.device)
        self.task.set_loss_weights(config.loss_weights)
        if config.data.preprocess in SQUARE_CROPS:
            check_image_size(self.task, config.data.image_size)
        groups = self.task.optimizer_groups()
        for modules in groups.values():
            for module in modules:
                init_weights(module, config.train.init, config.train.init_gain)
        self._sync_batch_norm = self._spread()
        self._channels_last = self._use_channels_last()
        if config.train.compile:
            if not hasattr(torch.compiler, "set_stance") and any(
                getattr(m, "uses_gradient_penalty", False) for m in self.task.modules()
            ):
                raise ConfigError(
                    "train.compile with a gradient penalty needs torch >= 2.6 (to run the critic eagerly "
                    f"for the penalty's double backward); this is torch {torch.__version__}"
                )
            compile_networks(groups)
        self.schedule: list[Update] = self.task.schedule(config.train.n_critic)
        unknown = {u.group for u in self.schedule} - set(groups)
        if unknown:
            raise ConfigError(
                f"{config.task}'s schedule updates unknown group(s) {', '.join(sorted(unknown))}"
            )
        try:
            self.optimizers: dict[str, OptimizerGroup] = build_optimizer_groups(
                groups, config.optim, {"lr": config.train.lr, "betas": tuple(config.train.betas)}
            )
        except ValueError as exc:  # torch's own checks of optimizer options (betas, eps, momentum)
            raise ConfigError(f"optim: {exc}") from None
        self.ema = self._build_ema()
        """The moving average of the generator's weights (``train.ema_decay``), or None."""
        self.evaluator = self._build_evaluator(dataset, eval_dataset)
        """Scores the exports every ``train.eval_every`` steps, or None."""
        self.best: dict[str, Any] | None = None
        """The best evaluation so far by ``train.best_metric``: metric, value, step, mode."""
        self.step = 0
        self.samples_seen = 0
        self.lr_scale = 1.0
        """Multiplies the scheduled LR: halved by each ``on_nan: rollback``; stored in checkpoints."""
        self.stop_requested = False
        """Set by Ctrl-C / SIGTERM (or by code): ``fit`` stops after the current step with a checkpoint."""
        self.stop_signal: signal.Signals | None = None
        """The signal that stopped ``fit`` early, if one did (with several processes: sent to any of them)."""
        self._signalled = False
        """This process got a stop signal (a second one stops at once)."""
        self._rollbacks: dict[int, int] = {}
        self._finite_step = 0
        """Losses are known to be finite up to this step (the last check)."""
        self._saved_step: int | None = None
        self._worker_signals = WorkerSignals()
        self._tensorboard_writer = self._tensorboard_writer_class()
        self._tensorboard: Any = None
        """The TensorBoard writer, made at the first log line (inside the run folder)."""
        self._reset_window()
        if resume:
            self._resume()

    def _spread(self) -> bool:
        """With several processes: batch norm synchronised across them on GPUs, rank 0's initial weights
        everywhere, and a random stream of each process's own (rank 0 keeps the single-process one).
        Returns whether batch norm is synchronised."""
        world = self.world
        if world.size == 1:
            return False
        batch = self.config.train.batch_size
        log.info(
            "training on %d processes (%d node(s)): batch %d per process, %d in all",
            world.size,
            world.nodes,
            batch,
            batch * world.size,
        )
        has_batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in self.task.modules())
        synced = has_batch_norm and self.device.type == "cuda"
        if synced:
            nn.SyncBatchNorm.convert_sync_batchnorm(self.task)
        elif has_batch_norm:
            log.warning(
                "batch norm: each process normalises its own batch of %d (PyTorch's SyncBatchNorm runs on "
                "GPUs only), so the run differs from one process with batch %d",
                batch,
                batch * world.size,
            )
        world.broadcast_module(self.task)
        if world.rank:
            seed_everything(distributed.rank_seed(self.config.train.seed, world.rank))
        return synced

    def _use_channels_last(self) -> bool:
        """``train.channels_last`` on CUDA: the networks' weights in that format now, batches as they come."""
        if not self.config.train.channels_last:
            return False
        if self.device.type != "cuda":
            log.warning(
                "train.channels_last is ignored on %s: InstanceNorm2d's backward in channels_last returns "
                "wrong input gradients there at batch 1",
                self.device.type,
            )
            return False
        self.task.to(memory_format=torch.channels_last)
        return True

    def _build_ema(self) -> EMA | None:
        """The EMA of the ``generator`` group's modules (else of the exported networks), built after the
        processes' weights were made equal, so it is the same on every process."""
        train = self.config.train
        if train.ema_decay is None:
            return None
        groups = self.task.optimizer_groups()
        if "generator" in groups:
            modules, what = groups["generator"], "the generator optimizer group"
        else:
            exports = self.task.exports().values()
            modules = list({id(m): m for m in (self.task.get_submodule(e.module) for e in exports)}.values())
            what = "the exported networks"
        log.info("EMA of %s's weights, decay %g", what, train.ema_decay)
        ema = EMA(self.task, modules, train.ema_decay, train.ema_warmup)
        averaged = {id(t) for t in ema.live}
        self._ema_groups = {  # the groups whose updates move the averaged weights
            name
            for name, group in self.optimizers.items()
            if any(id(p) in averaged for p in group.parameters)
        }
        return ema

    def _build_evaluator(self, dataset: Any, eval_dataset: Any) -> Any:
        """The evaluation of ``train.eval_every`` on the held-out split (built without touching the random
        state); a ``best_metric`` it does not log is a ConfigError."""
        train = self.config.train
        if not train.eval_every:
            return None
        from translate.engine.evaluation import Evaluator, preserved_random_state

        with preserved_random_state():
            held_out = eval_dataset if eval_dataset is not None else dataset
            if held_out is None:
                kind = TASKS.get(self.config.task).dataset
                held_out = DATASETS.build(kind, data=self.config.data, train=False)
            evaluator = Evaluator(
                self.task,
                held_out,
                train.eval_images,
                train.eval_metrics,
                train.eval_classifier,
                train.seed,
                self.device,
            )
        if train.best_metric is not None and train.best_metric not in evaluator.names:
            raise ConfigError(
                f"train.best_metric {train.best_metric} is not evaluated; this run logs "
                f"{', '.join(evaluator.names) or 'nothing'} (set train.eval_metrics or train.eval_classifier)"
            )
        return evaluator

    @contextlib.contextmanager
    def exported_weights(self) -> Iterator[None]:
        """The task with the weights its checkpoints export inside the block: the EMA when it is on."""
        with self.ema.swapped() if self.ema is not None else contextlib.nullcontext():
            yield

    # ----------------------------------------------------------------------------------------- data
    def _batches(self) -> Iterator[Batch]:
        """Endless batches, continuing from ``samples_seen`` so a resumed run sees the same data. With
        several processes, this one's slice of each global batch (``samples_seen`` counts them all)."""
        batch_size, world = self.config.train.batch_size, self.world
        sampler = ResumableSampler(
            len(self.dataset),
            seed=self.config.train.seed,
            start=self.samples_seen,
            rank=world.rank,
            world_size=world.size,
            batch_size=batch_size,
        )
        loader = DataLoader(
            self.dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.config.data.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=self.config.data.num_workers > 0,
            worker_init_fn=self._worker_signals,
            # The loader draws worker seeds from this, not from the global RNG that
            # checkpoints restore; augmentation is seeded per sample by the sampler.
            generator=torch.Generator().manual_seed(self.config.train.seed),
        )
        # augment_on=device: crop/flip/jitter here, seeded by (train.seed, samples seen before the batch)
        augment = None
        if self.config.data.augment_on == "device":
            augment = DeviceAugment(self.config.data, self.config.train.seed)
        for batch in loader:
            seen = self.samples_seen + world.rank * batch_size  # where this process's slice starts
            self.samples_seen += batch_size * world.size
            batch = move_batch(batch, self.device)
            batch = augment(batch, seen) if augment is not None else batch
            yield channels_last_images(batch) if self._channels_last else batch

    def _sample_batch(self) -> Batch | None:
        """Fixed images for the sample grids: the first items, without augmentation (rank 0's, and every
        process's when synchronised batch norm makes them all take part in the grid's forward pass)."""
        if not (self.world.is_main or self._sync_batch_norm):
            return None
        items = [self.dataset[i] for i in range(min(self.config.train.num_samples, len(self.dataset)))]
        batch = move_batch(torch.utils.data.default_collate(items), self.device)
        return channels_last_images(batch) if self._channels_last else batch

    # ----------------------------------------------------------------------------------------- steps
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.train.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _update(self, group: OptimizerGroup, losses: dict[str, torch.Tensor]) -> None:
        group.optimizer.zero_grad(set_to_none=True)
        sum(self.task.loss_weights[name] * value for name, value in losses.items()).backward()
        self.world.average_gradients(group.parameters)
        group.step()

    def _freeze_all_but(self, group: str) -> None:
        """Only ``group``'s parameters take gradients: the others are constants of this update."""
        for name, other in self.optimizers.items():
            for p in other.parameters:
                p.requires_grad_(name == group)

    def train_step(self, batches: Iterator[Batch]) -> dict[str, torch.Tensor]:
        """One pass over the task's schedule; returns each loss averaged over its group's repeats, as
        detached tensors (no host sync here: ``fit`` reads them at log time)."""
        batch: Batch | None = None
        outputs: dict[str, torch.Tensor] | None = None
        outputs_have_graph = False
        logged: dict[str, torch.Tensor] = {}
        for update in self.schedule:
            group = self.optimizers[update.group]
            prefix = LOG_PREFIXES.get(update.group, update.group)
            sums: dict[str, torch.Tensor] = {}
            self._freeze_all_but(update.group)
            for repeat in range(update.repeats):
                if batch is None or repeat > 0:
                    batch, outputs = next(batches), None
                if outputs is None or (update.through_generator and not outputs_have_graph):
                    with torch.set_grad_enabled(update.through_generator), self._autocast():
                        outputs = self.task(batch)
                    outputs_have_graph = update.through_generator
                with self._autocast():
                    losses = self.task.losses(update.group, batch, outputs)
                self._update(group, losses)
                if self.ema is not None and update.group in self._ema_groups:
                    self.ema.update()
                for name, value in losses.items():
                    value = value.detach()
                    sums[name] = sums[name] + value if name in sums else value
            logged.update({f"{prefix}/{k}": v / update.repeats for k, v in sums.items()})
        for other in self.optimizers.values():
            for p in other.parameters:
                p.requires_grad_(True)
        return logged

    def _set_learning_rate(self) -> float:
        """Every group's base LR times the schedule's factor at this step (and ``lr_scale``); returns the
        factor x train.lr. The schedule spans ``train.schedule_steps`` (default: ``train.steps``)."""
        train = self.config.train
        total = train.schedule_steps or train.steps
        factor = lr_factor(self.step, total, train.schedule, train.decay_steps, train.step_size, train.gamma)
        factor *= self.lr_scale
        for group in self.optimizers.values():
            group.set_lr(factor)
        return train.lr * factor

    # ----------------------------------------------------------------------------------------- run
    @property
    def interrupted(self) -> bool:
        """True when the last ``fit`` stopped before ``train.steps`` (Ctrl-C, SIGTERM, ``stop_requested``)."""
        return self.stop_requested and self.step < self.config.train.steps

    def resume_command(self) -> str:
        command = f"translate train {self.config.task} --run-dir {shlex.quote(str(self.run_dir))} --resume"
        world = self.world
        if world.size == 1:
            return command
        if os.environ.get(distributed.NPROC_ENV) == str(world.size):
            return f"{command} --nproc {world.size}"
        if world.nodes == 1:
            return f"torchrun --nproc_per_node {world.size} -m {command}"
        return f"torchrun --nnodes {world.nodes} --nproc_per_node {world.local_size} ... -m {command}"

    def fit(self) -> Path:
        """Train until ``train.steps`` and return the run folder.

        Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and returns early: ``interrupted``
        is then True and ``stop_signal`` says which signal (a second Ctrl-C stops at once, a second
        SIGTERM kills). A NaN or infinite loss or weight (checked at each log line and before each
        checkpoint) raises TrainingDiverged before anything non-finite is saved, or with
        ``train.on_nan: rollback`` reloads the last good checkpoint and halves the learning rate.
        A failed write (disk full) raises StorageError."""
        train = self.config.train
        self.world.on_main(self._prepare_run_dir)
        log.info("one step: %s", describe_schedule(self.schedule, self.optimizers))
        sample_batch = self._sample_batch()
        self._reset_window()
        first_step = self.step
        self.task.train()
        with (
            self._stop_signals(),
            tqdm(
                total=train.steps,
                initial=self.step,
                desc=self.config.task,
                unit="step",
                dynamic_ncols=True,
                disable=not self.world.is_main,
            ) as bar,
        ):
            while True:
                with contextlib.closing(self._batches()) as batches:  # closing shuts the workers down
                    try:
                        while self.step < train.steps and not self._stop_agreed():
                            self._fit_step(batches, sample_batch, bar, first=self.step == first_step)
                        if self._saved_step != self.step:
                            self.save_checkpoint()
                        break
                    except NonFinite as exc:
                        self._roll_back_or_stop(str(exc))
                        bar.n = self.step
                        bar.refresh()
        if self.interrupted:
            name = self.stop_signal.name if self.stop_signal else "request"
            log.warning(
                "interrupted (%s) at step %d; checkpoint saved. Continue with: %s",
                name,
                self.step,
                self.resume_command(),
            )
        return self.run_dir

    def _prepare_run_dir(self) -> None:
        with self._storage("the run folder"):
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / "samples").mkdir(exist_ok=True)
            (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
            self._truncate_log(self.step)

    def _stop_agreed(self) -> bool:
        """``stop_requested``, agreed between the processes at each step: a stop (a signal) on any of
        them stops every one after the same step."""
        if self.world.size == 1:
            return self.stop_requested
        mine = int(self.stop_signal) if self.stop_signal is not None else int(self.stop_requested)
        agreed = self.world.max(mine)
        if agreed:
            self.stop_requested = True
            if agreed > 1 and self.stop_signal is None:
                self.stop_signal = signal.Signals(agreed)
        return agreed > 0  # not stop_requested: a signal during the all-reduce waits for the next step

    def _fit_step(self, batches: Iterator[Batch], sample_batch: Batch, bar: tqdm, first: bool) -> None:
        """One step, then the log line, evaluation, samples and checkpoint that fall on it."""
        train = self.config.train
        lr = self._set_learning_rate()
        try:
            logged = self.train_step(batches)
        except (ValueError, RuntimeError) as exc:
            if first and any(text in str(exc) for text in SIZE_ERRORS):
                raise ConfigError(
                    f"data.image_size {self.config.data.image_size} is too small for these networks "
                    f"({str(exc).splitlines()[0]}); use larger images or shallower networks"
                ) from None
            raise
        for name, value in logged.items():
            self._window[name] = self._window[name] + value if name in self._window else value
        self._window_steps += 1
        self.step += 1
        bar.update(1)
        if self.step % train.log_every == 0 or self.step == train.steps:
            means = self._check_window()
            bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()})
            start_time, start_step = self._window_start
            record = {
                "step": self.step,
                "lr": lr,
                **means,
                "steps_per_s": (self.step - start_step) / max(time.time() - start_time, 1e-9),
            }
            self.world.on_main(lambda: self._append_log(record))
            self._reset_window()
        if self.evaluator is not None and (self.step % train.eval_every == 0 or self.step == train.steps):
            self.evaluate_and_keep_best()
        if self.step % train.sample_every == 0 or self.step == train.steps:
            with self._storage("a sample grid"):
                self.save_samples(sample_batch)
        if self.step % train.checkpoint_every == 0 and self._saved_step != self.step:
            self.save_checkpoint()

    def evaluate(self) -> dict[str, float]:
        """The evaluation metrics of the exported weights (the EMA when on), in eval mode; the random state
        and the weights are left as they were. With several processes rank 0 scores (every process when
        synchronised batch norm needs them all in a forward pass) and every process gets its values."""

        def run() -> dict[str, float]:
            self.task.eval()
            try:
                with self.exported_weights():
                    return self.evaluator.evaluate(self.task)
            finally:
                self.task.train()

        values = run() if self._sync_batch_norm else None
        return self.world.on_main(lambda: values if values is not None else run())

    def evaluate_and_keep_best(self) -> dict[str, float]:
        """Evaluate, log ``eval/<metric>`` to log.jsonl and the console, and when ``train.best_metric``
        improved, write this step's checkpoint and keep it as ``checkpoints/best``."""
        train = self.config.train
        values = self.evaluate()
        record = {"step": self.step, **{k: v if math.isfinite(v) else None for k, v in values.items()}}
        self.world.on_main(lambda: self._append_log(record))
        improved = False
        metric = train.best_metric
        if metric is not None:
            from translate.engine.evaluation import best_mode

            mode, value = best_mode(metric, train.best_mode), values.get(metric, math.nan)
            previous = self.best["value"] if self.best is not None else None
            if math.isfinite(value) and (
                previous is None or (value < previous if mode == "min" else value > previous)
            ):
                self.best = {"metric": metric, "value": value, "step": self.step, "mode": mode}
                improved = True
        shown = ", ".join(f"{k[5:]} {v:.4g}" for k, v in values.items())
        best = ""
        if self.best is not None:
            best = f" (best {self.best['metric'][5:]} {self.best['value']:.4g} at step {self.best['step']})"
        self.world.on_main(lambda: log.info("eval at step %d: %s%s", self.step, shown, best))
        if improved:
            if self._saved_step != self.step:
                self.save_checkpoint()
            with self._storage("the best checkpoint"):
                self.world.on_main(lambda: ckpt.keep_as_best(self.run_dir, self.step, self.best))
        return values

    def _append_log(self, record: dict[str, Any]) -> None:
        with self._storage("log.jsonl"), open(self.run_dir / "log.jsonl", "a") as log_file:
            log_file.write(json.dumps(record) + "\n")
        if self._tensorboard_writer is not None:
            with self._storage("the TensorBoard log"):
                if self._tensorboard is None:
                    self._tensorboard = self._tensorboard_writer(str(self.run_dir / "tensorboard"))
                for name, value in record.items():
                    if name != "step" and isinstance(value, int | float):
                        self._tensorboard.add_scalar(name, value, record["step"])
                self._tensorboard.flush()

    def _tensorboard_writer_class(self) -> Any:
        """``SummaryWriter`` when ``train.tensorboard`` is on (rank 0), else None; a missing package is a
        ConfigError before training starts."""
        if not self.config.train.tensorboard or not self.world.is_main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                'train.tensorboard needs the tensorboard package: pip install "translate-gan[tensorboard]"'
            ) from None
        return SummaryWriter

    # ------------------------------------------------------------------------------------- faults
    def _reset_window(self) -> None:
        """Start a log interval: losses add up on the device until the next log line."""
        self._window: dict[str, torch.Tensor] = {}
        self._window_steps = 0
        self._window_start = (time.time(), self.step)

    def _window_sums(self) -> dict[str, torch.Tensor]:
        """The losses added up since the last log line; with several processes, their mean over the
        processes (one all-reduce: every process then decides alike)."""
        if self.world.size == 1 or not self._window:
            return self._window
        reduced = self.world.mean(torch.stack([v.float() for v in self._window.values()]))
        return dict(zip(self._window, reduced))

    def _check_window(self) -> dict[str, float]:
        """The mean of each loss since the last log line (the host sync of the log interval); raises
        NonFinite naming the losses that are NaN or infinite."""
        means = {k: v.item() / self._window_steps for k, v in self._window_sums().items()}
        bad = [f"{k} became {v}" for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise NonFinite(f"{', '.join(bad)} between steps {self._finite_step} and {self.step}")
        self._finite_step = self.step
        return means

    def _check_weights(self, tensors: dict[str, torch.Tensor], what: str) -> None:
        """Weights (or optimizer state) are checked before saving: known finite since the last save."""
        bad = ckpt.non_finite(tensors)
        if bad is not None:
            kind = "nan" if torch.isnan(tensors[bad]).any() else "inf"
            since = self._saved_step or 0
            raise NonFinite(f"{what} {bad} became {kind} between steps {since} and {self.step}")

    def _roll_back_or_stop(self, reason: str) -> None:
        """Stop with a TrainingDiverged that says how to go on, or (``on_nan: rollback``) reload the last
        good checkpoint with half the learning rate."""
        good = self._newest_intact()
        if self.config.train.on_nan == "rollback" and good is not None:
            tries = self._rollbacks[good.model.step] = self._rollbacks.get(good.model.step, 0) + 1
            if tries <= MAX_ROLLBACKS:
                self._load(good)
                self.lr_scale *= 0.5**tries
                self._truncate_log(self.step)
                self._reset_window()
                log.warning(
                    "%s: rolled back to step %d with the learning rate x%g", reason, self.step, self.lr_scale
                )
                return
            reason += f", again after {MAX_ROLLBACKS} rollbacks to step {good.model.step}"
        if good is None:
            raise TrainingDiverged(
                f"{reason}; no checkpoint was saved before: lower the learning rate (--set train.lr=...)"
            )
        raise TrainingDiverged(
            f"{reason}; the last good checkpoint is step {good.model.step}: {self.resume_command()} "
            f"--on-nan rollback (continues from it, halving the learning rate where it diverges)"
        )

    @contextlib.contextmanager
    def _storage(self, what: str) -> Iterator[None]:
        """A failed write of a run's file becomes one StorageError that says how to resume."""
        try:
            yield
        except (OSError, StorageError) as exc:
            if isinstance(exc, StorageError):
                reason = str(exc)
            else:
                reason = f"could not write {what} in {self.run_dir}: {exc.strerror or exc}"
            latest = ckpt.latest_checkpoint(self.run_dir) if self.run_dir.is_dir() else None
            hint = f"; then resume with: {self.resume_command()}" if latest is not None else ""
            raise StorageError(f"{reason}{hint}") from None

    def _truncate_log(self, step: int) -> None:
        """Drop the log lines after ``step`` (and any line cut short by a kill): they are trained again,
        so after resuming every step appears once."""
        path = self.run_dir / "log.jsonl"
        if not path.is_file():
            return
        kept = []
        lines = path.read_text().splitlines()
        for line in lines:
            try:
                if int(json.loads(line)["step"]) <= step:
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        if len(kept) < len(lines):
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text("".join(line + "\n" for line in kept))
            tmp.replace(path)
            log.info("log.jsonl: dropped %d lines after step %d", len(lines) - len(kept), step)

    # ------------------------------------------------------------------------------------- signals
    @contextlib.contextmanager
    def _stop_signals(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM set ``stop_requested`` while training (handlers live in the main thread)."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {signum: signal.signal(signum, self._request_stop) for signum in STOP_SIGNALS}
        self._worker_signals.training.value = 1
        try:
            yield
        finally:
            self._worker_signals.training.value = 0
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self._signalled:  # the second signal to this process stops at once
            if signum == signal.SIGTERM and self.world.size > 1:
                return  # torchrun and a scheduler may each send one; torchrun kills after its timeout
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self._signalled = True
        self.stop_requested = True
        self.stop_signal = signal.Signals(signum)

    def save_samples(self, sample_batch: Batch | None) -> Path:
        """A grid of the task's visuals in eval mode, on a forked RNG: sampling never changes training.
        Rank 0 writes it (processes without a ``sample_batch`` skip the forward pass)."""
        visuals = None
        if sample_batch is not None:
            devices = [self.device] if self.device.type == "cuda" else []
            self.task.eval()
            with torch.random.fork_rng(devices=devices), self.exported_weights():
                torch.manual_seed(self.config.train.seed)
                visuals = self.task.visuals(sample_batch)
            self.task.train()
        path = self.run_dir / "samples" / f"step_{self.step:07d}.png"
        return self.world.on_main(lambda: self._write_samples(visuals, path))

    def _write_samples(self, visuals: dict[str, torch.Tensor], path: Path) -> Path:
        """The grid, then ``loss_curves.png`` from log.jsonl (curves that cannot be drawn: a debug note)."""
        save_grid(visuals, path)
        from translate.engine.report import write_loss_curves

        try:
            write_loss_curves(self.run_dir)
        except OSError:
            raise
        except Exception as exc:  # a picture must never stop training
            log.debug("loss_curves.png not drawn: %s", exc)
        return path

    # ----------------------------------------------------------------------------------------- state
    def save_checkpoint(self) -> Path:
        """Write a checkpoint of this step; raises NonFinite (and writes nothing) when a loss since the last
        log line, a weight or an optimizer moment is NaN or infinite. With several processes every one
        calls it: rank 0 writes, with each process's random states and task state (image pools)."""
        if self._window_steps:
            pending = torch.stack([v.float() for v in self._window_sums().values()])
            if not bool(torch.isfinite(pending).all()):
                self._check_window()
        own = self._process_state()
        states = self.world.gather(own)
        folder = self.world.on_main(lambda: self._write_checkpoint(states or [own]))
        self._finite_step = self._saved_step = self.step
        return folder

    def _process_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """This process's random states and task state (``rng/...``, ``task/...``), on the CPU."""
        tensors, rng_meta = ckpt.random_state()
        tensors.update({f"task/{k}": v.detach().cpu() for k, v in self.task.training_state().items()})
        return tensors, rng_meta

    def _write_checkpoint(self, states: list[tuple[dict[str, torch.Tensor], dict[str, Any]]]) -> Path:
        weights = self.task.state_dict()
        self._check_weights(weights, "weight")
        state: dict[str, torch.Tensor] = {}
        model_meta: dict[str, Any] = {}
        if self.ema is not None:  # the average is exported; the trained weights go on in the state
            averaged = self.ema.state_dict()
            self._check_weights(averaged, "EMA weight")
            state.update({f"{RAW_PREFIX}{k}": weights[k] for k in averaged})
            weights = {**weights, **averaged}
            model_meta["ema"] = self.ema.meta()
        meta: dict[str, Any] = {
            "step": self.step,
            "samples_seen": self.samples_seen,
            "lr_scale": self.lr_scale,
            "world_size": self.world.size,
            "param_groups": {},
            "optimizers": {name: type(group.optimizer).__name__ for name, group in self.optimizers.items()},
            "best": self.best,
            **model_meta,
        }
        for name, group in self.optimizers.items():
            tensors, param_groups = ckpt.optimizer_to_tensors(f"optim/{name}", group.optimizer)
            state.update(tensors)
            meta["param_groups"][name] = param_groups
        self._check_weights(state, "optimizer state")
        # rank 0's random states and task state under rng/ and task/ (what one process reads), rank r's
        # under rank<r>/rng/ and rank<r>/task/
        for rank, (tensors, rng_meta) in enumerate(states):
            state.update({f"{rank_prefix(rank)}{k}": v for k, v in tensors.items()})
            if rank == 0:
                meta["rng"] = rng_meta
            else:
                meta.setdefault("rng_ranks", {})[str(rank)] = rng_meta
        with self._storage("a checkpoint"):
            folder = ckpt.save_checkpoint(
                self.run_dir,
                self.step,
                self.config.task,
                self.task_kwargs,
                self.config.to_dict(),
                weights,
                state,
                meta,
                exports={name: export.to_dict() for name, export in self.task.exports().items()},
                keep=self.config.train.keep_checkpoints,
                model_meta=model_meta,
            )
        return folder

    def _newest_intact(self) -> ckpt.Resumable | None:
        """The newest intact checkpoint (damaged newer ones set aside with a warning). With several
        processes rank 0 chooses it and every process reads that one."""
        found: list[ckpt.Resumable | None] = [None]

        def choose() -> Path | None:
            found[0] = ckpt.newest_intact(self.run_dir, set_aside=True)
            return found[0].folder if found[0] is not None else None

        folder = self.world.on_main(choose)
        if folder is None or self.world.is_main:
            return found[0]
        if not folder.is_dir():
            raise CheckpointError(
                f"{folder} is not visible to process {self.world.rank}: with several nodes, --run-dir "
                "must be on a filesystem that every node shares"
            )
        return ckpt.read_resumable(folder)

    def _resume(self) -> None:
        """Continue from the newest intact checkpoint (damaged newer ones are set aside with a warning)."""
        good = self._newest_intact()
        if good is None:
            damaged = sorted((self.run_dir / "checkpoints").glob("corrupt-step_*"))
            detail = f" (only damaged ones: {', '.join(p.name for p in damaged)})" if damaged else ""
            raise CheckpointError(f"--resume: {self.run_dir} holds no checkpoint to resume from{detail}")
        if good.model.task != self.config.task:
            raise CheckpointError(f"{self.run_dir} holds a {good.model.task} run, not {self.config.task}")
        saved = int(good.meta.get("world_size", 1))
        if saved != self.world.size:
            log.warning(
                "%s was trained by %d process(es) and resumes on %d: the data goes on from sample %d with "
                "%d images per batch (was %d); processes beyond the saved ones start with new random "
                "states and image pools, so the run is no longer identical to an uninterrupted one",
                self.run_dir,
                saved,
                self.world.size,
                good.meta["samples_seen"],
                self.config.train.batch_size * self.world.size,
                good.model.config.get("train", {}).get("batch_size", self.config.train.batch_size) * saved,
            )
        self._load(good)
        log.info("resumed %s from step %d", self.run_dir, self.step)

    def _load(self, checkpoint: ckpt.Resumable) -> None:
        """Weights, optimizer moments, random states, the task's state, step and data position; the
        configured learning rates stay (``--set train.lr=...`` on resume takes effect). Each process
        restores its own random states and task state; one the checkpoint lacks (it was written by fewer
        processes) starts afresh."""
        latest, tensors, meta = checkpoint.folder, checkpoint.tensors, checkpoint.meta
        exported = checkpoint.model.weights
        raw = {k[len(RAW_PREFIX) :]: v for k, v in tensors.items() if k.startswith(RAW_PREFIX)}
        ckpt.load_weights(self.task, {**exported, **raw}, latest)  # the trained weights, not their EMA
        if self.ema is not None and meta.get("ema"):
            self.ema.load(exported, meta["ema"]["updates"])
        elif self.ema is not None:
            self.ema.reset()
            log.info(
                "the EMA of the generator's weights starts at step %d (the checkpoint has none)", meta["step"]
            )
        elif raw:
            log.info("train.ema_decay is off: training goes on from the trained weights, without their EMA")
        best = meta.get("best")
        self.best = best if best and best.get("metric") == self.config.train.best_metric else None
        for name, group in self.optimizers.items():
            if name not in meta["param_groups"]:
                raise CheckpointError(f"{latest} holds no optimizer state for group {name!r}")
            saved = meta.get("optimizers", {}).get(name, type(group.optimizer).__name__)
            if saved != type(group.optimizer).__name__:
                raise CheckpointError(
                    f"{latest}: the saved {name} optimizer state does not fit this run's optim.{name} "
                    f"({saved} was saved, {type(group.optimizer).__name__} is configured)"
                )
            base_lrs = [g["initial_lr"] for g in group.optimizer.param_groups]
            try:
                ckpt.optimizer_from_tensors(
                    f"optim/{name}", group.optimizer, tensors, meta["param_groups"][name]
                )
            except (ValueError, KeyError, RuntimeError) as exc:
                raise CheckpointError(
                    f"{latest}: the saved {name} optimizer state does not fit this run's optim.{name} "
                    f"(was the optimizer changed?): {exc}"
                ) from None
            for param_group, lr in zip(group.optimizer.param_groups, base_lrs):
                param_group["initial_lr"] = lr
        rank = self.world.rank
        if rank < int(meta.get("world_size", 1)):
            prefix = rank_prefix(rank)
            own = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            ckpt.set_random_state(own, meta["rng"] if rank == 0 else meta["rng_ranks"][str(rank)])
            self.task.load_training_state({k[5:]: v for k, v in own.items() if k.startswith("task/")})
        else:
            seed_everything(distributed.rank_seed(self.config.train.seed + meta["step"], rank))
            self.task.load_training_state({})
        self.step, self.samples_seen = meta["step"], meta["samples_seen"]
        self.lr_scale = float(meta.get("lr_scale", 1.0))
        self._finite_step = self._saved_step = self.step


def rank_prefix(rank: int) -> str:
    """Where a checkpoint keeps process ``rank``'s random states and task state: rank 0's at the top (as
    a single process's), the others' under ``rank<r>/``."""
    return f"rank{rank}/" if rank else ""


def describe_schedule(schedule: list[Update], optimizers: dict[str, OptimizerGroup]) -> str:
    """``discriminator x5 (RMSprop, lr 5e-05, clip_weights), then generator x1 (Adam, lr 0.0002)``."""
    parts = []
    for update in schedule:
        group = optimizers[update.group]
        extras = [f"lr {group.optimizer.defaults['lr']:g}"]
        if group.clip_grad_norm is not None:
            extras.append(f"grad norm <= {group.clip_grad_norm:g}")
        extras += [getattr(c, "__qualname__", "constraint").split(".")[0] for c in group.constraints]
        name = type(group.optimizer).__name__
        parts.append(f"{update.group} x{update.repeats} ({name}, {', '.join(extras)})")
    return ", then ".join(parts)


def check_image_size(task: Task, image_size: int) -> None:
    """Every network that declares a ``size_multiple`` must get images that are a multiple of it."""
    for name, module in task.named_modules():
        multiple = getattr(module, "size_multiple", None)
        if multiple and (image_size % multiple or image_size < multiple):
            sizes = ", ".join(str(multiple * k) for k in (1, 2, 3, 4))
            hint = ""
            if hasattr(module, "num_downs"):
                depth = image_size.bit_length() - 1
                hint = (
                    f"; choose a U-Net that fits: --set model.{name}.name=unet_128 (128 px), unet_256 "
                    f"(256 px), or --set 'model.{name}={{name: unet, num_downs: N}}' for multiples of 2**N"
                    + (f" (num_downs: {depth} here)" if 2**depth == image_size else "")
                )
            raise ConfigError(
                f"data.image_size {image_size} does not fit the {name} network: it takes multiples of "
                f"{multiple} ({sizes}, ...){hint}"
            )
