"""Sample grids: one row per image, one column per named visual (input, translation, ...)."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import save_image


def save_grid(visuals: dict[str, torch.Tensor], path: Path) -> Path:
    """Save ``{name: (N, C, H, W) in [-1, 1]}`` as an N-row grid; 1-channel images are shown as gray RGB."""
    columns = []
    size = max(v.shape[-2] for v in visuals.values()), max(v.shape[-1] for v in visuals.values())
    for images in visuals.values():
        images = images.detach().float().cpu()
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if images.shape[-2:] != size:
            images = torch.nn.functional.interpolate(images, size=size, mode="nearest")
        columns.append(images)
    grid = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: sample 0's columns, then sample 1's...
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    save_image(grid * 0.5 + 0.5, tmp, nrow=len(columns), padding=2, pad_value=1.0)
    tmp.replace(path)
    return path
