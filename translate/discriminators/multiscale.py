"""Multi-scale discriminator of pix2pixHD (Wang et al., 2018): one discriminator per image scale."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from translate.registry import DISCRIMINATORS


class MultiscaleDiscriminator(nn.Module):
    """Applies ``discriminators[i]`` to the input downsampled ``i`` times by 2.

    ``(N, C, H, W) -> [(N, 1, h_0, w_0), (N, 1, h_1, w_1), ...]``, one logit map per scale, finest first.
    """

    def __init__(self, discriminators: list[nn.Module]) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(discriminators)
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outputs = []
        for i, discriminator in enumerate(self.discriminators):
            if i > 0:
                x = self.downsample(x)
            outputs.append(discriminator(x))
        return outputs


@DISCRIMINATORS.register()
def multiscale(
    in_channels: int = 3, num_scales: int = 3, discriminator: str | Mapping[str, Any] = "patchgan"
) -> MultiscaleDiscriminator:
    """Multi-scale discriminator: ``num_scales`` independent copies of ``discriminator`` (a name or spec)."""
    return MultiscaleDiscriminator(
        [DISCRIMINATORS.build(discriminator, in_channels=in_channels) for _ in range(num_scales)]
    )
