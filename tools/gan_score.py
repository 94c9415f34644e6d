"""GAN score of noise -> image models: generated images read by a classifier trained on the real data.

Trains a small classifier (``translate.metrics.domain_classifier``) on the real training images of an IDX
data set (Fashion-MNIST, MNIST: the four ``*-idx?-ubyte[.gz]`` files) the first time, saves it to
``--classifier`` and reuses it afterwards; reports its accuracy on the real test images. Then, for each run,
draws ``--n`` samples (class-conditional models: equal shares of every class) and reports:

- ``FD``: the Frechet distance between the classifier's pooled features of the samples and of the real
  test images (the FID formula in this classifier's feature space: compare only within this table);
- ``entropy``, ``covered``, ``max share``: how evenly the classes the classifier reads cover the classes
  (1.0 / all / ``1 / classes`` when even; mode collapse lowers the first two and raises the last);
- ``asked``: class-conditional models only, the share read as the class that was requested.

Reference rows scored the same way: ``real train`` (``--n`` real training images: the floor of FD and what
even coverage looks like; ``asked`` there is the classifier's accuracy on them), ``one real class`` (real
training images of class 0 only: total mode collapse with perfect images), ``mean image`` (the mean
training image, repeated) and ``noise`` (uniform noise in [-1, 1]).

Samples that are not the classifier's size or channels are converted (mean of the channels, bilinear
resize with antialiasing) and the table says so.

    python tools/gan_score.py --run runs/cgan --run runs/dcgan --data ../shared/datasets/fashion-mnist \
        --classifier runs/fmnist_classifier.pt [--n 5000] [--json scores.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from translate.data.layout import read_idx
from translate.metrics.domain_classifier import DomainClassifier, train_domain_classifier
from translate.metrics.generative import (
    feature_statistics,
    features_and_predictions,
    generative_scores,
)

SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}


def find_idx(root: Path, split: str, kind: str) -> Path:
    """The ``split`` (train or test) ``kind`` (images or labels) IDX file in ``root``."""
    for prefix in SPLIT_PREFIXES[split]:
        for ndim in (3, 1):
            for suffix in (".gz", ""):
                path = root / f"{prefix}-{kind}-idx{ndim}-ubyte{suffix}"
                if path.is_file():
                    return path
    raise SystemExit(f"no {split} {kind} IDX file in {root} (expected e.g. train-images-idx3-ubyte.gz)")


def load_split(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 1, H, W)`` in [-1, 1] and integer labels ``(N,)``."""
    images = read_idx(find_idx(root, split, "images"))
    labels = read_idx(find_idx(root, split, "labels"))
    images = torch.from_numpy(images.astype(np.float32)).unsqueeze(1) / 127.5 - 1.0
    return images, torch.from_numpy(labels.astype(np.int64))


def accuracy(classifier: DomainClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    _, predicted = features_and_predictions(classifier, images)
    return (predicted == labels).float().mean().item()


def get_classifier(path: Path, data: Path, train, test, steps: int) -> tuple[DomainClassifier, dict]:
    """Load the classifier saved at ``path``, or train it on ``train`` and save it there."""
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        meta = saved["meta"]
        classifier = DomainClassifier(meta["in_channels"], meta["num_classes"], meta["base_channels"])
        classifier.load_state_dict(saved["state_dict"])
        print(f"classifier: loaded {path} (trained on {meta['data']}, {meta['steps']} steps)")
        return classifier.eval(), meta
    images, labels = train
    num_classes = int(labels.max()) + 1
    start = time.time()
    classifier = train_domain_classifier(images, labels, num_domains=num_classes, steps=steps, max_shift=0)
    meta = {
        "in_channels": images.shape[1],
        "num_classes": num_classes,
        "base_channels": 32,
        "image_size": list(images.shape[-2:]),
        "data": str(data),
        "train_images": len(images),
        "steps": steps,
        "augmentation": "horizontal flips",
        "train_seconds": round(time.time() - start, 1),
        "test_accuracy": accuracy(classifier, *test),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": classifier.state_dict(), "meta": meta}, path)
    print(f"classifier: trained {steps} steps in {meta['train_seconds']:.0f} s, saved to {path}")
    return classifier, meta


def to_classifier_input(
    images: torch.Tensor, channels: int, size: tuple[int, int]
) -> tuple[torch.Tensor, str]:
    """``images`` converted to ``channels`` and ``size``, and a note saying what was done ("" if nothing)."""
    notes = []
    images = images.float().cpu()
    if images.shape[1] != channels:
        if channels != 1:
            raise SystemExit(f"cannot convert {images.shape[1]}-channel samples to {channels} channels")
        notes.append(f"{images.shape[1]} channels -> mean")
        images = images.mean(1, keepdim=True)
    if tuple(images.shape[-2:]) != tuple(size):
        notes.append(f"{images.shape[-2]}x{images.shape[-1]} -> {size[0]}x{size[1]} bilinear")
        images = F.interpolate(images, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return images.clamp(-1, 1), ", ".join(notes)


def draw(run: str, n: int, seed: int, device: str, batch_size: int = 500):
    """``n`` samples of ``run``, the requested classes (None for an unconditional model), the number of
    classes and their names (the export's ``classes`` option, when it has one)."""
    from translate.inference import Sampler

    sampler = Sampler.from_run(run, device=device)
    z = sampler.noise(n, seed)
    labels = torch.arange(n) % sampler.num_classes if sampler.num_classes else None
    images = [
        sampler(z[i : i + batch_size], None if labels is None else labels[i : i + batch_size]).float().cpu()
        for i in range(0, n, batch_size)
    ]
    return torch.cat(images), labels, sampler.num_classes, sampler.export.options.get("classes")


def run_name(path: str) -> str:
    """A run's row name: the run folder, with the checkpoint when one is named (``gan/step_0005000``)."""
    parts = Path(path).parts
    return "/".join(parts[-3::2]) if len(parts) >= 3 and parts[-2] == "checkpoints" else Path(path).name


def print_table(rows: dict, num_classes: int) -> None:
    width = max(28, *(len(name) + 1 for name in rows))
    header = f"{'':<{width}}{'n':>6}{'FD':>10}{'entropy':>9}{'covered':>9}{'max share':>10}{'asked':>7}"
    print(header + "   note")
    for name, row in rows.items():
        coverage = row["coverage"]
        asked = f"{row['requested_accuracy']:.3f}" if "requested_accuracy" in row else "-"
        print(
            f"{name:<{width}}{row['n']:>6}{row['fd']:>10.3f}{coverage['entropy']:>9.3f}"
            f"{coverage['covered']:>6}/{num_classes:<2}{coverage['max_share']:>10.3f}{asked:>7}"
            f"   {row.get('note', '')}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="append", default=[], help="noise -> image run (repeatable)")
    parser.add_argument("--data", required=True, help="folder with the four IDX files (train, t10k)")
    parser.add_argument(
        "--classifier", default="fmnist_classifier.pt", help="saved classifier: trained here if absent"
    )
    parser.add_argument("--n", type=int, default=5000, help="samples per run (and per reference row)")
    parser.add_argument("--steps", type=int, default=4000, help="classifier training steps (batch 64)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed of the samples")
    parser.add_argument("--device", default="cpu", help="where the generators run")
    parser.add_argument("--json", help="write the scores here too")
    args = parser.parse_args()

    data = Path(args.data)
    train, test = load_split(data, "train"), load_split(data, "test")
    classifier, meta = get_classifier(Path(args.classifier), data, train, test, args.steps)
    num_classes, size, channels = meta["num_classes"], meta["image_size"], meta["in_channels"]
    test_accuracy = accuracy(classifier, *test)
    print(f"classifier accuracy on the {len(test[0])} held-out test images: {test_accuracy:.4f}")
    test_features, _ = features_and_predictions(classifier, test[0])
    reference = feature_statistics(test_features)

    def score(images, requested=None, note=""):
        return {**generative_scores(classifier, images, reference, num_classes, requested), "note": note}

    generator = torch.Generator().manual_seed(args.seed)
    pick = torch.randperm(len(train[0]), generator=generator)[: args.n]
    in_class_0 = torch.nonzero(train[1] == 0).flatten()
    one_class = in_class_0[torch.randint(len(in_class_0), (args.n,), generator=generator)]
    mean_image = train[0].mean(0, keepdim=True).expand(args.n, -1, -1, -1)
    noise = torch.rand((args.n, *train[0].shape[1:]), generator=generator) * 2 - 1
    rows = {
        "real train (floor)": score(train[0][pick], train[1][pick], "asked = classifier accuracy"),
        "one real class (collapse)": score(train[0][one_class], None, "real class-0 training images"),
        "mean training image": score(mean_image, None, "repeated"),
        "uniform noise": score(noise, None, "in [-1, 1]"),
    }
    for run in args.run:
        images, requested, run_classes, names = draw(run, args.n, args.seed, args.device)
        images, note = to_classifier_input(images, channels, size)
        if requested is not None and run_classes != num_classes:
            note = ", ".join(filter(None, [note, f"{run_classes} classes != classifier's {num_classes}"]))
            requested = None
        elif requested is not None and names and names != [str(i) for i in range(num_classes)]:
            note = ", ".join(filter(None, [note, f"classes {names} taken as labels 0..{num_classes - 1}"]))
        rows[run_name(run)] = score(images, requested, note)

    print_table(rows, num_classes)
    print("FD: to the real test images, in classifier features; asked: share read as the requested class")
    if args.json:
        scores = {"classifier": {**meta, "test_accuracy": test_accuracy}, "rows": rows}
        Path(args.json).write_text(json.dumps(scores, indent=2))


if __name__ == "__main__":
    main()
