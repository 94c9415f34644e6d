"""image + target -> image (StarGAN): ``(image (N, C, H, W), target labels (N, num_labels)) -> image``.

Scored by flipping every label of held-out images (switching on those of exclusive groups and domains):
the share a judge reads with the asked value, beside the untranslated input, and the distribution of the
translations against real images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from translate.data.transforms import center_square
from translate.errors import DataError
from translate.exports import IMAGE_AND_TARGET_TO_IMAGE, Export
from translate.kinds.base import HeldOut, Kind, Plan, Scoring
from translate.kinds.image import image_runner
from translate.labels import LabelSpace
from translate.metrics.report import Score
from translate.metrics.scoring import evaluate_targets


@torch.no_grad()
def read_labels(classifier: nn.Module, images: torch.Tensor, size: int | None) -> torch.Tensor:
    """The labels of ``images`` as a model's stored classifier reads them.

    Args:
        classifier: the module whose second output holds label logits (StarGAN's critic).
        images: ``(N, C, H, W)`` in ``[-1, 1]``; their centre square is read, resized to ``size``.
        size: the classifier's input size (the training image size); None: as they are.

    Returns:
        ``(N, num_labels)`` logits.
    """
    x = images.to(next(classifier.parameters()).device, torch.float32)
    x = x[(..., *center_square(*x.shape[-2:]))]  # as the training faces were cropped
    side, size = x.shape[-1], size or x.shape[-1]
    if side != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return classifier(x)[1]


def switched_on(space: LabelSpace) -> set[str]:
    """Labels that a translation switches on rather than flips: domains and members of exclusive groups."""
    return {n for n in space.names if space.kind == "domains" or len(space.group_of(n)) > 1}


class ImageAndTargetToImage(Kind):
    name = IMAGE_AND_TARGET_TO_IMAGE
    command = "translate apply --to ..."
    controls = ("image", "target")
    reference_from_training = True

    def translator_arguments(self, options: dict[str, Any], task: nn.Module | None) -> dict[str, Any]:
        """The label space and, with the trained ``task``, the classifier that reads an input's labels and
        its image size."""
        labels = options.get("labels")
        arguments: dict[str, Any] = {"labels": LabelSpace.from_dict(labels) if labels else None}
        if task is not None:
            classifier = options.get("classifier")
            arguments["classifier"] = task.get_submodule(classifier) if classifier else None
            arguments["classifier_size"] = options.get("image_size")
        return arguments

    def network_inputs(self, export: Export) -> list[str]:
        return ["image", "labels"]

    def example_inputs(self, export, batch, height, width, generator=None, device="cpu"):
        image = torch.rand((batch, export.in_channels, height, width), generator=generator) * 2 - 1
        labels = torch.rand(batch, len(export.options["labels"]["names"]), generator=generator) > 0.5
        return image.to(device), labels.float().to(device)

    def plan(self, name: str, export: Export, probe: dict[str, Any]) -> Plan | None:
        return Plan("image", "image") if "image" in probe and "label" in probe else None

    def score(
        self, scoring: Scoring, name: str, export: Export, task: nn.Module, plan: Plan, data: HeldOut
    ) -> list[Score]:
        space = LabelSpace.from_dict(export.options["labels"])
        held_out_space = getattr(data.items, "space", None)
        if held_out_space is not None and list(held_out_space.names) != list(space.names):
            raise DataError(
                f"the data has the labels {', '.join(held_out_space.names)}; the model was trained on "
                f"{', '.join(space.names)}"
            )
        run = image_runner(task.get_submodule(export.module), export, scoring.device, scoring.seed)

        def translate_to(images: torch.Tensor, source: torch.Tensor, target: dict[str, float]):
            return run(images, space.apply(source.float(), target))

        judge, judge_name = self._judge(scoring, space, task, export)
        batches = data.batches(["image", "label"], scoring.batch_size)
        reference = data.reference_images("image", scoring.batch_size, len(data.indices))
        scoring.sections["targets"] = (
            f"{len(data.indices)} held-out images, each label flipped (or switched on); reference: "
            + ("training images" if data.reference is not None else "the held-out images")
        )
        names = list(space.names)
        return evaluate_targets(
            scoring.suite,
            translate_to,
            batches,
            names,
            switched_on(space),
            judge,
            judge_name,
            reference,
            "targets",
        )

    @staticmethod
    def _judge(
        scoring: Scoring, space: LabelSpace, task: nn.Module, export: Export
    ) -> tuple[Callable[[torch.Tensor], dict[str, torch.Tensor]] | None, str]:
        """``images -> {label: (N,) 0/1}``: the independent classifier's reading where it knows the labels,
        else the model's own critic head (optimistic: the generator was trained to satisfy it)."""
        suite = scoring.suite
        if not suite.wants("domain"):
            return None, "classifier"
        if suite.classifier is not None:
            judge = classifier_judge(scoring, suite.classifier, space)
            if judge is not None:
                return judge, "classifier"
        if not export.options.get("classifier"):
            return None, "classifier"
        scoring.note(
            "labels read by the model's own critic head (it was trained to satisfy it: optimistic); "
            "give --classifier for an independent reading"
        )
        critic, size = task.get_submodule(export.options["classifier"]), export.options.get("image_size")

        def judge(images: torch.Tensor) -> dict[str, torch.Tensor]:
            read = space.from_logits(read_labels(critic, images, size)).cpu()
            return {n: read[:, i] for i, n in enumerate(space.names)}

        return judge, "model critic"


def classifier_judge(scoring: Scoring, extractor, space: LabelSpace):
    """``images -> {label: (N,) 0/1}`` of the model's labels that the classifier knows, or None."""
    classes = extractor.classes
    known = [n for n in space.names if n in classes]
    if not known:
        scoring.note(f"the classifier's classes ({', '.join(classes)}) name none of the model's labels")
        return None
    missing = [n for n in space.names if n not in classes]
    if missing:
        scoring.note(f"the classifier does not read {', '.join(missing)}")

    def judge(images: torch.Tensor) -> dict[str, torch.Tensor]:
        _, logits = extractor(images)
        if extractor.kind == "domains":
            read = torch.nn.functional.one_hot(logits.argmax(1), len(classes)).float()
        else:
            read = (logits > 0).float()
        return {n: read[:, classes.index(n)] for n in known}

    return judge
