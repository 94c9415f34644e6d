"""Attribute score of a StarGAN model: does the translated face have the attribute that was asked for?

Trains a small attribute classifier (``translate.metrics.domain_classifier``, one binary output per
attribute) on the real training faces of the run's data, reports its accuracy on the held-out faces, then
translates every held-out face to each target of the paper's figure (each hair colour switched on, every
other attribute flipped) and reports, per target:

- ``asked``: the share of translations the classifier reads with the requested value of that attribute;
- ``input``: the same share for the untranslated input (the trivial baseline: "translate" by copying);
- ``kept``: the share of the *other* attributes the classifier reads unchanged from the input.

The inputs' own labels come from the attribute file (``--source file``, as the reference test does) or
from the model's discriminator head (``--source model``, what ``translate apply --to`` does without
``--labels``). Images are prepared as the run trained (its config's preprocess and image size).

    python tools/attribute_score.py --run runs/stargan [--n 500] [--json scores.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from translate import Translator
from translate.config import build_config
from translate.data.labelled import LabelledDataset
from translate.engine.checkpoint import load_model_checkpoint
from translate.metrics.domain_classifier import DomainClassifier, predict_attributes, train_domain_classifier


def load(dataset: LabelledDataset, count: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` images (eval transform) and their label rows."""
    indices = range(len(dataset) if count is None else min(count, len(dataset)))
    items = [dataset[i] for i in indices]
    return torch.stack([item["image"] for item in items]), torch.stack([item["label"] for item in items])


def attribute_classifier(
    file: Path | None, images: torch.Tensor, labels: torch.Tensor, num_attributes: int, steps: int
) -> DomainClassifier:
    """The classifier kept in ``file`` if it is there, else one trained now (and kept there)."""
    if file is not None and file.is_file():
        classifier = DomainClassifier(images.shape[1], num_attributes)
        classifier.load_state_dict(torch.load(file, weights_only=True))
        return classifier.eval()
    classifier = train_domain_classifier(images, labels, num_domains=num_attributes, steps=steps)
    if file is not None:
        torch.save(classifier.state_dict(), file)
    return classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="StarGAN run folder or checkpoint")
    parser.add_argument("--n", type=int, default=500, help="held-out faces to translate")
    parser.add_argument(
        "--train-images", type=int, default=None, help="classifier training faces (default all)"
    )
    parser.add_argument("--steps", type=int, default=1500, help="classifier training steps")
    parser.add_argument(
        "--source", choices=["file", "model"], default="file", help="where input labels come from"
    )
    parser.add_argument("--json", help="write the scores here too")
    parser.add_argument(
        "--classifier",
        type=Path,
        help="keep the trained classifier in this file and reuse it when it is there (same data and steps)",
    )
    args = parser.parse_args()

    config = build_config(load_model_checkpoint(args.run).config)
    train_images, train_labels = load(LabelledDataset.from_config(config.data, train=True), args.train_images)
    test_set = LabelledDataset.from_config(config.data, train=False)
    test_images, test_labels = load(test_set, args.n)
    space = test_set.space
    classifier = attribute_classifier(args.classifier, train_images, train_labels, len(space), args.steps)
    accuracy = (predict_attributes(classifier, test_images) == test_labels).float().mean(0)

    translator = Translator.from_run(args.run)
    source = test_labels if args.source == "file" else translator.estimate_labels(test_images)
    read_input = predict_attributes(classifier, test_images)
    rows = {}
    for name, target in space.flips(source).items():
        attribute = name.split(" ", 1)[1]
        column = space.index(attribute)
        translated = translator.translate_tensor(
            test_images, target={attribute: float(target[0, column])}, source_labels=source
        )
        read = predict_attributes(classifier, translated)
        others = [
            i for i in range(len(space)) if i not in (space.index(n) for n in space.group_of(attribute))
        ]
        rows[name] = {
            "asked": (read[:, column] == target[:, column]).float().mean().item(),
            "input": (read_input[:, column] == target[:, column]).float().mean().item(),
            "kept": (read[:, others] == read_input[:, others]).float().mean().item() if others else None,
        }
    scores = {
        "classifier_test_accuracy": dict(zip(space.names, accuracy.tolist())),
        "images": len(test_images),
        "source_labels": args.source,
        "targets": rows,
        "mean_asked": sum(r["asked"] for r in rows.values()) / len(rows),
        "mean_input": sum(r["input"] for r in rows.values()) / len(rows),
    }
    print(
        "classifier accuracy on held-out faces: "
        + ", ".join(f"{n} {a:.3f}" for n, a in zip(space.names, accuracy))
    )
    print(
        f"{'target':<18}{'asked':>8}{'input':>8}{'kept':>8}   "
        f"({len(test_images)} held-out faces, labels from {args.source})"
    )
    for name, row in rows.items():
        kept = f"{row['kept']:.3f}" if row["kept"] is not None else "-"
        print(f"{name:<18}{row['asked']:>8.3f}{row['input']:>8.3f}{kept:>8}")
    print(f"{'mean':<18}{scores['mean_asked']:>8.3f}{scores['mean_input']:>8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(scores, indent=2))


if __name__ == "__main__":
    main()
