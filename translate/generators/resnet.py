"""ResNet generator of Johnson et al. (2016) as used by CycleGAN (junyanz's ``ResnetGenerator``)."""

from __future__ import annotations

import torch
from torch import nn

from translate.errors import ConfigError
from translate.layers import get_norm_layer, norm_uses_bias, upsample_conv
from translate.registry import GENERATORS

_PADDINGS = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": None}


class ResnetBlock(nn.Module):
    """``x + conv-norm-relu-conv-norm(x)``, ``(N, C, H, W) -> (N, C, H, W)``."""

    def __init__(self, channels: int, norm: str, dropout: bool, padding: str, bias: bool) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        pad = _PADDINGS[padding]

        def conv() -> list[nn.Module]:
            if pad is None:
                return [nn.Conv2d(channels, channels, 3, padding=1, bias=bias)]
            return [pad(1), nn.Conv2d(channels, channels, 3, bias=bias)]

        self.conv_block = nn.Sequential(
            *conv(),
            norm_layer(channels),
            nn.ReLU(inplace=True),
            *([nn.Dropout(0.5)] if dropout else []),
            *conv(),
            norm_layer(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


@GENERATORS.register("resnet")
class ResnetGenerator(nn.Module):
    """7x7 stem, two stride-2 downsamples, ``num_blocks`` residual blocks, two upsamples, 7x7 conv, tanh.

    ``(N, in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels, H, W)`` in [-1, 1]; H and W must be
    multiples of ``size_multiple`` (4). ``upsample='resize'`` uses nearest up-sampling + 3x3 conv instead of
    transposed convs; ``padding`` ('reflect' | 'replicate' | 'zero') applies inside the residual blocks.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
        upsample: str = "transpose",
        padding: str = "reflect",
    ) -> None:
        super().__init__()
        if padding not in _PADDINGS:
            raise ConfigError(f"unknown padding {padding!r}. Known: {', '.join(_PADDINGS)}")
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        num_downs = 2
        self.size_multiple = 2**num_downs
        self.in_channels, self.out_channels = in_channels, out_channels

        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, base_channels, 7, bias=bias),
            norm_layer(base_channels),
            nn.ReLU(inplace=True),
        ]
        channels = base_channels
        for _ in range(num_downs):
            layers += [
                nn.Conv2d(channels, channels * 2, 3, stride=2, padding=1, bias=bias),
                norm_layer(channels * 2),
                nn.ReLU(inplace=True),
            ]
            channels *= 2
        layers += [ResnetBlock(channels, norm, dropout, padding, bias) for _ in range(num_blocks)]
        for _ in range(num_downs):
            layers += [
                upsample_conv(channels, channels // 2, upsample, kernel_size=3, bias=bias),
                norm_layer(channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        # One flat Sequential named ``model``: the same state-dict keys as junyanz's ResnetGenerator.
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@GENERATORS.register()
def resnet_6blocks(
    in_channels: int = 3,
    out_channels: int = 3,
    base_channels: int = 64,
    norm: str = "instance",
    dropout: bool = False,
    upsample: str = "transpose",
    padding: str = "reflect",
) -> ResnetGenerator:
    """ResNet generator with 6 residual blocks (CycleGAN at 128 px)."""
    return ResnetGenerator(in_channels, out_channels, base_channels, 6, norm, dropout, upsample, padding)


@GENERATORS.register()
def resnet_9blocks(
    in_channels: int = 3,
    out_channels: int = 3,
    base_channels: int = 64,
    norm: str = "instance",
    dropout: bool = False,
    upsample: str = "transpose",
    padding: str = "reflect",
) -> ResnetGenerator:
    """ResNet generator with 9 residual blocks (CycleGAN at 256 px)."""
    return ResnetGenerator(in_channels, out_channels, base_channels, 9, norm, dropout, upsample, padding)
