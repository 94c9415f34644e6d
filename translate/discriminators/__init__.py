"""Discriminators; importing this package registers them all in ``DISCRIMINATORS``."""

from translate.discriminators import multiscale, patchgan
from translate.discriminators.multiscale import MultiscaleDiscriminator
from translate.discriminators.patchgan import PatchGAN, PixelDiscriminator

__all__ = ["MultiscaleDiscriminator", "PatchGAN", "PixelDiscriminator", "multiscale", "patchgan"]
