"""StarGAN's discriminator (Choi et al., 2018): a patch critic and a domain classifier on one trunk."""

from __future__ import annotations

import torch
from torch import nn

from translate.discriminators.class_head import class_head, with_classes
from translate.errors import ConfigError
from translate.registry import DISCRIMINATORS


@DISCRIMINATORS.register("stargan")
class StarGANDiscriminator(nn.Module):
    """``num_layers`` 4x4 stride-2 convs (``base_channels`` doubling: 64 ... 2048), LeakyReLU(0.01), no
    normalisation; a 3x3 conv to a real/fake patch map ``(N, 1, H / 2**num_layers, W / 2**num_layers)`` and,
    with ``num_classes > 0``, a conv covering the whole remaining map to ``(N, num_classes)`` logits (the
    output is then the tuple of both). 44,762,048 parameters at 128 px with 5 classes.
    Inputs must be ``image_size`` square when the class head is on.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 128,
        base_channels: int = 64,
        num_layers: int = 6,
        num_classes: int = 5,
    ) -> None:
        super().__init__()
        self.size_multiple = 2**num_layers
        if image_size % self.size_multiple:
            raise ConfigError(
                f"the StarGAN discriminator with {num_layers} layers takes multiples of {self.size_multiple} "
                f"px; got image_size {image_size} (set model.discriminator.num_layers)"
            )
        layers: list[nn.Module] = []
        channels, width = in_channels, base_channels
        for _ in range(num_layers):
            layers += [nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            channels, width = width, width * 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(channels, 1, 3, stride=1, padding=1, bias=False)
        self.conv2 = class_head(self.main, in_channels, image_size, num_classes) if num_classes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return with_classes(self.main, self.conv1, self.conv2, x)
