"""Losses; importing this package registers the adversarial losses in ``LOSSES``; the gradient penalty and
CUT's PatchNCE are plain functions (and a module) beside them."""

from translate.losses.adversarial import (
    AdversarialLoss,
    HingeLoss,
    LSGANLoss,
    VanillaGANLoss,
    WGANGPLoss,
    WGANLoss,
    hinge_loss,
    lsgan_loss,
    vanilla_gan_loss,
    wgan_loss,
)
from translate.losses.gradient_penalty import GP_REDUCTIONS, gradient_penalty, r1_penalty
from translate.losses.patchnce import PatchNCELoss, patch_nce_loss

__all__ = [
    "GP_REDUCTIONS",
    "AdversarialLoss",
    "HingeLoss",
    "LSGANLoss",
    "PatchNCELoss",
    "VanillaGANLoss",
    "WGANGPLoss",
    "WGANLoss",
    "gradient_penalty",
    "hinge_loss",
    "lsgan_loss",
    "r1_penalty",
    "patch_nce_loss",
    "vanilla_gan_loss",
    "wgan_loss",
]
