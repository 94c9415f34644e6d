"""Shared building blocks: norm layers by name, spectral norm, weight init, up-sampling convs, class labels
joined to an input."""

from translate.layers.blocks import DCGAN_SIZES, dcgan_depth, join_labels, mlp_layers, upsample_conv
from translate.layers.init import INIT_TYPES, init_weights
from translate.layers.noise import LATENT_DISTRIBUTIONS, latent_noise
from translate.layers.norm import (
    NORMS,
    add_spectral_norm,
    batch_statistics,
    get_norm_layer,
    norm_uses_bias,
    per_image,
)

__all__ = [
    "DCGAN_SIZES",
    "dcgan_depth",
    "INIT_TYPES",
    "NORMS",
    "add_spectral_norm",
    "batch_statistics",
    "get_norm_layer",
    "init_weights",
    "join_labels",
    "latent_noise",
    "LATENT_DISTRIBUTIONS",
    "mlp_layers",
    "norm_uses_bias",
    "per_image",
    "upsample_conv",
]
