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


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 natively: a CUDA GPU that supports it, or a CPU with AVX512-BF16
    or AMX (where bf16 convolutions run about twice fp32; elsewhere torch emulates bf16, slower than fp32).

    Args:
        device: where the networks run.

    Returns:
        True where bf16 pays.
    """
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch >= 2.3
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def describe_cpu() -> str:
    """One line on this CPU for benchmark tables: name, torch's capability level, native bf16 or not."""
    name = (
        torch.cpu.get_capabilities().get("cpu_name", "CPU")
        if hasattr(torch.cpu, "get_capabilities")
        else "CPU"
    )
    bf16 = "native bf16" if native_bf16(torch.device("cpu")) else "no native bf16"
    return f"{name}, {torch.backends.cpu.get_cpu_capability()}, {bf16}"
