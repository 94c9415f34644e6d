"""Objective helpers shared by the tasks."""

from __future__ import annotations

import torch
from torch import nn

from translate.losses import gradient_penalty

NVLABS_TRAINING = {
    "optim": {
        "generator": {"name": "adam", "weight_decay": 1e-4},
        "discriminator": {"name": "adam", "weight_decay": 1e-4},
    },
    "train": {
        "batch_size": 1,
        "lr": 1e-4,
        "betas": [0.5, 0.999],
        "schedule": "step",
        "step_size": 100_000,
        "gamma": 0.5,
        "init": "kaiming",
    },
}
"""The ``optim`` and ``train`` sections of NVlabs' UNIT and MUNIT configs (``configs/*.yaml`` there): Adam
1e-4 with weight decay 1e-4, halved every 100k iterations, Kaiming init, batch 1."""

DEMO_DATA = {"image_size": 64, "load_size": 72}
"""The ``data`` section of the built-in demos: 64 px crops of 72 px images."""


def demo_schedule(steps: int, **more: int) -> dict[str, int]:
    """The ``train`` section of a built-in demo: ``steps``, samples every 100, two checkpoints, logs every 25,
    and ``more`` (a batch size)."""
    return {"steps": steps, "sample_every": 100, "checkpoint_every": steps // 2, "log_every": 25, **more}


def discriminator_objective(
    adversarial: nn.Module, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
) -> dict[str, torch.Tensor]:
    """pix2pix/CycleGAN's D objective on one real and one (detached) fake batch.

    junyanz halves the whole objective to slow D down relative to G:
    ``0.5 * (L(D(x), real) + L(D(G(z)), fake) + lambda_gp * GP)``. The returned ``adv`` and ``gp`` are
    the two halved terms, so ``loss_weights.gp`` is lambda relative to the Wasserstein term, as in
    Gulrajani et al. ``gp`` is present only when the adversarial loss uses the gradient penalty.
    """
    fake = fake.detach()
    losses = {"adv": 0.5 * (adversarial(discriminator(real), True) + adversarial(discriminator(fake), False))}
    if adversarial.uses_gradient_penalty:
        losses["gp"] = 0.5 * gradient_penalty(discriminator, real, fake)
    return losses


def add_losses(*parts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Sum loss dicts name by name (two discriminators' objectives into one)."""
    total: dict[str, torch.Tensor] = {}
    for part in parts:
        for name, value in part.items():
            total[name] = total[name] + value if name in total else value
    return total
