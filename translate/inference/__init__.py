"""Inference: load a checkpoint's typed exports (weights + the architecture that made them) and use them.

>>> from translate import Translator
>>> translator = Translator.from_run("runs/cyclegan-demo", direction="a2b")
>>> out = translator(pil_image)                 # PIL in, PIL out; also numpy, tensors and lists
>>> translator.apply_folder("photos/", "out/")  # mirrors sub-folders and file names

``translator.py``: the call (policy: tiles, fast path, batch statistics, padding); ``pipeline.py``: files in,
files out (``apply_paths``); ``convert.py``: PIL / numpy <-> tensors.

Never imports the trainer or the training API: weights load through ``translate.engine.checkpoint``.
"""

from translate.inference.convert import pad_to_multiple
from translate.inference.jobs import output_path
from translate.inference.model import LoadedExport, load_export, load_model, model_exports
from translate.inference.sampler import Sampler
from translate.inference.translator import Translator

__all__ = [
    "LoadedExport",
    "Sampler",
    "Translator",
    "load_export",
    "load_model",
    "model_exports",
    "output_path",
    "pad_to_multiple",
]
