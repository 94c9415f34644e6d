"""CycleGAN's unaligned dataset: two domain folders, images drawn independently (unpaired)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from translate.config import DataConfig
from translate.data.base import ImageDataset
from translate.data.folders import data_root, domain_folders, image_files, unaligned_expectation
from translate.data.io import read_image
from translate.data.sampler import Item, split_item
from translate.registry import DATASETS


class UnalignedDataset(ImageDataset):
    """Unpaired images of two domains: ``{"A": (C_in, H, W), "B": (C_out, H, W), "path_A", "path_B"}``.

    The A image is ``files_a[index % len(A)]``; the B image is drawn at random, as in CycleGAN, from a
    generator seeded with the sample seed, and A and B are augmented (crop, flip, ``color_jitter``)
    independently. A plain ``int`` item (evaluation) takes ``files_b[index % len(B)]`` without
    augmentation (center crop), so identically named, sorted test folders give matching pairs.
    With ``augment_on="device"``, training items are only resized: ``DeviceAugment`` does the rest
    on the batch. Length: ``max(len(A), len(B))``.
    """

    def __init__(
        self, files_a: list[Path], files_b: list[Path], domains: list[str] | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self.files_a = list(files_a)
        self.files_b = list(files_b)
        self.domains = list(domains or ["A", "B"])

    @classmethod
    def from_config(cls, data: DataConfig, train: bool = True) -> UnalignedDataset:
        root = data_root(data.root)
        expected = unaligned_expectation(root, data.domains)
        (folder_a, exclude_a), (folder_b, exclude_b) = domain_folders(root, data.domains, train)
        files_a = image_files(folder_a, expected, exclude_a, data.max_images)
        files_b = image_files(folder_b, expected, exclude_b, data.max_images)
        return cls(files_a, files_b, data.domains, **cls.options(data, train))

    def task_kwargs(self) -> dict[str, Any]:
        return {**super().task_kwargs(), "domains": self.domains}

    @property
    def same_names(self) -> bool:
        """Both domains hold the same file names in the same order: item ``i`` (evaluation) is then a pair,
        the B image the ground truth of the A image (paired test folders)."""
        names = [p.name for p in self.files_a]
        return bool(names) and names == [p.name for p in self.files_b]

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
        seed_a, seed_b = seeds or (None, None)
        tensor_a = self.transform(seed_a)(image=a)["image"]
        tensor_b = self.transform(seed_b)(image=b)["image"]
        return {"A": tensor_a, "B": tensor_b, "path_A": str(path_a), "path_B": str(path_b)}


@DATASETS.register("unaligned")
def unaligned(data: DataConfig, train: bool = True) -> UnalignedDataset:
    """CycleGAN: unpaired images in two domain folders (--domains a b, or trainA/trainB)."""
    return UnalignedDataset.from_config(data, train)
