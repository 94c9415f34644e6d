"""Evaluation during training (``train.eval_every``): the task's exports scored on a fixed held-out subset
with ``translate.metrics.scoring`` (the functions ``translate eval`` uses), without the trainer's RNG
or weights changing.

What is scored, by export kind and data:

- image -> image on paired data (pix2pix's A|B pairs): the translations against their ground truth
  (``l1``, ``psnr``, ``ssim``); ``fd`` / ``kid`` against the targets;
- image -> image on unpaired data (CycleGAN, UNIT): ``fd`` / ``kid`` of the translations against the
  held-out images of the target domain;
- noise -> image (the GAN family): ``fd`` / ``kid`` of samples of fixed codes against held-out images;
- image + target -> image (StarGAN): ``fd`` / ``kid`` of every label flipped (or switched on) against the
  held-out images.

``fd`` and ``kid`` are computed in the features of ``train.eval_classifier`` (``translate classifier
train``), or without one in those of a fixed random conv net (``translate.metrics.features
.RandomFeatures``), then named ``fd_random`` / ``kid_random``: a proxy to follow one run, not a FID.
A task with one scored export logs ``eval/<metric>``; with several (CycleGAN's a2b and b2a) it logs
``eval/<export>/<metric>`` for each and their mean as ``eval/<metric>``.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translate.engine import checkpoint as ckpt
from translate.errors import ConfigError
from translate.exports import IMAGE_AND_TARGET_TO_IMAGE, IMAGE_TO_IMAGE, NOISE_TO_IMAGE, Export
from translate.labels import LabelSpace
from translate.layers import batch_statistics

log = logging.getLogger("translate")

EVAL_BATCH = 16
"""Images per forward pass of an evaluation."""
PAIRED = ("l1", "psnr", "ssim")
DISTRIBUTION = ("fd", "kid")
HIGHER_IS_BETTER = ("psnr", "ssim")
SCORE_NAMES = {"L1": "l1", "PSNR": "psnr", "SSIM": "ssim", "FD": "fd", "KID": "kid"}
"""``translate.metrics`` score names -> the names logged."""
SUITE_NAMES = {"l1": "l1", "psnr": "psnr", "ssim": "ssim", "fd": "fid", "kid": "kid"}
"""The names logged -> what ``metrics.scoring.Suite`` is asked for."""


def best_mode(metric: str, mode: str | None) -> str:
    """``min`` or ``max``: ``mode`` when given, else ``max`` for PSNR and SSIM and ``min`` for the rest."""
    return mode or ("max" if metric.rsplit("/", 1)[-1] in HIGHER_IS_BETTER else "min")


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Every random generator training draws from (torch CPU and CUDA, Python, NumPy) is as it was after
    the block: evaluating never changes what training draws next."""
    tensors, meta = ckpt.random_state()
    try:
        yield
    finally:
        ckpt.set_random_state(tensors, meta)


@dataclass
class Plan:
    """How one export is scored: which item keys are its inputs and its reference images."""

    name: str
    export: Export
    inputs: str | None
    """Item key of the images translated (None: noise)."""
    reference: str
    """Item key of the real images compared with (the ground truth when ``paired``)."""
    paired: bool = False


class Evaluator:
    """Scores a task's exports on the first ``count`` evenly spaced items of ``held_out`` (its plain-index
    items: evaluation transforms, no augmentation), loaded once. ``names`` are the keys it logs."""

    def __init__(
        self,
        task: nn.Module,
        held_out: torch.utils.data.Dataset,
        count: int,
        metrics: list[str] | None,
        classifier: str | Path | None,
        seed: int,
        device: torch.device,
    ) -> None:
        if len(held_out) < 2:
            raise ConfigError(f"train.eval_every: the held-out data has {len(held_out)} image(s); it needs 2")
        self.held_out = held_out
        count = min(count, len(held_out))
        self.indices = sorted({i * len(held_out) // count for i in range(count)})
        self.seed = seed
        self.device = device
        self.classifier = classifier
        self._items: dict[str, torch.Tensor] | None = None
        probe = held_out[self.indices[0]]
        self.plans = self._plans(task.exports(), probe)
        paired = bool(self.plans) and all(p.paired for p in self.plans)
        self.metrics = list(metrics or (PAIRED if paired else ("fd",)))
        unpaired = [p.name for p in self.plans if not p.paired]
        if unpaired and any(m in PAIRED for m in self.metrics):
            raise ConfigError(
                f"train.eval_metrics {', '.join(m for m in self.metrics if m in PAIRED)} need ground truth "
                f"(paired data, as pix2pix's A|B images); {', '.join(unpaired)} has none: use fd or kid"
            )
        self._suite = None
        self.names = self._names()

    # ------------------------------------------------------------------------------------- setup
    @staticmethod
    def _plans(exports: dict[str, Export], probe: dict[str, Any]) -> list[Plan]:
        plans = []
        for name, export in exports.items():
            plan = None
            if export.kind == IMAGE_TO_IMAGE:
                direction = export.options.get("direction", name)
                if "input" in probe and "target" in probe:
                    plan = Plan(name, export, "input", "target", paired=True)
                elif "A" in probe and "B" in probe:
                    source, target = ("B", "A") if direction == "b2a" else ("A", "B")
                    plan = Plan(name, export, source, target)
                elif "image" in probe:
                    plan = Plan(name, export, "image", "image")
            elif export.kind == NOISE_TO_IMAGE and "image" in probe:
                plan = Plan(name, export, None, "image")
            elif export.kind == IMAGE_AND_TARGET_TO_IMAGE and "image" in probe and "label" in probe:
                plan = Plan(name, export, "image", "image")
            if plan is None:
                log.warning(
                    "train.eval_every: export %s (%s) is not scored during training", name, export.kind
                )
            else:
                plans.append(plan)
        return plans

    def _names(self) -> list[str]:
        keys = [self._key(m) for m in self.metrics]
        if len(self.plans) == 1:
            return [f"eval/{k}" for k in keys]
        return [f"eval/{k}" for k in keys] + [f"eval/{p.name}/{k}" for p in self.plans for k in keys]

    def _key(self, metric: str) -> str:
        """The logged name of ``metric``: ``fd`` and ``kid`` in random features are ``fd_random``..."""
        return metric if metric in PAIRED or self.classifier else f"{metric}_random"

    def suite(self):
        """The metrics' ``Suite`` (its extractor loaded on first use, the random state left alone)."""
        if self._suite is None:
            from translate.metrics.features import classifier_extractor, random_extractor
            from translate.metrics.scoring import Suite

            suite = Suite({SUITE_NAMES[m] for m in self.metrics}, seed=self.seed)
            if any(m in DISTRIBUTION for m in self.metrics):
                with preserved_random_state():
                    if self.classifier:
                        extractor, _ = classifier_extractor(self.classifier, self.device)
                    else:
                        extractor = random_extractor(self.seed, self.device)
                suite.extractors.append(extractor)
            self._suite = suite
        return self._suite

    def items(self) -> dict[str, torch.Tensor]:
        """The held-out images (and labels) the plans read, stacked, on the CPU (loaded once)."""
        if self._items is None:
            keys = {p.reference for p in self.plans} | {p.inputs for p in self.plans if p.inputs}
            if any(p.export.kind == IMAGE_AND_TARGET_TO_IMAGE for p in self.plans):
                keys.add("label")
            rows = [self.held_out[i] for i in self.indices]
            self._items = {k: torch.stack([torch.as_tensor(r[k]) for r in rows]) for k in keys}
        return self._items

    # ------------------------------------------------------------------------------------- scoring
    @torch.no_grad()
    def evaluate(self, task: nn.Module) -> dict[str, float]:
        """``{"eval/<metric>": value}`` for the task as it is (the caller puts it in eval mode and swaps in
        the exported weights); the random state is left as it was."""
        with preserved_random_state():
            suite, items = self.suite(), self.items()
            per_export: dict[str, dict[str, float]] = {}
            for plan in self.plans:
                module = task.get_submodule(plan.export.module)
                per_export[plan.name] = self._score(plan, module, suite, items)
        keys = [self._key(m) for m in self.metrics]
        values: dict[str, float] = {}
        for key in keys:
            found = [scores[key] for scores in per_export.values() if key in scores]
            values[f"eval/{key}"] = sum(found) / len(found) if found else math.nan
        if len(per_export) > 1:
            for name, scores in per_export.items():
                values.update({f"eval/{name}/{k}": scores.get(k, math.nan) for k in keys})
        return values

    def _score(
        self, plan: Plan, module: nn.Module, suite, items: dict[str, torch.Tensor]
    ) -> dict[str, float]:
        from translate.metrics.scoring import evaluate_sampling, evaluate_targets, evaluate_translation

        export, device = plan.export, self.device
        reference = items[plan.reference]
        chunks = range(0, len(reference), EVAL_BATCH)
        if export.kind == NOISE_TO_IMAGE:
            codes, labels = self._codes(export, len(reference))

            def generate(z: torch.Tensor, chunk: torch.Tensor | None) -> torch.Tensor:
                args = (z.to(device),) if chunk is None else (z.to(device), chunk.to(device))
                return module(*args).float().cpu()

            real = [(reference[i : i + EVAL_BATCH], None) for i in chunks]
            scores = evaluate_sampling(suite, generate, codes, labels, real, [], batch_size=EVAL_BATCH)
            subject = "samples"
        elif export.kind == IMAGE_AND_TARGET_TO_IMAGE:
            space = LabelSpace.from_dict(export.options["labels"])

            def translate_to(images: torch.Tensor, source: torch.Tensor, target: dict[str, float]):
                labels = space.apply(source.to(device).float(), target)
                return module(images.to(device), labels).float().cpu()

            switch_on = {n for n in space.names if space.kind == "domains" or len(space.group_of(n)) > 1}
            inputs, labels = items[plan.inputs], items["label"]
            batches = [
                {"image": inputs[i : i + EVAL_BATCH], "label": labels[i : i + EVAL_BATCH]} for i in chunks
            ]
            real = [reference[i : i + EVAL_BATCH] for i in chunks]
            scores = evaluate_targets(
                suite, translate_to, batches, list(space.names), switch_on, None, reference=real
            )
            subject = "translation"
        else:
            translate = self._translator(module, export)
            inputs = items[plan.inputs]
            if plan.paired:
                batches = [
                    {"input": inputs[i : i + EVAL_BATCH], "target": reference[i : i + EVAL_BATCH]}
                    for i in chunks
                ]
                real = None
            else:
                batches = [{"input": inputs[i : i + EVAL_BATCH]} for i in chunks]
                real = [reference[i : i + EVAL_BATCH] for i in chunks]
            scores = evaluate_translation(suite, translate, batches, real)
            subject = "translation"
        out = {}
        for score in scores:
            name = SCORE_NAMES.get(score.metric)
            if score.subject != subject or name is None:
                continue
            if name in DISTRIBUTION and score.features == "random":
                name += "_random"
            out[name] = float(score.value)
        return out

    def _translator(self, module: nn.Module, export: Export) -> Callable[[torch.Tensor], torch.Tensor]:
        """``images -> translations`` as ``translate apply`` makes them: in eval mode, or (pix2pix's
        ``batch_statistics``) one image at a time in training mode with dropout seeded."""
        device, seed = self.device, self.seed

        def translate(images: torch.Tensor) -> torch.Tensor:
            images = images.to(device)
            if not export.batch_statistics:
                return module(images).float().cpu()
            out = []
            with batch_statistics(module):
                for image in images:
                    torch.manual_seed(seed)
                    out.append(module(image[None]))
            return torch.cat(out).float().cpu()

        return translate

    def _codes(self, export: Export, count: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The same ``count`` noise codes at every evaluation (``seed``), classes in turn."""
        generator = torch.Generator().manual_seed(self.seed)
        latent = int(export.options["latent_dim"])
        if export.options.get("latent_distribution", "normal") == "uniform":
            codes = torch.rand(count, latent, generator=generator) * 2 - 1
        else:
            codes = torch.randn(count, latent, generator=generator)
        classes = export.options.get("num_classes")
        return codes, (torch.arange(count) % classes if classes else None)
