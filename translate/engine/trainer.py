"""The one training loop: it runs the update schedule a task declares (``Task.schedule``) with the
optimizers, loss weights, LR schedule, seeding, logging, samples, checkpoints and resuming it owns.
Tasks only build networks and return named, unweighted losses."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader
from tqdm import tqdm

from translate.config import Config
from translate.data.device_augment import DeviceAugment
from translate.data.sampler import ResumableSampler
from translate.engine import checkpoint as ckpt
from translate.engine.grid import save_grid
from translate.engine.optimizers import OptimizerGroup, build_optimizer_groups
from translate.engine.schedules import lr_factor
from translate.errors import CheckpointError, ConfigError
from translate.layers.init import init_weights
from translate.registry import DATASETS, TASKS
from translate.tasks.base import Batch, Task, Update

log = logging.getLogger("translate")

SQUARE_CROPS = ("resize_and_crop", "crop", "scale_width_and_crop")
"""Preprocess modes that feed the networks image_size x image_size crops."""
LOG_PREFIXES = {"generator": "G", "discriminator": "D"}
"""Short names of the usual optimizer groups in logs (``G/adv``, ``D/gp``); other groups log as named."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but CUDA is not available here; use cpu or auto")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def move_batch(batch: Batch, device: torch.device) -> Batch:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
    }


class Trainer:
    """Trains ``config.task`` into ``run_dir``; ``resume=True`` continues from its latest checkpoint.

    ``dataset`` replaces the one the config describes (benchmarks and tests pass in-memory data); it must
    index like the built-in ones and provide ``task_kwargs()``.
    """

    def __init__(
        self,
        config: Config,
        run_dir: str | Path,
        resume: bool = False,
        dataset: torch.utils.data.Dataset | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.device = resolve_device(config.train.device)
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
        self.schedule: list[Update] = self.task.schedule(config.train.n_critic)
        unknown = {u.group for u in self.schedule} - set(groups)
        if unknown:
            raise ConfigError(
                f"{config.task}'s schedule updates unknown group(s) {', '.join(sorted(unknown))}"
            )
        self.optimizers: dict[str, OptimizerGroup] = build_optimizer_groups(
            groups, config.optim, {"lr": config.train.lr, "betas": tuple(config.train.betas)}
        )
        self.step = 0
        self.samples_seen = 0
        self.stop_requested = False
        if resume:
            self._resume()

    # ----------------------------------------------------------------------------------------- data
    def _batches(self) -> Iterator[Batch]:
        """Endless batches, continuing from ``samples_seen`` so a resumed run sees the same data."""
        sampler = ResumableSampler(len(self.dataset), seed=self.config.train.seed, start=self.samples_seen)
        loader = DataLoader(
            self.dataset,
            batch_size=self.config.train.batch_size,
            sampler=sampler,
            num_workers=self.config.data.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=self.config.data.num_workers > 0,
            # The loader draws worker seeds from this, not from the global RNG that
            # checkpoints restore; augmentation is seeded per sample by the sampler.
            generator=torch.Generator().manual_seed(self.config.train.seed),
        )
        # augment_on=device: crop/flip/jitter here, seeded by (train.seed, samples seen before the batch)
        augment = None
        if self.config.data.augment_on == "device":
            augment = DeviceAugment(self.config.data, self.config.train.seed)
        for batch in loader:
            seen = self.samples_seen
            self.samples_seen += self.config.train.batch_size
            batch = move_batch(batch, self.device)
            yield augment(batch, seen) if augment is not None else batch

    def _sample_batch(self) -> Batch:
        """Fixed images for the sample grids: the first items, without augmentation."""
        items = [self.dataset[i] for i in range(min(self.config.train.num_samples, len(self.dataset)))]
        return move_batch(torch.utils.data.default_collate(items), self.device)

    # ----------------------------------------------------------------------------------------- steps
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.train.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _update(self, group: OptimizerGroup, losses: dict[str, torch.Tensor]) -> None:
        group.optimizer.zero_grad(set_to_none=True)
        sum(self.task.loss_weights[name] * value for name, value in losses.items()).backward()
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
                for name, value in losses.items():
                    value = value.detach()
                    sums[name] = sums[name] + value if name in sums else value
            logged.update({f"{prefix}/{k}": v / update.repeats for k, v in sums.items()})
        for other in self.optimizers.values():
            for p in other.parameters:
                p.requires_grad_(True)
        return logged

    def _set_learning_rate(self) -> float:
        """Every group's base LR times the schedule's factor at this step; returns the factor x train.lr."""
        train = self.config.train
        factor = lr_factor(
            self.step, train.steps, train.schedule, train.decay_steps, train.step_size, train.gamma
        )
        for group in self.optimizers.values():
            group.set_lr(factor)
        return train.lr * factor

    # ----------------------------------------------------------------------------------------- run
    def fit(self) -> Path:
        """Train until ``train.steps``; Ctrl-C finishes the current step, checkpoints and stops."""
        train = self.config.train
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "samples").mkdir(exist_ok=True)
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        log.info("one step: %s", describe_schedule(self.schedule, self.optimizers))
        sample_batch = self._sample_batch()
        batches = self._batches()
        sums: dict[str, torch.Tensor] = {}
        count = 0
        window_start, window_step = time.time(), self.step
        previous_handler = signal.signal(signal.SIGINT, self._request_stop)
        self.task.train()
        try:
            with (
                tqdm(
                    total=train.steps,
                    initial=self.step,
                    desc=self.config.task,
                    unit="step",
                    dynamic_ncols=True,
                ) as bar,
                open(self.run_dir / "log.jsonl", "a") as log_file,
            ):
                while self.step < train.steps and not self.stop_requested:
                    lr = self._set_learning_rate()
                    for name, value in self.train_step(batches).items():
                        sums[name] = sums[name] + value if name in sums else value
                    count += 1
                    self.step += 1
                    bar.update(1)
                    if self.step % train.log_every == 0 or self.step == train.steps:
                        means = {k: v.item() / count for k, v in sums.items()}
                        bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()})
                        record = {
                            "step": self.step,
                            "lr": lr,
                            **means,
                            "steps_per_s": (self.step - window_step) / (time.time() - window_start),
                        }
                        window_start, window_step = time.time(), self.step
                        log_file.write(json.dumps(record) + "\n")
                        log_file.flush()
                        sums.clear()
                        count = 0
                    if self.step % train.sample_every == 0 or self.step == train.steps:
                        self.save_samples(sample_batch)
                    if self.step % train.checkpoint_every == 0:
                        self.save_checkpoint()
        finally:
            signal.signal(signal.SIGINT, previous_handler)
        self.save_checkpoint()
        if self.stop_requested:
            log.warning(
                "interrupted at step %d; checkpoint saved. Continue with: translate train %s "
                "--run-dir %s --resume",
                self.step,
                self.config.task,
                self.run_dir,
            )
        return self.run_dir

    def _request_stop(self, signum: int, frame: Any) -> None:
        if self.stop_requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.stop_requested = True

    def save_samples(self, sample_batch: Batch) -> Path:
        """A grid of the task's visuals in eval mode, on a forked RNG: sampling never changes training."""
        devices = [self.device] if self.device.type == "cuda" else []
        self.task.eval()
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.config.train.seed)
            visuals = self.task.visuals(sample_batch)
        self.task.train()
        return save_grid(visuals, self.run_dir / "samples" / f"step_{self.step:07d}.png")

    # ----------------------------------------------------------------------------------------- state
    def save_checkpoint(self) -> Path:
        state: dict[str, torch.Tensor] = {}
        meta: dict[str, Any] = {
            "step": self.step,
            "samples_seen": self.samples_seen,
            "param_groups": {},
            "optimizers": {name: type(group.optimizer).__name__ for name, group in self.optimizers.items()},
        }
        for name, group in self.optimizers.items():
            tensors, param_groups = ckpt.optimizer_to_tensors(f"optim/{name}", group.optimizer)
            state.update(tensors)
            meta["param_groups"][name] = param_groups
        rng_tensors, meta["rng"] = ckpt.random_state()
        state.update(rng_tensors)
        state.update({f"task/{k}": v for k, v in self.task.training_state().items()})
        return ckpt.save_checkpoint(
            self.run_dir,
            self.step,
            self.config.task,
            self.task_kwargs,
            self.config.to_dict(),
            self.task.state_dict(),
            state,
            meta,
            exports={name: export.to_dict() for name, export in self.task.exports().items()},
            keep=self.config.train.keep_checkpoints,
        )

    def _resume(self) -> None:
        latest = ckpt.latest_checkpoint(self.run_dir)
        if latest is None:
            raise CheckpointError(f"--resume: {self.run_dir} holds no checkpoint to resume from")
        model = ckpt.load_model_checkpoint(latest)
        if model.task != self.config.task:
            raise CheckpointError(f"{self.run_dir} holds a {model.task} run, not {self.config.task}")
        ckpt.load_weights(self.task, model.weights, latest)
        tensors, meta = ckpt.load_training_state(latest)
        for name, group in self.optimizers.items():
            if name not in meta["param_groups"]:
                raise CheckpointError(f"{latest} holds no optimizer state for group {name!r}")
            saved = meta.get("optimizers", {}).get(name, type(group.optimizer).__name__)
            if saved != type(group.optimizer).__name__:
                raise CheckpointError(
                    f"{latest}: the saved {name} optimizer state does not fit this run's optim.{name} "
                    f"({saved} was saved, {type(group.optimizer).__name__} is configured)"
                )
            try:
                ckpt.optimizer_from_tensors(
                    f"optim/{name}", group.optimizer, tensors, meta["param_groups"][name]
                )
            except (ValueError, KeyError, RuntimeError) as exc:
                raise CheckpointError(
                    f"{latest}: the saved {name} optimizer state does not fit this run's optim.{name} "
                    f"(was the optimizer changed?): {exc}"
                ) from None
        ckpt.set_random_state(tensors, meta["rng"])
        self.task.load_training_state({k[5:]: v for k, v in tensors.items() if k.startswith("task/")})
        self.step, self.samples_seen = meta["step"], meta["samples_seen"]
        log.info("resumed %s from step %d", self.run_dir, self.step)


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
