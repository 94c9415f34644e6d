"""Shared building blocks: norm layers by name, spectral norm, weight init, up-sampling convs."""

from translate.layers.blocks import upsample_conv
from translate.layers.init import INIT_TYPES, init_weights
from translate.layers.norm import NORMS, add_spectral_norm, batch_statistics, get_norm_layer, norm_uses_bias

__all__ = [
    "INIT_TYPES",
    "NORMS",
    "add_spectral_norm",
    "batch_statistics",
    "get_norm_layer",
    "init_weights",
    "norm_uses_bias",
    "upsample_conv",
]
