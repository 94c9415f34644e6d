"""Where ``translate datasets download`` puts a dataset when no ``--root`` is given.

- ``$TRANSLATE_DATA_ROOT`` when it is set;
- in a checkout of this project (the current folder, or the nearest folder above it, holds
  ``datasets/README.md`` and a ``pyproject.toml`` of the ``translate-gan`` distribution): its
  ``datasets/`` folder, as junyanz's scripts fill ``./datasets`` (git-ignored but for the README);
- anywhere else: ``./data``.

Both tests are on files, not on how the package was installed: an editable install run from another
folder downloads into that folder's ``data/``, a wheel run inside a clone downloads into the clone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DATA_ROOT_ENV = "TRANSLATE_DATA_ROOT"
CHECKOUT_DATASETS = "datasets"
OUTSIDE_DEFAULT = Path("data")
_DISTRIBUTION = re.compile(r'^name\s*=\s*["\']translate-gan["\']', re.MULTILINE)


def is_checkout(folder: Path) -> bool:
    """Whether ``folder`` is the top of a checkout of this project: ``datasets/README.md`` beside a
    ``pyproject.toml`` whose project is ``translate-gan``."""
    if not (folder / CHECKOUT_DATASETS / "README.md").is_file():
        return False
    try:
        return bool(_DISTRIBUTION.search((folder / "pyproject.toml").read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return False


def checkout_root(start: str | Path | None = None) -> Path | None:
    """The checkout that ``start`` (default: the current folder) is in, or None.

    Args:
        start: a folder; it and each folder above it are tried in turn.

    Returns:
        The nearest such folder that ``is_checkout``, absolute; None outside any checkout.
    """
    here = Path(start if start is not None else Path.cwd()).expanduser().resolve()
    return next((folder for folder in (here, *here.parents) if is_checkout(folder)), None)


def default_dataset_root() -> Path:
    """The folder that receives ``NAME/`` on download: ``$TRANSLATE_DATA_ROOT``, else the checkout's
    ``datasets/`` (just ``datasets`` at the top of the checkout), else ``data`` in the current folder."""
    override = os.environ.get(DATA_ROOT_ENV)
    if override:
        return Path(override).expanduser()
    here = Path.cwd().resolve()
    checkout = checkout_root(here)
    if checkout is None:
        return OUTSIDE_DEFAULT
    return Path(CHECKOUT_DATASETS) if checkout == here else checkout / CHECKOUT_DATASETS
