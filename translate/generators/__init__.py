"""Generators; importing this package registers them all in ``GENERATORS``."""

from translate.generators import (  # noqa: F401 (unit, munit, patch_sampler: built by their tasks)
    antialiased_resnet,
    dcgan,
    mlp,
    munit,
    patch_sampler,
    resnet,
    stargan,
    unet,
    unit,
)
from translate.generators.resnet import ResnetGenerator
from translate.generators.stargan import StarGANGenerator
from translate.generators.unet import UnetGenerator

__all__ = ["ResnetGenerator", "StarGANGenerator", "UnetGenerator", "resnet", "stargan", "unet"]
