"""Perceptual and structural scores of image pairs: SSIM (kornia) and LPIPS (the ``lpips`` package).

Images are ``(N, C, H, W)`` in ``[-1, 1]``; SSIM is computed on the ``[0, 1]`` scale.
LPIPS' linear heads ship with the ``lpips`` wheel; its backbone (AlexNet, VGG16 or SqueezeNet ImageNet
weights) is read from the torch hub cache and never downloaded: a missing file is a one-line
``MissingWeights`` naming the file, where to put it and its URL.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from translate.metrics.weights import MissingWeights, hub_checkpoints

LPIPS_BACKBONES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}
LPIPS_MIN_SIZE = 64
"""LPIPS' AlexNet needs inputs of about 32 px or more: smaller images are upsampled (bilinear) to this."""


def ssim(prediction: torch.Tensor, target: torch.Tensor, window_size: int = 11) -> torch.Tensor:
    """Structural similarity per image (mean over pixels and channels), ``(N,)`` in ``[-1, 1]``: a Gaussian
    window of ``window_size`` taps (sigma 1.5), constants ``(0.01, 0.03)`` for a data range of 1
    (``kornia.metrics.ssim``). Over the valid window positions (as the reference MATLAB code) when the
    images are at least ``window_size`` px; smaller images use the largest odd window that fits,
    reflect-padded."""
    from kornia.metrics import ssim as kornia_ssim

    side = min(prediction.shape[-2:])
    if side >= window_size:
        padding = "valid"
    else:
        window_size, padding = max(1, side - 1 + side % 2), "same"
    a = (prediction.float() + 1) / 2
    b = (target.float() + 1) / 2
    return kornia_ssim(a, b, window_size, max_val=1.0, eps=0.0, padding=padding).flatten(1).mean(1)


class LPIPS(nn.Module):
    """``(a, b)`` images in ``[-1, 1]`` (1 or 3 channels, any size) -> ``(N,)`` LPIPS distances."""

    def __init__(self, model: nn.Module, name: str, weights: str | None) -> None:
        super().__init__()
        self.model = model.eval()
        self.name, self.weights = name, weights

    @torch.no_grad()
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        device = next(self.model.parameters()).device
        pair = []
        for x in (a, b):
            x = x.to(device, torch.float32)
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
            if min(x.shape[-2:]) < LPIPS_MIN_SIZE:
                scale = LPIPS_MIN_SIZE / min(x.shape[-2:])
                x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)
            pair.append(x)
        return self.model(*pair).flatten().float().cpu()


def lpips_backbone_path(net: str = "alex"):
    return hub_checkpoints() / LPIPS_BACKBONES[net]


def load_lpips(
    net: str = "alex", device: str | torch.device = "cpu", pretrained_backbone: bool = True
) -> LPIPS:
    """LPIPS v0.1 with ``net`` (``alex``, ``vgg``, ``squeeze``). ``pretrained_backbone`` False builds the
    backbone with random weights (tests: the same shapes, nothing read)."""
    if net not in LPIPS_BACKBONES:
        raise MissingWeights(f"unknown LPIPS network {net!r}; known: {', '.join(LPIPS_BACKBONES)}")
    path = lpips_backbone_path(net)
    if pretrained_backbone and not path.is_file():
        raise MissingWeights(
            f"LPIPS needs its {net} backbone: put {path.name} (from https://download.pytorch.org/models/"
            f"{path.name}) in {path.parent}/"
        )
    import lpips

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's "pretrained is deprecated"
        model = lpips.LPIPS(net=net, pnet_rand=not pretrained_backbone, verbose=False)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    name = f"lpips-{net}" + ("" if pretrained_backbone else " (random backbone)")
    return LPIPS(model, name, str(path) if pretrained_backbone else None).to(device)
