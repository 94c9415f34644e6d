"""Adversarial losses, interchangeable by name: ``vanilla``, ``lsgan``, ``wgan``, ``wgangp``, ``hinge``.

Each loss is a plain function and a thin Module registered in ``LOSSES``. Both hide the real/fake
targets (junyanz's ``GANLoss``) and are called the same way::

    d_loss = loss(D(real), True) + loss(D(fake.detach()), False)   # discriminator / critic
    g_loss = loss(D(fake), True, for_discriminator=False)           # generator

``prediction`` is D's raw output ``(N, 1, h, w)`` (logits / critic values), or a list of them from a
multi-scale discriminator, whose per-scale losses are averaged. ``vanilla`` and ``lsgan`` also take
``target_is_real`` as a tensor ``(N,)`` of per-sample targets in [0, 1] (1 = real): one-sided label
smoothing (0.9 for real) and label noise (a share of the targets flipped) are such targets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from translate.registry import LOSSES

Prediction = Tensor | list[Tensor]
Target = bool | Tensor


def _targets(p: Tensor, target_is_real: Target) -> Tensor:
    """The target map for prediction ``p``: all ones / zeros, or per-sample targets ``(N,)`` broadcast."""
    if isinstance(target_is_real, Tensor):
        return target_is_real.to(p.dtype).view(-1, *([1] * (p.dim() - 1))).expand_as(p)
    return torch.ones_like(p) if target_is_real else torch.zeros_like(p)


def _real_or_fake(target_is_real: Target, loss: str) -> bool:
    if isinstance(target_is_real, Tensor):
        raise ValueError(f"the {loss} loss takes real/fake only, not soft targets (label smoothing or noise)")
    return target_is_real


def _over_scales(per_scale: Callable[[Tensor], Tensor], prediction: Prediction) -> Tensor:
    """Mean of ``per_scale`` over the scales of a multi-scale prediction (a single tensor is one scale)."""
    if isinstance(prediction, Tensor):
        return per_scale(prediction)
    if not prediction:
        raise ValueError("an adversarial loss needs at least one prediction tensor")
    return torch.stack([per_scale(p) for p in prediction]).mean()


def vanilla_gan_loss(
    prediction: Prediction, target_is_real: Target, for_discriminator: bool = True
) -> Tensor:
    """Binary cross-entropy on logits against 1 (real) or 0 (fake) (Goodfellow et al.); scalar. D's sigmoid
    is part of the loss (numerically stable)."""

    def per_scale(p: Tensor) -> Tensor:
        # -[y log sigmoid(p) + (1 - y) log(1 - sigmoid(p))], the non-saturating G loss when y = 1
        return F.binary_cross_entropy_with_logits(p, _targets(p, target_is_real))

    return _over_scales(per_scale, prediction)


def lsgan_loss(prediction: Prediction, target_is_real: Target, for_discriminator: bool = True) -> Tensor:
    """Least squares against 1 (real) or 0 (fake) (Mao et al., a = 0, b = c = 1); scalar."""

    def per_scale(p: Tensor) -> Tensor:
        # E[(D(x) - 1)^2] for real, E[D(G(z))^2] for fake
        return F.mse_loss(p, _targets(p, target_is_real))

    return _over_scales(per_scale, prediction)


def wgan_loss(prediction: Prediction, target_is_real: Target, for_discriminator: bool = True) -> Tensor:
    """Wasserstein critic loss (Arjovsky et al.): ``-E[D(x)]`` for real, ``E[D(x)]`` for fake; scalar.

    The generator's ``-E[D(G(z))]`` is the call with ``target_is_real=True``.
    """
    # critic: E[D(G(z))] - E[D(x)], split into its real and fake halves
    real = _real_or_fake(target_is_real, "Wasserstein")
    return _over_scales(lambda p: -p.mean() if real else p.mean(), prediction)


def hinge_loss(prediction: Prediction, target_is_real: Target, for_discriminator: bool = True) -> Tensor:
    """Hinge loss (Lim & Ye; Miyato et al.); scalar. ``for_discriminator=False`` gives G's ``-E[D(G(z))]``."""
    real = _real_or_fake(target_is_real, "hinge")

    def per_scale(p: Tensor) -> Tensor:
        if not for_discriminator:
            # L_G = -E[D(G(z))]
            return -p.mean() if real else p.mean()
        # L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]
        return F.relu(1.0 - p).mean() if real else F.relu(1.0 + p).mean()

    return _over_scales(per_scale, prediction)


class AdversarialLoss(nn.Module):
    """Base of the adversarial loss Modules: ``loss(prediction, target_is_real, for_discriminator)``."""

    uses_gradient_penalty: ClassVar[bool] = False
    """True when the task must add :func:`gradient_penalty` to the discriminator's objective."""
    soft_targets: ClassVar[bool] = False
    """True when ``target_is_real`` may be a tensor of per-sample targets (label smoothing, label noise)."""
    function: ClassVar[Callable[[Prediction, Target, bool], Tensor]]

    def forward(
        self, prediction: Prediction, target_is_real: Target, for_discriminator: bool = True
    ) -> Tensor:
        return type(self).function(prediction, target_is_real, for_discriminator)


@LOSSES.register("vanilla")
class VanillaGANLoss(AdversarialLoss):
    """Vanilla GAN: binary cross-entropy on D's logits (pix2pix's default)."""

    soft_targets = True
    function = staticmethod(vanilla_gan_loss)


@LOSSES.register("lsgan")
class LSGANLoss(AdversarialLoss):
    """LSGAN: least squares against 1/0 (CycleGAN's default)."""

    soft_targets = True
    function = staticmethod(lsgan_loss)


@LOSSES.register("wgan")
class WGANLoss(AdversarialLoss):
    """WGAN: the Wasserstein critic loss alone; the critic is kept Lipschitz otherwise (weight clipping)."""

    function = staticmethod(wgan_loss)


@LOSSES.register("wgangp")
class WGANGPLoss(AdversarialLoss):
    """WGAN-GP: Wasserstein critic loss; the task adds the gradient penalty."""

    uses_gradient_penalty = True
    function = staticmethod(wgan_loss)


@LOSSES.register("hinge")
class HingeLoss(AdversarialLoss):
    """Hinge loss for D, -E[D(G(z))] for G."""

    function = staticmethod(hinge_loss)
