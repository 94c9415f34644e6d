"""The Task interface: a method owns its networks and returns named, unweighted losses.

The trainer drives every task the same way, once per step::

    outputs = task(batch)                                 # generator pass, with gradients
    g = task.generator_losses(batch, outputs)            # discriminators frozen
    d = task.discriminator_losses(batch, outputs)        # the task detaches what it needs
    # then n_critic - 1 more discriminator steps on new batches, outputs made under no_grad

and weights each named loss by ``loss_weights`` (task defaults, overridable in the config).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

Batch = dict[str, Any]
"""A collated batch: image tensors ``(N, C, H, W)`` in ``[-1, 1]``, labels, and lists of paths."""


class Task(nn.Module):
    loss_weights: ClassVar[dict[str, float]] = {}
    """Default weight of every loss the task can return, by name."""
    default_config: ClassVar[dict[str, Any]] = {}
    """Overrides of the trainer/data defaults that the method's paper uses (e.g. batch size, lr)."""
    dataset: ClassVar[str] = ""
    """Name of the dataset kind the task trains on (``aligned``, ``unaligned``, ...)."""

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        """Modules updated by each optimizer: ``{"generator": [...], "discriminator": [...]}``."""
        raise NotImplementedError

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The generator pass: translated (and reconstructed) images the losses are computed from."""
        raise NotImplementedError

    def generator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def discriminator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def visuals(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Named image batches for a sample grid, one column each (inputs, translations, ...)."""
        raise NotImplementedError

    def translators(self) -> dict[str, nn.Module]:
        """Image-to-image generators for inference, by direction (``a2b``, ``b2a``)."""
        raise NotImplementedError

    def training_state(self) -> dict[str, torch.Tensor]:
        """Tensors outside the weights that resuming must restore (image pools)."""
        return {}

    def load_training_state(self, state: dict[str, torch.Tensor]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} has no training state to load")


def discriminator_objective(
    adversarial: nn.Module, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
) -> dict[str, torch.Tensor]:
    """D's loss on one real and one (detached) fake batch, plus the gradient penalty when the loss needs it.

    The adversarial term is halved, as in pix2pix/CycleGAN, to slow D down relative to G.
    """
    fake = fake.detach()
    losses = {"adv": 0.5 * (adversarial(discriminator(real), True) + adversarial(discriminator(fake), False))}
    if adversarial.uses_gradient_penalty:
        from translate.losses import gradient_penalty

        losses["gp"] = gradient_penalty(discriminator, real, fake)
    return losses


def add_losses(*parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Sum loss dicts name by name (two discriminators' objectives into one)."""
    total: dict[str, torch.Tensor] = {}
    for part in parts:
        for name, value in part.items():
            total[name] = total[name] + value if name in total else value
    return total
