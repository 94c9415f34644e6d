"""The one training loop: it runs the update schedule a task declares (``Task.schedule``) with the
optimizers, loss weights, LR schedule, seeding, logging, samples, checkpoints and resuming it owns.
Tasks only build networks and return named, unweighted losses."""

from __future__ import annotations

import contextlib
import logging
import math
import random
import shlex
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from translate.config import Config
from translate.data.device_augment import DeviceAugment
from translate.data.sampler import ResumableSampler
from translate.data.transforms import RANDOM_CROP_MODES
from translate.engine import checkpoint as ckpt
from translate.engine import distributed
from translate.engine.device import resolve_device
from translate.engine.ema import EMA
from translate.engine.guards import (
    LossWindow,
    NonFinite,
    Rollbacks,
    StopRequests,
    check_compile,
    check_finite,
    check_image_size,
    image_size_error,
)
from translate.engine.optimizers import OptimizerGroup, build_optimizer_groups
from translate.engine.run_folder import RunFolder, keep_as_best
from translate.engine.schedules import lr_factor, steps_per_epoch
from translate.errors import CheckpointError, ConfigError
from translate.layers.init import init_weights
from translate.registry import DATASETS, TASKS
from translate.tasks.base import Batch, Task, Update

log = logging.getLogger("translate")

LOG_PREFIXES = {"generator": "G", "discriminator": "D"}
"""Short names of the usual optimizer groups in logs (``G/adv``, ``D/gp``); other groups log as named."""


def seed_everything(seed: int) -> None:
    """Args: seed: the seed of torch's, Python's and NumPy's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def move_batch(batch: Batch, device: torch.device) -> Batch:
    """Args: batch: a batch; device: where to. Returns: its tensors on ``device``, the rest as it is."""
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

    Args:
        config: the resolved config.
        run_dir: the run folder (``translate.engine.run_folder``).
        resume: continue from the newest intact checkpoint in ``run_dir``.
        dataset: the training data instead of the config's.
        world: the training processes (default: from torchrun's environment, or one process).
        eval_dataset: the held-out data of ``train.eval_every``.
        evaluation: builds the scorer of ``train.eval_every`` from ``(task, held_out, train_config,
            device)`` (``translate.evaluation.Evaluator.for_training``); it must give ``names``,
            ``evaluate(task)`` and ``best_mode(metric, mode)``. Needed only when ``eval_every`` is set.
    """

    def __init__(
        self,
        config: Config,
        run_dir: str | Path,
        resume: bool = False,
        dataset: torch.utils.data.Dataset | None = None,
        world: distributed.World | None = None,
        eval_dataset: torch.utils.data.Dataset | None = None,
        evaluation: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.world = world or distributed.setup()
        self.device = self.world.place(resolve_device(config.train.device, "train.device"))
        seed_everything(config.train.seed)
        self.dataset = dataset or DATASETS.build(TASKS.get(config.task).dataset, data=config.data, train=True)
        self.task_kwargs = {**self.dataset.task_kwargs(), **config.model}
        self.task: Task = self._build_task()
        groups = self.task.optimizer_groups()
        self._prepare_networks(groups)
        self.schedule: list[Update] = self._build_schedule(groups)
        self.optimizers: dict[str, OptimizerGroup] = self._build_optimizers(groups)
        self._ema_groups: set[str] = set()
        """The optimizer groups whose updates move the weights under EMA."""
        self.ema = self._build_ema()
        """The moving average of the generator's weights (``train.ema_decay``), or None."""
        self.evaluator = self._build_evaluator(evaluation, dataset, eval_dataset)
        """Scores the exports every ``train.eval_every`` steps, or None."""
        self.best: dict[str, Any] | None = None
        """The best evaluation so far by ``train.best_metric``: metric, value, step, mode."""
        self.step = 0
        self.samples_seen = 0
        self.lr_scale = 1.0
        """Multiplies the scheduled LR: halved by each ``on_nan: rollback``; stored in checkpoints."""
        self._stops = StopRequests(self.world)
        self._rollbacks = Rollbacks(config.train.on_nan)
        self._window = LossWindow(self.world)
        """The losses since the last log line."""
        self._saved_step: int | None = None
        self.run_folder = RunFolder(self.run_dir, self.world, config.train.tensorboard, self.resume_command)
        """Writes config.yaml, log.jsonl, TensorBoard, sample grids and loss curves (rank 0)."""
        if resume:
            self._resume()

    # ------------------------------------------------------------------------------------ setup
    def _build_task(self) -> Task:
        """The task on the training device, with the configured loss weights; images that do not fit its
        networks are a ConfigError."""
        config = self.config
        task = TASKS.build({"name": config.task, **self.task_kwargs}).to(self.device)
        task.set_loss_weights(config.loss_weights)
        if config.data.preprocess in RANDOM_CROP_MODES:
            check_image_size(task, config.data.image_size)
        return task

    def _prepare_networks(self, groups: dict[str, list[nn.Module]]) -> None:
        """Initialise the trained networks' weights, spread them over the processes, and put them in
        channels_last and compile them when the config asks for it."""
        train = self.config.train
        for modules in groups.values():
            for module in modules:
                init_weights(module, train.init, train.init_gain)
        self._sync_batch_norm = self.world.spread(self.task, self.device, train.batch_size)
        if self.world.rank:  # a random stream of each process's own; rank 0 keeps the single-process one
            seed_everything(distributed.rank_seed(train.seed, self.world.rank))
        self._channels_last = self._use_channels_last()
        if train.compile:
            check_compile(self.task)
            compile_networks(groups)

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

    def _build_schedule(self, groups: dict[str, list[nn.Module]]) -> list[Update]:
        """The task's updates of one step; one of a group the task does not have is a ConfigError."""
        schedule = self.task.schedule(self.config.train.n_critic)
        unknown = {u.group for u in schedule} - set(groups)
        if unknown:
            raise ConfigError(
                f"{self.config.task}'s schedule updates unknown group(s) {', '.join(sorted(unknown))}"
            )
        return schedule

    def _build_optimizers(self, groups: dict[str, list[nn.Module]]) -> dict[str, OptimizerGroup]:
        """One optimizer per group (``optim``, else ``train.lr`` / ``train.betas``)."""
        train = self.config.train
        try:
            return build_optimizer_groups(
                groups, self.config.optim, {"lr": train.lr, "betas": tuple(train.betas)}
            )
        except ValueError as exc:  # torch's own checks of optimizer options (betas, eps, momentum)
            raise ConfigError(f"optim: {exc}") from None

    def _build_ema(self) -> EMA | None:
        """The EMA of the ``generator`` group's modules (else of the exported networks), built after the
        processes' weights were made equal, so it is the same on every process."""
        train = self.config.train
        if train.ema_decay is None:
            return None
        ema = EMA.of_task(self.task, train.ema_decay, train.ema_warmup)
        self._ema_groups = ema.moved_by({name: group.parameters for name, group in self.optimizers.items()})
        return ema

    def _build_evaluator(self, evaluation: Callable[..., Any] | None, dataset: Any, eval_dataset: Any) -> Any:
        """The scorer of ``train.eval_every`` on the held-out split; a ``best_metric`` it does not log is a
        ConfigError."""
        train = self.config.train
        if not train.eval_every:
            return None
        if evaluation is None:
            raise ConfigError(
                "train.eval_every needs an evaluation: train through translate.api.train (or the CLI), or "
                "pass Trainer(..., evaluation=translate.evaluation.Evaluator.for_training)"
            )
        with ckpt.preserved_random_state():
            held_out = eval_dataset if eval_dataset is not None else dataset
            if held_out is None:
                kind = TASKS.get(self.config.task).dataset
                held_out = DATASETS.build(kind, data=self.config.data, train=False)
            evaluator = evaluation(self.task, held_out, train, self.device)
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

    # ------------------------------------------------------------------------------------- data
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
            worker_init_fn=self._stops.workers,
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

    # ------------------------------------------------------------------------------------ steps
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
        per_epoch = steps_per_epoch(
            len(self.dataset), train.batch_size * self.world.size, [u.repeats for u in self.schedule]
        )
        factor = lr_factor(
            self.step,
            total,
            train.schedule,
            train.decay_steps,
            train.step_size,
            train.gamma,
            train.decay_every,
            per_epoch,
        )
        factor *= self.lr_scale
        for group in self.optimizers.values():
            group.set_lr(factor)
        return train.lr * factor

    # -------------------------------------------------------------------------------------- run
    @property
    def stop_requested(self) -> bool:
        """Set by Ctrl-C / SIGTERM (or by code): ``fit`` stops after the current step with a checkpoint."""
        return self._stops.requested

    @stop_requested.setter
    def stop_requested(self, value: bool) -> None:
        self._stops.requested = value

    @property
    def stop_signal(self) -> signal.Signals | None:
        """The signal that stopped ``fit`` early, if one did (with several processes: sent to any of them)."""
        return self._stops.signal

    @stop_signal.setter
    def stop_signal(self, value: signal.Signals | None) -> None:
        self._stops.signal = value

    @property
    def interrupted(self) -> bool:
        """True when the last ``fit`` stopped before ``train.steps`` (Ctrl-C, SIGTERM, ``stop_requested``)."""
        return self.stop_requested and self.step < self.config.train.steps

    def resume_command(self) -> str:
        """Returns: the command that continues this run (as its processes were started)."""
        run_dir = shlex.quote(str(self.run_dir))
        return self.world.launch_command(f"translate train {self.config.task} --run-dir {run_dir} --resume")

    def fit(self) -> Path:
        """Train until ``train.steps`` and return the run folder.

        Ctrl-C or SIGTERM finishes the current step, saves a checkpoint and returns early: ``interrupted``
        is then True and ``stop_signal`` says which signal (a second Ctrl-C stops at once, a second
        SIGTERM kills). A NaN or infinite loss or weight (checked at each log line and before each
        checkpoint) raises TrainingDiverged before anything non-finite is saved, or with
        ``train.on_nan: rollback`` reloads the last good checkpoint and halves the learning rate.
        A failed write (disk full) raises StorageError."""
        with self.run_folder.lock():  # one writer per run folder, released however training ends
            return self._fit()

    def _fit(self) -> Path:
        train = self.config.train
        self.run_folder.prepare(self.config.to_dict(), self.step)
        log.info("one step: %s", describe_schedule(self.schedule, self.optimizers))
        sample_batch = self._sample_batch()
        self._window.reset(self.step)
        first_step = self.step
        self.task.train()
        with self._stops.handled(), self._progress_bar() as bar:
            while True:
                with contextlib.closing(self._batches()) as batches:  # closing shuts the workers down
                    try:
                        while self.step < train.steps and not self._stops.agreed():
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

    def _progress_bar(self) -> tqdm:
        """The progress bar of ``fit`` (rank 0's)."""
        return tqdm(
            total=self.config.train.steps,
            initial=self.step,
            desc=self.config.task,
            unit="step",
            dynamic_ncols=True,
            disable=not self.world.is_main,
        )

    def _fit_step(self, batches: Iterator[Batch], sample_batch: Batch, bar: tqdm, first: bool) -> None:
        """One step, then the log line, evaluation, samples and checkpoint that fall on it."""
        train = self.config.train
        lr = self._set_learning_rate()
        try:
            logged = self.train_step(batches)
        except (ValueError, RuntimeError) as exc:
            error = image_size_error(exc, self.config.data.image_size) if first else None
            if error is not None:
                raise error from None
            raise
        self._window.add(logged)
        self.step += 1
        bar.update(1)
        last = self.step == train.steps
        if self.step % train.log_every == 0 or last:
            self._log_losses(lr, bar)
        if self.evaluator is not None and (self.step % train.eval_every == 0 or last):
            self.evaluate_and_keep_best()
        if self.step % train.sample_every == 0 or last:
            self.save_samples(sample_batch)
        if self.step % train.checkpoint_every == 0 and self._saved_step != self.step:
            self.save_checkpoint()

    def _log_losses(self, lr: float, bar: tqdm) -> None:
        """The log line of the interval that ends at this step (raises NonFinite for a NaN loss)."""
        means = self._window.means(self.step)
        bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()})
        steps_per_s = self._window.steps_per_s(self.step)
        self.run_folder.append_log({"step": self.step, "lr": lr, **means, "steps_per_s": steps_per_s})
        self._window.reset(self.step)

    def save_samples(self, sample_batch: Batch | None) -> Path:
        """A grid of the task's visuals in eval mode, on a forked RNG: sampling never changes training.
        Rank 0 writes it (processes without a ``sample_batch`` skip the forward pass).

        Args:
            sample_batch: the fixed images of the grids (``None`` on processes that do not draw them).

        Returns:
            The grid's path (``samples/step_N.png``).
        """
        visuals = None
        if sample_batch is not None:
            devices = [self.device] if self.device.type == "cuda" else []
            self.task.eval()
            with torch.random.fork_rng(devices=devices), self.exported_weights():
                torch.manual_seed(self.config.train.seed)
                visuals = self.task.visuals(sample_batch)
            self.task.train()
        return self.run_folder.write_samples(visuals, self.step)

    # ------------------------------------------------------------------------------- evaluation
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
        improved, write this step's checkpoint and keep it as ``checkpoints/best``.

        Returns:
            The metrics, by name (``eval/psnr``).
        """
        values = self.evaluate()
        self.run_folder.append_log(
            {"step": self.step, **{k: v if math.isfinite(v) else None for k, v in values.items()}}
        )
        improved = self._keep_if_best(values)
        shown = ", ".join(f"{k[5:]} {v:.4g}" for k, v in values.items())
        best = ""
        if self.best is not None:
            best = f" (best {self.best['metric'][5:]} {self.best['value']:.4g} at step {self.best['step']})"
        self.world.on_main(lambda: log.info("eval at step %d: %s%s", self.step, shown, best))
        if improved:
            if self._saved_step != self.step:
                self.save_checkpoint()
            self.run_folder.write(
                "the best checkpoint", lambda: keep_as_best(self.run_dir, self.step, self.best)
            )
        return values

    def _keep_if_best(self, values: dict[str, float]) -> bool:
        """Make ``values`` the ``best`` when they improve ``train.best_metric``; returns whether they did."""
        metric = self.config.train.best_metric
        if metric is None:
            return False
        mode = self.evaluator.best_mode(metric, self.config.train.best_mode)
        value = values.get(metric, math.nan)
        previous = self.best["value"] if self.best is not None else None
        if math.isfinite(value) and (
            previous is None or (value < previous if mode == "min" else value > previous)
        ):
            self.best = {"metric": metric, "value": value, "step": self.step, "mode": mode}
            return True
        return False

    # ------------------------------------------------------------------------------------ state
    def save_checkpoint(self) -> Path:
        """Write a checkpoint of this step; raises NonFinite (and writes nothing) when a loss since the last
        log line, a weight or an optimizer moment is NaN or infinite. With several processes every one
        calls it: rank 0 writes, with each process's random states and task state (image pools).

        Returns:
            The checkpoint folder.
        """
        self._window.check(self.step)
        own = self._process_state()
        states = self.world.gather(own)
        folder = self.run_folder.write("a checkpoint", lambda: self._write_checkpoint(states or [own]))
        self._window.finite_step = self._saved_step = self.step
        return folder

    def _process_state(self) -> ckpt.ProcessState:
        """This process's random states and task state, on the CPU."""
        random_state, random_meta = ckpt.random_state()
        task_state = {k: v.detach().cpu() for k, v in self.task.training_state().items()}
        return ckpt.ProcessState(random_state, random_meta, task_state)

    def _write_checkpoint(self, processes: list[ckpt.ProcessState]) -> Path:
        """Rank 0's part of ``save_checkpoint``: check the weights, moments and EMA, then write."""
        since = self._saved_step or 0
        weights = self.task.state_dict()
        check_finite(weights, "weight", since, self.step)
        exports = {name: export.to_dict() for name, export in self.task.exports().items()}
        config = self.config
        model = ckpt.ModelCheckpoint(
            config.task, self.task_kwargs, config.to_dict(), self.step, weights, exports
        )
        state = ckpt.TrainingState(
            self.step, self.samples_seen, self.lr_scale, self.world.size, processes=processes, best=self.best
        )
        if self.ema is not None:  # the average is exported; the trained weights go on in the state
            averaged = self.ema.state_dict()
            check_finite(averaged, "EMA weight", since, self.step)
            state.ema_raw = {k: weights[k] for k in averaged}
            model.weights = {**weights, **averaged}
            model.ema = state.ema = self.ema.meta()
        state.optimizers = {name: ckpt.OptimizerState.of(g.optimizer) for name, g in self.optimizers.items()}
        check_finite(state.optimizer_tensors(), "optimizer state", since, self.step)
        return ckpt.write_checkpoint(self.run_dir, model, state, keep=config.train.keep_checkpoints)

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
        saved = good.state.world_size
        if saved != self.world.size:
            log.warning(
                "%s was trained by %d process(es) and resumes on %d: the data goes on from sample %d with "
                "%d images per batch (was %d); processes beyond the saved ones start with new random "
                "states and image pools, so the run is no longer identical to an uninterrupted one",
                self.run_dir,
                saved,
                self.world.size,
                good.state.samples_seen,
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
        state, exported = checkpoint.state, checkpoint.model.weights
        ckpt.load_weights(self.task, {**exported, **state.ema_raw}, checkpoint.folder)  # not their EMA
        if self.ema is not None:
            self.ema.resume(exported, state.ema, state.step)
        elif state.ema_raw:
            log.info("train.ema_decay is off: training goes on from the trained weights, without their EMA")
        best = state.best
        self.best = best if best and best.get("metric") == self.config.train.best_metric else None
        for name, group in self.optimizers.items():
            if name not in state.optimizers:
                raise CheckpointError(f"{checkpoint.folder} holds no optimizer state for group {name!r}")
            base_lrs = [g["initial_lr"] for g in group.optimizer.param_groups]  # the configured ones stay
            state.optimizers[name].load_into(group.optimizer, checkpoint.folder, name)
            for param_group, lr in zip(group.optimizer.param_groups, base_lrs):
                param_group["initial_lr"] = lr
        process, rank = state.process(self.world.rank), self.world.rank
        if process is not None:
            ckpt.set_random_state(process.random, process.random_meta)
            self.task.load_training_state(process.task)
        else:
            seed_everything(distributed.rank_seed(self.config.train.seed + state.step, rank))
            self.task.load_training_state({})
        self.step, self.samples_seen, self.lr_scale = state.step, state.samples_seen, state.lr_scale
        self._window.finite_step = self._saved_step = self.step

    def _roll_back_or_stop(self, reason: str) -> None:
        """Stop with a TrainingDiverged that says how to go on, or (``on_nan: rollback``) reload the last
        good checkpoint with half the learning rate."""
        good = self._newest_intact()
        tries = self._rollbacks.next_try(reason, good.model.step if good else None, self.resume_command)
        self._load(good)
        self.lr_scale *= 0.5**tries
        self.run_folder.truncate_log(self.step)
        self._window.reset(self.step)
        log.warning("%s: rolled back to step %d with the learning rate x%g", reason, self.step, self.lr_scale)


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
