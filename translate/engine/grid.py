"""Image grids: sample grids of training, the sampler's grids and the ``serve`` page's, drawn one way."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid


def grid_image(images: torch.Tensor, columns: int) -> Image.Image:
    """Tile images into one picture with 2-pixel white gaps.

    Args:
        images: ``(N, C, H, W)`` in ``[-1, 1]``, ``C`` 1 or 3.
        columns: images to a row.

    Returns:
        A PIL image: ``L`` for one channel, else ``RGB``.
    """
    grid = make_grid(images.detach().float().cpu() * 0.5 + 0.5, nrow=columns, padding=2, pad_value=1.0)
    array = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if images.shape[1] == 1 else array)


def save_grid(images: torch.Tensor, path: str | Path, columns: int) -> Path:
    """Write ``grid_image(images, columns)`` as a PNG, atomically (a reader never sees half a file).

    Args:
        images: ``(N, C, H, W)`` in ``[-1, 1]``.
        path: the ``.png`` to write; its folder is made.
        columns: images to a row.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    grid_image(images, columns).save(partial, format="PNG")
    partial.replace(path)
    return path


def visuals_grid(visuals: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """A task's visuals as grid rows: one row per sample, one column per named visual (input,
    translation, ...), each resized (nearest) to the largest; one-channel visuals shown as gray RGB.

    Args:
        visuals: ``{name: (N, C, H, W) in [-1, 1]}``.

    Returns:
        ``(images, columns)`` for ``save_grid``: ``(N * len(visuals), 3, H, W)`` row-major.
    """
    size = max(v.shape[-2] for v in visuals.values()), max(v.shape[-1] for v in visuals.values())
    columns = []
    for images in visuals.values():
        images = images.detach().float().cpu()
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if images.shape[-2:] != size:
            images = torch.nn.functional.interpolate(images, size=size, mode="nearest")
        columns.append(images)
    return torch.stack(columns, dim=1).flatten(0, 1), len(columns)
