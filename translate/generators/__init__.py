"""Generators; importing this package registers them all in ``GENERATORS``."""

from translate.generators import dcgan, mlp, resnet, stargan, unet, unit  # noqa: F401 (unit: built by the unit task)
from translate.generators.resnet import ResnetGenerator
from translate.generators.stargan import StarGANGenerator
from translate.generators.unet import UnetGenerator

__all__ = ["ResnetGenerator", "StarGANGenerator", "UnetGenerator", "resnet", "stargan", "unet"]
