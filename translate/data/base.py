"""What every image dataset shares: channel counts, seeded train / deterministic eval transforms, and
skipping of unreadable files."""

from __future__ import annotations

from typing import Any

import albumentations as A
from torch.utils.data import Dataset

from translate.config import DataConfig
from translate.data.io import SkippingReader
from translate.data.transforms import build_transform, seed_transform
from translate.errors import ConfigError


class ImageDataset(Dataset):
    """Base of the image datasets. Items are ``(index, sample_seed)`` tuples from ``ResumableSampler``
    (seeded augmentation) or plain ``int`` indices (evaluation: center crop, no augmentation)."""

    def __init__(
        self,
        *,
        image_size: int = 256,
        load_size: int | None = None,
        preprocess: str = "resize_and_crop",
        flip: bool = True,
        in_channels: int = 3,
        out_channels: int = 3,
        train: bool = True,
        color_jitter: float = 0.0,
        augment_on: str = "loader",
    ) -> None:
        for key, value in (("data.in_channels", in_channels), ("data.out_channels", out_channels)):
            if value not in (1, 3):
                raise ConfigError(f"{key} must be 1 (grayscale) or 3 (RGB); got {value!r}")
        if augment_on not in ("loader", "device"):
            raise ConfigError(f"data.augment_on must be loader or device; got {augment_on!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.train = train
        self.augment_on = augment_on
        self.train_transform = build_transform(
            preprocess,
            image_size,
            load_size,
            flip,
            train=True,
            color_jitter=color_jitter,
            on_device=augment_on == "device",
        )
        self.eval_transform = build_transform(preprocess, image_size, load_size, flip, train=False)
        self.reader = SkippingReader()

    @staticmethod
    def options(data: DataConfig, train: bool) -> dict[str, Any]:
        """The constructor options a ``DataConfig`` gives."""
        return {
            "image_size": data.image_size,
            "load_size": data.load_size,
            "preprocess": data.preprocess,
            "flip": data.flip,
            "in_channels": data.in_channels,
            "out_channels": data.out_channels,
            "train": train,
            "color_jitter": data.color_jitter,
            "augment_on": data.augment_on,
        }

    @property
    def skipped(self) -> int:
        """Distinct unreadable files skipped so far (in this process)."""
        return self.reader.skipped

    def transform(self, seed: int | None) -> A.Compose:
        """The training transform seeded with ``seed``, or the deterministic eval transform."""
        if self.train and seed is not None:
            seed_transform(self.train_transform, seed)
            return self.train_transform
        return self.eval_transform

    def task_kwargs(self) -> dict[str, Any]:
        """What the task must be built with to fit this data."""
        return {"in_channels": self.in_channels, "out_channels": self.out_channels}
