"""image -> image (pix2pix, CycleGAN, UNIT): ``(N, C_in, H, W) -> (N, C_out, H, W)``.

Scored on held-out inputs: against their ground truth where there is one (pix2pix's A|B pairs, or test
folders of two domains holding the same file names) and against the real images of the target domain;
the untranslated input is scored the same way as the baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translate.exports import IMAGE_TO_IMAGE, Export
from translate.kinds.base import HeldOut, Kind, Plan, Scoring
from translate.layers import per_image
from translate.metrics.report import Score
from translate.metrics.scoring import PAIRED, evaluate_translation


def image_runner(
    module: nn.Module, export: Export, device: torch.device, seed: int
) -> Callable[..., torch.Tensor]:
    """``network(images, *conditions)`` on the CPU as ``translate apply`` makes it: in eval mode, or
    (``export.batch_statistics``, pix2pix's test mode) one image at a time with dropout drawn from ``seed``.
    """

    def run(images: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        inputs = [images.to(device), *(c.to(device) for c in conditions)]
        if export.batch_statistics:
            return per_image(module, *inputs, seed=seed).float().cpu()
        return module(*inputs).float().cpu()

    return run


class ImageToImage(Kind):
    name = IMAGE_TO_IMAGE
    command = "translate apply"
    controls = ("image",)

    def data_options(self, name: str, export: Export, dataset: str) -> dict[str, Any]:
        return {"direction": name} if dataset == "aligned" else {}  # pix2pix: its pairs read its way

    def network_inputs(self, export: Export) -> list[str]:
        return ["image"]

    def example_inputs(self, export, batch, height, width, generator=None, device="cpu"):
        shape = (batch, export.in_channels, height, width)
        return (torch.rand(shape, generator=generator).to(device) * 2 - 1,)

    def plan(self, name: str, export: Export, probe: dict[str, Any]) -> Plan | None:
        if "input" in probe and "target" in probe:
            return Plan("input", "target", paired=True)
        if "A" in probe and "B" in probe:
            direction = export.options.get("direction", name)
            return Plan("B", "A") if direction == "b2a" else Plan("A", "B")
        if "image" in probe:
            return Plan("image", "image")
        return None

    def score(
        self, scoring: Scoring, name: str, export: Export, task: nn.Module, plan: Plan, data: HeldOut
    ) -> list[Score]:
        run = image_runner(task.get_submodule(export.module), export, scoring.device, scoring.seed)
        return self._score_translation(scoring, name, export, plan, data, run)

    def _score_translation(
        self,
        scoring: Scoring,
        name: str,
        export: Export,
        plan: Plan,
        data: HeldOut,
        translate: Callable[[torch.Tensor], torch.Tensor],
        described: str = "",
    ) -> list[Score]:
        """``translate`` (images -> images) scored on the held-out inputs of ``plan``: against their ground
        truth where every input has one, and against the reference images; ``described`` ends the section's
        description."""
        suite, size = scoring.suite, scoring.batch_size
        truth = plan.paired or (plan.inputs != plan.reference and getattr(data.items, "same_names", False))
        if not truth and suite.wants(*PAIRED) and plan.inputs in ("A", "B"):
            scoring.note(
                f"{name}: no ground truth for every input (same file names in both held-out folders): "
                "no SSIM/PSNR/L1/LPIPS"
            )
        keys = [plan.inputs, plan.reference] if truth else [plan.inputs]
        batches = (
            {"input": b[plan.inputs], **({"target": b[plan.reference]} if truth else {})}
            for b in data.batches(keys, size)
        )
        real = None if plan.paired else data.reference_images(plan.reference, size)
        scoring.sections[name] = self._describe(export, plan, data, truth) + described
        return evaluate_translation(
            suite, translate, batches, real, self._target_class(scoring, name, export), name
        )

    @staticmethod
    def _describe(export: Export, plan: Plan, data: HeldOut, truth: bool) -> str:
        if plan.paired:
            return f"{len(data.indices)} held-out A|B pairs; reference: their targets"
        source, target = export.options.get("source", plan.inputs), export.options.get("target")
        return (
            f"{source} -> {target or '?'}: held-out inputs; reference: held-out {target or 'target'} images"
            + (" (ground truth: same file names)" if truth else "")
        )

    @staticmethod
    def _target_class(scoring: Scoring, name: str, export: Export) -> int | None:
        """The judging classifier's index of the export's target domain (for the target share), or None."""
        classifier = scoring.suite.classifier
        if classifier is None or not scoring.suite.wants("domain"):
            return None
        target = export.options.get("target")
        if classifier.kind != "domains":
            scoring.note("target share needs a domain classifier (this one reads attributes)")
            return None
        if target is None:
            scoring.note(f"{name}: the model names no target domain: no target share")
            return None
        # a domain named by a sub-path (apple/train) is the class of its first folder (apple)
        found = next((t for t in (target, Path(target).parts[0]) if t in classifier.classes), None)
        if found is None:
            scoring.note(
                f"{name}: the classifier's classes ({', '.join(classifier.classes)}) do not include "
                f"{target!r}"
            )
            return None
        return classifier.classes.index(found)
