"""Pretrained weights of the metrics (Inception, LPIPS' backbones): found on this machine, never
downloaded, and identified by their SHA-256 in the scores."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from translate.errors import TranslateError


class MissingWeights(TranslateError):
    """A metric's pretrained weights are not on this machine (nothing is downloaded at run time)."""


def hub_checkpoints() -> Path:
    """Where torch keeps downloaded weights: ``$TORCH_HOME/hub/checkpoints`` (by default
    ``~/.cache/torch/hub/checkpoints``; ``$XDG_CACHE_HOME/torch/...`` when that is set)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256(path: str | Path) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
