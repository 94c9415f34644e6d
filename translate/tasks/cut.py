"""CUT and FastCUT (Park et al., 2020): one-sided unpaired translation with a patchwise contrastive loss.

One generator G: A -> B, one PatchGAN D on B. Instead of a cycle, PatchNCE ties each patch of G(a) to the
patch of ``a`` at the same place: the features of G's encoder at ``nce_layers`` (of the source and of the
translation), embedded by the MLP heads of a patch sampler F. Generator objective (taesungp's
``cut_model.py``): ``lambda_GAN L_GAN(G, D) + lambda_NCE mean_layers PatchNCE(G(a), a)``; CUT adds the
identity term on B, ``(NCE(G(a), a) + NCE(G(b), b)) / 2``; FastCUT drops it, weighs NCE x10 and trains on
randomly flipped inputs (flip equivariance). One step as the authors' ``optimize_parameters``: D on the
step's (detached) translation, then G and F together against the updated D.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from translate.config import deep_merge
from translate.errors import ConfigError
from translate.exports import IMAGE_TO_IMAGE, Export
from translate.generators.patch_sampler import (
    PatchSampler,
    encoder_features,
    feature_channels,
    feature_layers,
)
from translate.losses import PatchNCELoss
from translate.registry import DISCRIMINATORS, GENERATORS, LOSSES, TASKS
from translate.tasks.base import Batch, Task, Update
from translate.tasks.common import DEMO_DATA, demo_schedule, discriminator_objective

DIRECTIONS = ("a2b", "b2a")


@TASKS.register("cut")
class CUT(Task):
    """CUT: ResNet-9 G + PatchGAN D, anti-aliased, LSGAN, PatchNCE on 5 layers x 256 patches, NCE identity."""

    dataset = "unaligned"
    default_config = {
        "model": {
            "generator": {
                "name": "antialiased_resnet",
                "num_blocks": 9,
                "norm": "instance",
                "dropout": False,
            },
            "discriminator": {"name": "antialiased_patchgan", "num_layers": 3, "norm": "instance"},
            "adversarial_loss": "lsgan",
            "nce_layers": [0, 4, 8, 12, 16],
            "num_patches": 256,
            "patch_width": 256,
            "temperature": 0.07,
            "negatives_from_minibatch": False,
            "nce_identity": True,
            "flip_equivariance": False,
        },
        "loss_weights": {"adv": 1.0, "nce": 1.0, "gp": 10.0},
        "train": {
            "batch_size": 1,
            "lr": 2e-4,
            "betas": [0.5, 0.999],
            "schedule": "linear",  # 200 epochs at the LR, 200 decaying (n_epochs, n_epochs_decay)
            "init": "xavier",
            "init_gain": 0.02,
        },
    }
    demo_config = {
        "model": {
            "generator": {"num_blocks": 6, "base_channels": 32},
            "discriminator": {"base_channels": 32},
        },
        "data": DEMO_DATA,
        "train": demo_schedule(800),
    }

    def __init__(
        self,
        *,
        generator: str | dict[str, Any],
        discriminator: str | dict[str, Any],
        adversarial_loss: str | dict[str, Any],
        nce_layers: list[int],
        num_patches: int = 256,
        patch_width: int = 256,
        temperature: float = 0.07,
        negatives_from_minibatch: bool = False,
        nce_identity: bool = True,
        flip_equivariance: bool = False,
        direction: str = "a2b",
        in_channels: int = 3,
        out_channels: int = 3,
        domains: list[str] | None = None,
    ) -> None:
        """``direction``: ``a2b`` translates the first domain into the second, ``b2a`` the other way.
        ``patch_width``: the MLP heads' width (the authors' ``netF_nc``); ``negatives_from_minibatch`` their
        ``nce_includes_all_negatives_from_minibatch``; ``nce_identity`` their ``nce_idt``."""
        super().__init__()
        check_options(direction, num_patches, temperature, in_channels, out_channels)
        self.direction, self.domains = direction, list(domains or ["A", "B"])
        self.nce_layers, self.num_patches = list(nce_layers), num_patches
        self.nce_identity, self.flip_equivariance = nce_identity, flip_equivariance
        self.generator = GENERATORS.build(generator, in_channels=in_channels, out_channels=out_channels)
        self.discriminator = DISCRIMINATORS.build(discriminator, in_channels=out_channels)
        self.adversarial = LOSSES.build(adversarial_loss)
        channels = feature_channels(
            feature_layers(self.generator, self.nce_layers), self.nce_layers, in_channels
        )
        self.patch_sampler = PatchSampler(channels, patch_width)
        self.patch_nce = PatchNCELoss(temperature, negatives_from_minibatch)
        self._coin: tuple[torch.Tensor, bool] | None = None
        """The last batch's source images and whether they were flipped (FastCUT)."""

    @property
    def encoder(self) -> nn.Sequential:
        """The generator's layers PatchNCE reads (its ``model``; not a module of its own here)."""
        return self.generator.model

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        return {"generator": [self.generator, self.patch_sampler], "discriminator": [self.discriminator]}

    def schedule(self, n_critic: int = 1) -> list[Update]:
        """D ``n_critic`` times, then G and F on D's last batch (the authors' order); G and F alone when
        ``loss_weights.adv`` is 0."""
        generator = Update("generator", through_generator=True)
        if self.loss_weights.get("adv", 1.0) == 0:
            return [generator]
        return [Update("discriminator", n_critic), generator]

    def sides(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The source and target images of ``direction``: ``(real_A, real_B)`` in the authors' names."""
        return (batch["A"], batch["B"]) if self.direction == "a2b" else (batch["B"], batch["A"])

    def flipped(self, source: torch.Tensor) -> bool:
        """FastCUT's coin for this batch (``np.random.random() < 0.5``, the authors' draw), drawn once per
        batch: the generator update's pass after the discriminator's on the same batch reuses it."""
        if not (self.flip_equivariance and self.training):
            return False
        if self._coin is None or self._coin[0] is not source:
            self._coin = (source, bool(np.random.random() < 0.5))
        return self._coin[1]

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """G on the source and, for the identity term, the target (one batch, as the authors'), both flipped
        when FastCUT's coin says so.

        Args:
            batch: ``A`` and ``B`` images ``(N, C, H, W)``.
        Returns:
            ``fake_b`` ``(N, C, H, W)``, ``idt_b`` (G of the target; left out without gradients, in the
            discriminator's pass: only the generator's losses use it) and ``flipped`` (a 0-dim bool).
        """
        real_a, real_b = self.sides(batch)
        flipped = self.flipped(real_a)
        identity = self.nce_identity and torch.is_grad_enabled()
        real = torch.cat([real_a, real_b]) if identity else real_a
        if flipped:
            real = torch.flip(real, [3])
        fake = self.generator(real)
        outputs = {"fake_b": fake[: len(real_a)], "flipped": torch.tensor(flipped)}
        if identity:
            outputs["idt_b"] = fake[len(real_a) :]
        return outputs

    def nce(self, source: torch.Tensor, translation: torch.Tensor, flipped: bool) -> torch.Tensor:
        """The authors' ``calculate_NCE_loss`` without its lambda: PatchNCE at each of ``nce_layers``, the
        translation's patches the queries, the source's at the same places the keys (constants of the loss,
        so made without a graph), averaged over the layers.

        Args:
            source: images ``(N, C, H, W)``.
            translation: G's output for them ``(N, C, H, W)``; made from flipped inputs when ``flipped``,
                so its features are flipped back.
            flipped: FastCUT's coin of this batch.
        Returns:
            A scalar.
        """
        queries = encoder_features(self.encoder, translation, self.nce_layers)
        if flipped:
            queries = [torch.flip(q, [3]) for q in queries]
        with torch.no_grad():
            keys = encoder_features(self.encoder, source, self.nce_layers)
            keys, positions = self.patch_sampler(keys, self.num_patches)
        queries, _ = self.patch_sampler(queries, self.num_patches, positions)
        total = 0.0
        for q, k in zip(queries, keys):
            total = total + self.patch_nce(q, k, len(source)).mean()
        return total / len(self.nce_layers)

    def generator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``adv`` (G's LSGAN term) and ``nce``: PatchNCE, averaged with the identity term for CUT."""
        real_a, real_b = self.sides(batch)
        fake_b, flipped = outputs["fake_b"], bool(outputs["flipped"])
        losses = {}
        if self.loss_weights["adv"] > 0:
            losses["adv"] = self.adversarial(self.discriminator(fake_b), True, for_discriminator=False)
        if self.loss_weights["nce"] > 0:
            nce = self.nce(real_a, fake_b, flipped)
            if self.nce_identity:
                nce = (nce + self.nce(real_b, outputs["idt_b"], flipped)) * 0.5
            losses["nce"] = nce
        return losses

    def discriminator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``0.5 * (L(D(b), real) + L(D(G(a)), fake))``, the authors' ``compute_D_loss`` (no image pool)."""
        _, real_b = self.sides(batch)
        return discriminator_objective(self.adversarial, self.discriminator, real_b, outputs["fake_b"])

    @torch.no_grad()
    def visuals(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The authors' ``visual_names``: real_A, fake_B, idt_B (CUT), real_B; never flipped."""
        real_a, real_b = self.sides(batch)
        columns = {"real_A": real_a, "fake_B": self.generator(real_a)}
        if self.nce_identity:
            columns["idt_B"] = self.generator(real_b)
        return {**columns, "real_B": real_b}

    def exports(self) -> dict[str, Export]:
        source, target = self.domains if self.direction == "a2b" else self.domains[::-1]
        export = Export(
            IMAGE_TO_IMAGE,
            "generator",
            self.generator.in_channels,
            self.generator.out_channels,
            options={"direction": self.direction, "source": source, "target": target},
        )
        return {self.direction: export}


def check_options(
    direction: str, num_patches: int, temperature: float, in_channels: int, out_channels: int
) -> None:
    """One-line ConfigErrors for options CUT cannot run with."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"model.direction must be one of {', '.join(DIRECTIONS)}; got {direction!r}")
    if num_patches < 1:
        raise ConfigError(f"model.num_patches must be at least 1; got {num_patches}")
    if temperature <= 0:
        raise ConfigError(f"model.temperature must be positive; got {temperature}")
    if in_channels != out_channels:
        raise ConfigError(
            f"CUT encodes its translations with its own generator, so both domains need the same channels; "
            f"got {in_channels} and {out_channels}"
        )


@TASKS.register("fastcut")
class FastCUT(CUT):
    """FastCUT: CUT without the identity term, NCE x10, flip-equivariance (recipes: 150 + 50 epochs).

    The authors' n_epochs 150, n_epochs_decay 50 are in the recipes (``train.decay_steps`` is a number of
    steps, so as a default it would misplace the decay of any other ``train.steps``)."""

    default_config = deep_merge(
        CUT.default_config,
        {
            "model": {"nce_identity": False, "flip_equivariance": True},
            "loss_weights": {"nce": 10.0},
        },
    )
