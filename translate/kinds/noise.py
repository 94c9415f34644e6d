"""noise -> image (the GAN family): ``(noise (N, latent_dim)[, class labels (N,)]) -> image``.

Scored on samples of fixed codes (``seed``): against real images, class coverage and (cGAN) class
accuracy read by a classifier, diversity between codes and the distance to the nearest training image;
real held-out images are scored the same way as the baseline.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from translate.exports import NOISE_TO_IMAGE, Export
from translate.kinds.base import HeldOut, Kind, Plan, Scoring, stacked
from translate.layers import latent_noise
from translate.metrics.report import Score
from translate.metrics.scoring import evaluate_sampling


def noise_codes(export: Export, count: int, seed: int) -> torch.Tensor:
    """``(count, latent_dim)`` codes of the export's latent distribution, drawn from ``seed``."""
    options = export.options
    generator = torch.Generator().manual_seed(seed)
    return latent_noise(
        count, int(options["latent_dim"]), options.get("latent_distribution", "normal"), generator
    )


def cycling_classes(export: Export, count: int) -> torch.Tensor | None:
    """``(count,)`` class labels in turn for a class-conditional export; None for an unconditional one."""
    classes = export.options.get("num_classes")
    return torch.arange(count) % classes if classes else None


class NoiseToImage(Kind):
    name = NOISE_TO_IMAGE
    command = "translate sample"
    controls = ("noise",)
    reference_from_training = True

    def data_options(self, name: str, export: Export, dataset: str) -> dict[str, Any]:
        return {"out_channels": export.out_channels}  # real images as the generator draws them

    def network_inputs(self, export: Export) -> list[str]:
        return ["noise", "labels"] if export.options.get("num_classes") else ["noise"]

    def example_inputs(self, export, batch, height, width, generator=None, device="cpu"):
        options = export.options
        noise = torch.randn(batch, options["latent_dim"], generator=generator).to(device)
        if not options.get("num_classes"):
            return (noise,)
        return noise, torch.randint(options["num_classes"], (batch,), generator=generator).to(device)

    def plan(self, name: str, export: Export, probe: dict[str, Any]) -> Plan | None:
        return Plan(None, "image") if "image" in probe else None

    def score(
        self, scoring: Scoring, name: str, export: Export, task: nn.Module, plan: Plan, data: HeldOut
    ) -> list[Score]:
        suite, size, seed, device = scoring.suite, scoring.batch_size, scoring.seed, scoring.device
        module = task.get_submodule(export.module)

        def generate(z: torch.Tensor, classes: torch.Tensor | None) -> torch.Tensor:
            inputs = (z.to(device),) if classes is None else (z.to(device), classes.to(device))
            return module(*inputs).float().cpu()

        count = len(data.indices)
        codes, classes = noise_codes(export, count, seed), cycling_classes(export, count)
        pairs = (noise_codes(export, suite.pairs, seed + 1), noise_codes(export, suite.pairs, seed + 2))
        pair_codes = (*pairs, cycling_classes(export, suite.pairs))
        keys = ["image", "label"] if "label" in data.items[data.indices[0]] else ["image"]

        def labelled(items, indices):
            return ((b["image"], b.get("label")) for b in stacked(items, indices, keys, size, True))

        if data.reference is None:  # during training: the held-out images are the reference
            real, baseline = labelled(data.items, data.indices), iter(())
        else:
            real = labelled(data.reference, data.reference_indices)
            baseline = labelled(data.items, range(len(data.items)))
        scoring.sections[name] = f"{count} samples" + (
            f" ({export.options['num_classes']} classes in turn)" if classes is not None else ""
        )
        class_map = self._class_map(scoring, export)
        scores = evaluate_sampling(
            suite, generate, codes, classes, real, baseline, class_map, pair_codes, size, name
        )
        if suite.wants("nn"):
            scoring.note(
                "NN train distance: RMS pixel distance (32 px copies) to the nearest of up to 5000 "
                "training images"
            )
        return scores

    @staticmethod
    def _class_map(scoring: Scoring, export: Export) -> dict[int, int] | None:
        """The model's class index -> the judging classifier's: by name, else by position when the counts
        agree; None without a classifier or classes."""
        suite = scoring.suite
        model_classes = export.options.get("classes") or [
            str(i) for i in range(export.options.get("num_classes") or 0)
        ]
        if suite.classifier is None or not model_classes or not suite.wants("domain"):
            return None
        classifier_classes = suite.classifier.classes
        by_name = {
            i: classifier_classes.index(c) for i, c in enumerate(model_classes) if c in classifier_classes
        }
        if by_name:
            return by_name
        if len(model_classes) == len(classifier_classes):
            scoring.note(f"classes {model_classes} taken as the classifier's {classifier_classes} in order")
            return dict(enumerate(range(len(model_classes))))
        scoring.note("the classifier's classes do not match the model's: no class accuracy")
        return None
