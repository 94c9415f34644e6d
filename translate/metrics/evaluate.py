"""Score a trained model on paired data: the translation against the ground truth, next to the input itself.

Pairs come from an aligned folder (A|B images, split by the model's direction) or from two folders whose
files share names (``apple/test/U+1F600.png`` and ``windows/test/U+1F600.png``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from translate.data.io import list_images, read_image
from translate.errors import DataError
from translate.metrics.paired import estimate_palette, l1_distance, label_accuracy, psnr, to_labels
from translate.metrics.perceptual import ssim


@dataclass
class PairedScores:
    count: int
    output: dict[str, float]
    """Scores of the translation against the target."""
    identity: dict[str, float]
    """The same scores for the untranslated input: the baseline a translation must beat."""
    majority: dict[str, float] | None = None
    """For label maps, with training targets given: one fixed map holding each pixel position's most common
    training label (the trivial answer a label predictor must beat)."""

    def table(self) -> str:
        columns = {"translation": self.output, "input as-is": self.identity}
        if self.majority is not None:
            columns["train majority"] = self.majority
        lines = [f"{'metric':<16}" + "".join(f"{c:>16}" for c in columns)]
        lines += [f"{n:<16}" + "".join(f"{v[n]:>16.4f}" for v in columns.values()) for n in self.output]
        return "\n".join(lines + [f"({self.count} pairs)"])


def aligned_pairs(
    folder: Path, direction: str, channels: int, size: int | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input, target) from A|B images: a2b reads the left half as input; ``size`` resizes each half."""
    pairs = []
    for path in list_images(folder):
        image = read_image(path, channels)
        half = image.shape[1] // 2
        left, right = to_tensor(image[:, :half], size), to_tensor(image[:, half : 2 * half], size)
        pairs.append((left, right) if direction == "a2b" else (right, left))
    return pairs


def named_pairs(
    inputs: Path, targets: list[Path], channels: int, size: int | None = None
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(input, target) for every input whose relative path is found in one of the target folders."""
    target_files = {
        p.relative_to(folder).as_posix(): p for folder in reversed(targets) for p in list_images(folder)
    }
    pairs = [
        (to_tensor(read_image(p, channels), size), to_tensor(read_image(target_files[key], channels), size))
        for p in list_images(inputs)
        if (key := p.relative_to(inputs).as_posix()) in target_files
    ]
    if not pairs:
        raise DataError(f"no file name in {inputs} appears in {', '.join(map(str, targets))}")
    return pairs


def to_tensor(image: np.ndarray, size: int | None = None) -> torch.Tensor:
    """``(H, W, C)`` uint8 -> ``(C, H, W)`` in [-1, 1], optionally resized (area) to ``size`` x ``size``
    — the scale a model trained on resized images expects."""
    if size is not None:
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, -1)
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 127.5 - 1.0


TranslateMany = Callable[[list[torch.Tensor]], list[torch.Tensor]]
"""A model as the metrics see it: ``(C, H, W)`` tensors in ``[-1, 1]`` -> their translations, in order
(``Translator.translate_many``)."""


def majority_label_map(train_targets: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """``(C, H, W)``: the palette colour of each pixel position's most common label in ``train_targets``."""
    labels = to_labels(train_targets, palette)
    counts = torch.nn.functional.one_hot(labels, len(palette)).sum(0)
    return palette[counts.argmax(-1)].permute(2, 0, 1)


def evaluate_pairs(
    translate_many: TranslateMany,
    pairs: list[tuple[torch.Tensor, torch.Tensor]],
    label_colors: int | None = None,
    train_targets: torch.Tensor | None = None,
) -> PairedScores:
    """L1, PSNR and SSIM (and label accuracy over a ``label_colors``-colour palette estimated from targets).

    With ``label_colors`` and ``train_targets`` (training label maps at the targets' size), the fixed map
    of each position's most common training label is scored too.
    """
    if not pairs:
        raise DataError("no image pairs to evaluate")
    inputs = [p[0] for p in pairs]
    targets = torch.stack([p[1] for p in pairs])
    outputs = torch.stack(translate_many(inputs))
    if outputs.shape != targets.shape:
        raise DataError(
            f"outputs {tuple(outputs.shape[1:])} and targets {tuple(targets.shape[1:])} differ in shape"
        )
    palette = estimate_palette(targets, label_colors) if label_colors else None

    def scores(images: torch.Tensor) -> dict[str, float]:
        result = {
            "L1": l1_distance(images, targets).mean().item(),
            "PSNR": psnr(images, targets).mean().item(),
            "SSIM": ssim(images, targets).mean().item(),
        }
        if palette is not None:
            result["label_accuracy"] = label_accuracy(images, targets, palette).mean().item()
        return result

    same_shape = all(i.shape == t.shape for i, t in pairs)
    identity = scores(torch.stack(inputs)) if same_shape else {k: float("nan") for k in scores(outputs)}
    majority = None
    if palette is not None and train_targets is not None:
        majority = scores(majority_label_map(train_targets, palette).expand_as(targets))
    return PairedScores(len(pairs), scores(outputs), identity, majority)
