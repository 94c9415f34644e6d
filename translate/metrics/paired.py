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
    """The ``num_colors`` class colours of colour-coded label maps ``(N, C, H, W)``, by k-means: ``(K, C)``.

    Only pixels inside flat regions count (within 0.1 of their four neighbours): JPEG and resizing blend
    neighbouring classes at every edge, and those blends are not classes. Maps without enough flat regions
    fall back to every pixel. Initialised deterministically from the most frequent quantised colours.
    """
    images = label_maps.float()
    centre = images[:, :, 1:-1, 1:-1]
    flat = torch.ones_like(centre[:, 0], dtype=torch.bool)
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        neighbour = images[:, :, 1 + dy : images.shape[2] - 1 + dy, 1 + dx : images.shape[3] - 1 + dx]
        flat &= (neighbour - centre).abs().amax(1) < 0.1
    pixels = centre.permute(0, 2, 3, 1)[flat]
    if len((torch.round(pixels * 8) / 8).unique(dim=0)) < num_colors:
        pixels = images.permute(0, 2, 3, 1).reshape(-1, images.shape[1])
    coarse = torch.round(pixels * 8) / 8
    colors, counts = coarse.unique(dim=0, return_counts=True)
    if len(colors) < num_colors:
        raise ValueError(f"the label maps hold only {len(colors)} distinct colours, fewer than {num_colors}")
    centers = _distinct_frequent(colors[counts.argsort(descending=True)], num_colors)
    for _ in range(iterations):
        assignment = torch.cdist(pixels, centers).argmin(1)
        for k in range(num_colors):
            members = pixels[assignment == k]
            if len(members):
                centers[k] = members.mean(0)
    return centers


def _distinct_frequent(colors: torch.Tensor, count: int, separation: float = 0.2) -> torch.Tensor:
    """The first ``count`` of ``colors`` (most frequent first) that lie ``separation`` apart, so that one
    class split over two quantisation bins does not take two centres; topped up in order if too few."""
    chosen: list[int] = []
    for index in range(len(colors)):
        if not chosen or torch.cdist(colors[index][None], colors[chosen]).min() > separation:
            chosen.append(index)
            if len(chosen) == count:
                return colors[chosen].clone()
    rest = [i for i in range(len(colors)) if i not in chosen]
    return colors[chosen + rest[: count - len(chosen)]].clone()


def to_labels(images: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Nearest palette colour per pixel: ``(N, C, H, W)`` -> ``(N, H, W)`` integer labels."""
    pixels = images.permute(0, 2, 3, 1).float()
    distances = torch.cdist(pixels.reshape(-1, pixels.shape[-1]), palette)
    return distances.argmin(1).reshape(pixels.shape[:-1])


def label_accuracy(prediction: torch.Tensor, target: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Per-image fraction of pixels whose nearest palette colour matches the ground truth's: ``(N,)``."""
    return (to_labels(prediction, palette) == to_labels(target, palette)).float().flatten(1).mean(1)
