"""UNIT (Liu, Breuel & Kautz, NeurIPS 2017): unpaired translation through a shared latent space.

Two VAEs, one per domain (``translate.generators.unit``), whose encoders end and decoders start with the
same residual blocks (``share_layers``), and one multi-scale discriminator per domain. With ``mu_a =
E_a(a)`` and ``z_a = mu_a + N(0, I)`` (``mu_a`` at inference), the generator objective is, for A and the
symmetric terms for B:

- ``adv``: LSGAN ``(D_b(G_b(z_a)) - 1)^2``, summed over the discriminator's scales (weight 1);
- ``recon``: ``|G_a(z_a) - a|_1`` (10); ``kl``: ``mean(mu_a^2)``, the authors' reduced KL to N(0, I) (0.01);
- ``cycle``: ``|G_a(z_aba) - a|_1`` with ``z_aba`` sampled around ``E_b(G_b(z_a))`` (10); ``cycle_kl``:
  the KL term of that re-encoded mean (0.01).

Each discriminator learns LSGAN on real images vs detached translations (``discriminator_objective``).
One step is the authors' ``dis_update`` then ``gen_update`` on the same batch, each drawing its own noise.
Adam 1e-4, betas (0.5, 0.999), weight decay 1e-4, LR halved every 100k steps, Kaiming init; no image pool.

Differences from the authors' PyTorch code (mingyuliutw/UNIT, ``configs/unit_*.yaml``):

- Shared weights: that code trains two separate VAEs and ties them through the losses only; the paper
  shares the innermost layers, which is the default here (``share_layers: 1``; 0 is the code's setting).
- Discriminator: each scale is our ``patchgan`` (64 channels, no norm, LeakyReLU 0.2, three stride-2 4x4
  convs, then a stride-1 4x4 conv and a 4x4 conv to one channel, zero padding); theirs has four stride-2
  4x4 convs with reflection padding and a 1x1 conv to one channel: the same widths, a 70 px receptive field
  instead of 46, logit maps at 1/8 rather than 1/16 of each scale. The discriminator loss is their sum over
  scales of the real and fake terms, halved and averaged over scales (a constant factor that Adam ignores
  but for its interplay with the weight decay); both discriminators are initialised like the generators
  (``train.init``), where theirs are drawn from N(0, 0.02).
- Layer norm: ``GroupNorm(1, C)`` (``(x - mean) / sqrt(var + eps)``, scale initialised to 1); theirs divides
  by ``std + eps`` with the unbiased std and draws its scale from U(0, 1).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.exports import IMAGE_TO_IMAGE, Export
from translate.generators.unit import UnitDecoder, UnitEncoder, UnitTranslator, coupled_autoencoders
from translate.registry import DISCRIMINATORS, LOSSES, TASKS
from translate.tasks.base import Batch, Task, Update
from translate.tasks.common import (
    DEMO_DATA,
    NVLABS_TRAINING,
    add_losses,
    demo_schedule,
    discriminator_objective,
)


def latent_kl(mu: torch.Tensor) -> torch.Tensor:
    """``mean(mu^2)``, the authors' KL of ``N(mu, I)`` to ``N(0, I)`` (``0.5 * sum(mu^2)``) up to scale."""
    return mu.pow(2).mean()


@TASKS.register("unit")
class UNIT(Task):
    """UNIT: two VAEs sharing their innermost blocks + two multi-scale D, LSGAN, recon/cycle x10, KL x0.01."""

    dataset = "unaligned"
    default_config = {
        "model": {
            "base_channels": 64,
            "num_res": 4,
            "share_layers": 1,
            "discriminator": {
                "name": "multiscale",
                "num_scales": 3,
                "discriminator": {"name": "patchgan", "base_channels": 64, "num_layers": 3, "norm": "none"},
            },
            "adversarial_loss": "lsgan",
        },
        "loss_weights": {"adv": 1.0, "recon": 10.0, "kl": 0.01, "cycle": 10.0, "cycle_kl": 0.01, "gp": 10.0},
        **NVLABS_TRAINING,
    }
    # 64 px: the third scale sees 16 px, too small for a 3-layer PatchGAN; two layers fit.
    demo_config = {
        "model": {
            "base_channels": 32,
            "discriminator": {"discriminator": {"base_channels": 32, "num_layers": 2}},
        },
        "data": DEMO_DATA,
        "train": demo_schedule(800),
    }

    def __init__(
        self,
        *,
        discriminator: str | dict[str, Any],
        adversarial_loss: str | dict[str, Any],
        base_channels: int = 64,
        num_res: int = 4,
        share_layers: int = 1,
        in_channels: int = 3,
        out_channels: int = 3,
        domains: list[str] | None = None,
    ) -> None:
        """``in_channels``/``out_channels``: channels of A and B. ``domains``: the names of A and B (for
        exports, ``translate info`` and :meth:`encode`); ``["A", "B"]`` if None."""
        super().__init__()
        self.domains = list(domains or ["A", "B"])
        encoder_a, decoder_a, encoder_b, decoder_b = coupled_autoencoders(
            in_channels, out_channels, base_channels, num_res, share_layers
        )
        # The two directions own the four networks: each weight is stored once (shared blocks twice).
        self.a2b = UnitTranslator(encoder_a, decoder_b)
        self.b2a = UnitTranslator(encoder_b, decoder_a)
        self.d_a = DISCRIMINATORS.build(discriminator, in_channels=in_channels)
        self.d_b = DISCRIMINATORS.build(discriminator, in_channels=out_channels)
        self.adversarial = LOSSES.build(adversarial_loss)

    # ------------------------------------------------------------------------------ the latent space
    @property
    def encoder_a(self) -> UnitEncoder:
        return self.a2b.encoder

    @property
    def encoder_b(self) -> UnitEncoder:
        return self.b2a.encoder

    @property
    def decoder_a(self) -> UnitDecoder:
        return self.b2a.decoder

    @property
    def decoder_b(self) -> UnitDecoder:
        return self.a2b.decoder

    def _side(self, domain: str) -> int:
        """0 for A, 1 for B: ``"A"``/``"B"`` or the domain names."""
        for side, names in enumerate((("A", self.domains[0]), ("B", self.domains[1]))):
            if domain in names:
                return side
        a, b = self.domains
        raise ConfigError(f"unknown domain {domain!r}; this model has A ({a}) and B ({b})")

    def encode(self, images: torch.Tensor, domain: str) -> torch.Tensor:
        """Latent means of images of ``domain``: ``(N, C, H, W) -> (N, 4 * base_channels, H / 4, W / 4)``."""
        return (self.encoder_a, self.encoder_b)[self._side(domain)](images)

    def decode(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        """Images of ``domain``: ``(N, 4 * base_channels, h, w) -> (N, C, 4h, 4w)`` in [-1, 1]."""
        return (self.decoder_a, self.decoder_b)[self._side(domain)](z)

    def _sample(self, mu: torch.Tensor) -> torch.Tensor:
        """``z = mu + N(0, I)`` while training (global RNG: resuming restores it), ``mu`` in eval mode."""
        return mu + torch.randn_like(mu) if self.training else mu

    # ------------------------------------------------------------------------------ training
    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        # a2b and b2a hold the shared blocks both; the optimizer takes each parameter once.
        return {"generator": [self.a2b, self.b2a], "discriminator": [self.d_a, self.d_b]}

    def schedule(self, n_critic: int = 1) -> list[Update]:
        """The authors' order: ``n_critic`` discriminator updates, then the generator on the last batch."""
        generator = Update("generator", through_generator=True)
        if self.loss_weights["adv"] == 0:
            return [generator]
        return [Update("discriminator", n_critic), generator]

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """What both updates need: latent means ``mu_*``, codes ``z_*`` (``mu`` + noise while training) and
        the translations ``fake_*``. The reconstructions within domains and through the cycle serve the
        generator only, so ``generator_losses`` makes them: the discriminator's update (run first, under
        ``torch.no_grad()``) skips those six passes."""
        mu_a, mu_b = self.encoder_a(batch["A"]), self.encoder_b(batch["B"])
        z_a, z_b = self._sample(mu_a), self._sample(mu_b)
        return {
            "mu_a": mu_a,
            "mu_b": mu_b,
            "z_a": z_a,
            "z_b": z_b,
            "fake_b": self.decoder_b(z_a),
            "fake_a": self.decoder_a(z_b),
        }

    def _generator_adversarial(self, discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss summed over the scales of a multi-scale D, as the authors'."""
        prediction = discriminator(fake)
        scales = prediction if isinstance(prediction, list) else [prediction]
        return sum(self.adversarial(p, True, for_discriminator=False) for p in scales)

    def generator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``cycle_kl`` and ``cycle`` need the translations encoded again (and decoded): a weight of 0 for
        ``cycle`` (and ``cycle_kl``) skips the passes only it needs."""
        real_a, real_b = batch["A"], batch["B"]
        fake_a, fake_b = outputs["fake_a"], outputs["fake_b"]
        losses = {
            "adv": self._generator_adversarial(self.d_b, fake_b)
            + self._generator_adversarial(self.d_a, fake_a),
            "recon": F.l1_loss(self.decoder_a(outputs["z_a"]), real_a)
            + F.l1_loss(self.decoder_b(outputs["z_b"]), real_b),
            "kl": latent_kl(outputs["mu_a"]) + latent_kl(outputs["mu_b"]),
        }
        if self.loss_weights["cycle"] > 0 or self.loss_weights["cycle_kl"] > 0:
            # The codes found again in the translations: a's in fake_b, b's in fake_a.
            mu_aba, mu_bab = self.encoder_b(fake_b), self.encoder_a(fake_a)
            losses["cycle_kl"] = latent_kl(mu_aba) + latent_kl(mu_bab)
            if self.loss_weights["cycle"] > 0:
                rec_a, rec_b = self.decoder_a(self._sample(mu_aba)), self.decoder_b(self._sample(mu_bab))
                losses["cycle"] = F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b)
        return losses

    def discriminator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return add_losses(
            discriminator_objective(self.adversarial, self.d_b, batch["B"], outputs["fake_b"]),
            discriminator_objective(self.adversarial, self.d_a, batch["A"], outputs["fake_a"]),
        )

    # ------------------------------------------------------------------------------ outputs
    @torch.no_grad()
    def visuals(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Translations and cycles through the latent means (no noise), whatever the mode and weights."""
        real_a, real_b = batch["A"], batch["B"]
        fake_b, fake_a = self.a2b(real_a), self.b2a(real_b)
        return {
            "real_A": real_a,
            "fake_B": fake_b,
            "rec_A": self.b2a(fake_b),
            "real_B": real_b,
            "fake_A": fake_a,
            "rec_B": self.a2b(fake_a),
        }

    def exports(self) -> dict[str, Export]:
        a, b = self.domains
        return {
            name: Export(
                IMAGE_TO_IMAGE,
                name,
                module.in_channels,
                module.out_channels,
                options={"direction": name, "source": source, "target": target},
            )
            for name, module, source, target in (("a2b", self.a2b, a, b), ("b2a", self.b2a, b, a))
        }
