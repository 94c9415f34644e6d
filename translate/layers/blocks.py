"""Small blocks shared by several networks: up-sampling convs, class labels joined to an input."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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


def join_labels(x: torch.Tensor, labels: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    """Join class labels to a network's input, as in conditional GANs (Mirza and Osindero, 2014).

    ``labels`` ``(N,)`` class indices become one-hot vectors appended to ``x``: as features for a vector
    ``(N, D) -> (N, D + num_classes)``, as constant maps for an image ``(N, C, H, W) -> (N, C +
    num_classes, H, W)``. With ``num_classes == 0`` the network is unconditional and ``x`` is returned.
    """
    if not num_classes:
        if labels is not None:
            raise ConfigError("this network is unconditional: it takes no class labels")
        return x
    if labels is None:
        raise ConfigError(f"this network is class-conditional ({num_classes} classes): give labels")
    one_hot = F.one_hot(labels.long(), num_classes).to(x.dtype)
    if x.dim() == 4:
        one_hot = one_hot[:, :, None, None].expand(-1, -1, *x.shape[-2:])
    return torch.cat([x, one_hot], dim=1)


def mlp_layers(widths: list[int], dropout: float = 0.0) -> list[nn.Module]:
    """Linear layers between consecutive ``widths``, each followed by LeakyReLU(0.2) (and dropout)."""
    layers: list[nn.Module] = []
    for width_in, width_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(width_in, width_out), nn.LeakyReLU(0.2)]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return layers


DCGAN_SIZES = (32, 64, 128)


def dcgan_depth(image_size: int) -> int:
    """Stride-2 layers between 4x4 and ``image_size`` (a power of two, 32..128): 4 at 64 px."""
    if image_size not in DCGAN_SIZES:
        raise ConfigError(
            f"DCGAN networks take image sizes {', '.join(map(str, DCGAN_SIZES))}; got {image_size} "
            "(set --image-size; 28x28 data resizes to 32)"
        )
    return image_size.bit_length() - 3
