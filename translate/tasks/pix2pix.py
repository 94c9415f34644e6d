"""pix2pix (Isola et al., 2017): conditional GAN on aligned pairs.

G: input -> output (U-Net 256); D: PatchGAN on the channel-wise concatenation (input, output);
loss: L_cGAN(G, D) + lambda * L1(G), lambda = 100. One step as junyanz's ``optimize_parameters``: one
generator pass, D updated on it, then G against the updated D (``update_order``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.exports import IMAGE_TO_IMAGE, Export
from translate.layers import per_image
from translate.layers.norm import batch_statistics
from translate.losses import gradient_penalty
from translate.registry import DISCRIMINATORS, GENERATORS, LOSSES, TASKS
from translate.tasks.base import Batch, Task, Update
from translate.tasks.common import DEMO_DATA, demo_schedule

TEST_MODES = ("batch_statistics", "eval")
UPDATE_ORDERS = ("discriminator_first", "generator_first")
"""``model.update_order``: junyanz's pix2pix (D, then G against the updated D), or G then D (CycleGAN's)."""


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
            "update_order": "discriminator_first",
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
        "data": DEMO_DATA,
        "train": demo_schedule(1000, batch_size=4),
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
        update_order: str = "discriminator_first",
    ) -> None:
        """``test_mode``: ``batch_statistics`` runs the trained generator as junyanz's test.py does by
        default (batch norm on each image's own statistics, dropout on), which matches training at the
        paper's batch size 1; ``eval`` uses the running statistics and no dropout (``--eval`` there), the
        better choice after training with larger batches.

        ``update_order``: ``discriminator_first`` (junyanz's ``optimize_parameters``: D on the step's
        fakes, then G against the updated D) or ``generator_first`` (G, then D on the same fakes: one
        generator pass per step where the other order makes two, see ``forward``)."""
        super().__init__()
        if test_mode not in TEST_MODES:
            raise ConfigError(f"model.test_mode must be one of {', '.join(TEST_MODES)}; got {test_mode!r}")
        if update_order not in UPDATE_ORDERS:
            raise ConfigError(
                f"model.update_order must be one of {', '.join(UPDATE_ORDERS)}; got {update_order!r}"
            )
        self.direction = direction
        self.test_mode = test_mode
        self.update_order = update_order
        self._first_pass: tuple[torch.Tensor, list[torch.Tensor]] | None = None
        """The inputs of the last pass made without gradients and the random state before it."""
        self.generator = GENERATORS.build(generator, in_channels=in_channels, out_channels=out_channels)
        self.discriminator = DISCRIMINATORS.build(discriminator, in_channels=in_channels + out_channels)
        self.adversarial = LOSSES.build(adversarial_loss)

    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        return {"generator": [self.generator], "discriminator": [self.discriminator]}

    def schedule(self, n_critic: int = 1) -> list[Update]:
        """D ``n_critic`` times, then G on D's last batch (``discriminator_first``), or G then D; G alone
        when ``loss_weights.adv`` is 0."""
        generator = Update("generator", through_generator=True)
        if self.loss_weights.get("adv", 1.0) == 0:
            return [generator]
        discriminator = Update("discriminator", n_critic)
        if self.update_order == "generator_first":
            return [generator, discriminator]
        return [discriminator, generator]

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The generator pass. The reference makes one pass per step and updates D, then G, on it; the
        trainer makes the D update's pass without gradients and, for the G update on the same batch, the
        pass again with them. That second pass replays the first: the same random state (so the same
        dropout), batch norm's running statistics not moved again, so that the step equals the
        reference's (tests/test_step_parity.py)."""
        inputs = batch["input"]
        first, self._first_pass = self._first_pass, None
        if first is not None and first[0] is inputs and torch.is_grad_enabled():
            devices = [inputs.device] if inputs.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices), batch_statistics(self.generator):
                torch.set_rng_state(first[1][0])
                if devices:
                    torch.cuda.set_rng_state(first[1][1], inputs.device)
                return {"output": self.generator(inputs)}
        if self.training and not torch.is_grad_enabled():
            state = [torch.get_rng_state()]
            if inputs.device.type == "cuda":
                state.append(torch.cuda.get_rng_state(inputs.device))
            self._first_pass = (inputs, state)
        return {"output": self.generator(inputs)}

    def generator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        losses = {"l1": F.l1_loss(outputs["output"], batch["target"])}
        if self.loss_weights["adv"] > 0:  # weight 0: no discriminator pass
            fake_pair = torch.cat([batch["input"], outputs["output"]], dim=1)
            losses["adv"] = self.adversarial(self.discriminator(fake_pair), True, for_discriminator=False)
        return losses

    def discriminator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """junyanz's ``backward_D``: ``0.5 * (L(D(x, G(x)), fake) + L(D(x, y), real))``, D on the fake pair
        first (the order its batch norm's running statistics see them), and ``0.5 * GP`` with WGAN-GP
        (``loss_weights.gp`` relative to the Wasserstein term, as ``common.discriminator_objective``)."""
        real_pair = torch.cat([batch["input"], batch["target"]], dim=1)
        fake_pair = torch.cat([batch["input"], outputs["output"]], dim=1).detach()
        fake = self.adversarial(self.discriminator(fake_pair), False)
        real = self.adversarial(self.discriminator(real_pair), True)
        losses = {"adv": 0.5 * (fake + real)}
        if self.adversarial.uses_gradient_penalty:
            losses["gp"] = 0.5 * gradient_penalty(self.discriminator, real_pair, fake_pair)
        return losses

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
