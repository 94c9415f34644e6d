"""PatchGAN and PixelGAN discriminators of pix2pix (junyanz's NLayerDiscriminator, PixelDiscriminator)."""

from __future__ import annotations

import torch
from torch import nn

from translate.discriminators.class_head import class_head, with_classes
from translate.errors import ConfigError
from translate.layers import add_spectral_norm, get_norm_layer, norm_uses_bias
from translate.registry import DISCRIMINATORS


@DISCRIMINATORS.register("patchgan")
class PatchGAN(nn.Module):
    """PatchGAN: classifies overlapping patches as real or fake; ``num_layers=3`` sees 70x70 patches.

    ``(N, in_channels, H, W) -> (N, 1, h, w)`` raw logits, ``h = H / 2**num_layers - 2`` for H divisible
    by ``2**num_layers``. Widths double per layer up to 8x ``base_channels``; the first conv has no norm.
    ``spectral_norm=True`` wraps every conv in spectral normalization (Miyato et al., 2018).
    ``num_classes > 0`` adds a domain-classification head (StarGAN's): the output is then a tuple
    ``(patch logits, (N, num_classes) class logits)`` and inputs must be ``image_size`` square.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        num_layers: int = 3,
        norm: str = "batch",
        spectral_norm: bool = False,
        num_classes: int = 0,
        image_size: int = 256,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"a PatchGAN needs num_layers >= 1, got {num_layers}")
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = base_channels
        for n in range(1, num_layers + 1):
            next_channels = base_channels * min(2**n, 8)
            stride = 2 if n < num_layers else 1
            layers += [
                nn.Conv2d(channels, next_channels, 4, stride=stride, padding=1, bias=bias),
                norm_layer(next_channels),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = next_channels
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        self.classifier = (
            class_head(self.model[:-1], in_channels, image_size, num_classes) if num_classes else None
        )
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.classifier is None:
            return self.model(x)
        return with_classes(self.model[:-1], self.model[-1], self.classifier, x)


@DISCRIMINATORS.register("pixel")
class PixelDiscriminator(nn.Module):
    """PixelGAN: 1x1 convs that classify each pixel on its own; ``(N, in_channels, H, W) -> (N, 1, H, W)``."""

    def __init__(
        self, in_channels: int = 3, base_channels: int = 64, norm: str = "batch", spectral_norm: bool = False
    ) -> None:
        super().__init__()
        bias = norm_uses_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, base_channels, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base_channels, base_channels * 2, 1, bias=bias),
            get_norm_layer(norm)(base_channels * 2),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(base_channels * 2, 1, 1, bias=bias),  # bias only without batch norm, as in junyanz
        )
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
