"""``import translate`` is cheap: its top-level names (``train``, ``Translator``, ``Sampler``) are imported
on first use, and ``__all__`` / ``dir()`` name them truthfully (issue 23)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import translate


def test_import_translate_imports_no_torch():
    code = "import sys, translate\nprint('torch' in sys.modules, 'translate.api' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_the_top_level_names_are_those_of_their_modules():
    from translate.api import train
    from translate.inference import Sampler, Translator

    assert (translate.train, translate.Translator, translate.Sampler) == (train, Translator, Sampler)
    from translate import Translator as imported

    assert imported is Translator


def test_all_and_dir_name_every_top_level_name():
    assert set(translate.__all__) <= set(dir(translate))
    for name in translate.__all__:
        assert getattr(translate, name) is not None


def test_an_unknown_name_is_an_attribute_error():
    assert not hasattr(translate, "Trainer")
    with pytest.raises(ImportError, match="Trainer"):
        from translate import Trainer  # noqa: F401
