"""Small conv blocks shared by several generators."""

from __future__ import annotations

from torch import nn

from translate.errors import ConfigError

UPSAMPLES = ("transpose", "resize")


def upsample_conv(
    in_channels: int, out_channels: int, mode: str, kernel_size: int, bias: bool = True
) -> nn.Module:
    """A x2 up-sampling conv, ``(N, in_channels, H, W) -> (N, out_channels, 2H, 2W)``.

    ``'transpose'``: ConvTranspose2d with ``kernel_size`` and stride 2. ``'resize'``: nearest-neighbour
    Upsample(x2) then a 3x3 conv, which avoids checkerboard artefacts (Odena et al., 2016).
    """
    if mode == "transpose":
        return nn.ConvTranspose2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=2,
            padding=1,
            output_padding=kernel_size % 2,  # exactly 2H x 2W for odd kernels as well
            bias=bias,
        )
    if mode == "resize":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=bias),
        )
    raise ConfigError(f"unknown upsample mode {mode!r}. Known: {', '.join(UPSAMPLES)}")
