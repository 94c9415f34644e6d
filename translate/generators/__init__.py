"""Generators; importing this package registers them all in ``GENERATORS``."""

from translate.generators import resnet, unet
from translate.generators.resnet import ResnetGenerator
from translate.generators.unet import UnetGenerator

__all__ = ["ResnetGenerator", "UnetGenerator", "resnet", "unet"]
