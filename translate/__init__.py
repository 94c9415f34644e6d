"""translate: image-to-image translation (pix2pix, CycleGAN, ...) on shared, registered parts.

``import translate`` is cheap (no torch): ``train``, ``Translator`` and ``Sampler`` are imported on first
use, so ``translate --version`` answers at once. ``import translate.components`` registers every
component in its registry (``translate.api`` and loading a model do it for you).
"""

from __future__ import annotations

from translate.lazy import lazy_names

# The one place the version is written: pyproject.toml reads it from here (setuptools dynamic version,
# parsed without importing), so the wheel, `pip show translate-gan` and `translate --version` agree.
__version__ = "0.1.0"

_LAZY = {"train": "translate.api", "Translator": "translate.inference", "Sampler": "translate.inference"}
"""Each top-level name imported on first use, and the module that defines it."""

__all__ = ["Sampler", "Translator", "train", "__version__"]


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
