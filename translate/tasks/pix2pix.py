"""pix2pix (Isola et al., 2017): conditional GAN on aligned pairs.

G: input -> output (U-Net 256); D: PatchGAN on the channel-wise concatenation (input, output);
loss: L_cGAN(G, D) + lambda * L1(G), lambda = 100.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.exports import IMAGE_TO_IMAGE, Export
from translate.layers import per_image
from translate.registry import DISCRIMINATORS, GENERATORS, LOSSES, TASKS
from translate.tasks.base import Batch, Task
from translate.tasks.common import discriminator_objective

TEST_MODES = ("batch_statistics", "eval")


@TASKS.register("pix2pix")
class Pix2Pix(Task):
    """pix2pix: U-Net G + conditional PatchGAN D on (input, output) pairs + GAN loss + 100 x L1."""

    dataset = "aligned"
    default_config = {
        "model": {
            "generator": {"name": "unet_256", "norm": "batch", "dropout": True},
            "discriminator": {"name": "patchgan", "num_layers": 3, "norm": "batch"},
            "adversarial_loss": "vanilla",
            "test_mode": "batch_statistics",
        },
        "loss_weights": {"adv": 1.0, "l1": 100.0, "gp": 10.0},
        "train": {"batch_size": 1, "lr": 2e-4, "betas": [0.5, 0.999], "schedule": "linear"},
    }
    demo_config = {
        "model": {
            "generator": {
                "name": "unet",
                "num_downs": 6,
                "base_channels": 32,
                "norm": "batch",
                "dropout": True,
            },
            "discriminator": {"base_channels": 32},
            "test_mode": "eval",  # batch 4: per-image statistics would not match training's
        },
        "data": {"image_size": 64, "load_size": 72},
        "train": {
            "steps": 1000,
            "batch_size": 4,
            "sample_every": 100,
            "checkpoint_every": 500,
            "log_every": 25,
        },
    }

    def __init__(
        self,
        *,
        generator: str | dict[str, Any],
        discriminator: str | dict[str, Any],
        adversarial_loss: str | dict[str, Any],
        in_channels: int = 3,
        out_channels: int = 3,
        direction: str = "a2b",
        test_mode: str = "eval",
    ) -> None:
        """``test_mode``: ``batch_statistics`` runs the trained generator as junyanz's test.py does by
        default (batch norm on each image's own statistics, dropout on), which matches training at the
        paper's batch size 1; ``eval`` uses the running statistics and no dropout (``--eval`` there), the
        better choice after training with larger batches."""
        super().__init__()
        if test_mode not in TEST_MODES:
            raise ConfigError(f"model.test_mode must be one of {', '.join(TEST_MODES)}; got {test_mode!r}")
        self.direction = direction
        self.test_mode = test_mode
        self.generator = GENERATORS.build(generator, in_channels=in_channels, out_channels=out_channels)
        self.discriminator = DISCRIMINATORS.build(discriminator, in_channels=in_channels + out_channels)
        self.adversarial = LOSSES.build(adversarial_loss)

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        return {"generator": [self.generator], "discriminator": [self.discriminator]}

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"output": self.generator(batch["input"])}

    def generator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        losses = {"l1": F.l1_loss(outputs["output"], batch["target"])}
        if self.loss_weights["adv"] > 0:  # weight 0: no discriminator pass
            fake_pair = torch.cat([batch["input"], outputs["output"]], dim=1)
            losses["adv"] = self.adversarial(self.discriminator(fake_pair), True, for_discriminator=False)
        return losses

    def discriminator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real_pair = torch.cat([batch["input"], batch["target"]], dim=1)
        fake_pair = torch.cat([batch["input"], outputs["output"]], dim=1)
        return discriminator_objective(self.adversarial, self.discriminator, real_pair, fake_pair)

    @torch.no_grad()
    def visuals(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Outputs as ``translate apply`` makes them: in the run's ``test_mode``."""
        if self.test_mode == "batch_statistics":
            output = per_image(self.generator, batch["input"])
        else:
            output = self.generator(batch["input"])
        return {"input": batch["input"], "output": output, "target": batch["target"]}

    def exports(self) -> dict[str, Export]:
        export = Export(
            IMAGE_TO_IMAGE,
            "generator",
            self.generator.in_channels,
            self.generator.out_channels,
            batch_statistics=self.test_mode == "batch_statistics",
            options={"direction": self.direction},
        )
        return {self.direction: export}
