"""Discriminators; importing this package registers them all in ``DISCRIMINATORS``."""

from translate.discriminators import multiscale, patchgan, stargan
from translate.discriminators.multiscale import MultiscaleDiscriminator
from translate.discriminators.patchgan import PatchGAN, PixelDiscriminator
from translate.discriminators.stargan import StarGANDiscriminator

__all__ = [
    "MultiscaleDiscriminator",
    "PatchGAN",
    "PixelDiscriminator",
    "StarGANDiscriminator",
    "multiscale",
    "patchgan",
    "stargan",
]
