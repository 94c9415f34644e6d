"""Device names (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``) -> a ``torch.device`` that exists here.

Shared by the trainer and the inference commands; ``translate.inference`` may import it (no trainer)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from translate.errors import ConfigError

AVAILABLE: dict[str, Callable[[], bool]] = {
    "cpu": lambda: True,
    "cuda": torch.cuda.is_available,
    "mps": torch.backends.mps.is_available,
}
"""The device types the toolkit runs on, with how to tell whether this machine has one."""


def resolve_device(name: str | torch.device, what: str = "--device") -> torch.device:
    """``auto`` is CUDA when available, else the CPU; any other name must be a device this machine has,
    else a one-line ConfigError that starts with ``what`` (the option or config key that named it)."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        hint = " (PyTorch calls GPUs cuda)" if str(name).lower().startswith("gpu") else ""
        raise ConfigError(f"{what} {name!r} is not a device{hint}; use auto, cpu, cuda or cuda:N") from None
    if device.type not in AVAILABLE:
        raise ConfigError(f"{what} {name!r}: only {', '.join(AVAILABLE)} devices are supported")
    if not AVAILABLE[device.type]():
        kind = device.type.upper()
        raise ConfigError(f"{what} is {name!r} but {kind} is not available here; use cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(
            f"{what} is {name!r} but this machine has {count} CUDA device(s), cuda:0 to {count - 1}"
        )
    return device
