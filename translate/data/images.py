"""Single images for unconditional and class-conditional GANs, with a class label when the data has one.

Sources, found by layout detection under ``data.root`` (``data.domains`` names class folders instead):

- **IDX files** (MNIST, Fashion-MNIST): training reads ``train-images-idx3-ubyte[.gz]``, evaluation
  ``t10k-...`` or ``test-...`` (else the training file, with a warning). The matching ``...-labels-idx1-...``
  file, when present, gives the labels: classes ``"0"`` up to the largest label in the labels files, the same
  for both splits. The whole array is read into memory once; DataLoader workers inherit it (fork) or read
  the file once each (spawn), never per item.
- **A flat folder** of images (unlabelled): training reads ``train/`` when present, else the folder
  without its ``test/`` and ``val/``; evaluation reads ``test/`` or ``val/``, else the training images
  (with a warning).
- **Class folders** (two or more, or ``data.domains``): the label is the index of the folder in the sorted
  folder names (in ``data.domains`` when given); each class's training and held-out folders are found as
  for CycleGAN's domains (``translate.data.folders.domain_folder``).

Images are read with ``data.out_channels`` channels (1: grayscale end to end; gray IDX images asked for 3
are replicated). ``data.max_images`` caps the images per class folder, or in total for the other sources.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from translate.config import DataConfig
from translate.data.base import ImageDataset
from translate.data.folders import aligned_folder, data_root, image_files
from translate.data.io import read_image
from translate.data.labelled import domain_labels
from translate.data.layout import IDX_PATTERN, Layout, detect_layout, idx_split, read_idx
from translate.data.sampler import Item, split_item
from translate.errors import DataError
from translate.registry import DATASETS

log = logging.getLogger("translate")

SOURCES = ("idx", "flat", "domains")
"""The layouts this dataset reads."""


class IdxImages:
    """The first ``limit`` (all when None) ``(H, W)`` ``uint8`` images of one IDX file, held in memory.

    Pickling (DataLoader workers started with spawn) leaves the array out: the copy reads the file again,
    once, on its first item. Forked workers share the parent's array.
    """

    def __init__(self, path: Path, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise DataError(f"data.max_images must be a positive number or null, got {limit}")
        self.path = path
        self.limit = limit
        self._array: np.ndarray | None = self._read()  # now: a bad file is an error before training starts

    def _read(self) -> np.ndarray:
        array = read_idx(self.path)
        if array.ndim != 3 or array.dtype != np.uint8:
            raise DataError(
                f"{self.path}: expected uint8 images (count x height x width), "
                f"found {array.dtype} {'x'.join(map(str, array.shape))}"
            )
        return array

    @property
    def array(self) -> np.ndarray:
        """Every image of the file, ``(N, H, W)``."""
        if self._array is None:
            self._array = self._read()
        return self._array

    def __len__(self) -> int:
        return min(len(self.array), self.limit or len(self.array))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None}

    def image(self, index: int, channels: int) -> np.ndarray:
        """Image ``index`` as ``uint8`` ``(H, W, channels)``."""
        if not 0 <= index < len(self):
            raise IndexError(f"image {index} of {len(self)} in {self.path}")
        return np.repeat(self.array[index][:, :, None], channels, axis=2)

    def name(self, index: int) -> str:
        return f"{self.path}#{index}"


class ImagesDataset(ImageDataset):
    """``{"image": (C, H, W) in [-1, 1], "path": str}``, plus ``"label"`` (a ``long`` scalar, the class
    index) when the source is labelled. IDX paths read ``"<file>#<index>"``."""

    def __init__(
        self,
        images: list[Path] | IdxImages,
        labels: np.ndarray | None = None,
        classes: list[str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        if len(images) == 0:
            raise DataError("an image dataset needs at least one image")
        if labels is not None and len(labels) != len(images):
            raise DataError(f"{len(labels)} labels for {len(images)} images")
        self.images = images if isinstance(images, IdxImages) else list(images)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.classes = list(classes or [])
        self.image_size = options.get("image_size", 256)
        self.row = {} if isinstance(images, IdxImages) else {path: i for i, path in enumerate(self.images)}

    @classmethod
    def from_config(cls, data: DataConfig, train: bool = True) -> ImagesDataset:
        root = data_root(data.root)
        options = {**cls.options(data, train), "in_channels": data.out_channels}
        if data.domains:
            return cls(*class_folders(root, data.domains, train, data.max_images), **options)
        layout = source_layout(root)
        if layout.kind == "idx":
            images, labels, classes = idx_source(layout, train, data.max_images)
            check_idx_size(images, data)
            return cls(images, labels, classes, **options)
        if layout.kind == "domains":
            return cls(*class_folders(root, layout.domains, train, data.max_images), **options)
        return cls(flat_files(layout, train, data.max_images), **options)

    def task_kwargs(self) -> dict[str, Any]:
        return {**super().task_kwargs(), "image_size": self.image_size, "classes": list(self.classes)}

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item: int | Item) -> dict[str, Any]:
        index, seed = split_item(item)
        if isinstance(self.images, IdxImages):
            image, path, row = self.images.image(index, self.out_channels), self.images.name(index), index
        else:
            image, file = self.reader.load(self.images, index, lambda p: read_image(p, self.out_channels))
            path, row = str(file), self.row[file]
        sample = {"image": self.transform(seed)(image=image)["image"], "path": path}
        if self.labels is not None:
            sample["label"] = torch.tensor(self.labels[row], dtype=torch.long)
        return sample


def source_layout(root: Path) -> Layout:
    """The layout of ``root`` as one of ``SOURCES`` (a flat folder of 2:1 images is aligned-looking)."""
    layout = detect_layout(root)
    if layout.kind in SOURCES:
        return layout
    usable = [kind for kind in layout.alternatives if kind in SOURCES]
    if usable:
        return detect_layout(root, prefer=usable[0])
    raise DataError(
        f"{root} holds {layout.description}: GANs read IDX files (MNIST format), a flat folder of images, "
        "or one folder of images per class (--domains a b c)"
    )


def idx_source(
    layout: Layout, train: bool, max_images: int | None
) -> tuple[IdxImages, np.ndarray | None, list[str]]:
    """The images file of the split, the labels of its matching labels file (None when absent) and the
    class names: ``"0"`` to the largest label of any labels file beside it, so both splits agree."""
    path = _idx_images_file(layout, "train" if train else "test")
    if path is None and not train:
        path = _idx_images_file(layout, "train")
        if path is not None:
            log.warning(
                "no t10k-/test- IDX images in %s: evaluating on the training images %s", layout.root, path
            )
    if path is None:
        raise DataError(
            f"no {'train' if train else 'test'} images file (train-images-idx3-ubyte[.gz]) in {layout.root}; "
            f"found: {' '.join(layout.paths)}"
        )
    images = IdxImages(path, max_images)
    label_files = {
        m.group("split"): p
        for p in reversed(layout.paths.values())  # the first of a plain and a gzipped file wins
        if p.parent == path.parent and (m := IDX_PATTERN.match(p.name)) and m.group("kind") == "labels"
    }
    prefix = IDX_PATTERN.match(path.name).group("split")
    if prefix not in label_files:
        return images, None, []
    labels = read_idx_labels(label_files[prefix])
    if len(labels) != len(images.array):
        raise DataError(
            f"{label_files[prefix]} holds {len(labels)} labels for the {len(images.array)} images of "
            f"{path.name}"
        )
    largest = max(int(read_idx_labels(f).max(initial=0)) for f in label_files.values())
    return images, labels[: len(images)], [str(c) for c in range(largest + 1)]


def read_idx_labels(path: Path) -> np.ndarray:
    """The class numbers of an IDX labels file, as ``int64``."""
    labels = read_idx(path)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(
            f"{path}: expected one integer label per image, found {labels.dtype} "
            f"{'x'.join(map(str, labels.shape))}"
        )
    if len(labels) and labels.min() < 0:
        raise DataError(f"{path}: labels must be class numbers 0, 1, 2...; found {labels.min()}")
    return labels.astype(np.int64)


def _idx_images_file(layout: Layout, split: str) -> Path | None:
    """The first images file of ``split`` in an IDX layout (plain before gzipped, root before raw/)."""
    for name, path in layout.paths.items():
        if IDX_PATTERN.match(path.name).group("kind") == "images" and idx_split(name) == split:
            return path
    return None


def check_idx_size(images: IdxImages, data: DataConfig) -> None:
    """``preprocess: none`` keeps the images' size: it must then be ``data.image_size``."""
    height, width = images.array.shape[1:]
    if data.preprocess == "none" and (height, width) != (data.image_size, data.image_size):
        raise DataError(
            f"{images.path} holds {height}x{width} images, and data.preprocess none keeps that size, but "
            f"data.image_size is {data.image_size}: set data.image_size {height}, or resize with "
            f"data.preprocess resize_and_crop and data.load_size {data.image_size}"
        )


def class_folders(
    root: Path, classes: list[str], train: bool, max_images: int | None
) -> tuple[list[Path], np.ndarray, list[str]]:
    """Every image of each class folder, its class index and the class names."""
    if len(classes) < 2:
        raise DataError(
            f"class-conditional data needs two or more class folders; got --domains {' '.join(classes)} "
            "(for unconditional training on one folder, give it as --data-root)"
        )
    files, one_hot, space = domain_labels(root, classes, train, max_images)
    return files, one_hot.argmax(axis=1), list(space.names)


def flat_files(layout: Layout, train: bool, max_images: int | None) -> list[Path]:
    """The images of a flat layout: its ``train/`` (or its whole folder) or its held-out ``test/``."""
    folder = layout.root if layout.splits or "." in layout.paths else next(iter(layout.paths.values()))
    chosen, exclude = aligned_folder(folder, train)
    expected = f"expected images directly in {folder}, or in {folder}/train/ and {folder}/test/"
    return image_files(chosen, expected, exclude, max_images)


@DATASETS.register("images")
def images(data: DataConfig, train: bool = True) -> ImagesDataset:
    """GANs: single images (IDX files, a flat folder, or class folders --domains a b c), with a class label
    when the data has one."""
    return ImagesDataset.from_config(data, train)
