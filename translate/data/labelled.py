"""StarGAN's labelled dataset: images with a label vector each, from a CelebA-style attribute file or from
one folder per domain.

- **Attribute file** (``list_attr_celeba.txt`` next to ``images/``, found by layout detection):
  ``data.attributes`` picks the attributes (default: all), ``data.exclusive`` names the mutually exclusive
  groups (hair colours). Values 1 / -1 become 1 / 0. The last ``data.test_images`` listed images are held
  out for evaluation (default: 2000, StarGAN's split, or a tenth of the file when that is fewer). Listed
  files that are not in the image folder are left out with a warning.
- **Domain folders** (``data.domains``: ``neutral happy angry ...``, two or more): one-of-N labels; each
  domain's training and held-out folders are found as for CycleGAN (``translate.data.folders``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from translate.config import DataConfig
from translate.data.attributes import read_attribute_file
from translate.data.base import ImageDataset
from translate.data.folders import data_root, domain_folder, image_files
from translate.data.io import read_image
from translate.data.layout import detect_layout
from translate.data.sampler import Item, split_item
from translate.errors import DataError
from translate.labels import LabelSpace, did_you_mean
from translate.registry import DATASETS

log = logging.getLogger("translate")


class LabelledDataset(ImageDataset):
    """``{"image": (C, H, W), "label": (num_labels,) float 0/1, "path": str}`` for each image."""

    def __init__(self, files: list[Path], labels: np.ndarray, space: LabelSpace, **options: Any) -> None:
        super().__init__(**options)
        if len(files) != len(labels) or not files:
            raise DataError("a labelled dataset needs one label row per image, and at least one image")
        self.files = list(files)
        self.labels = torch.as_tensor(labels, dtype=torch.float32)
        self.row = {path: i for i, path in enumerate(self.files)}
        self.space = space
        self.image_size = options.get("image_size", 256)

    @classmethod
    def from_config(cls, data: DataConfig, train: bool = True) -> LabelledDataset:
        root = data_root(data.root)
        if data.domains:
            files, labels, space = domain_labels(root, data.domains, train, data.max_images)
        else:
            layout = detect_layout(root, prefer="attributes")
            if layout.kind != "attributes":
                raise DataError(
                    f"{root} holds {layout.description}: StarGAN needs an attribute file next to an image "
                    "folder (CelebA's list_attr_celeba.txt), or domain folders named with --domains a b c"
                )
            attr_file = next(p for p in layout.paths.values() if p.is_file())
            images = next(p for p in layout.paths.values() if p.is_dir())
            files, labels, space = attribute_labels(attr_file, images, data, train)
        return cls(files, labels, space, **cls.options(data, train))

    def task_kwargs(self) -> dict[str, Any]:
        return {**super().task_kwargs(), "labels": self.space.to_dict(), "image_size": self.image_size}

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, item: int | Item) -> dict[str, Any]:
        index, seed = split_item(item)
        image, path = self.reader.load(self.files, index, lambda p: read_image(p, self.in_channels))
        tensor = self.transform(seed)(image=image)["image"]
        return {"image": tensor, "label": self.labels[self.row[path]], "path": str(path)}


def attribute_labels(
    attr_file: Path, images: Path, data: DataConfig, train: bool
) -> tuple[list[Path], np.ndarray, LabelSpace]:
    """The images of one split with the chosen attributes of ``attr_file`` as 0/1 labels.

    Args:
        attr_file: a CelebA-style attribute file (``translate.data.attributes``).
        images: the folder its file names are relative to.
        data: ``attributes`` (default: all), ``exclusive`` groups, ``test_images`` held out at the end,
            ``max_images``.
        train: the training images (else the held-out ones).

    Returns:
        ``(files, labels (N, num_attributes) float32 0/1, label space)``; listed files missing from
        ``images`` are left out with a warning.

    Raises:
        DataError: a malformed line, an unknown attribute, no training images, or none of the files there.
    """
    table = read_attribute_file(attr_file)
    rows = [issue for issue in table.issues if issue[0] > 2]
    if rows:
        number, what = rows[0]
        more = f" (and {len(rows) - 1} more bad lines)" if len(rows) > 1 else ""
        raise DataError(f"{attr_file}, line {number}: {what}{more}")
    names = list(data.attributes) if data.attributes else list(table.names)
    for name in names:
        if name not in table.names:
            raise DataError(
                f"attribute {name!r} is not in {attr_file}{did_you_mean(name, table.names)}; "
                f"it has: {' '.join(table.names)}"
            )
    columns = [table.names.index(n) for n in names]
    values = (np.asarray(table.values, dtype=np.int64)[:, columns] > 0).astype(np.float32)
    held_out = data.test_images if data.test_images is not None else min(2000, len(table.files) // 10)
    if not 0 <= held_out < len(table.files):
        raise DataError(f"data.test_images {held_out} leaves no training images in {attr_file}")
    split = slice(0, len(table.files) - held_out) if train else slice(len(table.files) - held_out, None)
    files = [images / name for name in table.files[split]]
    present = np.array([f.is_file() for f in files], dtype=bool)
    if not present.any():
        raise DataError(f"none of the images {attr_file.name} lists are in {images} (e.g. {files[0].name})")
    if not present.all():
        log.warning("%d images listed in %s are not in %s: left out", (~present).sum(), attr_file, images)
    files = [f for f, ok in zip(files, present) if ok]
    values = values[split][present]
    if data.max_images is not None:
        files, values = files[: data.max_images], values[: data.max_images]
    return files, values, LabelSpace.with_groups(names, data.exclusive)


def domain_labels(
    root: Path, domains: list[str], train: bool, max_images: int | None
) -> tuple[list[Path], np.ndarray, LabelSpace]:
    """Every image of each domain folder, with one-of-N labels.

    Args:
        root: the data root.
        domains: two or more domain folders under it (sub-paths allowed).
        train: the training folders (else the held-out ones, found as for CycleGAN).
        max_images: at most this many images per domain.

    Returns:
        ``(files, labels (N, len(domains)) float32 one-hot, label space named by the domains)``.
    """
    if len(domains) < 2:
        raise DataError(f"StarGAN translates between two or more domains; got --domains {' '.join(domains)}")
    files: list[Path] = []
    rows: list[int] = []
    for index, domain in enumerate(domains):
        folder, exclude = domain_folder(root, domain, train)
        found = image_files(
            folder,
            f"expected one folder per domain under {root}: --domains {' '.join(domains)}",
            exclude,
            max_images,
        )
        files += found
        rows += [index] * len(found)
    labels = np.eye(len(domains), dtype=np.float32)[rows]
    return files, labels, LabelSpace([Path(d).parts[0] for d in domains], "domains")


@DATASETS.register("labelled")
def labelled(data: DataConfig, train: bool = True) -> LabelledDataset:
    """StarGAN: images with labels: a CelebA-style attribute file, or N domain folders (--domains a b c)."""
    return LabelledDataset.from_config(data, train)
