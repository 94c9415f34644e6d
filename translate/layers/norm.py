"""Normalization layers by name, the conv-bias rule that goes with them, and spectral norm."""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from translate.errors import ConfigError

NORMS = ("batch", "instance", "none")


def _check(name: str) -> None:
    if name not in NORMS:
        raise ConfigError(f"unknown norm {name!r}. Known: {', '.join(NORMS)}")


def get_norm_layer(name: str) -> Callable[[int], nn.Module]:
    """A constructor ``num_channels -> nn.Module`` for ``'batch'``, ``'instance'`` or ``'none'``.

    As in junyanz's pix2pix/CycleGAN: BatchNorm2d learns a scale and shift and tracks running
    statistics; InstanceNorm2d does neither; ``'none'`` is an Identity.
    """
    _check(name)
    if name == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if name == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    return lambda num_channels: nn.Identity()


def norm_uses_bias(name: str) -> bool:
    """Whether a conv followed by this norm needs its own bias: only when the norm has no learned shift."""
    _check(name)
    return name != "batch"


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap the weight of every conv (and transposed conv) in ``module`` with spectral norm, in place."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.conv._ConvNd):
            spectral_norm(layer)
    return module
