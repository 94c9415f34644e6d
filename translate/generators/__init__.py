"""Generators; importing this package registers them all in ``GENERATORS``."""

from translate.generators import (  # noqa: F401 (unit, munit: built by their tasks)
    dcgan,
    mlp,
    munit,
    resnet,
    stargan,
    unet,
    unit,
)
from translate.generators.resnet import ResnetGenerator
from translate.generators.stargan import StarGANGenerator
from translate.generators.unet import UnetGenerator

__all__ = ["ResnetGenerator", "StarGANGenerator", "UnetGenerator", "resnet", "stargan", "unet"]
