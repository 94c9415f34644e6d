"""The Task contract: a method owns its networks, declares its update schedule and its exports, and
returns named, unweighted losses. The trainer (``translate.engine.trainer``) does everything else.

One training step runs the task's ``schedule()``: a list of ``Update``s, each naming an optimizer
group and how many times in a row it steps. For every update the trainer

1. takes a batch: a new one for the first update of the step and for every repetition after the
   first; otherwise the batch of the previous update;
2. takes generator outputs ``task(batch)``: reused from the previous update on the same batch, made
   again *with* gradients when the update needs them (``through_generator``) and the outputs at hand
   were made without, or made under ``torch.no_grad()`` (cheap: no graph) when it does not;
3. asks ``task.losses(group, batch, outputs)`` for named, unweighted losses, weights them with the
   resolved ``loss_weights``, and steps that group's optimizer while the other groups' parameters
   are frozen.

pix2pix and CycleGAN: ``[Update("generator", through_generator=True), Update("discriminator", n_critic)]``
(the first critic update reuses the generator's fakes). WGAN: ``[Update("discriminator", 5),
Update("generator", through_generator=True)]``. ``train.steps`` counts passes over the schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from translate.errors import ConfigError
from translate.exports import Export

Batch = dict[str, Any]
"""A collated batch: image tensors ``(N, C, H, W)`` in ``[-1, 1]``, labels, and lists of paths."""


@dataclass(frozen=True)
class Update:
    """One entry of a task's schedule: optimizer ``group`` steps ``repeats`` times in a row.

    ``through_generator``: the group's losses need gradients through the generator pass (the generator
    update itself); otherwise the outputs may be detached or made under ``torch.no_grad()``.
    """

    group: str
    repeats: int = 1
    through_generator: bool = False


class Task(nn.Module):
    default_config: ClassVar[dict[str, Any]] = {}
    """The method's paper settings over the trainer/data defaults, and ``loss_weights``: the default weight
    of every loss the task can return, by name (the resolved config holds the weights a run uses)."""
    demo_config: ClassVar[dict[str, Any]] = {}
    """A small preset used with the built-in demo data."""
    dataset: ClassVar[str] = ""
    """Name of the dataset kind the task trains on (``aligned``, ``unaligned``, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.loss_weights: dict[str, float] = self.known_loss_weights()

    @classmethod
    def known_loss_weights(cls) -> dict[str, float]:
        return dict(cls.default_config.get("loss_weights", {}))

    def set_loss_weights(self, weights: dict[str, float]) -> None:
        """Use these weights (merged over the defaults); unknown names are a ConfigError."""
        known = self.known_loss_weights()
        unknown = sorted(set(weights) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown loss weight(s) {', '.join(unknown)} for task {type(self).__name__}. "
                f"Known: {', '.join(known)}"
            )
        self.loss_weights = {**known, **{k: float(v) for k, v in weights.items()}}

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        """Modules updated by each optimizer: ``{"generator": [...], "discriminator": [...]}``.

        A module shared by several networks is listed once; every parameter belongs to one group.
        """
        raise NotImplementedError

    def schedule(self, n_critic: int = 1) -> list[Update]:
        """One step: a generator update, then ``n_critic`` discriminator updates (pix2pix, CycleGAN).

        With ``loss_weights.adv == 0`` nothing the generator learns from depends on the discriminator, so
        its updates are left out (an L1-only pix2pix trains its generator alone)."""
        generator = Update("generator", through_generator=True)
        if self.loss_weights.get("adv", 1.0) == 0:
            return [generator]
        return [generator, Update("discriminator", n_critic)]

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The generator pass: translated (and reconstructed) images the losses are computed from."""
        raise NotImplementedError

    def losses(self, group: str, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named, unweighted scalar losses for the update of ``group``: ``<group>_losses(batch, outputs)``."""
        method = getattr(self, f"{group}_losses", None)
        if method is None:
            raise NotImplementedError(f"{type(self).__name__} has no {group}_losses()")
        return method(batch, outputs)

    @torch.no_grad()
    def visuals(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Named image batches for a sample grid, one column each (inputs, translations, ...)."""
        raise NotImplementedError

    def exports(self) -> dict[str, Export]:
        """The entry points of the trained model, by name (``a2b``, ``b2a``, ``sample``...)."""
        raise NotImplementedError

    def training_state(self) -> dict[str, torch.Tensor]:
        """Tensors outside the weights that resuming must restore (image pools)."""
        return {}

    def load_training_state(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no training state to load")
