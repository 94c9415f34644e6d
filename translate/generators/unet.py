"""U-Net generator of pix2pix (Isola et al., 2017), as junyanz's ``UnetGenerator``."""

from __future__ import annotations

import torch
from torch import nn

from translate.errors import ConfigError
from translate.layers import get_norm_layer, norm_uses_bias, upsample_conv
from translate.registry import GENERATORS


class UnetBlock(nn.Module):
    """One U-Net level: down (4x4 conv, stride 2), the deeper levels ``inner``, up (x2), skip connection.

    ``(N, in_channels, H, W) -> (N, in_channels + out_channels, H, W)``: input and output are concatenated
    along channels, except at the outermost level, which returns ``(N, out_channels, H, W)`` through tanh.
    The innermost level (``inner=None``) has no norm on its way down, the outermost none on either way.
    """

    def __init__(
        self,
        in_channels: int,
        inner_channels: int,
        out_channels: int,
        inner: UnetBlock | None = None,
        *,
        outermost: bool = False,
        norm: str = "batch",
        dropout: bool = False,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        innermost = inner is None
        self.outermost = outermost

        # junyanz applies this LeakyReLU in place, so his skip connection carries the activated input, not
        # the input itself; forward() does the same, which keeps outputs identical for converted weights.
        self.act = nn.Identity() if outermost else nn.LeakyReLU(0.2)
        down: list[nn.Module] = [nn.Conv2d(in_channels, inner_channels, 4, stride=2, padding=1, bias=bias)]
        if not (outermost or innermost):
            down.append(norm_layer(inner_channels))
        self.down = nn.Sequential(*down)
        self.inner = nn.Identity() if innermost else inner

        up_in = inner_channels if innermost else 2 * inner_channels
        up: list[nn.Module] = [
            nn.ReLU(inplace=True),
            upsample_conv(up_in, out_channels, upsample, kernel_size=4, bias=bias or outermost),
            nn.Tanh() if outermost else norm_layer(out_channels),
        ]
        if dropout:
            up.append(nn.Dropout(0.5))
        self.up = nn.Sequential(*up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x)
        y = self.up(self.inner(self.down(x)))
        return y if self.outermost else torch.cat([x, y], dim=1)


@GENERATORS.register("unet")
class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels and skip connections between mirrored levels.

    Level ``i`` (0 = outermost) has ``base_channels * 2**min(i, 3)`` channels at its bottom, so at most 8x
    the base. ``(N, in_channels, H, W)`` in [-1, 1] -> ``(N, out_channels, H, W)`` in [-1, 1]; H and W must
    be multiples of ``size_multiple = 2**num_downs`` (the innermost level works at 1x1).
    ``dropout=True`` adds Dropout(0.5) to the up path of the levels from the fifth outermost to the one
    above the innermost, as junyanz does (3 levels for ``num_downs=8``, 2 for 7).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        num_downs: int = 8,
        base_channels: int = 64,
        norm: str = "batch",
        dropout: bool = False,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        if num_downs < 2:
            raise ConfigError(f"a U-Net needs num_downs >= 2, got {num_downs}")
        self.num_downs = num_downs
        self.size_multiple = 2**num_downs
        self.in_channels, self.out_channels = in_channels, out_channels

        def width(level: int) -> int:
            return base_channels * 2 ** min(level, 3)

        block: UnetBlock | None = None
        for level in reversed(range(num_downs)):
            outermost = level == 0
            block = UnetBlock(
                in_channels if outermost else width(level - 1),
                width(level),
                out_channels if outermost else width(level - 1),
                block,
                outermost=outermost,
                norm=norm,
                dropout=dropout and 4 <= level < num_downs - 1,
                upsample=upsample,
            )
        self.model = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


@GENERATORS.register()
def unet_128(
    in_channels: int = 3,
    out_channels: int = 3,
    base_channels: int = 64,
    norm: str = "batch",
    dropout: bool = False,
    upsample: str = "transpose",
) -> UnetGenerator:
    """U-Net generator with 7 levels (pix2pix at 128 px)."""
    return UnetGenerator(in_channels, out_channels, 7, base_channels, norm, dropout, upsample)


@GENERATORS.register()
def unet_256(
    in_channels: int = 3,
    out_channels: int = 3,
    base_channels: int = 64,
    norm: str = "batch",
    dropout: bool = False,
    upsample: str = "transpose",
) -> UnetGenerator:
    """U-Net generator with 8 levels (pix2pix at 256 px)."""
    return UnetGenerator(in_channels, out_channels, 8, base_channels, norm, dropout, upsample)
