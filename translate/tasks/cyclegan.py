"""CycleGAN (Zhu et al., 2017): unpaired translation with two generators and two discriminators.

G_ab: A -> B, G_ba: B -> A; D_a judges A, D_b judges B. Generator objective:
L_GAN(G_ab, D_b) + L_GAN(G_ba, D_a) + lambda_cyc (|G_ba(G_ab(a)) - a| + |G_ab(G_ba(b)) - b|)
+ lambda_idt (|G_ab(b) - b| + |G_ba(a) - a|), with lambda_cyc = 10 and lambda_idt = 0.5 * lambda_cyc.
Discriminators see fakes drawn from a 50-image history pool (Shrivastava et al.).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from translate.exports import IMAGE_TO_IMAGE, Export
from translate.registry import DISCRIMINATORS, GENERATORS, LOSSES, TASKS
from translate.tasks.base import Batch, Task
from translate.tasks.common import DEMO_DATA, add_losses, demo_schedule, discriminator_objective
from translate.tasks.image_pool import ImagePool


@TASKS.register("cyclegan")
class CycleGAN(Task):
    """CycleGAN: two ResNet G + two PatchGAN D, LSGAN loss, cycle x10, identity x5, 50-image pool."""

    dataset = "unaligned"
    default_config = {
        "model": {
            "generator": {"name": "resnet_9blocks", "norm": "instance", "dropout": False},
            "discriminator": {"name": "patchgan", "num_layers": 3, "norm": "instance"},
            "adversarial_loss": "lsgan",
            "pool_size": 50,
        },
        "loss_weights": {"adv": 1.0, "cycle": 10.0, "identity": 5.0, "gp": 10.0},
        "train": {"batch_size": 1, "lr": 2e-4, "betas": [0.5, 0.999], "schedule": "linear"},
    }
    demo_config = {
        "model": {
            "generator": {"name": "resnet_6blocks", "base_channels": 32, "norm": "instance"},
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
        pool_size: int = 50,
        in_channels: int = 3,
        out_channels: int = 3,
        domains: list[str] | None = None,
    ) -> None:
        """``domains``: the names of A and B (for exports and ``translate info``); ``["A", "B"]`` if None."""
        super().__init__()
        self.domains = list(domains or ["A", "B"])
        self.g_ab = GENERATORS.build(generator, in_channels=in_channels, out_channels=out_channels)
        self.g_ba = GENERATORS.build(generator, in_channels=out_channels, out_channels=in_channels)
        self.d_a = DISCRIMINATORS.build(discriminator, in_channels=in_channels)
        self.d_b = DISCRIMINATORS.build(discriminator, in_channels=out_channels)
        self.adversarial = LOSSES.build(adversarial_loss)
        self.pool_a = ImagePool(pool_size)
        self.pool_b = ImagePool(pool_size)
        self.same_channels = in_channels == out_channels

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        return {"generator": [self.g_ab, self.g_ba], "discriminator": [self.d_a, self.d_b]}

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        fake_b = self.g_ab(batch["A"])
        fake_a = self.g_ba(batch["B"])
        return {"fake_b": fake_b, "rec_a": self.g_ba(fake_b), "fake_a": fake_a, "rec_b": self.g_ab(fake_a)}

    def generator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real_a, real_b = batch["A"], batch["B"]
        losses = {
            "adv": self.adversarial(self.d_b(outputs["fake_b"]), True, for_discriminator=False)
            + self.adversarial(self.d_a(outputs["fake_a"]), True, for_discriminator=False),
            "cycle": F.l1_loss(outputs["rec_a"], real_a) + F.l1_loss(outputs["rec_b"], real_b),
        }
        # Identity mapping needs as many channels in A as in B; weight 0 skips its two extra passes.
        if self.same_channels and self.loss_weights["identity"] > 0:
            losses["identity"] = F.l1_loss(self.g_ab(real_b), real_b) + F.l1_loss(self.g_ba(real_a), real_a)
        return losses

    def discriminator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        fake_b = self.pool_b.query(outputs["fake_b"].detach())
        fake_a = self.pool_a.query(outputs["fake_a"].detach())
        return add_losses(
            discriminator_objective(self.adversarial, self.d_b, batch["B"], fake_b),
            discriminator_objective(self.adversarial, self.d_a, batch["A"], fake_a),
        )

    @torch.no_grad()
    def visuals(self, batch: Batch) -> dict[str, torch.Tensor]:
        outputs = self(batch)
        return {
            "real_A": batch["A"],
            "fake_B": outputs["fake_b"],
            "rec_A": outputs["rec_a"],
            "real_B": batch["B"],
            "fake_A": outputs["fake_a"],
            "rec_B": outputs["rec_b"],
        }

    def exports(self) -> dict[str, Export]:
        a, b = self.domains
        return {
            "a2b": Export(
                IMAGE_TO_IMAGE,
                "g_ab",
                self.g_ab.in_channels,
                self.g_ab.out_channels,
                options={"direction": "a2b", "source": a, "target": b},
            ),
            "b2a": Export(
                IMAGE_TO_IMAGE,
                "g_ba",
                self.g_ba.in_channels,
                self.g_ba.out_channels,
                options={"direction": "b2a", "source": b, "target": a},
            ),
        }

    def training_state(self) -> dict[str, torch.Tensor]:
        return {
            **{f"pool_a/{k}": v for k, v in self.pool_a.state_dict().items()},
            **{f"pool_b/{k}": v for k, v in self.pool_b.state_dict().items()},
        }

    def load_training_state(self, state: dict[str, torch.Tensor]) -> None:
        for name, pool in (("pool_a", self.pool_a), ("pool_b", self.pool_b)):
            pool.load_state_dict(
                {k.split("/", 1)[1]: v for k, v in state.items() if k.startswith(name + "/")}
            )
