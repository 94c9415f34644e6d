"""The one training loop: it runs the update schedule a task declares (``Task.schedule``) with the
optimizers, loss weights, LR schedule, seeding, logging, samples, checkpoints and resuming it owns.
Tasks only build networks and return named, unweighted losses."""

from __future__ import annotations

import contextlib
import logging
import math
import shlex
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from translate.config import Config
from translate.engine import checkpoint as ckpt
from translate.engine import distributed, resume, setup
from translate.engine.batches import TrainingData
from translate.engine.best import best_after, describe_evaluation
from translate.engine.device import resolve_device
from translate.engine.ema import EMA
from translate.engine.guards import (
    LossWindow,
    NonFinite,
    Rollbacks,
    StopRequests,
    image_size_error,
)
from translate.engine.optimizers import OptimizerGroup, describe_schedule
from translate.engine.random_state import preserved_random_state, seed_everything
from translate.engine.run_folder import RunFolder, keep_as_best
from translate.engine.schedules import lr_factor, steps_per_epoch
from translate.errors import ConfigError
from translate.layers.init import init_weights
from translate.registry import DATASETS, TASKS
from translate.tasks.base import Batch, Task, Update

log = logging.getLogger("translate")

LOG_PREFIXES = {"generator": "G", "discriminator": "D"}
"""Short names of the usual optimizer groups in logs (``G/adv``, ``D/gp``); other groups log as named."""


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
        self._stops = StopRequests(self.world)
        seed_everything(config.train.seed)
        self.dataset = dataset or DATASETS.build(TASKS.get(config.task).dataset, data=config.data, train=True)
        self.task_kwargs = setup.task_arguments(config, self.dataset.task_kwargs())
        self.task: Task = setup.build_task(config, self.task_kwargs, self.device)
        groups = self.task.optimizer_groups()
        self._prepare_networks(groups)
        self._amp = setup.use_amp(config.train, self.device)
        """``train.amp`` where it pays: bf16 autocast over fp32 weights."""
        self.schedule: list[Update] = setup.build_schedule(self.task, config, groups)
        self.optimizers: dict[str, OptimizerGroup] = setup.build_optimizers(config, groups)
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
        self._rollbacks = Rollbacks(config.train.on_nan)
        self._window = LossWindow(self.world)
        """The losses since the last log line."""
        self._saved_step: int | None = None
        self.run_folder = RunFolder(self.run_dir, self.world, config.train.tensorboard, self.resume_command)
        """Writes config.yaml, log.jsonl, TensorBoard, sample grids and loss curves (rank 0)."""
        if resume:
            self._resume()

    # ------------------------------------------------------------------------------------ setup
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
        channels_last = setup.use_channels_last(self.task, train, self.device)
        self.data = TrainingData(
            self.dataset, self.config, self.world, self.device, self._stops.workers, channels_last
        )
        if train.compile:
            setup.compile_networks(self.task, groups)

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
        with preserved_random_state():
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
        """Endless batches from the data position ``samples_seen``, which each batch moves on."""
        for batch in self.data.batches(self.samples_seen):
            self.samples_seen += self.data.global_batch
            yield batch

    def _sample_batch(self) -> Batch | None:
        """The sample grids' images: rank 0's, and every process's when synchronised batch norm makes them
        all take part in the grid's forward pass."""
        return self.data.fixed_batch() if self.world.is_main or self._sync_batch_norm else None

    # ------------------------------------------------------------------------------------ steps
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self._amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
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
                        if self.saved_step != self.step:
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
        if self.step % train.checkpoint_every == 0 and self.saved_step != self.step:
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
        train = self.config.train
        mode = self.evaluator.best_mode(train.best_metric, train.best_mode) if train.best_metric else None
        better = best_after(self.best, values, train.best_metric, mode, self.step)
        improved = better is not self.best
        self.best = better
        shown = describe_evaluation(values, better)
        self.world.on_main(lambda: log.info("eval at step %d: %s", self.step, shown))
        if improved:
            if self.saved_step != self.step:
                self.save_checkpoint()
            self.run_folder.write(
                "the best checkpoint", lambda: keep_as_best(self.run_dir, self.step, self.best)
            )
        return values

    # ------------------------------------------------------------------------------------ state
    def save_checkpoint(self) -> Path:
        """Write a checkpoint of this step; raises NonFinite (and writes nothing) when a loss since the last
        log line, a weight or an optimizer moment is NaN or infinite. With several processes every one
        calls it: rank 0 writes, with each process's random states and task state (image pools).

        Returns:
            The checkpoint folder.
        """
        self._window.check(self.step)
        own = resume.process_state(self.task)
        states = self.world.gather(own)

        def write() -> Path:
            model, state = resume.capture(self, states or [own])
            return ckpt.write_checkpoint(self.run_dir, model, state, keep=self.config.train.keep_checkpoints)

        folder = self.run_folder.write("a checkpoint", write)
        self.saved_step = self.step
        return folder

    @property
    def saved_step(self) -> int | None:
        """The step of the newest checkpoint written or restored (its losses are known to be finite)."""
        return self._saved_step

    @saved_step.setter
    def saved_step(self, step: int | None) -> None:
        self._window.finite_step = self._saved_step = step

    def _resume(self) -> None:
        """Continue from the newest intact checkpoint (damaged newer ones are set aside with a warning)."""
        resume.restore(self, resume.resumable(self))
        log.info("resumed %s from step %d", self.run_dir, self.step)

    def _roll_back_or_stop(self, reason: str) -> None:
        """Stop with a TrainingDiverged that says how to go on, or (``on_nan: rollback``) reload the last
        good checkpoint with half the learning rate."""
        good = resume.newest_intact(self)
        tries = self._rollbacks.next_try(reason, good.model.step if good else None, self.resume_command)
        resume.restore(self, good)
        self.lr_scale *= 0.5**tries
        self.run_folder.truncate_log(self.step)
        self._window.reset(self.step)
        log.warning("%s: rolled back to step %d with the learning rate x%g", reason, self.step, self.lr_scale)
