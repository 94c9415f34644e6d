"""StarGAN (Choi et al., 2018): one generator translates between any number of domains.

G(x, c) translates image x to target labels c; D judges real/fake (WGAN-GP) and classifies domains.
Generator objective: L_adv + lambda_cls * L_cls(D_cls(G(x, c)), c) + lambda_rec * |G(G(x, c), c') - x|
with c' the image's own labels; critic: L_adv + lambda_cls * L_cls(D_cls(x), c') + lambda_gp * GP.
L_cls is binary cross-entropy per attribute (attribute vectors) or cross-entropy (one-of-N domains).
Target labels are the batch's own labels in a random order, as in the reference code, so every target
is a combination that occurs in the data. One step: the critic five times (new batch each), then G once
on the last batch: ``train.steps`` counts G updates (the reference's 200,000 iterations are 40,000 steps).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from translate.exports import IMAGE_AND_TARGET_TO_IMAGE, Export
from translate.labels import LabelSpace
from translate.losses import gradient_penalty
from translate.registry import DISCRIMINATORS, GENERATORS, LOSSES, TASKS
from translate.tasks.base import Batch, Task, Update

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
        },
        "loss_weights": {"adv": 1.0, "cls": 1.0, "rec": 10.0, "gp": 10.0},
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
        "data": {"image_size": 64, "preprocess": "resize_and_crop", "load_size": 72},
        "train": {
            "steps": 300,
            "batch_size": 8,
            "sample_every": 100,
            "checkpoint_every": 150,
            "log_every": 25,
        },
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
    ) -> None:
        """``labels``: a ``LabelSpace`` as a dict (names, kind, groups), given by the dataset."""
        super().__init__()
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
        source = batch["label"]
        target = source[torch.randperm(len(source), device=source.device)]
        return {"fake": self.generator(batch["image"], target), "target": target}

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
            losses["gp"] = gradient_penalty(self.discriminator, real, fake)
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
