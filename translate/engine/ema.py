"""An exponential moving average (EMA) of a task's generator weights (``train.ema_decay``).

After each update of the averaged modules' optimizer group, every floating-point parameter ``w`` of them
moves its average ``a`` by ``a <- d a + (1 - d) w``, with ``d = min(decay, (1 + n) / (10 + n))`` after
``n`` updates when ``warmup`` is on (TensorFlow's ``ExponentialMovingAverage(num_updates=...)``: the
average soon forgets the initial weights), else ``d = decay``. Buffers (batch norm's running statistics,
spectral norm's vectors) are not averaged but copied, as most EMA implementations do: the averaged network
normalises with the statistics the trained one has at that update.

The average starts as a copy of the weights (at step 0, or at the step where a resumed run switches it on).
Checkpoints store it as the exported weights (``model.safetensors``: what inference loads) and the trained
weights beside the training state (``state.safetensors``: ``ema/raw/<key>``, ``checkpoint.TrainingState``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from translate.engine.checkpoint import RAW_PREFIX  # noqa: F401  (where checkpoints keep the trained weights)
from translate.errors import CheckpointError

log = logging.getLogger("translate")


class EMA:
    """The average of ``modules`` (networks of ``task``), addressed by the task's ``state_dict`` keys.

    A tensor shared by several networks (UNIT's shared layers) is averaged once and appears under each
    of its keys."""

    def __init__(
        self, task: nn.Module, modules: Iterable[nn.Module], decay: float, warmup: bool = True
    ) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1); got {decay}")
        self.decay = decay
        self.warmup = warmup
        self.updates = 0
        modules = list(modules)
        parameters = {id(p) for m in modules for p in m.parameters()}
        owned = parameters | {id(b) for m in modules for b in m.buffers()}
        self.live: list[torch.Tensor] = []
        """The task's own tensors (parameters and buffers), each once."""
        self.keys: dict[str, int] = {}
        """state_dict key -> index into ``live`` / ``shadow``."""
        index: dict[int, int] = {}
        for key, value in task.state_dict(keep_vars=True).items():
            if id(value) not in owned:
                continue
            if id(value) not in index:
                index[id(value)] = len(self.live)
                self.live.append(value)
            self.keys[key] = index[id(value)]
        if not self.live:
            raise ValueError("EMA: the averaged modules have no weights")
        averaged = [id(t) in parameters and t.is_floating_point() for t in self.live]
        self._averaged = [i for i, a in enumerate(averaged) if a]
        self._copied = [i for i, a in enumerate(averaged) if not a]
        self.shadow: list[torch.Tensor] = [t.detach().clone() for t in self.live]

    @classmethod
    def of_task(cls, task: nn.Module, decay: float, warmup: bool = True) -> EMA:
        """The EMA of a task's ``generator`` optimizer group, else of its exported networks.

        Args:
            task: the task (``optimizer_groups()``, ``exports()``).
            decay: ``train.ema_decay``.
            warmup: ``train.ema_warmup``.
        """
        groups = task.optimizer_groups()
        if "generator" in groups:
            modules, what = groups["generator"], "the generator optimizer group"
        else:
            exports = task.exports().values()
            modules = list({id(m): m for m in (task.get_submodule(e.module) for e in exports)}.values())
            what = "the exported networks"
        log.info("EMA of %s's weights, decay %g", what, decay)
        return cls(task, modules, decay, warmup)

    def moved_by(self, groups: dict[str, Iterable[torch.Tensor]]) -> set[str]:
        """Args: groups: parameters by optimizer group. Returns: the groups whose updates move the averaged
        weights (after which ``update`` is called)."""
        averaged = {id(t) for t in self.live}
        return {name for name, parameters in groups.items() if any(id(p) in averaged for p in parameters)}

    def current_decay(self) -> float:
        """The decay the next update uses."""
        if self.warmup:
            return min(self.decay, (1 + self.updates) / (10 + self.updates))
        return self.decay

    @torch.no_grad()
    def update(self) -> None:
        """One step of the average towards the current weights; buffers are copied."""
        decay = self.current_decay()
        shadow = [self.shadow[i] for i in self._averaged]
        live = [self.live[i].detach() for i in self._averaged]
        torch._foreach_mul_(shadow, decay)
        torch._foreach_add_(shadow, live, alpha=1 - decay)
        for i in self._copied:
            self.shadow[i].copy_(self.live[i])
        self.updates += 1

    @torch.no_grad()
    def reset(self) -> None:
        """Start the average again from the current weights."""
        for shadow, live in zip(self.shadow, self.live):
            shadow.copy_(live)
        self.updates = 0

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights under the task's keys (what checkpoints export)."""
        return {key: self.shadow[i] for key, i in self.keys.items()}

    @torch.no_grad()
    def load(self, weights: dict[str, torch.Tensor], updates: int) -> None:
        """Set the average from a checkpoint's exported weights (keys as ``state_dict``)."""
        missing = [key for key in self.keys if key not in weights]
        if missing:
            raise CheckpointError(f"the checkpoint holds no weights for {missing[0]} to average")
        for key, i in self.keys.items():
            self.shadow[i].copy_(weights[key])
        self.updates = int(updates)

    def resume(self, weights: dict[str, torch.Tensor], meta: dict[str, Any] | None, step: int) -> None:
        """Go on from a checkpoint: its average, or afresh from the trained weights when it has none.

        Args:
            weights: the checkpoint's exported weights (the average when it has one).
            meta: its ``ema`` metadata (``updates``), or None.
            step: its step, for the log.
        """
        if meta:
            self.load(weights, meta["updates"])
        else:
            self.reset()
            log.info("the EMA of the generator's weights starts at step %d (the checkpoint has none)", step)

    def meta(self) -> dict[str, Any]:
        return {"decay": self.decay, "warmup": self.warmup, "updates": self.updates}

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """The task runs with the averaged weights (and buffers) inside the block; its own come back after,
        bit for bit."""
        with torch.no_grad():
            kept = [t.detach().clone() for t in self.live]
            for live, shadow in zip(self.live, self.shadow):
                live.copy_(shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                for live, saved in zip(self.live, kept):
                    live.copy_(saved)
