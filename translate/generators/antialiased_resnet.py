"""CUT's ResNet generator (Park et al., 2020): junyanz's ResNet with anti-aliased re-sampling."""

from __future__ import annotations

from translate.generators.resnet import ResnetGenerator
from translate.layers.antialias import antialiased
from translate.registry import GENERATORS


@GENERATORS.register()
def antialiased_resnet(
    in_channels: int = 3,
    out_channels: int = 3,
    base_channels: int = 64,
    num_blocks: int = 9,
    norm: str = "instance",
    dropout: bool = False,
    padding: str = "reflect",
) -> ResnetGenerator:
    """CUT's ResNet generator: blur-pool down, blur up-sampling + 3x3 conv; 11,378,179 params at 9 blocks.

    taesungp/contrastive-unpaired-translation ``ResnetGenerator`` with its defaults (anti-aliasing on):
    ``model`` is ``pad, conv7, norm, relu, [conv3 s1, norm, relu, blur-pool] x2, num_blocks residual
    blocks, [blur up, conv3, norm, relu] x2, pad, conv7, tanh`` with the authors' indices and state-dict
    keys (CUT's ``nce_layers 0,4,8,12,16`` name the padded input, the two down-sampling convs and residual
    blocks 0 and 4). ``(N, in_channels, H, W) -> (N, out_channels, H, W)``, H and W multiples of 4.
    """
    generator = ResnetGenerator(
        in_channels, out_channels, base_channels, num_blocks, norm, dropout, "transpose", padding
    )
    generator.model = antialiased(generator.model)
    return generator
