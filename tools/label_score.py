"""FCN-score style evaluation of a labels -> photo model (Isola et al. 2017, section 4.2).

L1 against the real photo rewards blurry averages, so instead: translate the test label maps to photos,
segment those photos with a photo -> labels model, and measure per-pixel label accuracy against the
ground-truth labels. The same segmenter on the real photos gives the ceiling; on a flat grey image,
the floor.

    python tools/label_score.py --generator runs/pix2pix-facades-b2a --segmenter runs/pix2pix-facades-a2b \
        --aligned ../shared/datasets/facades/test --size 64 --label-colors 12
"""

from __future__ import annotations

import argparse
import json

import torch

from translate import Translator
from translate.metrics import estimate_palette, label_accuracy
from translate.metrics.evaluate import aligned_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", required=True, help="labels -> photo run (or checkpoint)")
    parser.add_argument("--segmenter", required=True, help="photo -> labels run (or checkpoint)")
    parser.add_argument("--aligned", required=True, help="folder of photo|labels test pairs (A|B)")
    parser.add_argument("--size", type=int, default=None, help="resize to the scale the models trained at")
    parser.add_argument("--label-colors", type=int, default=12)
    parser.add_argument("--json", help="write the scores here too")
    args = parser.parse_args()

    generator = Translator.from_run(args.generator)
    segmenter = Translator.from_run(args.segmenter)
    photos_and_labels = aligned_pairs(args.aligned, "a2b", 3, args.size)  # (photo, labels)
    photos = [p for p, _ in photos_and_labels]
    labels = torch.stack([lab for _, lab in photos_and_labels])
    palette = estimate_palette(labels, args.label_colors)

    def score(images: list[torch.Tensor]) -> float:
        return label_accuracy(torch.stack(segmenter.translate_many(images)), labels, palette).mean().item()

    generated = generator.translate_many(list(labels))
    scores = {
        "generated photos": score(generated),
        "real photos (ceiling)": score(photos),
        "flat grey (floor)": score([torch.zeros_like(p) for p in photos]),
    }
    for name, value in scores.items():
        print(f"{name:<24}{value:.4f}")
    print(f"({len(photos)} test pairs, per-pixel label accuracy over {args.label_colors} colours)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(scores, handle, indent=2)


if __name__ == "__main__":
    main()
