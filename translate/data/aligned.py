"""pix2pix's aligned dataset: each file holds a pair side by side, A on the left, B on the right."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from translate.config import DataConfig
from translate.data.base import ImageDataset
from translate.data.folders import aligned_expectation, aligned_folder, data_root, image_files
from translate.data.io import UnreadableImageError, read_image
from translate.data.sampler import Item, split_item
from translate.errors import ConfigError
from translate.registry import DATASETS

log = logging.getLogger("translate")


class AlignedDataset(ImageDataset):
    """A|B pairs from one folder: ``{"input": (C_in, H, W), "target": (C_out, H, W), "path": str}``.

    Images are in ``[-1, 1]``. ``direction="a2b"`` makes the left half the input, ``"b2a"`` the right
    half (facades labels->photo).
    Items are ``(index, sample_seed)`` from ``ResumableSampler`` (random crop/flip seeded by
    ``sample_seed``, the same for both halves; ``color_jitter`` on the input only, never the target)
    or a plain ``int`` (deterministic center crop, no augmentation). With ``augment_on="device"``,
    training items are only resized (``load_size`` images): ``DeviceAugment`` crops, flips and jitters
    the batch on the training device.
    Unreadable files are skipped (logged once, counted in ``skipped``) in favour of the next one.
    """

    def __init__(self, files: list[Path], direction: str = "a2b", **options: Any) -> None:
        super().__init__(**options)
        if direction not in ("a2b", "b2a"):
            raise ConfigError(f"data.direction must be a2b or b2a; got {direction!r}")
        self.files = list(files)
        self.direction = direction

    @classmethod
    def from_config(cls, data: DataConfig, train: bool = True) -> AlignedDataset:
        root = data_root(data.root)
        if data.domains:
            log.warning("data.domains %s is ignored: the aligned dataset reads A|B pairs", data.domains)
        folder, exclude = aligned_folder(root, train)
        files = image_files(folder, aligned_expectation(root), exclude, data.max_images)
        return cls(files, direction=data.direction, **cls.options(data, train))

    def task_kwargs(self) -> dict[str, Any]:
        return {**super().task_kwargs(), "direction": self.direction}

    def __len__(self) -> int:
        return len(self.files)

    def _read_pair(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(input, target) halves of one A|B file, with the input/output channel counts."""
        image = read_image(path, channels=3)
        half = image.shape[1] // 2
        if half < 1:
            raise UnreadableImageError(path, f"{image.shape[1]} px wide: too narrow to split into A|B")
        a, b = image[:, :half], image[:, half : 2 * half]
        if self.direction == "b2a":
            a, b = b, a
        return _channels(a, self.in_channels), _channels(b, self.out_channels)

    def __getitem__(self, item: int | Item) -> dict[str, Any]:
        index, seed = split_item(item)
        (source, target), path = self.reader.load(self.files, index, self._read_pair)
        out = self.transform(seed)(image=source, target=target)
        return {"input": out["image"], "target": out["target"], "path": str(path)}


def _channels(image: np.ndarray, channels: int) -> np.ndarray:
    if channels == 1:
        return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)[:, :, None]
    return np.ascontiguousarray(image)


@DATASETS.register("aligned")
def aligned(data: DataConfig, train: bool = True) -> AlignedDataset:
    """pix2pix pairs: A|B images side by side in root/train (root/test for evaluation)."""
    return AlignedDataset.from_config(data, train)
