"""Feature extractors of the distribution metrics: one interface over Inception-v3 (the field's FID / KID /
IS), the toolkit's own domain classifier (works offline, on any data) and a fixed random conv net (a proxy
for evaluation during training when there is neither: ``random_extractor``).

    extractor = inception_extractor()               # or: extractor, meta = classifier_extractor("clf.pt")
    features, logits = extractor(images)            # (N, D) and (N, classes), float32 on the CPU
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from translate.metrics.domain_classifier import DomainClassifier, fit_images, load_classifier
from translate.metrics.weights import sha256

RANDOM_FEATURES_SIZE = 32
"""Side the random-feature proxy reads images at."""


@dataclass
class Extractor:
    """``module(images in [-1, 1]) -> (features (N, D), logits (N, classes))`` on ``device``, in batches.

    ``key``: ``inception`` or ``classifier`` (the ``features`` column of the scores); ``name``: what the
    table says; ``weights`` and ``sha256``: the file it was loaded from. ``classes`` and ``kind``
    (``domains``: one class per image, softmax; ``attributes``: one binary output each) describe the logits.
    """

    key: str
    name: str
    module: nn.Module
    weights: str | None = None
    sha256: str | None = None
    classes: list[str] = field(default_factory=list)
    kind: str = "domains"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    batch_size: int = 64

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features, logits = [], []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size].to(self.device, torch.float32)
            f, logit = self.module(batch)
            features.append(f.float().cpu())
            logits.append(logit.float().cpu())
        return torch.cat(features), torch.cat(logits)

    def describe(self) -> dict:
        return {"name": self.name, "weights": self.weights, "sha256": self.sha256, "classes": self.classes}


class ClassifierFeatures(nn.Module):
    """A ``DomainClassifier`` as an extractor: images fitted to its channels and size (``fit_images``),
    pooled features and head logits."""

    def __init__(self, classifier: DomainClassifier, channels: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.classifier = classifier.eval()
        self.channels, self.size = channels, tuple(size)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.classifier.features(fit_images(images, self.channels, self.size))
        return pooled, self.classifier.head(pooled)


def classifier_extractor(path: str | Path, device: str | torch.device = "cpu") -> tuple[Extractor, dict]:
    """The classifier saved at ``path`` (``translate classifier train``) as an Extractor, and its metadata."""
    classifier, meta = load_classifier(path)
    module = ClassifierFeatures(classifier, meta["in_channels"], meta["image_size"]).to(device)
    extractor = Extractor(
        "classifier",
        f"classifier {Path(path).name}",
        module,
        str(path),
        sha256(path),
        list(meta["classes"]),
        meta["kind"],
        torch.device(device),
    )
    return extractor, meta


def inception_extractor(path: str | Path | None = None, device: str | torch.device = "cpu") -> Extractor:
    """Inception-v3 pool3 and logits from the weights file ``path`` (else the torch hub cache); raises
    ``MissingWeights`` with a one-line note when there is none (see ``translate.metrics.inception``)."""
    from translate.metrics.inception import load_inception

    model, found = load_inception(path, device)
    name = "inception-v3 (FID weights)" if model.variant == "fid" else "inception-v3 (torchvision weights)"
    classes = [str(i) for i in range(model.net.fc.out_features)]
    return Extractor(
        "inception", name, model, str(found), sha256(found), classes, "domains", torch.device(device)
    )


class RandomFeatures(nn.Module):
    """A fixed, randomly initialised conv net as a feature extractor: images fitted to RGB at 32 x 32 px,
    three 4x4 stride-2 convs (32, 64, 128 channels, LeakyReLU 0.2), global average pooling: ``(N, 128)``
    features and no logits. Its weights come from ``seed`` alone (the global random state is left as it
    was), so distances in its features are comparable between evaluations of one run. Random features
    see colour, texture and layout statistics, not semantics: a cheap proxy for the Frechet distance when
    no trained extractor is at hand, never a number to compare with published FIDs."""

    def __init__(self, seed: int = 0, size: int = RANDOM_FEATURES_SIZE, width: int = 32) -> None:
        super().__init__()
        self.size = size
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers: list[nn.Module] = []
            channels = 3
            for level in range(3):
                layers += [nn.Conv2d(channels, width * 2**level, 4, 2, 1), nn.LeakyReLU(0.2)]
                channels = width * 2**level
            self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.net(fit_images(images, 3, self.size))
        return features, features.new_zeros(len(features), 0)


def random_extractor(seed: int = 0, device: str | torch.device = "cpu") -> Extractor:
    """``RandomFeatures(seed)`` as an Extractor with key ``random`` (scores in it are named so)."""
    module = RandomFeatures(seed).to(device)
    name = f"random conv features (seed {seed}, a proxy: comparable within a run only)"
    return Extractor("random", name, module, kind="features", device=torch.device(device))
