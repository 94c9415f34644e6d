"""Conversions between what users hand a Translator and what its network takes.

Images (PIL, or uint8 numpy arrays ``(H, W[, C])``) become float tensors ``(C, H, W)`` in ``[-1, 1]`` with the
model's channels, transparency composited onto white as training reads images; the alpha channel travels
beside the tensor and is put back on the output (``with_alpha``). Tensors given directly are checked
(``check_tensor_images``). ``pad_to_multiple`` pads a batch to the sizes the network needs.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from translate.data.io import pil_to_array, pixel_limit_problem, split_alpha
from translate.errors import DataError

log = logging.getLogger("translate")


class ImageSizeError(DataError):
    """An image the network cannot take: empty, or too small for its layers; ``reason`` says why."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


def image_to_tensor(image: Image.Image | np.ndarray, channels: int) -> tuple[torch.Tensor, np.ndarray | None]:
    """A PIL image or uint8 array as the network's input, and its alpha channel.

    The one conversion of the Python API and the command line (``read_image_and_alpha`` ends in the same
    ``split_alpha``).

    Args:
        image: a PIL image (EXIF orientation applied) or a uint8 array ``(H, W)`` / ``(H, W, C)``, C in 1-4.
        channels: the model's input channels (1 or 3).

    Returns:
        ``(C, H, W)`` float in ``[-1, 1]`` (transparency composited onto white), and the ``(H, W)`` uint8
        alpha channel or None.

    Raises:
        DataError: a non-uint8 array, or one of another shape (with a hint for ``(C, H, W)`` order).
    """
    if isinstance(image, Image.Image):
        array = pil_image_array(image)
    else:
        array = np.asarray(image)
        if array.dtype != np.uint8:
            raise DataError(
                f"numpy images must be uint8 (H, W[, C]) with values 0-255; got {array.dtype} "
                "(from [0, 1] floats: (x * 255).round().astype(np.uint8))"
            )
        if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
            hint = ""
            if array.ndim == 3 and array.shape[0] in (1, 3, 4):
                hint = ": looks like (C, H, W): pass array.transpose(1, 2, 0)"
            raise DataError(f"numpy images are (H, W) or (H, W, C); got shape {array.shape}{hint}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageSizeError(f"an empty image ({array.shape[1]}x{array.shape[0]} px)")
    colour, alpha = split_alpha(array, channels)
    return torch.from_numpy(colour.copy()).permute(2, 0, 1).float() / 127.5 - 1.0, alpha


def pil_image_array(image: Image.Image) -> np.ndarray:
    """A PIL image's pixels, EXIF orientation applied (``pil_to_array``), within the pixel limit
    (``translate.data.io.max_pixels``, checked before a lazily opened image is decoded).

    Raises:
        DataError: above the pixel limit, or a truncated or damaged image (one line).
    """
    name = f" {image.filename}" if getattr(image, "filename", "") else ""
    problem = pixel_limit_problem(*image.size)
    if problem is not None:
        raise DataError(f"the PIL image{name} is too large: {problem}")
    try:
        image.load()
        return pil_to_array(ImageOps.exif_transpose(image))
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError ... on damaged data
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataError(f"cannot read the PIL image{name}: {reason} (truncated or damaged?)") from None


def tensor_to_array(tensor: torch.Tensor) -> np.ndarray:
    """A network output as an image array.

    Args:
        tensor: ``(C, H, W)`` in ``[-1, 1]`` (clamped), on any device.

    Returns:
        ``(H, W, C)`` uint8, or ``(H, W)`` for one channel.
    """
    array = ((tensor.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    return array[:, :, 0] if array.shape[2] == 1 else array


def to_network_inputs(items: list[Any], channels: int) -> list[tuple[torch.Tensor, np.ndarray | None]]:
    """Tensors, PIL images and uint8 arrays as the network's inputs.

    Args:
        items: tensors ``(C, H, W)`` in ``[-1, 1]`` (checked: ``check_tensor_images``), PIL images and
            arrays (``image_to_tensor``).
        channels: the model's input channels.

    Returns:
        ``((C, H, W) in [-1, 1], (H, W) uint8 alpha or None)`` per item.
    """
    inputs = []
    for item in items:
        if isinstance(item, torch.Tensor):
            check_tensor_images(item)
            inputs.append((item, None))
        else:
            inputs.append(image_to_tensor(item, channels))
    return inputs


def like_inputs(
    outputs: list[torch.Tensor], items: list[Any], alphas: list[np.ndarray | None]
) -> list[torch.Tensor | Image.Image | np.ndarray]:
    """Network outputs ``(C, H, W)`` in ``[-1, 1]`` as the kind each input ``items`` was: tensors as they
    are, PIL images and uint8 arrays with the input's alpha channel (``alphas``) put back."""
    results: list[torch.Tensor | Image.Image | np.ndarray] = []
    for output, item, alpha in zip(outputs, items, alphas):
        if isinstance(item, torch.Tensor):
            results.append(output)
            continue
        array = with_alpha(tensor_to_array(output), alpha)
        results.append(Image.fromarray(array) if isinstance(item, Image.Image) else array)
    return results


def with_alpha(array: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """A translated image with the input's alpha channel put back.

    Args:
        array: ``(H, W[, C])`` uint8.
        alpha: ``(H, W)`` uint8, or None (the image is returned unchanged).

    Returns:
        ``(H, W, C + 1)`` uint8 (``array`` itself without alpha).
    """
    if alpha is None:
        return array
    return np.dstack([array, alpha])


def check_tensor_images(images: torch.Tensor) -> None:
    """Check that tensors given to a Translator are float images in ``[-1, 1]``.

    Args:
        images: any shape, e.g. ``(N, C, H, W)``.

    Raises:
        DataError: a one-line error for integer tensors, NaN values or values outside ``[-1, 1]``; values that
        all lie in ``[0, 1]`` (probably not rescaled) only log a warning.
    """
    if not images.is_floating_point():
        raise DataError(
            f"image tensors must be float in [-1, 1]; got {images.dtype} (from uint8: x.float() / 127.5 - 1)"
        )
    nan = int(torch.isnan(images).sum()) if images.numel() else 0
    if nan:
        raise DataError(
            f"image tensors must lie in [-1, 1]; got {nan} NaN value{'s' if nan > 1 else ''} of "
            f"{images.numel()}"
        )
    if images.numel() and (images.min() < -1.001 or images.max() > 1.001):
        low, high = images.min().item(), images.max().item()
        raise DataError(f"image tensors must lie in [-1, 1]; got values from {low:.3g} to {high:.3g}")
    if images.numel() > 1 and images.min() >= 0:
        log.warning("all tensor values are in [0, 1]: the model expects [-1, 1] (x * 2 - 1)")


def pad_to_multiple(images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad a batch bottom and right to sizes the network takes; reflect if it can, else replicate.

    Args:
        images: ``(N, C, H, W)``.
        multiple: the network's size multiple (``generator.size_multiple``).

    Returns:
        ``(N, C, H', W')`` with ``H'``, ``W'`` the next multiples of ``multiple`` (``images`` itself when
        they already are).
    """
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return images
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(images, (0, pad_w, 0, pad_h), mode=mode)
