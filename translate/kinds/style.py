"""image + style -> image (MUNIT): ``(image (N, C_in, H, W), style code (N or 1, style_dim, 1, 1)) -> image``.

One input has as many translations as there are style codes: codes drawn from the style prior ``N(0, I)``
(``style_codes``, from a seed, so the same seed gives the same styles everywhere), or the code of a
reference image of the target domain, read by the style encoder the export's ``style_encoder`` option
names (example-guided translation). Without a code the network uses the zero code, the prior's mean.

Scored as image -> image (``translate.kinds.image``) with one code per held-out input drawn from the
scoring seed: against the real target domain (and the ground truth where the held-out folders pair their
files), beside the untranslated input. ``diversity`` adds the mean distance between two styles of the same
input (near 0: the styles collapsed) beside that between two real images of the target domain.

What the ``Translator`` needs beyond the network is a ``Styles``: the default code, the seeded random
codes, and the code of a reference image (only where the trained task is at hand: an exported file holds
the translation path alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from translate.errors import ConfigError
from translate.exports import IMAGE_AND_STYLE_TO_IMAGE, Export
from translate.kinds.base import HeldOut, Plan, Scoring
from translate.kinds.image import ImageToImage, image_runner
from translate.metrics.report import Score
from translate.metrics.scoring import pair_distance, same_label_pairs


def style_codes(style_dim: int, count: int, seed: int) -> torch.Tensor:
    """``(count, style_dim, 1, 1)`` codes of the style prior ``N(0, I)``, drawn from ``seed`` (the global
    random state untouched): code ``i`` is the same for every ``count > i`` (each is drawn on its own:
    torch draws one tensor of another size in another order)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randn(style_dim, 1, 1, generator=generator) for _ in range(count)])


@dataclass
class Styles:
    """The style codes a model of this kind is given beside its images.

    Attributes:
        style_dim: the code's length.
        encoder: the trained task's style encoder (images of the target domain -> their codes); None for an
            exported file, which holds no style encoder.
        channels: the channels of the images the encoder reads (the target domain's).
    """

    style_dim: int
    encoder: nn.Module | None = field(default=None, repr=False)
    channels: int = 3

    def default(self) -> torch.Tensor:
        """``(1, style_dim, 1, 1)``: the zero code, the mean of the prior, used where no style is asked."""
        return torch.zeros(1, self.style_dim, 1, 1)

    def codes(self, styles: int | torch.Tensor, seed: int = 0) -> torch.Tensor:
        """``(K, style_dim, 1, 1)``: ``styles`` codes of the prior drawn from ``seed`` (``style_codes``: the
        first K of a larger count are the same), or the codes given as ``(K, style_dim[, 1, 1])``."""
        if isinstance(styles, torch.Tensor):
            if styles.dim() not in (2, 4) or len(styles) == 0 or styles[0].numel() != self.style_dim:
                raise ConfigError(
                    f"style codes are (K, {self.style_dim}) or (K, {self.style_dim}, 1, 1); "
                    f"got shape {tuple(styles.shape)}"
                )
            return styles.detach().float().cpu().reshape(len(styles), self.style_dim, 1, 1)
        if isinstance(styles, bool) or not isinstance(styles, int) or styles < 1:
            raise ConfigError(f"styles is a number of styles (1 or more) or a tensor of codes: {styles!r}")
        return style_codes(self.style_dim, styles, seed)

    @torch.no_grad()
    def of_reference(self, reference: torch.Tensor, size: int | None) -> torch.Tensor:
        """``(1, style_dim, 1, 1)``: the style code of one reference image of the target domain.

        Args:
            reference: ``(C, H, W)`` in ``[-1, 1]``, the target domain's channels.
            size: the training image size: the reference is resized so that its shorter side is ``size``,
                as the style encoder saw its images (None: as it is).
        """
        if self.encoder is None:
            raise ConfigError(
                "an exported file holds no style encoder: the style of a reference needs the run folder "
                "(random styles work with the file)"
            )
        if reference.dim() != 3 or reference.shape[0] != self.channels:
            raise ConfigError(
                f"the reference must be a {self.channels}-channel image of the target domain; "
                f"got shape {tuple(reference.shape)}"
            )
        device = next(self.encoder.parameters()).device
        image = reference[None].to(device, torch.float32)
        if size is not None and min(image.shape[-2:]) != size:
            scale = size / min(image.shape[-2:])
            shape = [max(1, round(side * scale)) for side in image.shape[-2:]]
            image = F.interpolate(image, size=shape, mode="bilinear", antialias=True, align_corners=False)
        return self.encoder(image).float().cpu().reshape(1, self.style_dim, 1, 1)


class ImageAndStyleToImage(ImageToImage):
    """The image kind's held-out data and plans (``data_options``, ``plan``), with a style code beside the
    image."""

    name = IMAGE_AND_STYLE_TO_IMAGE
    command = "translate apply"
    controls = ("image", "style")

    def translator_arguments(self, options: dict[str, Any], task: nn.Module | None) -> dict[str, Any]:
        """``styles``: a ``Styles`` of the export's ``style_dim`` and, with the trained ``task``, the style
        encoder its ``style_encoder`` option names (an exported file: none)."""
        encoder = task.get_submodule(options["style_encoder"]) if task is not None else None
        channels = getattr(encoder, "in_channels", None) or 3
        return {"styles": Styles(int(options["style_dim"]), encoder, channels)}

    def network_inputs(self, export: Export) -> list[str]:
        return ["image", "style"]

    def example_inputs(self, export, batch, height, width, generator=None, device="cpu"):
        image = torch.rand((batch, export.in_channels, height, width), generator=generator) * 2 - 1
        style = torch.randn((batch, int(export.options["style_dim"]), 1, 1), generator=generator)
        return image.to(device), style.to(device)

    def score(
        self, scoring: Scoring, name: str, export: Export, task: nn.Module, plan: Plan, data: HeldOut
    ) -> list[Score]:
        suite, style_dim = scoring.suite, int(export.options["style_dim"])
        run = image_runner(task.get_submodule(export.module), export, scoring.device, scoring.seed)
        codes = iter(style_codes(style_dim, len(data.indices), scoring.seed))  # one per input, in order

        def translate(images: torch.Tensor) -> torch.Tensor:
            return run(images, torch.stack([next(codes) for _ in range(len(images))]))

        described = f"; one random style per input (seed {scoring.seed})"
        scores = self._score_translation(scoring, name, export, plan, data, translate, described)
        if suite.wants("diversity"):
            scores += self._diversity(scoring, name, run, style_dim, plan, data)
        return scores

    @staticmethod
    def _diversity(
        scoring: Scoring, name: str, run, style_dim: int, plan: Plan, data: HeldOut
    ) -> list[Score]:
        """The distance between the translations of one input with two codes (seeds ``seed + 1`` and
        ``seed + 2``), over up to ``suite.pairs`` inputs, and between two real target-domain images."""
        suite, size = scoring.suite, scoring.batch_size
        first = style_codes(style_dim, suite.pairs, scoring.seed + 1)
        second = style_codes(style_dim, suite.pairs, scoring.seed + 2)
        distances, features, done = [], "-", 0
        for batch in data.batches([plan.inputs], size):
            images = batch[plan.inputs][: suite.pairs - done]
            if not len(images):
                break
            codes = slice(done, done + len(images))
            distance, features = pair_distance(suite, run(images, first[codes]), run(images, second[codes]))
            distances.append(distance)
            done += len(images)
        scores = []
        if distances:
            values = torch.cat(distances)
            scores.append(
                Score(
                    "diversity",
                    "styles of one input",
                    values.mean().item(),
                    len(values),
                    features,
                    section=name,
                )
            )
        reference = list(data.reference_images(plan.reference, size, 2 * suite.pairs))
        pairs = same_label_pairs([(images, None) for images in reference], suite.pairs)
        if pairs is not None:
            distance, features = pair_distance(suite, *pairs)
            scores.append(
                Score(
                    "diversity",
                    "real held-out",
                    distance.mean().item(),
                    len(distance),
                    features,
                    section=name,
                )
            )
        return scores
