"""Discriminators; importing this package registers them all in ``DISCRIMINATORS``."""

from translate.discriminators import (  # noqa: F401 (antialiased_patchgan: built by name)
    antialiased_patchgan,
    dcgan,
    mlp,
    multiscale,
    patchgan,
    stargan,
)
from translate.discriminators.multiscale import MultiscaleDiscriminator
from translate.discriminators.patchgan import PatchGAN, PixelDiscriminator
from translate.discriminators.stargan import StarGANDiscriminator

__all__ = [
    "dcgan",
    "mlp",
    "MultiscaleDiscriminator",
    "PatchGAN",
    "PixelDiscriminator",
    "StarGANDiscriminator",
    "multiscale",
    "patchgan",
    "stargan",
]
