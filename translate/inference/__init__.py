"""Inference: load a checkpoint's typed exports (weights + the architecture that made them) and use them.

>>> from translate import Translator
>>> translator = Translator.from_run("runs/cyclegan-demo", direction="a2b")
>>> out = translator(pil_image)                 # PIL in, PIL out; also numpy, tensors and lists
>>> translator.apply_folder("photos/", "out/")  # mirrors sub-folders and file names

``translator.py``: the call (policy: tiles, fast path, batch statistics, padding); ``pipeline.py``: files in,
files out (``apply_paths``); ``convert.py``: PIL / numpy <-> tensors.

Never imports the trainer or the training API: weights load through ``translate.engine.checkpoint``.
"""

from __future__ import annotations

from translate.lazy import lazy_names

_LAZY = {
    "pad_to_multiple": "translate.inference.convert",
    "output_path": "translate.inference.jobs",
    "LoadedExport": "translate.inference.model",
    "load_export": "translate.inference.model",
    "load_model": "translate.inference.model",
    "model_exports": "translate.inference.model",
    "Sampler": "translate.inference.sampler",
    "Translator": "translate.inference.translator",
}
"""Each name imported on first use (``translate info`` reads exports without the sampler's torchvision)."""

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
