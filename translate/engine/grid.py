"""Image grids: sample grids of training, the sampler's grids and the ``serve`` page's, drawn one way."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

GAP = 2
"""White pixels between images and around the grid."""
HEADER = 14
"""Height of the row of column labels, in px."""


def grid_image(images: torch.Tensor, columns: int, labels: Sequence[str] | None = None) -> Image.Image:
    """Tile images into one picture with 2-pixel white gaps, under a row of column labels if given.

    Args:
        images: ``(N, C, H, W)`` in ``[-1, 1]``, ``C`` 1 or 3.
        columns: images to a row.
        labels: one name per column (``real_A``, ``fake_B`` ...), drawn above it (shortened with ``…`` to
            fit); None: no label row.

    Returns:
        A PIL image: ``L`` for one channel, else ``RGB``; ``HEADER`` px taller with labels.
    """
    grid = make_grid(images.detach().float().cpu() * 0.5 + 0.5, nrow=columns, padding=GAP, pad_value=1.0)
    array = grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[:, :, 0] if images.shape[1] == 1 else array)
    if not labels:
        return picture
    if len(labels) != columns:
        raise ValueError(f"{len(labels)} labels for {columns} columns")
    return _with_header(picture, labels, images.shape[-1] + GAP)


def _with_header(picture: Image.Image, labels: Sequence[str], pitch: int) -> Image.Image:
    """``picture`` under a white strip naming each column (``pitch`` px apart), centred, in black."""
    labelled = Image.new(picture.mode, (picture.width, picture.height + HEADER), "white")
    labelled.paste(picture, (0, HEADER))
    draw = ImageDraw.Draw(labelled)
    font = ImageFont.load_default()
    for index, label in enumerate(labels):
        text = _fitted(draw, font, label, pitch - GAP)
        left = GAP + index * pitch + (pitch - GAP - draw.textlength(text, font=font)) / 2
        draw.text((left, GAP), text, fill="black", font=font)
    return labelled


def _fitted(draw: ImageDraw.ImageDraw, font: ImageFont.ImageFont, text: str, width: int) -> str:
    """``text``, shortened with ``…`` until it is at most ``width`` px wide (or one letter)."""
    if draw.textlength(text, font=font) <= width:
        return text
    while len(text) > 1 and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def save_grid(
    images: torch.Tensor, path: str | Path, columns: int, labels: Sequence[str] | None = None
) -> Path:
    """Write ``grid_image(images, columns, labels)`` as a PNG, atomically (a reader never sees half a file).

    Args:
        images: ``(N, C, H, W)`` in ``[-1, 1]``.
        path: the ``.png`` to write; its folder is made.
        columns: images to a row.
        labels: the columns' names (see ``grid_image``), or None.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    grid_image(images, columns, labels).save(partial, format="PNG")
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
