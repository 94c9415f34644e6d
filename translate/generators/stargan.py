"""StarGAN's generator (Choi et al., 2018): one network for every domain, told the target by a label map."""

from __future__ import annotations

import torch
from torch import nn

from translate.generators.resnet import ResnetBlock
from translate.layers import get_norm_layer
from translate.registry import GENERATORS


@GENERATORS.register("stargan")
class StarGANGenerator(nn.Module):
    """``(image (N, in_channels, H, W), labels (N, num_labels)) -> (N, out_channels, H, W)`` in [-1, 1].

    The target labels are tiled over H x W and concatenated with the image; then, as published: 7x7 conv
    ``base_channels``, two 4x4 stride-2 downsamplings (x2, x4), ``num_blocks`` residual blocks, two 4x4
    stride-2 transposed convs, 7x7 conv to ``out_channels``, tanh. Instance norm with a learned scale and
    shift, ReLU, zero padding, convs without bias: 8,430,528 parameters at the defaults with 5 labels.
    H and W must be multiples of 4.
    """

    size_multiple = 4

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_labels: int = 5,
        base_channels: int = 64,
        num_blocks: int = 6,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.num_labels = in_channels, out_channels, num_labels
        norm = get_norm_layer("instance_affine")
        channels = base_channels
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels + num_labels, channels, 7, padding=3, bias=False),
            norm(channels),
            nn.ReLU(inplace=True),
        ]
        for _ in range(2):
            layers += [
                nn.Conv2d(channels, channels * 2, 4, 2, 1, bias=False),
                norm(channels * 2),
                nn.ReLU(True),
            ]
            channels *= 2
        layers += [
            ResnetBlock(channels, "instance_affine", False, "zero", bias=False) for _ in range(num_blocks)
        ]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(channels, channels // 2, 4, 2, 1, bias=False),
                norm(channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [nn.Conv2d(channels, out_channels, 7, padding=3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        label_map = labels.to(images.dtype)[:, :, None, None].expand(-1, -1, *images.shape[-2:])
        return self.main(torch.cat([images, label_map], dim=1))
