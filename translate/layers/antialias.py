"""Anti-aliased re-sampling (Zhang, "Making Convolutional Networks Shift-Invariant Again", 2019), as CUT's
networks use it by default (taesungp/contrastive-unpaired-translation ``models/networks.py``: ``Downsample``,
``Upsample``; off with ``--no_antialias --no_antialias_up``).

``antialiased(layers)`` rewrites a pix2pix/CycleGAN-style Sequential into CUT's: every stride-2 conv runs at
stride 1 and a blur-pool follows the activation after it; every transposed conv becomes a fixed-filter blur
up-sampling and a 3x3 conv. The parameter count does not change (the filters are buffers).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU)


def binomial_filter(size: int) -> torch.Tensor:
    """The normalised binomial filter ``(size, size)``: [1, 2, 1] x [1, 2, 1] (3), [1, 3, 3, 1] x ... (4)."""
    weights = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float32)
    square = weights[:, None] * weights[None, :]
    return square / square.sum()


class BlurDownsample(nn.Module):
    """Reflection-pad by 1, 3x3 binomial blur per channel, stride 2 (CUT's ``Downsample``).

    ``(N, C, H, W) -> (N, C, ceil(H / 2), ceil(W / 2))``; ``filt`` is a buffer under the authors' name, so
    their state dicts load.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.pad = nn.ReflectionPad2d(1)
        self.register_buffer("filt", binomial_filter(3)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.pad(x), self.filt, stride=2, groups=self.channels)


class BlurUpsample(nn.Module):
    """Replication-pad by 1, transposed 4x4 binomial filter (x4) per channel at stride 2, cropped to exactly
    twice the size (CUT's ``Upsample``): ``(N, C, H, W) -> (N, C, 2H, 2W)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.pad = nn.ReplicationPad2d(1)
        self.register_buffer("filt", (binomial_filter(4) * 4)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(self.pad(x), self.filt, stride=2, padding=2, groups=self.channels)
        return y[:, :, 1:-1, 1:-1]


def antialiased(layers: nn.Sequential) -> nn.Sequential:
    """CUT's version of ``layers``: stride-2 convs at stride 1 with a ``BlurDownsample`` after the next
    activation, transposed convs replaced by ``BlurUpsample`` + a 3x3 conv of the same widths and bias.

    The stride-2 convs are changed in place (a spectral norm on them stays); the new 3x3 convs need their
    weights initialised like the others (the trainer's ``train.init`` does). Returns a new Sequential.
    """
    rewritten: list[nn.Module] = []
    pending: int | None = None
    for layer in layers:
        if isinstance(layer, nn.ConvTranspose2d):
            bias = layer.bias is not None
            rewritten += [
                BlurUpsample(layer.in_channels),
                nn.Conv2d(layer.in_channels, layer.out_channels, 3, padding=1, bias=bias),
            ]
            continue
        if isinstance(layer, nn.Conv2d) and layer.stride == (2, 2):
            layer.stride = (1, 1)
            pending = layer.out_channels
        rewritten.append(layer)
        if pending is not None and isinstance(layer, ACTIVATIONS):
            rewritten.append(BlurDownsample(pending))
            pending = None
    return nn.Sequential(*rewritten)
