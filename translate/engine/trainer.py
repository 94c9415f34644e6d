"""The one training loop: optimizers, loss weights, n_critic, LR schedules, seeding, logging, samples,
checkpoints and resuming. Tasks only build networks and return named, unweighted losses."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
import time
from collections import defaultdict
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
from translate.engine.grid import save_grid
from translate.engine.schedules import lr_factor
from translate.errors import CheckpointError, ConfigError
from translate.layers.init import init_weights
from translate.registry import DATASETS, TASKS
from translate.tasks.base import Batch, Task

log = logging.getLogger("translate")


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


def unique_parameters(modules: list[nn.Module]) -> list[nn.Parameter]:
    """Parameters of several modules, each once (networks may share layers, as in UNIT)."""
    seen: dict[int, nn.Parameter] = {}
    for module in modules:
        for p in module.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())


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
        self.task.loss_weights = self._resolve_loss_weights()
        for modules in self.task.optimizer_groups().values():
            for module in modules:
                init_weights(module, config.train.init, config.train.init_gain)

        train = config.train
        fused = self.device.type in ("cpu", "cuda")
        self.optimizers = {
            group: torch.optim.Adam(
                unique_parameters(modules), lr=train.lr, betas=tuple(train.betas), fused=fused
            )
            for group, modules in self.task.optimizer_groups().items()
        }
        self.step = 0
        self.samples_seen = 0
        self.stop_requested = False
        if resume:
            self._resume()

    def _resolve_loss_weights(self) -> dict[str, float]:
        defaults = type(self.task).loss_weights
        unknown = set(self.config.loss_weights) - set(defaults)
        if unknown:
            raise ConfigError(
                f"unknown loss weight(s) {', '.join(sorted(unknown))} for task {self.config.task}. "
                f"Known: {', '.join(defaults)}"
            )
        return {**defaults, **{k: float(v) for k, v in self.config.loss_weights.items()}}

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
    def _weighted_sum(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.task.loss_weights[name] * value for name, value in losses.items())

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.config.train.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _update(self, group: str, losses: dict[str, torch.Tensor]) -> None:
        optimizer = self.optimizers[group]
        optimizer.zero_grad(set_to_none=True)
        self._weighted_sum(losses).backward()
        optimizer.step()

    def train_step(self, batches: Iterator[Batch]) -> dict[str, float]:
        """One generator update, then ``n_critic`` discriminator updates (the first on the same fakes)."""
        batch = next(batches)
        discriminators = unique_parameters(self.task.optimizer_groups().get("discriminator", []))
        for p in discriminators:  # the G step needs gradients through D, not for D's weights
            p.requires_grad_(False)
        with self._autocast():
            outputs = self.task(batch)
            g_losses = self.task.generator_losses(batch, outputs)
        self._update("generator", g_losses)
        for p in discriminators:
            p.requires_grad_(True)
        logged = {f"G/{k}": v.item() for k, v in g_losses.items()}
        if not discriminators:
            return logged
        for critic_step in range(self.config.train.n_critic):
            if critic_step > 0:
                batch = next(batches)
                with torch.no_grad(), self._autocast():
                    outputs = self.task(batch)
            with self._autocast():
                d_losses = self.task.discriminator_losses(batch, outputs)
            self._update("discriminator", d_losses)
        logged.update({f"D/{k}": v.item() for k, v in d_losses.items()})
        return logged

    def _set_learning_rate(self) -> float:
        train = self.config.train
        lr = train.lr * lr_factor(
            self.step, train.steps, train.schedule, train.decay_steps, train.step_size, train.gamma
        )
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] = lr
        return lr

    # ----------------------------------------------------------------------------------------- run
    def fit(self) -> Path:
        """Train until ``train.steps``; Ctrl-C finishes the current step, checkpoints and stops."""
        train = self.config.train
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "samples").mkdir(exist_ok=True)
        (self.run_dir / "config.yaml").write_text(yaml.safe_dump(self.config.to_dict(), sort_keys=False))
        sample_batch = self._sample_batch()
        batches = self._batches()
        sums: dict[str, float] = defaultdict(float)
        count = 0
        started, start_step = time.time(), self.step
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
                        sums[name] += value
                    count += 1
                    self.step += 1
                    bar.update(1)
                    if self.step % train.log_every == 0 or self.step == train.steps:
                        means = {k: v / count for k, v in sums.items()}
                        bar.set_postfix({k: f"{v:.3g}" for k, v in means.items()})
                        record = {
                            "step": self.step,
                            "lr": lr,
                            **means,
                            "steps_per_s": (self.step - start_step) / (time.time() - started),
                        }
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
        self.task.eval()
        visuals = self.task.visuals(sample_batch)
        self.task.train()
        return save_grid(visuals, self.run_dir / "samples" / f"step_{self.step:07d}.png")

    # ----------------------------------------------------------------------------------------- state
    def save_checkpoint(self) -> Path:
        state: dict[str, torch.Tensor] = {}
        meta: dict[str, Any] = {"step": self.step, "samples_seen": self.samples_seen, "param_groups": {}}
        for group, optimizer in self.optimizers.items():
            tensors, param_groups = ckpt.optimizer_to_tensors(f"optim/{group}", optimizer)
            state.update(tensors)
            meta["param_groups"][group] = param_groups
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
            keep=self.config.train.keep_checkpoints,
        )

    def _resume(self) -> None:
        latest = ckpt.latest_checkpoint(self.run_dir)
        if latest is None:
            raise CheckpointError(f"--resume: {self.run_dir} holds no checkpoint to resume from")
        model = ckpt.load_model_checkpoint(latest)
        if model.task != self.config.task:
            raise CheckpointError(f"{self.run_dir} holds a {model.task} run, not {self.config.task}")
        load_weights(self.task, model.weights, latest)
        tensors, meta = ckpt.load_training_state(latest)
        for group, optimizer in self.optimizers.items():
            ckpt.optimizer_from_tensors(f"optim/{group}", optimizer, tensors, meta["param_groups"][group])
        ckpt.set_random_state(tensors, meta["rng"])
        self.task.load_training_state({k[5:]: v for k, v in tensors.items() if k.startswith("task/")})
        self.step, self.samples_seen = meta["step"], meta["samples_seen"]
        log.info("resumed %s from step %d", self.run_dir, self.step)


def load_weights(module: nn.Module, weights: dict[str, torch.Tensor], source: Path) -> None:
    """Load a state dict, turning missing/unexpected keys or shape mismatches into one clear error."""
    try:
        module.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise CheckpointError(f"{source} does not fit this {type(module).__name__} model: {first}") from None
