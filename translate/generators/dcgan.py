"""The DCGAN generator (Radford et al., 2016), class-conditional as in Mirza and Osindero (2014)."""

from __future__ import annotations

import torch
from torch import nn

from translate.layers import dcgan_depth, get_norm_layer, join_labels, norm_uses_bias, upsample_conv
from translate.registry import GENERATORS


@GENERATORS.register("dcgan")
class DCGANGenerator(nn.Module):
    """``z (N, latent_dim)`` [+ ``labels (N,)``] -> ``(N, out_channels, image_size, image_size)`` in [-1, 1].

    A 4x4 transposed conv projects ``z`` to ``base_channels * image_size / 8`` maps of 4x4, then stride-2
    4x4 transposed convs halve the channels and double the size up to ``image_size``; batch norm and ReLU
    after every layer but the last, tanh at the output, no biases (PyTorch's DCGAN example). At 64 px with
    ``base_channels=64``: 3,576,704 parameters. ``num_classes > 0``: the one-hot label is joined to ``z``.
    ``upsample="resize"`` swaps the transposed convs for nearest up-sampling + 3x3 conv (no checkerboards).
    """

    def __init__(
        self,
        latent_dim: int = 100,
        out_channels: int = 3,
        image_size: int = 64,
        base_channels: int = 64,
        norm: str = "batch",
        num_classes: int = 0,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.in_channels, self.out_channels, self.image_size = None, out_channels, image_size
        depth = dcgan_depth(image_size)
        norm_layer, bias = get_norm_layer(norm), norm_uses_bias(norm)
        channels = base_channels * 2 ** (depth - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(latent_dim + num_classes, channels, 4, stride=1, padding=0, bias=bias),
            norm_layer(channels),
            nn.ReLU(True),
        ]
        for _ in range(depth - 1):
            layers += [
                upsample_conv(channels, channels // 2, upsample, 4, bias=bias),
                norm_layer(channels // 2),
                nn.ReLU(True),
            ]
            channels //= 2
        layers += [upsample_conv(channels, out_channels, upsample, 4, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(join_labels(z, labels, self.num_classes)[:, :, None, None])
