"""translate: image-to-image translation (pix2pix, CycleGAN, ...) on shared, registered parts.

Importing the package registers every component (``translate.components``).
"""

import translate.components  # noqa: F401
from translate.api import train
from translate.inference import Sampler, Translator

__version__ = "0.1.0"
__all__ = ["Sampler", "Translator", "train", "__version__"]
