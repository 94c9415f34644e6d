"""Multi-scale discriminators: one discriminator per image scale (pix2pixHD, Wang et al., 2018), and the
per-scale network of MUNIT's (NVlabs/MUNIT ``MsImageDis``).

MUNIT's discriminator is ``multiscale`` over ``munit_patch``: 3 scales, each the input average-pooled (3x3,
stride 2, padding not counted) once more than the last, each seen by 4 stride-2 4x4 convs with reflection
padding, LeakyReLU 0.2 and no norm (64, 128, 256, 512 channels), then a 1x1 conv to one logit map. At the
authors' settings (``dis`` in ``configs/edges2handbags_folder.yaml``: ``dim`` 64, ``n_layer`` 4,
``num_scales`` 3, ``norm`` none, on 3 channels) it has **8,271,171** parameters (2,757,057 per scale);
counted in ``tests/test_munit.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from translate.errors import ConfigError
from translate.layers import add_spectral_norm, get_norm_layer
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


@DISCRIMINATORS.register("munit_patch")
class MunitPatch(nn.Module):
    """One scale of MUNIT's discriminator: ``num_layers`` stride-2 4x4 convs, then a 1x1 conv to a logit map.

    ``(N, in_channels, H, W) -> (N, 1, H / 2**num_layers, W / 2**num_layers)`` raw logits (H, W multiples of
    ``2**num_layers``; others round down). Widths ``base_channels * 2**i``; reflection padding; LeakyReLU 0.2
    after every 4x4 conv; ``norm`` after all but the first (the authors' ``dis.norm``, ``none`` in their
    configs); every conv has a bias, as theirs. ``spectral_norm=True`` wraps every conv in spectral norm.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        num_layers: int = 4,
        norm: str = "none",
        spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ConfigError(f"munit_patch needs num_layers >= 1, got {num_layers}")
        norm_layer = get_norm_layer(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(in_channels, base_channels, 4, stride=2),
            nn.LeakyReLU(0.2),
        ]
        channels = base_channels
        for _ in range(num_layers - 1):
            layers += [
                nn.ReflectionPad2d(1),
                nn.Conv2d(channels, channels * 2, 4, stride=2),
                norm_layer(channels * 2),
                nn.LeakyReLU(0.2),
            ]
            channels *= 2
        layers.append(nn.Conv2d(channels, 1, 1))
        self.model = nn.Sequential(*layers)
        if spectral_norm:
            add_spectral_norm(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
