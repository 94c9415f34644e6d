"""UNIT's coupled VAEs (Liu, Breuel & Kautz, 2017), as the authors' PyTorch ``VAEGen`` (mingyuliutw/UNIT).

Each domain has an encoder into one shared latent space and a decoder out of it. The paper's shared-latent
assumption is built into the weights: the last ``share_layers`` residual blocks of the two encoders and the
first ``share_layers`` of the two decoders are the same modules. Translating A -> B is ``decoder_b(
encoder_a(x))``. The encoder gives the mean ``mu`` of a Gaussian with identity covariance: the task adds
the noise while training (``z = mu + N(0, I)``); :class:`UnitTranslator` always decodes ``mu``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from translate.errors import ConfigError
from translate.generators.resnet import ResnetBlock
from translate.layers import get_norm_layer

NUM_DOWNS = 2
"""Stride-2 convolutions of an encoder (and x2 up-samplings of a decoder): latents are 4x smaller."""


def _res_blocks(count: int, channels: int) -> list[nn.Module]:
    """``count`` residual blocks ``x + conv-IN-ReLU-conv-IN(x)``, 3x3 convs with reflection padding."""
    return [
        ResnetBlock(channels, "instance", dropout=False, padding="reflect", bias=True) for _ in range(count)
    ]


class UnitEncoder(nn.Module):
    """Image -> latent mean: ``(N, in_channels, H, W) -> (N, 4 * base_channels, H / 4, W / 4)``.

    7x7 conv, two 4x4 stride-2 convs (each with reflection padding, instance norm, ReLU), then ``num_res``
    residual blocks (``blocks``), the last ``len(shared)`` of which are the given modules (shared with the
    other domain's encoder). H and W must be multiples of ``size_multiple`` (4).
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 64,
        num_res: int = 4,
        shared: Sequence[nn.Module] = (),
    ) -> None:
        super().__init__()
        instance_norm = get_norm_layer("instance")
        self.in_channels = in_channels
        self.latent_channels = base_channels * 2**NUM_DOWNS
        self.size_multiple = 2**NUM_DOWNS
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, base_channels, 7),
            instance_norm(base_channels),
            nn.ReLU(inplace=True),
        ]
        channels = base_channels
        for _ in range(NUM_DOWNS):
            layers += [
                nn.ReflectionPad2d(1),
                nn.Conv2d(channels, channels * 2, 4, stride=2),
                instance_norm(channels * 2),
                nn.ReLU(inplace=True),
            ]
            channels *= 2
        self.stem = nn.Sequential(*layers)
        self.blocks = nn.Sequential(*_res_blocks(num_res - len(shared), channels), *shared)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class UnitDecoder(nn.Module):
    """Latent -> image: ``(N, 4 * base_channels, h, w) -> (N, out_channels, 4h, 4w)`` in [-1, 1].

    ``num_res`` residual blocks (``blocks``, instance norm), the first ``len(shared)`` of which are the given
    modules, then two [nearest x2 up-sampling, 5x5 conv, layer norm, ReLU], halving the width each time,
    and a 7x7 conv with tanh. Every conv has reflection padding and a bias.
    """

    def __init__(
        self,
        out_channels: int = 3,
        base_channels: int = 64,
        num_res: int = 4,
        shared: Sequence[nn.Module] = (),
    ) -> None:
        super().__init__()
        layer_norm = get_norm_layer("layer")
        self.out_channels = out_channels
        self.latent_channels = channels = base_channels * 2**NUM_DOWNS
        self.blocks = nn.Sequential(*shared, *_res_blocks(num_res - len(shared), channels))
        layers: list[nn.Module] = []
        for _ in range(NUM_DOWNS):
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.ReflectionPad2d(2),
                nn.Conv2d(channels, channels // 2, 5),
                layer_norm(channels // 2),
                nn.ReLU(inplace=True),
            ]
            channels //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(channels, out_channels, 7), nn.Tanh()]
        self.head = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(z))


class UnitTranslator(nn.Module):
    """One direction of a trained UNIT: ``decoder(encoder(x))``, decoding the latent mean (no noise).

    ``(N, in_channels, H, W) -> (N, out_channels, H, W)``; H and W multiples of ``size_multiple`` (4).
    """

    def __init__(self, encoder: UnitEncoder, decoder: UnitDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.in_channels = encoder.in_channels
        self.out_channels = decoder.out_channels
        self.size_multiple = encoder.size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def coupled_autoencoders(
    channels_a: int = 3,
    channels_b: int = 3,
    base_channels: int = 64,
    num_res: int = 4,
    share_layers: int = 1,
) -> tuple[UnitEncoder, UnitDecoder, UnitEncoder, UnitDecoder]:
    """``(encoder_a, decoder_a, encoder_b, decoder_b)`` whose innermost ``share_layers`` residual blocks
    (encoders: the last ones; decoders: the first ones) are the same modules; 0 shares nothing."""
    if not 0 <= share_layers <= num_res:
        raise ConfigError(f"share_layers must be between 0 and num_res ({num_res}); got {share_layers}")
    latent_channels = base_channels * 2**NUM_DOWNS
    encoder_shared = _res_blocks(share_layers, latent_channels)
    decoder_shared = _res_blocks(share_layers, latent_channels)
    return (
        UnitEncoder(channels_a, base_channels, num_res, encoder_shared),
        UnitDecoder(channels_a, base_channels, num_res, decoder_shared),
        UnitEncoder(channels_b, base_channels, num_res, encoder_shared),
        UnitDecoder(channels_b, base_channels, num_res, decoder_shared),
    )
