"""Normalization layers by name, the conv-bias rule that goes with them, and spectral norm."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from translate.errors import ConfigError

NORMS = ("batch", "instance", "instance_affine", "layer", "none")


def _check(name: str) -> None:
    if name not in NORMS:
        raise ConfigError(f"unknown norm {name!r}. Known: {', '.join(NORMS)}")


def get_norm_layer(name: str) -> Callable[[int], nn.Module]:
    """A constructor ``num_channels -> nn.Module`` for one of ``NORMS``.

    As in junyanz's pix2pix/CycleGAN: ``'batch'`` (BatchNorm2d) learns a scale and shift and tracks running
    statistics; ``'instance'`` (InstanceNorm2d) does neither. ``'instance_affine'``: instance norm with a
    learned per-channel scale and shift (StarGAN). ``'layer'``: each sample normalised over all its channels
    and pixels, then a per-channel scale and shift (MUNIT/UNIT's LayerNorm, as ``GroupNorm`` with one group).
    ``'none'`` is an Identity.
    """
    _check(name)
    if name == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if name == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if name == "instance_affine":
        return functools.partial(nn.InstanceNorm2d, affine=True, track_running_stats=False)
    if name == "layer":
        return lambda num_channels: nn.GroupNorm(1, num_channels, affine=True)
    return lambda num_channels: nn.Identity()


def norm_uses_bias(name: str) -> bool:
    """Whether a conv followed by this norm needs its own bias: only when the norm has no learned shift."""
    _check(name)
    return name in ("instance", "none")


def add_spectral_norm(module: nn.Module) -> nn.Module:
    """Wrap the weight of every conv (and transposed conv) in ``module`` with spectral norm, in place."""
    for layer in module.modules():
        if isinstance(layer, nn.modules.conv._ConvNd):
            spectral_norm(layer)
    return module


@contextlib.contextmanager
def batch_statistics(module: nn.Module) -> Iterator[nn.Module]:
    """Run ``module`` as it trained, without changing it: training mode (dropout on, batch norm on the
    statistics of the batch at hand) with batch norm's running statistics left untouched. pix2pix's test
    mode (junyanz's test.py without ``--eval``). Restores every layer's mode on exit."""
    layers = list(module.modules())
    modes = [(layer, layer.training, getattr(layer, "track_running_stats", None)) for layer in layers]
    module.train()
    for layer in layers:
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.track_running_stats = False  # with training=True: batch statistics, no running update
    try:
        yield module
    finally:
        for layer, training, track in modes:
            layer.training = training
            if track is not None:
                layer.track_running_stats = track


def per_image(
    module: nn.Module, images: torch.Tensor, *conditions: torch.Tensor | None, seed: int | None = None
) -> torch.Tensor:
    """``module(image, *conditions)`` of each image alone, under ``batch_statistics``: pix2pix's test mode.

    Args:
        module: the network, e.g. a U-Net generator.
        images: ``(N, C, H, W)``.
        conditions: per-image inputs beside the image (``(N, ...)``, e.g. target labels), or None.
        seed: each image's dropout drawn from this seed, the caller's random state left as it was; None
            draws from the global random state.

    Returns:
        ``(N, C_out, H, W)``: the outputs, concatenated.
    """
    devices = [images.device] if images.device.type == "cuda" else []
    outputs = []
    with batch_statistics(module):
        for i in range(len(images)):
            extra = [c[i : i + 1] for c in conditions if c is not None]
            if seed is None:
                outputs.append(module(images[i : i + 1], *extra))
                continue
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(seed)
                outputs.append(module(images[i : i + 1], *extra))
    return torch.cat(outputs)
