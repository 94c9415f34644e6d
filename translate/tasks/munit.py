"""MUNIT (Huang, Liu, Belongie & Kautz, ECCV 2018): multimodal unpaired translation, as the authors'
``MUNIT_Trainer`` (NVlabs/MUNIT ``trainer.py``, ``train.py``).

An image is a content code (spatial, shared by the domains) and a style code (8 numbers, of its own
domain). Each domain has an auto-encoder (``translate.generators.munit``: content encoder, style encoder,
AdaIN decoder) and a multi-scale discriminator. A -> B keeps A's content and takes a style of B: a code
drawn from ``N(0, I)`` (many translations of one input) or the code of a reference image of B.

With ``c_a, s_a' = E_a(a)``, a random style ``s_b ~ N(0, I)`` and ``x_ab = G_b(c_a, s_b)``, the generator
objective is, for A and the symmetric terms for B (the authors' weight names in brackets):

- ``adv``: LSGAN ``(D_b(x_ab) - 1)^2``, summed over D's scales (``gan_w`` 1);
- ``recon_x``: ``|G_a(c_a, s_a') - a|_1``, the image rebuilt from its own codes (``recon_x_w`` 10);
- ``recon_s``: ``|S_b(x_ab) - s_b|_1``, the random style found again in the translation (``recon_s_w`` 1);
- ``recon_c``: ``|C_b(x_ab) - c_a|_1``, the content found again (``recon_c_w`` 1);
- ``recon_x_cyc``: ``|G_a(C_b(x_ab), s_a') - a|_1``, the style-augmented cycle (``recon_x_cyc_w``: 0 in the
  edges2handbags/edges2shoes configs, the default here; 10 in summer2winter). Its passes run only when its
  weight is above 0.

Each discriminator learns LSGAN on real images vs detached translations with their own random styles:
``sum over scales of D(x_ab)^2 + (D(b) - 1)^2`` (weight ``gan_w``: ``adv``). One step is the authors'
``dis_update`` then ``gen_update`` on the same batch, each drawing its own styles from the global random
state. Adam 1e-4, betas (0.5, 0.999), weight decay 1e-4, LR halved every 100k steps, Kaiming init.

Differences from the authors' code:

- Initialisation: the trainer applies ``train.init`` (Kaiming) to every network; theirs re-draws the
  discriminators' weights from N(0, 0.02) after the Kaiming init.
- The domain-invariant perceptual loss (``vgg_w``, 0 in the authors' configs but synthia2cityscape) is not
  implemented: it needs VGG-16 weights.
- The network differences are listed in ``translate.generators.munit`` (instance norm without running
  statistics, ``GroupNorm`` as layer norm); none changes a parameter count.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.exports import IMAGE_AND_STYLE_TO_IMAGE, Export
from translate.generators.munit import ContentEncoder, MunitDecoder, MunitTranslator, StyleEncoder
from translate.losses import gradient_penalty
from translate.registry import DISCRIMINATORS, GENERATORS, LOSSES, TASKS
from translate.tasks.base import Batch, Task, Update
from translate.tasks.common import DEMO_DATA, NVLABS_TRAINING, demo_schedule

SAMPLE_STYLES = 3
"""Translations of each input in a sample grid, one column per style code (the same codes every time)."""


def _scales(prediction: torch.Tensor | list[torch.Tensor]) -> list[torch.Tensor]:
    return prediction if isinstance(prediction, list) else [prediction]


@TASKS.register("munit")
class MUNIT(Task):
    """MUNIT: per domain a content encoder, style encoder and AdaIN decoder + a 3-scale D; LSGAN, image
    recon x10, style and content recon x1."""

    dataset = "unaligned"
    default_config = {
        "model": {
            "generator": {
                "name": "munit",
                "base_channels": 64,
                "style_dim": 8,
                "mlp_dim": 256,
                "num_downsample": 2,
                "num_res": 4,
            },
            "discriminator": {
                "name": "multiscale",
                "num_scales": 3,
                "discriminator": {
                    "name": "munit_patch",
                    "base_channels": 64,
                    "num_layers": 4,
                    "norm": "none",
                },
            },
            "adversarial_loss": "lsgan",
        },
        "loss_weights": {
            "adv": 1.0,
            "recon_x": 10.0,
            "recon_s": 1.0,
            "recon_c": 1.0,
            "recon_x_cyc": 0.0,
            "gp": 10.0,
        },
        **NVLABS_TRAINING,
    }
    # 64 px: the authors' 4 stride-2 layers per scale at 256 px are 2 at 64 px (the same logit maps, 16/8/4).
    demo_config = {
        "model": {
            "generator": {"base_channels": 32},
            "discriminator": {"discriminator": {"base_channels": 32, "num_layers": 2}},
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
        in_channels: int = 3,
        out_channels: int = 3,
        domains: list[str] | None = None,
    ) -> None:
        """``in_channels``/``out_channels``: channels of A and B. ``domains``: the names of A and B (for
        exports, ``translate info`` and :meth:`encode`); ``["A", "B"]`` if None."""
        super().__init__()
        self.domains = list(domains or ["A", "B"])
        gen_a = GENERATORS.build(generator, in_channels=in_channels, out_channels=in_channels)
        gen_b = GENERATORS.build(generator, in_channels=out_channels, out_channels=out_channels)
        for gen in (gen_a, gen_b):
            if not all(hasattr(gen, part) for part in ("content_encoder", "style_encoder", "decoder")):
                raise ConfigError(
                    f"munit needs a generator with a content_encoder, style_encoder and decoder (munit); "
                    f"got {type(gen).__name__}"
                )
        # The two directions own the six networks, each stored once: A -> B reads A's content and writes
        # with B's decoder; B's style encoder reads the styles of B's images.
        self.a2b = MunitTranslator(gen_a.content_encoder, gen_b.style_encoder, gen_b.decoder)
        self.b2a = MunitTranslator(gen_b.content_encoder, gen_a.style_encoder, gen_a.decoder)
        self.style_dim = self.a2b.style_dim
        self.d_a = DISCRIMINATORS.build(discriminator, in_channels=in_channels)
        self.d_b = DISCRIMINATORS.build(discriminator, in_channels=out_channels)
        self.adversarial = LOSSES.build(adversarial_loss)

    # ------------------------------------------------------------------------------ each domain's networks
    def _side(self, domain: str) -> int:
        """0 for A, 1 for B: ``"A"``/``"B"`` or the domain names."""
        for side, names in enumerate((("A", self.domains[0]), ("B", self.domains[1]))):
            if domain in names:
                return side
        a, b = self.domains
        raise ConfigError(f"unknown domain {domain!r}; this model has A ({a}) and B ({b})")

    def content_encoder(self, domain: str) -> ContentEncoder:
        return (self.a2b, self.b2a)[self._side(domain)].content_encoder

    def style_encoder(self, domain: str) -> StyleEncoder:
        return (self.b2a, self.a2b)[self._side(domain)].style_encoder

    def decoder(self, domain: str) -> MunitDecoder:
        return (self.b2a, self.a2b)[self._side(domain)].decoder

    def encode(self, images: torch.Tensor, domain: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(content, style)`` of images of ``domain``: ``(N, 4 * base_channels, H / 4, W / 4)`` and
        ``(N, style_dim, 1, 1)``."""
        return self.content_encoder(domain)(images), self.style_encoder(domain)(images)

    def decode(self, content: torch.Tensor, style: torch.Tensor, domain: str) -> torch.Tensor:
        """Images of ``domain`` in [-1, 1] of content codes and style codes ``(N or 1, style_dim, 1, 1)``."""
        return self.decoder(domain)(content, style)

    def random_styles(self, count: int, device: torch.device | None = None) -> torch.Tensor:
        """``(count, style_dim, 1, 1)`` codes of the prior ``N(0, I)`` from the global random state (resuming
        restores it)."""
        return torch.randn(count, self.style_dim, 1, 1, device=device)

    # ------------------------------------------------------------------------------ training
    def optimizer_groups(self) -> dict[str, list[nn.Module]]:
        return {"generator": [self.a2b, self.b2a], "discriminator": [self.d_a, self.d_b]}

    def schedule(self, n_critic: int = 1) -> list[Update]:
        """The authors' order (``dis_update`` then ``gen_update`` on one batch); ``n_critic`` D updates."""
        generator = Update("generator", through_generator=True)
        if self.loss_weights["adv"] == 0:
            return [generator]
        return [Update("discriminator", n_critic), generator]

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """What both updates need: content codes ``content_*``, random styles ``style_*`` (one per image,
        drawn for A then for B, as the authors' ``s_a``, ``s_b``) and the translations ``fake_*``. The
        reconstructions and re-encodings serve the generator only, so ``generator_losses`` makes them: the
        discriminator's update (run first, under ``torch.no_grad()``) skips them."""
        real_a, real_b = batch["A"], batch["B"]
        style_a = self.random_styles(len(real_a), real_a.device)
        style_b = self.random_styles(len(real_b), real_b.device)
        content_a, content_b = self.a2b.content_encoder(real_a), self.b2a.content_encoder(real_b)
        return {
            "content_a": content_a,
            "content_b": content_b,
            "style_a": style_a,
            "style_b": style_b,
            "fake_b": self.a2b.decoder(content_a, style_b),
            "fake_a": self.b2a.decoder(content_b, style_a),
        }

    def _generator_adversarial(self, discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        """The authors' ``calc_gen_loss``: the adversarial loss summed over the discriminator's scales."""
        return sum(self.adversarial(p, True, for_discriminator=False) for p in _scales(discriminator(fake)))

    def generator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real_a, real_b = batch["A"], batch["B"]
        fake_a, fake_b = outputs["fake_a"], outputs["fake_b"]
        content_a, content_b = outputs["content_a"], outputs["content_b"]
        own_style_a, own_style_b = self.style_encoder("A")(real_a), self.style_encoder("B")(real_b)
        # encode again: A's content and B's random style found in fake_b, and the reverse in fake_a
        content_a_again, style_b_again = self.encode(fake_b, "B")
        content_b_again, style_a_again = self.encode(fake_a, "A")
        losses = {
            "adv": self._generator_adversarial(self.d_a, fake_a)
            + self._generator_adversarial(self.d_b, fake_b),
            "recon_x": F.l1_loss(self.decode(content_a, own_style_a, "A"), real_a)
            + F.l1_loss(self.decode(content_b, own_style_b, "B"), real_b),
            "recon_s": F.l1_loss(style_a_again, outputs["style_a"])
            + F.l1_loss(style_b_again, outputs["style_b"]),
            "recon_c": F.l1_loss(content_a_again, content_a) + F.l1_loss(content_b_again, content_b),
        }
        if self.loss_weights["recon_x_cyc"] > 0:
            losses["recon_x_cyc"] = F.l1_loss(
                self.decode(content_a_again, own_style_a, "A"), real_a
            ) + F.l1_loss(self.decode(content_b_again, own_style_b, "B"), real_b)
        return losses

    def _discriminator_objective(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor):
        """The authors' ``calc_dis_loss``: the real and fake terms summed over the scales (not halved)."""
        fake = fake.detach()
        pairs = zip(_scales(discriminator(fake)), _scales(discriminator(real)))
        losses = {"adv": sum(self.adversarial(f, False) + self.adversarial(r, True) for f, r in pairs)}
        if self.adversarial.uses_gradient_penalty:
            losses["gp"] = gradient_penalty(discriminator, real, fake)
        return losses

    def discriminator_losses(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        a = self._discriminator_objective(self.d_a, batch["A"], outputs["fake_a"])
        b = self._discriminator_objective(self.d_b, batch["B"], outputs["fake_b"])
        return {name: a[name] + b[name] for name in a}

    # ------------------------------------------------------------------------------ outputs
    def sample_styles(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed codes of the sample grids' columns, ``(SAMPLE_STYLES, style_dim, 1, 1)`` for A and for
        B, drawn from seed 0 (the global random state untouched)."""
        generator = torch.Generator().manual_seed(0)
        codes = torch.randn(2, SAMPLE_STYLES, self.style_dim, 1, 1, generator=generator)
        return codes[0], codes[1]

    @torch.no_grad()
    def visuals(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Per domain: the input, its reconstruction from its own codes, and its translation with each of
        the ``SAMPLE_STYLES`` fixed styles of the other domain (one column per style)."""
        styles_a, styles_b = (codes.to(batch["A"].device) for codes in self.sample_styles())
        columns: dict[str, torch.Tensor] = {}
        for source, target, styles in (("A", "B", styles_b), ("B", "A", styles_a)):
            real = batch[source]
            content, own_style = self.encode(real, source)
            columns[f"real_{source}"] = real
            columns[f"rec_{source}"] = self.decode(content, own_style, source)
            for i in range(SAMPLE_STYLES):
                columns[f"fake_{target}_style{i + 1}"] = self.decode(content, styles[i : i + 1], target)
        return columns

    def exports(self) -> dict[str, Export]:
        """``a2b`` and ``b2a``: (image, style code) -> image; the option ``style_encoder`` names the module
        that reads a style code from an image of the target domain (example-guided translation)."""
        a, b = self.domains
        return {
            name: Export(
                IMAGE_AND_STYLE_TO_IMAGE,
                name,
                module.in_channels,
                module.out_channels,
                options={
                    "direction": name,
                    "source": source,
                    "target": target,
                    "style_dim": self.style_dim,
                    "style_encoder": f"{name}.style_encoder",
                },
            )
            for name, module, source, target in (("a2b", self.a2b, a, b), ("b2a", self.b2a, b, a))
        }
