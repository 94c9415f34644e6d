"""The DCGAN discriminator (Radford et al., 2016), also the WGAN and WGAN-GP critic with another norm."""

from __future__ import annotations

import torch
from torch import nn

from translate.layers import add_spectral_norm, dcgan_depth, get_norm_layer, join_labels, norm_uses_bias
from translate.registry import DISCRIMINATORS


@DISCRIMINATORS.register("dcgan")
class DCGANDiscriminator(nn.Module):
    """``(N, in_channels, image_size, image_size)`` [+ ``labels (N,)``] -> ``(N, 1, 1, 1)`` logits.

    Stride-2 4x4 convs from ``base_channels`` doubling down to 4x4 maps, LeakyReLU(0.2) after each, the
    norm on every layer but the input one, then a 4x4 conv to one value (the sigmoid is in the vanilla
    loss); no biases where the norm has a shift (PyTorch's DCGAN example). At 64 px with ``base_channels=64``
    and batch norm: 2,765,568 parameters. ``norm="layer"`` (or ``"none"``) is the WGAN-GP critic, whose
    penalty is per sample. ``condition_classes > 0``: the one-hot class label is joined to the image as
    constant maps (cGAN).
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 64,
        base_channels: int = 64,
        norm: str = "batch",
        condition_classes: int = 0,
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        self.condition_classes = condition_classes
        depth = dcgan_depth(image_size)
        norm_layer, bias = get_norm_layer(norm), norm_uses_bias(norm)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels + condition_classes, base_channels, 4, stride=2, padding=1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = base_channels
        for _ in range(depth - 1):
            layers += [
                nn.Conv2d(channels, channels * 2, 4, stride=2, padding=1, bias=bias),
                norm_layer(channels * 2),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels *= 2
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=0, bias=False))
        self.net = nn.Sequential(*layers)
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(join_labels(x, labels, self.condition_classes))
