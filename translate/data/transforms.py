"""pix2pix/CycleGAN preprocessing (junyanz's ``--preprocess`` modes) as albumentations pipelines.

Every pipeline ends in a float tensor ``(C, H, W)`` in ``[-1, 1]``. Paired images go through one call,
``transform(image=a, target=b)``, so they get the same crop and flip. Randomness comes only from the
generators set by ``seed_transform``: the same seed gives the same output in any process.

Modes (``S`` = image_size, ``L`` = load_size, default ``round(S * 286 / 256)``):

- ``resize_and_crop``: resize to ``L x L``, random ``S x S`` crop (eval: center crop).
- ``crop``: random ``S x S`` crop at the original scale, reflect-padded first where smaller (eval: center).
- ``scale_width``: resize the width to ``S`` keeping the aspect ratio, no crop; the height is then
  reflect-padded (bottom) to a multiple of 4. Outputs are not square: batch images of one aspect ratio.
- ``scale_width_and_crop``: resize the width to ``max(L, S)`` keeping the aspect ratio, reflect-pad the
  height up to ``S`` if shorter (junyanz stretches instead), random ``S x S`` crop (eval: center).
- ``center_square``: the centred square of side min(H, W), resized to ``S x S`` (StarGAN's faces: CelebA's
  178 x 218 aligned faces are cropped to 178 x 178, then resized); no random crop.
- ``none``: sizes kept, reflect-padded at the bottom/right to multiples of 4 (the generators' stride),
  so cropping the output to the input size gives back the original frame.

Training adds a horizontal flip with p=0.5 when ``flip``, then colour jitter of strength ``color_jitter``
(see ``DataConfig.color_jitter``) on ``image`` only: a paired ``target`` keeps its colours. Evaluation
(``train=False``) never flips or jitters.

``on_device=True`` (``data.augment_on: device``) builds the training pipeline without its random steps:
only the resizing and padding above, so ``translate.data.device_augment.DeviceAugment`` can crop, flip
and jitter whole batches on the training device with the same meaning.
"""

from __future__ import annotations

import random

import albumentations as A
import cv2
import numpy as np
import torch

from translate.config import PREPROCESS_MODES

RANDOM_CROP_MODES = ("resize_and_crop", "crop", "scale_width_and_crop")
"""Modes whose training images get a random ``image_size`` crop."""
MULTIPLE = 4
"""Sides are padded to multiples of this in the ``scale_width`` and ``none`` modes."""
_RESIZE = {"interpolation": cv2.INTER_CUBIC, "area_for_downscale": "image"}  # area when shrinking
_PAD = {"border_mode": cv2.BORDER_REFLECT_101}


def default_load_size(image_size: int) -> int:
    """pix2pix/CycleGAN load 286 px for 256 px crops: the same ratio at any size."""
    return round(image_size * 286 / 256)


def build_transform(
    preprocess: str,
    image_size: int,
    load_size: int | None = None,
    flip: bool = True,
    train: bool = True,
    color_jitter: float = 0.0,
    on_device: bool = False,
) -> A.Compose:
    """An albumentations pipeline for one preprocess mode: ``t(image=x)`` or ``t(image=a, target=b)``.

    Inputs are ``uint8`` ``(H, W, C)``; outputs ``image`` (and ``target``) are float ``(C, H, W)``
    in ``[-1, 1]``. ``color_jitter`` applies to ``image`` only. ``on_device`` (with ``train``) leaves out
    the random crop, flip and jitter, for ``DeviceAugment`` to do on the batch.
    Seed it per sample with ``seed_transform`` before each call.
    """
    if preprocess not in PREPROCESS_MODES:
        raise ValueError(f"unknown preprocess {preprocess!r}; choose one of {', '.join(PREPROCESS_MODES)}")
    size = image_size
    load = default_load_size(size) if load_size is None else load_size
    deferred = train and on_device
    crop = A.RandomCrop if train else A.CenterCrop
    steps: list[A.BasicTransform]
    if preprocess == "resize_and_crop":
        load = max(load, size)
        steps = [A.Resize(load, load, **_RESIZE)] + ([] if deferred else [crop(size, size)])
    elif preprocess == "crop":
        steps = [_pad_to(size) if deferred else crop(size, size, pad_if_needed=True, **_PAD)]
    elif preprocess == "scale_width":
        steps = [A.SmallestMaxSize(max_size_hw=(None, size), **_RESIZE), _pad_to_multiple()]
    elif preprocess == "scale_width_and_crop":
        steps = [
            A.SmallestMaxSize(max_size_hw=(None, max(load, size)), **_RESIZE),
            _pad_to(size) if deferred else crop(size, size, pad_if_needed=True, **_PAD),
        ]
    elif preprocess == "center_square":
        steps = [_CenterSquare(), A.Resize(size, size, **_RESIZE)]
    else:  # none
        steps = [_pad_to_multiple()]
    if flip and train and not deferred:
        steps.append(A.HorizontalFlip(p=0.5))
    if color_jitter > 0 and train and not deferred:
        s = color_jitter
        steps.append(_InputColorJitter(brightness=s, contrast=s, saturation=s, hue=s / 4, p=1.0))
    steps += [A.Normalize(mean=0.5, std=0.5, max_pixel_value=255.0), A.ToTensorV2()]
    return A.Compose(steps, additional_targets={"target": "image"}, seed=0, strict=True)


class _InputColorJitter(A.ColorJitter):
    """``A.ColorJitter`` on ``image`` only: it declines the Compose's ``target``, which passes unchanged.

    pix2pix targets are another modality (labels, maps, edges), so jittering them would teach the
    generator to produce random colours.
    """

    def add_targets(self, additional_targets: dict[str, str]) -> None:
        return None


def center_square(height: int, width: int) -> tuple[slice, slice]:
    """Row and column slices of the centred square of side min(height, width)."""
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return slice(top, top + side), slice(left, left + side)


class _CenterSquare(A.DualTransform):
    """The centred square of side min(H, W) of every image target."""

    def __init__(self) -> None:
        super().__init__(p=1.0)

    def apply(self, img: np.ndarray, **params: object) -> np.ndarray:
        return img[center_square(*img.shape[:2])]

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()


def _pad_to(size: int) -> A.PadIfNeeded:
    """Reflect-pad (centred) to at least ``size x size``, as ``RandomCrop(pad_if_needed=True)`` does."""
    return A.PadIfNeeded(min_height=size, min_width=size, position="center", **_PAD)


def _pad_to_multiple() -> A.PadIfNeeded:
    return A.PadIfNeeded(
        min_height=None,
        min_width=None,
        pad_height_divisor=MULTIPLE,
        pad_width_divisor=MULTIPLE,
        position="top_left",
        **_PAD,
    )


def seed_transform(transform: A.Compose, seed: int) -> None:
    """Make the next call of ``transform`` a pure function of ``seed``.

    One shared pair of generators for every step, so the draws of the crop and the flip are successive
    numbers of one stream (``Compose.set_random_seed`` would give each step its own generator with the
    same seed, and so correlate the flip with the crop position).
    """
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``uint8`` ``(H, W, C)`` -> float ``(C, H, W)`` in ``[-1, 1]`` (what the pipelines end with)."""
    if image.ndim == 2:
        image = image[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """Float ``(C, H, W)`` in ``[-1, 1]`` -> ``uint8`` ``(H, W, C)``; the inverse of ``to_tensor``."""
    array = ((tensor.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return array.permute(1, 2, 0).numpy()
