"""Every random generator training draws from, read and set as one state (checkpoints store it)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch


def random_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Returns: every random generator training draws from: torch's (CPU, CUDA) as tensors (``torch``,
    ``cuda/<i>``), Python's and NumPy's as JSON."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return tensors, {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
    }


def set_random_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Args: tensors, meta: what ``random_state`` returned, to set every random generator to."""
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda/{i}"] for i in range(sum(k.startswith("cuda/") for k in tensors))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Every random generator training draws from is as it was after the block: evaluating (or building
    what evaluates) never changes what training draws next."""
    tensors, meta = random_state()
    try:
        yield
    finally:
        set_random_state(tensors, meta)


def seed_everything(seed: int) -> None:
    """Args: seed: the seed of torch's, Python's and NumPy's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
