"""CycleGAN's unaligned dataset: two domain folders, images drawn independently (unpaired)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from translate.config import DataConfig
from translate.data.aligned import check_channels
from translate.data.folders import data_root, domain_folders, image_files, unaligned_expectation
from translate.data.io import SkippingReader, read_image
from translate.data.sampler import Item, split_item
from translate.data.transforms import build_transform, seed_transform
from translate.errors import ConfigError
from translate.registry import DATASETS


class UnalignedDataset(Dataset):
    """Unpaired images of two domains: ``{"A": (C_in, H, W), "B": (C_out, H, W), "path_A", "path_B"}``.

    The A image is ``files_a[index % len(A)]``; the B image is drawn at random, as in CycleGAN, from a
    generator seeded with the sample seed, and A and B are augmented (crop, flip, ``color_jitter``)
    independently. A plain ``int`` item (evaluation) takes ``files_b[index % len(B)]`` without
    augmentation (center crop), so identically named, sorted test folders give matching pairs.
    With ``augment_on="device"``, training items are only resized: ``DeviceAugment`` does the rest
    on the batch. Length: ``max(len(A), len(B))``.
    """

    def __init__(
        self,
        files_a: list[Path],
        files_b: list[Path],
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
        check_channels(in_channels, out_channels)
        self.files_a = list(files_a)
        self.files_b = list(files_b)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.train = train
        if augment_on not in ("loader", "device"):
            raise ConfigError(f"data.augment_on must be loader or device; got {augment_on!r}")
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

    @classmethod
    def from_config(cls, data: DataConfig, train: bool = True) -> UnalignedDataset:
        root = data_root(data.root)
        expected = unaligned_expectation(root, data.domains)
        (folder_a, exclude_a), (folder_b, exclude_b) = domain_folders(root, data.domains, train)
        files_a = image_files(folder_a, expected, exclude_a, data.max_images)
        files_b = image_files(folder_b, expected, exclude_b, data.max_images)
        return cls(
            files_a,
            files_b,
            image_size=data.image_size,
            load_size=data.load_size,
            preprocess=data.preprocess,
            flip=data.flip,
            in_channels=data.in_channels,
            out_channels=data.out_channels,
            train=train,
            color_jitter=data.color_jitter,
            augment_on=data.augment_on,
        )

    @property
    def skipped(self) -> int:
        """Distinct unreadable files skipped so far (in this process)."""
        return self.reader.skipped

    def task_kwargs(self) -> dict[str, Any]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels}

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def __getitem__(self, item: int | Item) -> dict[str, Any]:
        index, seed = split_item(item)
        a, path_a = self.reader.load(
            self.files_a, index % len(self.files_a), lambda p: read_image(p, self.in_channels)
        )
        if seed is None:
            index_b, seeds = index % len(self.files_b), None
        else:
            rng = np.random.default_rng(seed)
            index_b = int(rng.integers(len(self.files_b)))
            seeds = [int(s) for s in rng.integers(0, 2**63 - 1, size=2)]
        b, path_b = self.reader.load(self.files_b, index_b, lambda p: read_image(p, self.out_channels))
        if self.train and seeds is not None:
            transform = self.train_transform
            seed_transform(transform, seeds[0])
            tensor_a = transform(image=a)["image"]
            seed_transform(transform, seeds[1])
            tensor_b = transform(image=b)["image"]
        else:
            tensor_a = self.eval_transform(image=a)["image"]
            tensor_b = self.eval_transform(image=b)["image"]
        return {"A": tensor_a, "B": tensor_b, "path_A": str(path_a), "path_B": str(path_b)}


@DATASETS.register("unaligned")
def unaligned(data: DataConfig, train: bool = True) -> UnalignedDataset:
    """CycleGAN: unpaired images in two domain folders (--domains a b, or trainA/trainB)."""
    return UnalignedDataset.from_config(data, train)
