"""Losses; importing this package registers the adversarial losses in ``LOSSES``."""

from translate.losses.adversarial import (
    AdversarialLoss,
    HingeLoss,
    LSGANLoss,
    VanillaGANLoss,
    WGANGPLoss,
    gradient_penalty,
    hinge_loss,
    lsgan_loss,
    vanilla_gan_loss,
    wgan_loss,
)

__all__ = [
    "AdversarialLoss",
    "HingeLoss",
    "LSGANLoss",
    "VanillaGANLoss",
    "WGANGPLoss",
    "gradient_penalty",
    "hinge_loss",
    "lsgan_loss",
    "vanilla_gan_loss",
    "wgan_loss",
]
