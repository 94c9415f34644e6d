"""A small domain classifier trained on the user's own labelled images, to read whether a translation
took on the target domain's style (L1 to a paired drawing does not reward a change of style).

    classifier = train_domain_classifier(images, labels, num_domains=2)     # minutes on a CPU
    shares = domain_shares(classifier, translated)                          # (num_domains,) in [0, 1]
    save_classifier("clf.pt", classifier, {"classes": [...], "kind": "domains", "image_size": 64})
    classifier, meta = load_classifier("clf.pt")        # what `translate classifier train` writes
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class DomainClassifier(nn.Module):
    """``(N, in_channels, H, W)`` in ``[-1, 1]`` -> ``(N, num_domains)`` logits.

    Four 3x3 stride-2 conv blocks (``base_channels`` x 1, 2, 4, 8; batch norm, LeakyReLU 0.2), global
    average pooling and a linear layer: any input size of at least 16 px.
    """

    def __init__(self, in_channels: int = 3, num_domains: int = 2, base_channels: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for level in range(4):
            width = base_channels * 2**level
            layers += [
                nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.LeakyReLU(0.2),
            ]
            channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(channels, num_domains)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_domain_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_domains: int,
    steps: int = 1500,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    max_shift: int = 4,
    flip: bool = True,
) -> DomainClassifier:
    """Train on ``images`` ``(N, C, H, W)`` in ``[-1, 1]``: Adam, cosine LR, random horizontal flips (unless
    ``flip`` is False) and shifts of up to ``max_shift`` px (0: none; centred images such as Fashion-MNIST's
    are read better without them). ``labels``: integers ``(N,)`` (one domain per image: cross-entropy,
    classes balanced by sampling) or 0/1 floats ``(N, num_domains)`` (attributes: one binary cross-entropy
    per attribute). Returns it in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    classifier = DomainClassifier(images.shape[1], num_domains)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=lr)
    attributes = labels.dim() == 2
    if attributes:
        weights = torch.ones(len(labels))
    else:
        counts = torch.bincount(labels, minlength=num_domains).float()
        weights = (1.0 / counts.clamp_min(1))[labels]
    classifier.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + torch.cos(torch.tensor(step / steps * torch.pi)).item())
        index = torch.multinomial(weights, batch_size, replacement=True, generator=generator)
        batch = augment(images[index], generator, max_shift, flip)
        logits = classifier(batch)
        if attributes:
            loss = F.binary_cross_entropy_with_logits(logits, labels[index].float())
        else:
            loss = F.cross_entropy(logits, labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return classifier.eval()


def augment(
    images: torch.Tensor, generator: torch.Generator, max_shift: int = 4, flip: bool = True
) -> torch.Tensor:
    """Random horizontal flip (when ``flip``) and a random shift of up to ``max_shift`` px (reflect-padded),
    per batch."""
    if flip and torch.rand((), generator=generator) < 0.5:
        images = images.flip(-1)
    if max_shift <= 0:
        return images
    m = max_shift
    dy, dx = (int(v) for v in torch.randint(-m, m + 1, (2,), generator=generator))
    padded = F.pad(images, (m, m, m, m), mode="reflect")
    height, width = images.shape[-2:]
    return padded[..., m + dy : m + dy + height, m + dx : m + dx + width]


@torch.no_grad()
def predict_domains(classifier: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The most likely domain of each image: ``(N,)`` integers."""
    return torch.cat(
        [classifier(images[i : i + batch_size]).argmax(1) for i in range(0, len(images), batch_size)]
    )


@torch.no_grad()
def predict_attributes(classifier: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Which attributes each image has, as the classifier reads them: ``(N, num_attributes)`` 0/1 floats."""
    return torch.cat(
        [(classifier(images[i : i + batch_size]) > 0).float() for i in range(0, len(images), batch_size)]
    )


def domain_shares(classifier: nn.Module, images: torch.Tensor, num_domains: int) -> torch.Tensor:
    """Share of ``images`` read as each domain: ``(num_domains,)``, summing to 1."""
    return torch.bincount(predict_domains(classifier, images), minlength=num_domains).float() / len(images)


def fit_images(images: torch.Tensor, channels: int, size: int | tuple[int, int]) -> torch.Tensor:
    """``images`` ``(N, C, H, W)`` made ``channels`` (RGB -> gray: the channel mean; gray -> RGB:
    repeated) and ``size`` (bilinear with antialiasing): what a classifier trained at that size reads."""
    images = images.float()
    if images.shape[1] != channels:
        images = images.mean(1, keepdim=True) if channels == 1 else images.expand(-1, channels, -1, -1)
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) != size:
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
    return images.clamp(-1, 1)


def save_classifier(path: str | Path, classifier: DomainClassifier, meta: dict) -> Path:
    """Weights and ``meta`` (``classes``, ``kind``: ``domains`` or ``attributes``, ``image_size``,
    ``in_channels``, ...; ``num_classes`` and ``base_channels`` are filled in) in one ``torch.save`` file,
    written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        **meta,
        "num_classes": classifier.head.out_features,
        "base_channels": classifier.features[0].out_channels,
        "in_channels": classifier.features[0].in_channels,
    }
    partial = path.with_name(path.name + ".partial")
    torch.save({"state_dict": classifier.state_dict(), "meta": meta}, partial)
    partial.replace(path)
    return path


def load_classifier(path: str | Path) -> tuple[DomainClassifier, dict]:
    """A classifier saved by ``save_classifier`` (or ``tools/gan_score.py``), in eval mode on the CPU, and
    its metadata with ``classes`` (default ``"0"``, ``"1"``, ...) and ``kind`` (default ``domains``)."""
    from translate.errors import CheckpointError

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"classifier {path} not found (train one: translate classifier train DATA --out {path})"
        )
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        meta = dict(saved["meta"])
        classifier = DomainClassifier(meta["in_channels"], meta["num_classes"], meta.get("base_channels", 32))
        classifier.load_state_dict(saved["state_dict"])
    except Exception as exc:  # a truncated file, another kind of file
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path} is not a classifier saved by translate classifier train: {message}"
        ) from None
    meta.setdefault("classes", [str(i) for i in range(meta["num_classes"])])
    meta.setdefault("kind", "domains")
    size = meta.get("image_size", 32)
    meta["image_size"] = list(size) if isinstance(size, list | tuple) else [size, size]
    return classifier.eval(), meta
