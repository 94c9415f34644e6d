"""``translate classifier train DATA --out clf.pt``: a small CNN trained on the user's own labelled images,
the judge and feature extractor of ``translate eval --classifier`` (works offline, on any data).

DATA is read by the toolkit's dataset code: class or domain folders (``images`` dataset: ``cat/ dog/``, with
``test/`` splits found as for training; or CycleGAN's ``trainA/ trainB/``), IDX files with labels (MNIST,
Fashion-MNIST), or an attribute file (``labelled`` dataset: CelebA's ``list_attr_celeba.txt``: one binary
output per attribute, trained with a binary cross-entropy each).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from translate.cli.options import ManyValues, ManyValuesCommand
from translate.errors import DataError

if TYPE_CHECKING:
    import torch

log = logging.getLogger("translate")


@click.group()
def classifier() -> None:
    """A small classifier of your own data, for `translate eval --classifier`."""


@classifier.command("train", cls=ManyValuesCommand)
@click.argument("data", type=click.Path(file_okay=False))
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to save it (e.g. clf.pt).")
@click.option("--steps", default=1500, show_default=True, type=click.IntRange(min=1), help="Batches of 64.")
@click.option("--size", type=click.IntRange(min=16), help="Image side (default: IDX files' own, else 64).")
@click.option("--channels", type=click.Choice(["1", "3"]), help="Default: 1 for IDX files, else 3.")
@click.option("--domains", cls=ManyValues, help="Class folders to use, in this order (default: every one).")
@click.option("--attributes", help="Attribute file: the attributes to learn, comma-separated (default: all).")
@click.option("--max-images", type=click.IntRange(min=1), help="At most this many images per class folder.")
@click.option("--seed", default=0, show_default=True, type=int)
def train(
    data: str,
    out: str,
    steps: int,
    size: int | None,
    channels: str | None,
    domains: tuple[str, ...] | None,
    attributes: str | None,
    max_images: int | None,
    seed: int,
) -> None:
    """Train a classifier on DATA's training images, report its accuracy on the held-out ones, save it."""
    from translate.metrics.domain_classifier import save_classifier, train_domain_classifier

    started = time.time()
    train_set, held_out, meta = load_labelled(
        Path(data), size, channels, list(domains) if domains else None, attributes, max_images, seed
    )
    images, labels = train_set
    attributes_kind = meta["kind"] == "attributes"
    idx = meta["layout"] == "idx"
    click.echo(
        f"training on {len(images)} images of {len(meta['classes'])} {meta['kind']} "
        f"({', '.join(meta['classes'][:12])}{', ...' if len(meta['classes']) > 12 else ''}) at "
        f"{images.shape[-1]} px, {images.shape[1]} channel(s), {steps} steps"
    )
    model = train_domain_classifier(
        images,
        labels if attributes_kind else labels.long(),
        num_domains=len(meta["classes"]),
        steps=steps,
        seed=seed,
        max_shift=0 if idx else 4,
        flip=not idx,
    )
    accuracy, per_class = held_out_accuracy(model, *held_out, attributes_kind)
    meta.update(
        steps=steps,
        seed=seed,
        augmentation="none" if idx else "horizontal flips, shifts of up to 4 px",
        train_images=len(images),
        held_out_images=len(held_out[0]),
        held_out_accuracy=accuracy,
        held_out_accuracy_per_class=dict(zip(meta["classes"], per_class)),
        train_seconds=round(time.time() - started, 1),
    )
    path = save_classifier(out, model, meta)
    click.echo(
        f"held-out accuracy {accuracy:.4f} on {len(held_out[0])} images ({meta['held_out']}): "
        + ", ".join(f"{c} {a:.3f}" for c, a in list(zip(meta["classes"], per_class))[:12])
    )
    click.echo(f"saved to {path} ({meta['train_seconds']:.0f} s)")


def held_out_accuracy(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, attributes: bool
) -> tuple[float, list[float]]:
    """Overall accuracy and per class (domains: recall of each class) or per attribute."""
    from translate.metrics.domain_classifier import predict_attributes, predict_domains

    if attributes:
        correct = (predict_attributes(model, images) == labels).float()
        return correct.mean().item(), correct.mean(0).tolist()
    predicted = predict_domains(model, images)
    correct = (predicted == labels).float()
    classes = int(model.head.out_features)
    per_class = [
        correct[labels == c].mean().item() if (labels == c).any() else float("nan") for c in range(classes)
    ]
    return correct.mean().item(), per_class


def load_labelled(root: Path, size, channels, domains, attributes, max_images, seed):
    """(train images, labels), (held-out images, labels) and the metadata of DATA, read by the dataset
    code with its evaluation transform (resize to ``size`` x ``size``). Without a held-out split (the
    dataset code falls back to the training images), a seeded tenth of the training images is held out."""
    from translate.config import DataConfig

    root, layout = labelled_layout(root, domains)
    idx = layout.kind == "idx"
    if size is None:
        size = _idx_size(layout) if idx else 64
    channels = int(channels) if channels else (1 if idx else 3)
    config = DataConfig(
        root=str(root),
        domains=domains,
        image_size=size,
        load_size=size,
        preprocess="resize_and_crop",
        flip=False,
        in_channels=channels,
        out_channels=channels,
        num_workers=0,
        max_images=max_images,
        attributes=[a.strip() for a in attributes.split(",")] if attributes else None,
    )
    train, held_out, kind, classes = _datasets(layout, config)
    meta = {
        "classes": classes,
        "kind": kind,
        "image_size": [size, size],
        "in_channels": channels,
        "data": str(root),
        "layout": layout.kind,
        "held_out": "the held-out split",
    }
    train_images, train_labels = read_all(train)
    if _same_files(train, held_out):
        meta["held_out"] = "a tenth of the training images: DATA has no held-out split"
        return (*hold_out_a_tenth(root, train_images, train_labels, seed), meta)
    return (train_images, train_labels), read_all(held_out), meta


def labelled_layout(root: Path, domains) -> tuple[Path, Any]:
    """The data root of DATA and its layout; a DataError when it holds no labels a classifier can learn."""
    from translate.data.folders import data_root
    from translate.data.layout import detect_layout

    if not Path(root).is_dir():
        raise DataError(f"{root}: no such folder (give the folder of the labelled images)")
    root = data_root(root)
    layout = detect_layout(root, prefer="domains" if domains else None)
    if layout.kind == "flat" and not domains:
        raise DataError(
            f"{root} holds one folder of unlabelled images: a classifier needs class folders (cat/ dog/), "
            "an attribute file or IDX files with labels"
        )
    if layout.kind == "aligned":
        raise DataError(
            f"{root} holds A|B pairs: a classifier needs class folders, an attribute file or IDX files"
        )
    return root, layout


def hold_out_a_tenth(
    root: Path, images: torch.Tensor, labels: torch.Tensor, seed: int
) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(train images, labels), (held-out images, labels): a seeded tenth of ``images`` held out."""
    import torch

    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    cut = max(1, len(order) // 10)
    if len(order) - cut < 2:
        raise DataError(f"{root} holds too few labelled images to train and test a classifier ({len(order)})")
    test, keep = order[:cut], order[cut:]
    return (images[keep], labels[keep]), (images[test], labels[test])


def _datasets(layout, config):
    """The training and held-out datasets, their label kind and class names."""
    import numpy as np

    from translate.data.folders import domain_folders, image_files, unaligned_expectation
    from translate.data.images import ImagesDataset
    from translate.data.labelled import LabelledDataset

    if layout.kind == "attributes" and not config.domains:
        train = LabelledDataset.from_config(config, train=True)
        return train, LabelledDataset.from_config(config, train=False), "attributes", list(train.space.names)
    if layout.kind == "cyclegan" and not config.domains:  # trainA/ trainB/ (testA/ testB/)
        sets = []
        for split in (True, False):
            folders = domain_folders(Path(config.root), None, split)
            expected = unaligned_expectation(Path(config.root), None)
            files = [image_files(f, expected, ex, config.max_images) for f, ex in folders]
            labels = np.array([0] * len(files[0]) + [1] * len(files[1]))
            options = {**ImagesDataset.options(config, split), "in_channels": config.out_channels}
            sets.append(ImagesDataset(files[0] + files[1], labels, ["A", "B"], **options))
        return sets[0], sets[1], "domains", ["A", "B"]
    train = ImagesDataset.from_config(config, train=True)
    if train.labels is None:
        raise DataError(f"{config.root} holds no labels (class folders, or IDX files with a labels file)")
    return train, ImagesDataset.from_config(config, train=False), "domains", list(train.classes)


def read_all(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Every item of ``dataset`` (evaluation transform): images ``(N, C, S, S)`` and labels."""
    import torch

    chosen = [dataset[i] for i in range(len(dataset))]
    return torch.stack([c["image"] for c in chosen]), torch.stack([c["label"] for c in chosen])


def _same_files(train, held_out) -> bool:
    def files(dataset):
        if hasattr(dataset, "files"):
            return {str(f) for f in dataset.files}
        images = dataset.images
        return {str(images.path)} if hasattr(images, "path") else {str(f) for f in images}

    return bool(files(train) & files(held_out))


def _idx_size(layout) -> int:
    from translate.data.layout import IDX_PATTERN, read_idx_header

    for path in layout.paths.values():
        match = IDX_PATTERN.match(path.name)
        if match and match.group("kind") == "images":
            return int(read_idx_header(path)[1][-1])
    return 28
