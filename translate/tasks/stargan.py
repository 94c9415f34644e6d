"""StarGAN (Choi et al., 2018): one generator translates between any number of domains.

G(x, c) translates image x to target labels c; D judges real/fake (WGAN-GP) and classifies domains.
Generator objective: L_adv + lambda_cls * L_cls(D_cls(G(x, c)), c) + lambda_rec * |G(G(x, c), c') - x|
with c' the image's own labels; critic: L_adv + lambda_cls * L_cls(D_cls(x), c') + lambda_gp * GP.
L_cls is binary cross-entropy per attribute (attribute vectors) or cross-entropy (one-of-N domains).
Target labels are the batch's own labels in a random order, as in the reference code, so every target
is a combination that occurs in the data; they are drawn once per batch, so the generator update uses the
targets of the critic update on the same batch, as yunjey/stargan's ``train()`` uses one ``label_trg`` per
iteration. One step: the critic five times (new batch each), then G once on the last batch:
``train.steps`` counts G updates (the reference's 200,000 iterations are 40,000 steps). The gradient
penalty differentiates the sum of the critic's patch map, as the reference does (``gp_reduction``).
``loss_weights.r1`` > 0 adds R1 on the real faces (StarGAN v2's regulariser of a non-saturating critic).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.exports import IMAGE_AND_TARGET_TO_IMAGE, Export
from translate.labels import LabelSpace
from translate.losses import GP_REDUCTIONS, gradient_penalty, r1_penalty
from translate.registry import DISCRIMINATORS, GENERATORS, LOSSES, TASKS
from translate.tasks.base import Batch, Task, Update
from translate.tasks.common import DEMO_DATA, demo_schedule

CELEBA_ATTRIBUTES = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"]


@TASKS.register("stargan")
class StarGAN(Task):
    """StarGAN: one conditional ResNet G, a critic with a domain-classification head, WGAN-GP, n_critic 5."""

    dataset = "labelled"
    default_config = {
        "model": {
            "generator": {"name": "stargan", "base_channels": 64, "num_blocks": 6},
            "discriminator": {"name": "stargan", "base_channels": 64, "num_layers": 6},
            "adversarial_loss": "wgangp",
            "gp_reduction": "sum",
        },
        "loss_weights": {"adv": 1.0, "cls": 1.0, "rec": 10.0, "gp": 10.0, "r1": 0.0},
        "data": {"image_size": 128, "preprocess": "center_square", "attributes": CELEBA_ATTRIBUTES},
        "train": {
            "steps": 40_000,
            "batch_size": 16,
            "lr": 1e-4,
            "betas": [0.5, 0.999],
            "n_critic": 5,
            "schedule": "linear",
            "init": "default",
        },
    }
    demo_config = {
        "model": {
            "generator": {"base_channels": 32},
            "discriminator": {"base_channels": 32, "num_layers": 5},
        },
        "data": {**DEMO_DATA, "preprocess": "resize_and_crop"},
        "train": demo_schedule(300, batch_size=8),
    }

    def __init__(
        self,
        *,
        generator: str | dict[str, Any],
        discriminator: str | dict[str, Any],
        adversarial_loss: str | dict[str, Any],
        labels: dict[str, Any],
        image_size: int,
        in_channels: int = 3,
        out_channels: int = 3,
        gp_reduction: str = "sum",
    ) -> None:
        """``labels``: a ``LabelSpace`` as a dict (names, kind, groups), given by the dataset.
        ``gp_reduction``: ``sum`` (yunjey/stargan's penalty: the gradient of the critic's whole patch map)
        or ``mean`` (of its mean, as the other tasks); see ``translate.losses.gradient_penalty``."""
        super().__init__()
        if gp_reduction not in GP_REDUCTIONS:
            raise ConfigError(
                f"model.gp_reduction must be one of {', '.join(GP_REDUCTIONS)}; got {gp_reduction!r}"
            )
        self.gp_reduction = gp_reduction
        self._targets: tuple[torch.Tensor, torch.Tensor] | None = None
        """The last batch's labels and the targets drawn for them (reused by a second pass on that batch)."""
        self.labels = LabelSpace.from_dict(labels)
        self.image_size = image_size
        num_labels = len(self.labels)
        self.generator = GENERATORS.build(
            generator, in_channels=in_channels, out_channels=out_channels, num_labels=num_labels
        )
        self.discriminator = DISCRIMINATORS.build(
            discriminator, in_channels=out_channels, image_size=image_size, num_classes=num_labels
        )
        self.adversarial = LOSSES.build(adversarial_loss)

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        return {"generator": [self.generator], "discriminator": [self.discriminator]}

    def schedule(self, n_critic: int = 1) -> list[Update]:
        """The critic ``n_critic`` times, then the generator on the critic's last batch (the reference)."""
        return [Update("discriminator", n_critic), Update("generator", through_generator=True)]

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        target = self.targets(batch)
        return {"fake": self.generator(batch["image"], target), "target": target}

    def targets(self, batch: Batch) -> torch.Tensor:
        """The batch's target labels: its own labels in a random order, drawn once per batch. The trainer
        makes the generator pass again for the generator update (with gradients) on the critic's last
        batch; that pass gets the same targets, as the reference's one ``label_trg`` per iteration."""
        source = batch["label"]
        if self._targets is not None and self._targets[0] is source:
            return self._targets[1]
        target = source[torch.randperm(len(source), device=source.device)]
        self._targets = (source, target)
        return target

    def classification_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Attributes: binary cross-entropy summed over attributes, averaged over images; domains: CE."""
        if self.labels.kind == "domains":
            return F.cross_entropy(logits, labels.argmax(1))
        return F.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / len(logits)

    def generator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        fake = outputs["fake"]
        realness, logits = self.discriminator(fake)
        return {
            "adv": self.adversarial(realness, True, for_discriminator=False),
            "cls": self.classification_loss(logits, outputs["target"]),
            "rec": F.l1_loss(self.generator(fake, batch["label"]), batch["image"]),
        }

    def discriminator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real, fake = batch["image"], outputs["fake"].detach()
        real_realness, logits = self.discriminator(real)
        fake_realness, _ = self.discriminator(fake)
        losses = {
            "adv": self.adversarial(real_realness, True) + self.adversarial(fake_realness, False),
            "cls": self.classification_loss(logits, batch["label"]),
        }
        if self.adversarial.uses_gradient_penalty:
            losses["gp"] = gradient_penalty(self.discriminator, real, fake, self.gp_reduction)
        if self.loss_weights.get("r1"):
            losses["r1"] = r1_penalty(self.discriminator, real, self.gp_reduction)
        return losses

    @torch.no_grad()
    def visuals(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The paper's figure: each input, then its translation to each domain / attribute flip."""
        images = batch["image"]
        flips = self.labels.flips(batch["label"])
        return {"input": images, **{name: self.generator(images, labels) for name, labels in flips.items()}}

    def exports(self) -> dict[str, Export]:
        return {
            "translate": Export(
                IMAGE_AND_TARGET_TO_IMAGE,
                "generator",
                self.generator.in_channels,
                self.generator.out_channels,
                options={
                    "labels": self.labels.to_dict(),
                    "classifier": "discriminator",
                    "image_size": self.image_size,
                },
            )
        }
