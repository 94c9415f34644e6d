"""Metrics against a paired ground truth: L1, PSNR, and per-pixel label accuracy for colour-coded maps.

Images are ``(N, C, H, W)`` in ``[-1, 1]``; scores are reported on the ``[0, 1]`` pixel scale.
"""

from __future__ import annotations

import torch


def l1_distance(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image, on the [0, 1] scale: ``(N,)``."""
    return ((prediction - target).abs() / 2).flatten(1).mean(1)


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB (peak 1 on the [0, 1] scale): ``(N,)``."""
    mse = (((prediction - target) / 2) ** 2).flatten(1).mean(1)
    return -10 * torch.log10(mse.clamp_min(1e-10))


def estimate_palette(label_maps: torch.Tensor, num_colors: int, iterations: int = 20) -> torch.Tensor:
    """The ``num_colors`` colours of colour-coded label maps (JPEG noise and all), by k-means: ``(K, C)``.

    Initialised deterministically from the most frequent coarsely quantised colours.
    """
    pixels = label_maps.permute(0, 2, 3, 1).reshape(-1, label_maps.shape[1]).float()
    coarse = torch.round(pixels * 4) / 4
    colors, counts = coarse.unique(dim=0, return_counts=True)
    if len(colors) < num_colors:
        raise ValueError(f"the label maps hold only {len(colors)} distinct colours, fewer than {num_colors}")
    centers = colors[counts.argsort(descending=True)[:num_colors]].clone()
    for _ in range(iterations):
        assignment = torch.cdist(pixels, centers).argmin(1)
        for k in range(num_colors):
            members = pixels[assignment == k]
            if len(members):
                centers[k] = members.mean(0)
    return centers


def to_labels(images: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Nearest palette colour per pixel: ``(N, C, H, W)`` -> ``(N, H, W)`` integer labels."""
    pixels = images.permute(0, 2, 3, 1).float()
    distances = torch.cdist(pixels.reshape(-1, pixels.shape[-1]), palette)
    return distances.argmin(1).reshape(pixels.shape[:-1])


def label_accuracy(prediction: torch.Tensor, target: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Per-image fraction of pixels whose nearest palette colour matches the ground truth's: ``(N,)``."""
    return (to_labels(prediction, palette) == to_labels(target, palette)).float().flatten(1).mean(1)
