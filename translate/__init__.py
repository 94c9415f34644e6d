"""translate: image-to-image translation (pix2pix, CycleGAN, ...) on shared, registered parts."""

from translate.api import train
from translate.inference import Translator

__version__ = "0.1.0"
__all__ = ["Translator", "train", "__version__"]
