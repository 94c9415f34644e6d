"""CUT's PatchGAN (Park et al., 2020): junyanz's NLayerDiscriminator with anti-aliased down-sampling."""

from __future__ import annotations

from translate.discriminators.patchgan import PatchGAN
from translate.layers.antialias import antialiased
from translate.registry import DISCRIMINATORS


@DISCRIMINATORS.register()
def antialiased_patchgan(
    in_channels: int = 3,
    base_channels: int = 64,
    num_layers: int = 3,
    norm: str = "batch",
    spectral_norm: bool = False,
) -> PatchGAN:
    """CUT's PatchGAN: ``patchgan`` with stride-1 convs, each followed by a blur-pool; 2,765,633 params.

    taesungp/contrastive-unpaired-translation ``NLayerDiscriminator`` with its default anti-aliasing (the
    count is at 3 layers with ``patchgan``'s batch norm; 2,764,737 with CUT's instance norm):
    ``(N, in_channels, H, W) -> (N, 1, h, w)`` raw logits (30x30 at 256 px, as the 70x70 PatchGAN's).
    """
    discriminator = PatchGAN(in_channels, base_channels, num_layers, norm, spectral_norm)
    discriminator.model = antialiased(discriminator.model)
    return discriminator
