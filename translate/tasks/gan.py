"""The unconditional family as degenerate translations: the input is noise (and, for cGAN, a class label).

One task, ``gan``, holds the method; ``cgan``, ``dcgan``, ``wgan``, ``wgangp`` and ``lsgan`` are the same
task with each paper's settings as its defaults (networks, loss, optimizers, critic steps):

- ``gan`` (Goodfellow et al., 2014, as the tutorials run it on 28x28): MLP G and D, the non-saturating G
  loss (``minimax: true`` for the original ``log(1 - D(G(z)))``), Adam 2e-4 (0.5, 0.999), batch 64.
- ``cgan`` (Mirza and Osindero, 2014): the same with the one-hot class label joined to G's noise and D's
  input (``conditional: true``; works with the DCGAN networks too).
- ``dcgan`` (Radford et al., 2016): transposed-conv G, strided-conv D, batch norm except D's input and G's
  output, weights N(0, 0.02), Adam 2e-4 (0.5, 0.999), 64 px.
- ``wgan`` (Arjovsky et al., 2017): the DCGAN networks, a critic without sigmoid whose weights are clipped to
  [-0.01, 0.01] after every critic step, RMSprop 5e-5, n_critic 5.
- ``wgangp`` (Gulrajani et al., 2017): the gradient penalty (lambda 10), layer norm instead of batch norm in
  the critic, Adam 1e-4 (0.5, 0.9), n_critic 5.
- ``lsgan`` (Mao et al., 2017): least-squares targets on the DCGAN networks.

One step is Goodfellow's Algorithm 1: D ``n_critic`` times (a new batch and new noise each), then G once.
``label_smoothing`` (one-sided: D's real target becomes 1 - s) and ``label_noise`` (a share of D's targets
flipped) apply to the vanilla and least-squares losses.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn

from translate.config import deep_merge
from translate.errors import ConfigError
from translate.exports import NOISE_TO_IMAGE, Export
from translate.layers import LATENT_DISTRIBUTIONS, latent_noise
from translate.losses import gradient_penalty
from translate.registry import DISCRIMINATORS, GENERATORS, LOSSES, TASKS
from translate.tasks.base import Batch, Task, Update

GRID_COLUMNS = 8


@TASKS.register("gan")
class GAN(Task):
    """GAN (Goodfellow et al., 2014): MLP G and D on 28x28, non-saturating loss; the base of every recipe."""

    dataset = "images"
    default_config = {
        "model": {
            "generator": {"name": "mlp"},
            "discriminator": {"name": "mlp"},
            "adversarial_loss": "vanilla",
            "latent_dim": 100,
        },
        "loss_weights": {"adv": 1.0, "gp": 10.0},
        "data": {"image_size": 28, "out_channels": 1, "preprocess": "center_square", "flip": False},
        "train": {
            "steps": 50_000,
            "batch_size": 64,
            "lr": 2e-4,
            "betas": [0.5, 0.999],
            "schedule": "constant",
            "init": "default",
            "num_samples": 10,
            "sample_every": 1000,
        },
    }

    def __init__(
        self,
        *,
        generator: str | dict[str, Any],
        discriminator: str | dict[str, Any],
        adversarial_loss: str | dict[str, Any],
        image_size: int,
        out_channels: int = 3,
        in_channels: int | None = None,
        latent_dim: int = 100,
        latent_distribution: str = "normal",
        conditional: bool = False,
        classes: list[str] | None = None,
        minimax: bool = False,
        label_smoothing: float = 0.0,
        label_noise: float = 0.0,
    ) -> None:
        """``classes``: the class names the dataset found (its folders, or an IDX labels file);
        ``in_channels`` is the dataset's and ignored: the input is noise."""
        super().__init__()
        if latent_distribution not in LATENT_DISTRIBUTIONS:
            raise ConfigError(
                f"model.latent_distribution must be one of {', '.join(LATENT_DISTRIBUTIONS)}; "
                f"got {latent_distribution!r}"
            )
        for key, value in (("label_smoothing", label_smoothing), ("label_noise", label_noise)):
            if not 0 <= value < 0.5:
                raise ConfigError(f"model.{key} must be in [0, 0.5); got {value}")
        self.classes = list(classes or [])
        if conditional and len(self.classes) < 2:
            raise ConfigError(
                "a class-conditional GAN needs labelled data: class folders, or an IDX labels file "
                f"(found {len(self.classes)} classes)"
            )
        self.num_classes = len(self.classes) if conditional else 0
        self.latent_dim, self.latent_distribution = latent_dim, latent_distribution
        self.minimax, self.label_smoothing, self.label_noise = minimax, label_smoothing, label_noise
        self.generator = GENERATORS.build(
            generator,
            latent_dim=latent_dim,
            out_channels=out_channels,
            image_size=image_size,
            **({"num_classes": self.num_classes} if self.num_classes else {}),
        )
        self.discriminator = DISCRIMINATORS.build(
            discriminator,
            in_channels=out_channels,
            image_size=image_size,
            **({"condition_classes": self.num_classes} if self.num_classes else {}),
        )
        self.adversarial = LOSSES.build(adversarial_loss)
        soft = label_smoothing or label_noise
        if soft and not self.adversarial.soft_targets:
            raise ConfigError(
                "model.label_smoothing and model.label_noise work with the vanilla and lsgan losses, not "
                f"{type(self.adversarial).__name__}"
            )
        if minimax and type(self.adversarial).__name__ != "VanillaGANLoss":
            raise ConfigError("model.minimax is the original GAN objective: it needs the vanilla loss")

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        return {"generator": [self.generator], "discriminator": [self.discriminator]}

    def schedule(self, n_critic: int = 1) -> list[Update]:
        """D ``n_critic`` times, then G once (Goodfellow et al.'s Algorithm 1, the WGAN critic loop)."""
        return [Update("discriminator", n_critic), Update("generator", through_generator=True)]

    def noise(self, count: int, device: torch.device | str) -> torch.Tensor:
        """``(count, latent_dim)`` codes from the latent distribution and the global RNG."""
        return latent_noise(count, self.latent_dim, self.latent_distribution, device=device)

    def class_labels(self, batch: Batch) -> torch.Tensor | None:
        """The batch's own class labels for a conditional model (fakes follow the data's class shares)."""
        return batch["label"] if self.num_classes else None

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        real = batch["image"]
        return {"fake": self.generator(self.noise(len(real), real.device), self.class_labels(batch))}

    def critic(self, labels: torch.Tensor | None) -> nn.Module:
        """D with the batch's labels bound (what the gradient penalty differentiates)."""
        return (
            functools.partial(self.discriminator, labels=labels) if self.num_classes else self.discriminator
        )

    def discriminator_targets(self, count: int, device: torch.device) -> tuple[Any, Any]:
        """D's targets for real and fake images: True / False, or per-sample values when smoothing (real:
        1 - s) or label noise (each target flipped with probability ``label_noise``) is on."""
        if not (self.label_smoothing or self.label_noise):
            return True, False
        real = torch.full((count,), 1.0 - self.label_smoothing, device=device)
        fake = torch.zeros(count, device=device)
        if self.label_noise:
            flip = torch.rand(count, device=device) < self.label_noise
            real, fake = torch.where(flip, fake[0], real), torch.where(flip, real[0], fake)
        return real, fake

    def discriminator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real, fake = batch["image"], outputs["fake"].detach()
        critic = self.critic(self.class_labels(batch))
        real_target, fake_target = self.discriminator_targets(len(real), real.device)
        losses = {
            "adv": self.adversarial(critic(real), real_target) + self.adversarial(critic(fake), fake_target)
        }
        if self.adversarial.uses_gradient_penalty:
            losses["gp"] = gradient_penalty(critic, real, fake)
        return losses

    def generator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        prediction = self.critic(self.class_labels(batch))(outputs["fake"])
        if self.minimax:  # minimise log(1 - D(G(z))): the negated BCE against "fake"
            return {"adv": -self.adversarial(prediction, False)}
        return {"adv": self.adversarial(prediction, True, for_discriminator=False)}

    @torch.no_grad()
    def visuals(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The real images, then columns of samples (row i of a conditional model draws class i mod K)."""
        real = batch["image"]
        labels = torch.arange(len(real), device=real.device) % self.num_classes if self.num_classes else None
        samples = {
            f"sample {i + 1}": self.generator(self.noise(len(real), real.device), labels)
            for i in range(GRID_COLUMNS - 1)
        }
        return {"real": real, **samples}

    def exports(self) -> dict[str, Export]:
        options = {
            "latent_dim": self.latent_dim,
            "latent_distribution": self.latent_distribution,
            "num_classes": self.num_classes or None,
            "classes": self.classes if self.num_classes else [],
        }
        return {
            "sample": Export(NOISE_TO_IMAGE, "generator", None, self.generator.out_channels, options=options)
        }


def recipe(name: str, summary: str, settings: dict[str, Any]) -> type[GAN]:
    """Register ``name``: the GAN task with a paper's ``settings`` over its defaults."""
    variant = type(
        name, (GAN,), {"__doc__": summary, "default_config": deep_merge(GAN.default_config, settings)}
    )
    return TASKS.register(name)(variant)


DCGAN_NETWORKS = {
    "generator": {"name": "dcgan", "base_channels": 64},
    "discriminator": {"name": "dcgan", "base_channels": 64},
}
DCGAN_DATA = {"image_size": 64, "out_channels": 3, "preprocess": "center_square", "flip": True}

CGAN = recipe(
    "cgan",
    "cGAN (Mirza and Osindero, 2014): the class label joined to G's noise and D's input.",
    {
        "model": {"conditional": True},
    },
)
DCGAN = recipe(
    "dcgan",
    "DCGAN (Radford et al., 2016): conv G and D with batch norm, Adam 2e-4.",
    {
        "model": DCGAN_NETWORKS,
        "data": DCGAN_DATA,
        "train": {"init": "normal", "init_gain": 0.02, "num_samples": 8},
    },
)
WGAN = recipe(
    "wgan",
    "WGAN (Arjovsky et al., 2017): critic weights clipped to 0.01, RMSprop 5e-5, n_critic 5.",
    {
        "model": {**DCGAN_NETWORKS, "adversarial_loss": "wgan"},
        "data": DCGAN_DATA,
        "optim": {
            "generator": {"name": "rmsprop", "lr": 5e-5},
            "discriminator": {
                "name": "rmsprop",
                "lr": 5e-5,
                "constraints": [{"name": "clip_weights", "value": 0.01}],
            },
        },
        "train": {"init": "normal", "init_gain": 0.02, "n_critic": 5, "num_samples": 8},
    },
)
WGANGP = recipe(
    "wgangp",
    "WGAN-GP (Gulrajani et al., 2017): gradient penalty 10, layer-norm critic, Adam 1e-4 (0.5, 0.9).",
    {
        "model": {
            "generator": DCGAN_NETWORKS["generator"],
            "discriminator": {**DCGAN_NETWORKS["discriminator"], "norm": "layer"},
            "adversarial_loss": "wgangp",
        },
        "data": DCGAN_DATA,
        "train": {
            "init": "normal",
            "init_gain": 0.02,
            "lr": 1e-4,
            "betas": [0.5, 0.9],
            "n_critic": 5,
            "num_samples": 8,
        },
    },
)
LSGAN = recipe(
    "lsgan",
    "LSGAN (Mao et al., 2017): least-squares targets on the DCGAN networks.",
    {
        "model": {**DCGAN_NETWORKS, "adversarial_loss": "lsgan"},
        "data": DCGAN_DATA,
        "train": {"init": "normal", "init_gain": 0.02, "num_samples": 8},
    },
)
