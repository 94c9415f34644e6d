"""Weight initialization as in junyanz's pix2pix/CycleGAN ``init_weights``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from translate.config import INIT_TYPES
from translate.errors import ConfigError

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _init_tensor(weight: torch.Tensor, init_type: str, gain: float) -> None:
    if init_type == "normal":
        nn.init.normal_(weight, 0.0, gain)
    elif init_type == "xavier":
        nn.init.xavier_normal_(weight, gain=gain)
    elif init_type == "kaiming":
        nn.init.kaiming_normal_(weight, a=0, mode="fan_in")  # gain unused, as in junyanz
    else:
        nn.init.orthogonal_(weight, gain=gain)


def init_weights(module: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialize every conv/linear weight of ``module`` in place and zero their biases.

    ``init_type`` is ``'normal'`` (N(0, gain)), ``'xavier'``, ``'kaiming'``, ``'orthogonal'``, or
    ``'default'`` (PyTorch's own initialisation is kept, as StarGAN does: the module is returned as is);
    batch-norm weights are drawn from N(1, gain) and their biases zeroed. Spectral-normed layers get their
    underlying weight initialized and their power-iteration vectors recomputed. Returns ``module``.
    """
    if init_type not in INIT_TYPES:
        raise ConfigError(f"unknown init type {init_type!r}. Known: {', '.join(INIT_TYPES)}")
    if init_type == "default":
        return module
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.modules.conv._ConvNd | nn.Linear):
                _init_layer_weight(layer, init_type, gain)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
            elif isinstance(layer, _BATCH_NORMS) and layer.affine:
                nn.init.normal_(layer.weight, 1.0, gain)
                nn.init.zeros_(layer.bias)
    return module


def _init_layer_weight(layer: nn.Module, init_type: str, gain: float) -> None:
    if not parametrize.is_parametrized(layer, "weight"):
        _init_tensor(layer.weight, init_type, gain)
        return
    (sn,) = layer.parametrizations.weight
    _init_tensor(layer.parametrizations.weight.original, init_type, gain)
    # The power-iteration vectors u, v belong to the old weight: re-wrapping recomputes them (the
    # ``original`` parameter object is kept, so optimizers holding it stay valid).
    parametrize.remove_parametrizations(layer, "weight", leave_parametrized=False)
    spectral_norm(layer, n_power_iterations=sn.n_power_iterations, eps=sn.eps, dim=sn.dim)
