"""Style score of an image -> image model: does the translation read as the target domain?

Trains a small domain classifier on the training images of two domains (each folder with ``train/`` and
``test/`` sub-folders, e.g. ``emoji/apple`` and ``emoji/windows``), reports its accuracy on their test
images, then translates each domain's test images with the model (a2b for the first domain, b2a for the
second) and reports the share read as the target domain, next to the untranslated input as baseline.

    python tools/style_score.py --run runs/emoji --domains ../shared/datasets/emoji/apple \
        ../shared/datasets/emoji/windows --size 64 [--json scores.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import torch

from translate import Translator
from translate.data import list_images, read_image
from translate.metrics.domain_classifier import domain_shares, predict_domains, train_domain_classifier


def load_folder(folder: Path, size: int) -> torch.Tensor:
    """Every image of ``folder`` resized (area) to ``size`` x ``size``: ``(N, 3, size, size)`` in [-1, 1]."""
    arrays = [
        cv2.resize(read_image(p, 3), (size, size), interpolation=cv2.INTER_AREA) for p in list_images(folder)
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="image -> image run (or checkpoint) with a2b and b2a")
    parser.add_argument("--domains", nargs=2, required=True, help="two domain folders with train/ and test/")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=500, help="classifier training steps")
    parser.add_argument("--json", help="write the scores here too")
    args = parser.parse_args()

    roots = [Path(d) for d in args.domains]
    train = [load_folder(r / "train", args.size) for r in roots]
    test = [load_folder(r / "test", args.size) for r in roots]
    images = torch.cat(train)
    labels = torch.cat([torch.full((len(t),), i) for i, t in enumerate(train)])
    classifier = train_domain_classifier(images, labels, num_domains=2, steps=args.steps)
    correct = [(predict_domains(classifier, t) == i).float().mean().item() for i, t in enumerate(test)]

    scores = {"classifier_test_accuracy": sum(correct) / 2, "classifier_test_accuracy_per_domain": correct}
    for source, direction in ((0, "a2b"), (1, "b2a")):
        target = 1 - source
        translator = Translator.from_run(args.run, direction=direction)
        translated = torch.stack(translator.translate_many(list(test[source])))
        scores[direction] = {
            "translation_read_as_target": domain_shares(classifier, translated, 2)[target].item(),
            "input_read_as_target": domain_shares(classifier, test[source], 2)[target].item(),
            "images": len(test[source]),
        }
    names = [r.name for r in roots]
    print(
        f"classifier accuracy on held-out test images: {scores['classifier_test_accuracy']:.3f} "
        f"({names[0]} {correct[0]:.3f}, {names[1]} {correct[1]:.3f})"
    )
    print(f"{'direction':<24}{'translation':>12}{'input as-is':>12}   share read as the target domain")
    for source, direction in ((0, "a2b"), (1, "b2a")):
        row = scores[direction]
        label = f"{names[source]} -> {names[1 - source]}"
        print(f"{label:<24}{row['translation_read_as_target']:>12.3f}{row['input_read_as_target']:>12.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(scores, indent=2))


if __name__ == "__main__":
    main()
