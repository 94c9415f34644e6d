"""translate: image-to-image translation (pix2pix, CycleGAN, ...) on shared, registered parts.

Importing the package registers every component (``translate.components``).
"""

import translate.components  # noqa: F401
from translate.api import train
from translate.inference import Sampler, Translator

# The one place the version is written: pyproject.toml reads it from here (setuptools dynamic version,
# parsed without importing), so the wheel, `pip show translate-gan` and `translate --version` agree.
__version__ = "0.1.0"
__all__ = ["Sampler", "Translator", "train", "__version__"]
