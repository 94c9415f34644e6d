"""The domain-classification head any discriminator can carry (StarGAN's auxiliary classifier)."""

from __future__ import annotations

import torch
from torch import nn

from translate.errors import ConfigError


def class_head(trunk: nn.Module, in_channels: int, image_size: int, num_classes: int) -> nn.Conv2d:
    """A conv without bias whose kernel covers the whole feature map ``trunk`` makes of an
    ``image_size`` x ``image_size`` image: ``(N, C, h, w) -> (N, num_classes, 1, 1)`` logits.

    The discriminator then only takes images of that size (as in StarGAN)."""
    if num_classes < 1:
        raise ConfigError(f"a class head needs num_classes >= 1, got {num_classes}")
    with torch.no_grad():
        features = trunk(torch.zeros(1, in_channels, image_size, image_size))
    if min(features.shape[-2:]) < 1:
        raise ConfigError(f"image_size {image_size} is too small for this discriminator's class head")
    return nn.Conv2d(features.shape[1], num_classes, tuple(features.shape[-2:]), bias=False)


def with_classes(
    trunk: nn.Module, adversarial: nn.Module, classifier: nn.Module | None, x: torch.Tensor
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``adversarial(trunk(x))``, and with a ``classifier`` also its ``(N, num_classes)`` logits."""
    features = trunk(x)
    if classifier is None:
        return adversarial(features)
    return adversarial(features), classifier(features).flatten(1)
