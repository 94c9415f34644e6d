"""What a translation takes beside the image: a conditional model's target labels, a style model's code.

Conditional models (StarGAN: image + target -> image) take a ``target``: ``{"Blond_Hair": 1}`` or
``"Blond_Hair=1,Male=0"`` (``"happy"`` for folder domains). Labels the target does not name keep the input's
own values: given per image (``source_labels``, ``--labels FILE``), else estimated by the classifier stored
with the model (StarGAN's discriminator head).

Models that take a style code beside the image (MUNIT) translate with the zero code unless asked:
``styles=K`` gives K translations of each input with random styles drawn from ``seed`` (or with the codes
given as a tensor), ``style_from=reference`` one translation in the style of a reference image of the
target domain (read by the style encoder stored with the model; an exported file holds none).
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from translate.errors import ConfigError
from translate.inference.convert import to_network_inputs
from translate.inference.pipeline import read_input
from translate.kinds import kinds_with
from translate.kinds.style import Styles
from translate.kinds.targets import read_labels
from translate.labels import LabelSpace

Target = dict[str, float] | str | None
StyleRequest = int | torch.Tensor | None
"""``styles`` of a call: a number of random styles, or the codes ``(K, style_dim[, 1, 1])``."""


def is_path(item: Any) -> bool:
    """Whether an image of a call is a file's path (read as ``apply`` reads files)."""
    return isinstance(item, str | os.PathLike)


class Conditions:
    """The network's input beside the images: target labels (conditional models) or style codes (style
    models); neither for the others.

    Args:
        device: where the network runs.
        labels: a conditional model's label space, which its targets name.
        classifier: a network whose output's second element holds ``(N, num_labels)`` logits of an image's
            labels, on ``classifier_size`` square images (center square, resized).
        styles: a style model's codes (``translate.kinds.style.Styles``).
        kind: the export's kind, named in errors.
        face_size: the training image size: the shorter side a style reference is read at.
    """

    def __init__(
        self,
        device: torch.device,
        labels: LabelSpace | None = None,
        classifier: nn.Module | None = None,
        classifier_size: int | None = None,
        styles: Styles | None = None,
        kind: str | None = None,
        face_size: int = 128,
    ) -> None:
        self.device = device
        self.labels = labels
        self.classifier = classifier.to(device).eval() if classifier is not None else None
        self.classifier_size = classifier_size
        self.styles = styles
        self.kind = kind
        self.face_size = face_size

    # ------------------------------------------------------------------------------------ labels
    def target_labels(
        self, images: torch.Tensor, target: Target, source: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """The labels that translate ``images`` to ``target``.

        Args:
            images: ``(N, C, H, W)`` in ``[-1, 1]``.
            target: the labels to set (see the module docstring); None for unconditional models.
            source: the images' own labels ``(N, num_labels)``; None: estimated (``estimate_labels``) where
                the target does not set every label.

        Returns:
            ``(N, num_labels)``: ``source`` with the target's values set; None for unconditional models.
        """
        if self.labels is None:
            if target is not None:
                raise ConfigError("this model translates to one fixed domain: it takes no target (--to)")
            return None
        if target is None:
            raise ConfigError(
                f"this model needs a target (--to NAME=1,...); it knows {self.labels.describe()}"
            )
        parsed = self.labels.parse_target(target) if isinstance(target, str) else dict(target)
        if source is None:
            zeros = torch.zeros(len(images), len(self.labels), device=self.device)
            fixed = torch.equal(self.labels.apply(zeros, parsed), self.labels.apply(zeros + 1, parsed))
            source = zeros if fixed else self.estimate_labels(images)  # no need to read what --to sets
        return self.labels.apply(source.to(self.device), parsed)

    @torch.no_grad()
    def estimate_labels(self, images: torch.Tensor) -> torch.Tensor:
        """The labels of ``images`` as the stored classifier reads them.

        Args:
            images: ``(N, C, H, W)`` in ``[-1, 1]`` (their center square, resized to ``classifier_size``).

        Returns:
            ``(N, num_labels)`` 0/1.
        """
        if self.classifier is None or self.labels is None:
            raise ConfigError(
                "this model stores no classifier to read the input's labels: give them (--labels FILE) "
                "or name every label in the target"
            )
        return self.labels.from_logits(read_labels(self.classifier, images, self.classifier_size))

    def source_labels(
        self, images: torch.Tensor, given: list[torch.Tensor | None] | None
    ) -> torch.Tensor | None:
        """A batch's own labels ``(N, num_labels)``: those given, the classifier's for the rest; None when
        none is given (``target_labels`` then reads them only if the target needs them)."""
        if given is None or all(g is None for g in given):
            return None
        estimated = self.estimate_labels(images) if any(g is None for g in given) else None
        return torch.stack(
            [g.to(self.device) if g is not None else estimated[k] for k, g in enumerate(given)]
        )

    # ------------------------------------------------------------------------------------ styles
    def style_codes(
        self, styles: StyleRequest = None, seed: int = 0, style_from: Any = None
    ) -> torch.Tensor | None:
        """The style codes a call asks for.

        Args:
            styles: K random styles of the prior drawn from ``seed`` (the first K of a larger number are the
                same), or the codes ``(K, style_dim[, 1, 1])``.
            seed: the random styles' seed.
            style_from: a reference image of the target domain, as a call takes images (a tensor
                ``(C, H, W)`` in ``[-1, 1]``, a PIL image, a uint8 array or a path): its style code.

        Returns:
            ``(K, style_dim, 1, 1)`` (``(1, ...)`` for a reference), or None where neither is given (the
            model's default, the zero code).

        Raises:
            ConfigError: both given, or a model that takes no style code (naming its kind).
        """
        if styles is None and style_from is None:
            return None
        if self.styles is None:
            raise ConfigError(self.takes_no_style())
        if styles is not None and style_from is not None:
            raise ConfigError("give random styles (--styles) or a reference (--style-from), not both")
        if style_from is None:
            return self.styles.codes(styles, seed)
        channels = self.styles.channels
        if is_path(style_from):
            reference = read_input(style_from, channels)[0]
        else:
            reference = to_network_inputs([style_from], channels)[0][0]
        return self.styles.of_reference(reference, self.face_size)

    def stacked_styles(self, given: list[torch.Tensor | None]) -> torch.Tensor | None:
        """A batch's codes ``(N, style_dim, 1, 1)``, the zero code where None is given; None for none."""
        if all(g is None for g in given):
            return None
        if self.styles is None:
            raise ConfigError(self.takes_no_style())
        default = self.styles.default()[0]
        return torch.stack([default if g is None else g.reshape(default.shape) for g in given])

    def takes_no_style(self) -> str:
        """The error of asking a model without style codes for one."""
        model = f"this {self.kind} model" if self.kind else "this model"
        return (
            f"{model} takes no style code: --styles and --style-from (styles=, style_from=) are for "
            f"{' and '.join(kinds_with('style'))} models"
        )

    # ------------------------------------------------------------------------------------ the network's
    def of_batch(
        self,
        batch: torch.Tensor,
        target: Target,
        source_labels: torch.Tensor | None,
        style: torch.Tensor | None,
    ) -> torch.Tensor | None:
        """The network's input beside the images ``(N, C, H, W)``: the target labels ``(N, num_labels)`` of
        a conditional model, the codes ``(N, style_dim, 1, 1)`` of a style model (the zero code where none
        is given), else None."""
        labels = self.target_labels(batch, target, source_labels)
        if self.styles is None:
            if style is not None:
                raise ConfigError(self.takes_no_style())
            return labels
        dim = self.styles.style_dim
        code = (self.styles.default() if style is None else style).reshape(-1, dim, 1, 1)
        if len(code) not in (1, len(batch)):
            raise ConfigError(f"{len(code)} style codes for {len(batch)} images: give one, or one per image")
        return code.to(self.device, torch.float32).expand(len(batch), -1, -1, -1).contiguous()

    def of_blank(self) -> torch.Tensor | None:
        """What goes beside one blank image: zero labels, the default code, or None."""
        if self.labels is not None:
            return torch.zeros(1, len(self.labels), device=self.device)
        if self.styles is not None:
            return self.styles.default().to(self.device)
        return None
