"""The one evaluation: ``translate eval`` and ``train.eval_every`` score a model's exports with the same code.

For each export, its kind (``translate.kinds``) says which held-out items it reads and scores it with
``translate.metrics.scoring`` beside its baseline. What differs between the two entry points is only what
they are given:

- ``translate eval`` (``score_run``): the model of a run, the held-out split of ``--data`` (and training
  images as the reference of conditional and noise models), Inception, LPIPS and the ``--classifier``; it
  writes ``eval.json``.
- ``train.eval_every`` (``Evaluator``, handed to the trainer by ``translate.api.train``): the task being
  trained, a fixed subset of the held-out split loaded once, the features of ``train.eval_classifier`` or
  of a fixed random conv net (then logged as ``fd_random`` / ``kid_random``: a proxy that only compares
  steps of one run); the trainer's random state is left as it was.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from translate.config import TrainConfig, build_config
from translate.engine import checkpoint as ckpt
from translate.engine.random_state import preserved_random_state
from translate.errors import ConfigError
from translate.exports import Export
from translate.kinds import HeldOut, Scoring, kind_of
from translate.metrics.features import classifier_extractor, inception_extractor, random_extractor
from translate.metrics.perceptual import load_lpips
from translate.metrics.report import Report, Score
from translate.metrics.scoring import (
    DISTRIBUTION,
    HIGHER_IS_BETTER,
    METRICS,
    PAIRED,
    TRAINING_METRICS,
    Suite,
    training_name,
)
from translate.metrics.weights import MissingWeights, sha256
from translate.registry import DATASETS, TASKS

log = logging.getLogger("translate")

EVAL_BATCH = 16
"""Images per forward pass of an evaluation during training."""


def best_mode(metric: str, mode: str | None) -> str:
    """``min`` or ``max``: ``mode`` when given, else ``max`` for PSNR and SSIM and ``min`` for the rest."""
    return mode or ("max" if metric.rsplit("/", 1)[-1] in HIGHER_IS_BETTER else "min")


def score_exports(
    scoring: Scoring, task: nn.Module, exports: dict[str, Export], data: HeldOut, plans: dict | None = None
) -> dict[str, list[Score]]:
    """Every export's scores, by its kind.

    Args:
        scoring: metrics, device, seed, batch size and where notes go.
        task: the trained task in eval mode.
        exports: the exports to score, by name.
        data: the held-out data.
        plans: each export's ``Plan``; None: asked of its kind on the first held-out item.

    Returns:
        Each export's scores and its baseline's, by export name.
    """
    scores = {}
    for name, export in exports.items():
        kind = kind_of(export)
        plan = (plans or {}).get(name) or kind.plan(name, export, data.items[data.indices[0]])
        if plan is None:
            scoring.note(f"{name} ({export.kind}) cannot be scored on this data")
            continue
        scores[name] = kind.score(scoring, name, export, task, plan, data)
    return scores


# ----------------------------------------------------------------------------------------- during training
class Evaluator:
    """Scores a task's exports every ``train.eval_every`` steps on the first ``count`` evenly spaced items of
    ``held_out`` (plain-index items: evaluation transforms), loaded once. ``names`` are the keys it logs."""

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
        self.held_out, self.seed, self.device, self.classifier = held_out, seed, device, classifier
        count = min(count, len(held_out))
        self.indices = sorted({i * len(held_out) // count for i in range(count)})
        self._items: list[dict[str, Any]] | None = None
        self.plans = self._plans(task.exports(), held_out[self.indices[0]])
        paired = bool(self.plans) and all(plan.paired for plan in self.plans.values())
        self.metrics = list(metrics or (("l1", "psnr", "ssim") if paired else ("fd",)))
        unpaired = [name for name, plan in self.plans.items() if not plan.paired]
        needs_truth = [m for m in self.metrics if TRAINING_METRICS[m] in PAIRED]
        if unpaired and needs_truth:
            raise ConfigError(
                f"train.eval_metrics {', '.join(needs_truth)} need ground truth (paired data, as pix2pix's "
                f"A|B images); {', '.join(unpaired)} has none: use fd or kid"
            )
        self._suite: Suite | None = None
        keys = [self._key(m) for m in self.metrics]
        self.names = [f"eval/{k}" for k in keys]
        if len(self.plans) > 1:
            self.names += [f"eval/{name}/{k}" for name in self.plans for k in keys]

    @classmethod
    def for_training(
        cls, task: nn.Module, held_out: torch.utils.data.Dataset, train: TrainConfig, device: torch.device
    ) -> Evaluator:
        """The evaluator of ``train.eval_images``, ``eval_metrics``, ``eval_classifier`` and ``seed``.

        Args:
            task: the task being trained.
            held_out: its held-out data.
            train: the run's ``train`` config.
            device: where the networks run.

        Returns:
            The Evaluator, built without touching the random state.
        """
        with preserved_random_state():
            return cls(
                task,
                held_out,
                train.eval_images,
                train.eval_metrics,
                train.eval_classifier,
                train.seed,
                device,
            )

    @staticmethod
    def best_mode(metric: str, mode: str | None) -> str:
        """``min`` or ``max`` for ``train.best_metric`` (``mode`` when given)."""
        return best_mode(metric, mode)

    def _plans(self, exports: dict[str, Export], probe: dict[str, Any]) -> dict:
        plans = {}
        for name, export in exports.items():
            plan = kind_of(export).plan(name, export, probe)
            if plan is None:
                log.warning(
                    "train.eval_every: export %s (%s) is not scored during training", name, export.kind
                )
            else:
                plans[name] = plan
        return plans

    def _key(self, metric: str) -> str:
        """The logged name of ``metric``: ``fd`` and ``kid`` in random features are ``fd_random``..."""
        return metric if TRAINING_METRICS[metric] in PAIRED or self.classifier else f"{metric}_random"

    def suite(self) -> Suite:
        """The metrics' ``Suite`` (its extractor loaded on first use, the random state left alone)."""
        if self._suite is None:
            suite = Suite({TRAINING_METRICS[m] for m in self.metrics}, seed=self.seed)
            if suite.wants(*DISTRIBUTION):
                with preserved_random_state():
                    if self.classifier:
                        extractor, _ = classifier_extractor(self.classifier, self.device)
                    else:
                        extractor = random_extractor(self.seed, self.device)
                suite.extractors.append(extractor)
            self._suite = suite
        return self._suite

    def items(self) -> list[dict[str, Any]]:
        """The scored held-out items (loaded once)."""
        if self._items is None:
            self._items = [self.held_out[i] for i in self.indices]
        return self._items

    @torch.no_grad()
    def evaluate(self, task: nn.Module) -> dict[str, float]:
        """``{"eval/<metric>": value}`` for the task as it is (the caller puts it in eval mode and swaps in
        the exported weights); the random state is left as it was."""
        with preserved_random_state():
            scoring = Scoring(self.suite(), self.device, self.seed, EVAL_BATCH, log.debug)
            items = self.items()
            exports = {name: e for name, e in task.exports().items() if name in self.plans}
            scores = score_exports(scoring, task, exports, HeldOut(items, range(len(items))), self.plans)
        keys = [self._key(m) for m in self.metrics]
        per_export: dict[str, dict[str, float]] = {}
        for name, found in scores.items():
            named = ((training_name(s), s) for s in found if s.subject in ("translation", "samples"))
            per_export[name] = {key: float(s.value) for key, s in named if key in keys}
        values = {}
        for key in keys:
            found = [s[key] for s in per_export.values() if key in s]
            values[f"eval/{key}"] = sum(found) / len(found) if found else math.nan
        if len(per_export) > 1:
            for name, found in per_export.items():
                values.update({f"eval/{name}/{k}": found.get(k, math.nan) for k in keys})
        return values


# ----------------------------------------------------------------------------------------- translate eval
def parse_metrics(text: str) -> set[str]:
    """``translate eval --metrics``: ``all`` or comma-separated ``METRICS`` names."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return set(METRICS)
    unknown = [n for n in names if n not in METRICS]
    if unknown or not names:
        raise ConfigError(
            f"unknown metric {', '.join(unknown) or '(none)'}; known: all, {', '.join(METRICS)}"
        )
    return set(names)


def score_run(
    run: str | Path,
    data: str | Path,
    wanted: set[str],
    count: int = 2000,
    classifier: str | Path | None = None,
    inception_weights: str | Path | None = None,
    direction: str | None = None,
    seed: int = 0,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    explicit: bool = False,
) -> Report:
    """Score the model at ``run`` on the held-out split of ``data`` (``translate eval``).

    Args:
        run: a run folder, checkpoint folder or ``model.safetensors``.
        data: the dataset, in the run's layout.
        wanted: ``METRICS`` names.
        count: inputs translated, samples drawn and reference images, at most.
        classifier, inception_weights: feature extractors (``translate classifier train``; Inception-v3).
        direction: only this export; None: every export.
        seed: noise codes and subsets.
        batch_size: images per forward pass.
        device: where the networks run.
        explicit: the metrics were named (a named LPIPS whose backbone is missing is an error, not a note).

    Returns:
        The Report (``eval.json``), each export's scores beside its baseline.
    """
    from translate.inference.model import build_model, model_exports

    checkpoint = ckpt.load_model_checkpoint(run)
    config = build_config(checkpoint.config)
    exports = model_exports(checkpoint)
    if direction is not None:
        if direction not in exports:
            raise ConfigError(f"this {checkpoint.task} model offers {', '.join(exports)}; not {direction}")
        exports = {direction: exports[direction]}
    device = torch.device(device)
    report = Report(checkpoint.task, checkpoint.step, str(run), str(data))
    suite = build_suite(report, wanted, classifier, inception_weights, seed, count, device, explicit)
    scoring = Scoring(suite, device, seed, batch_size, report.note, report.sections)
    task = build_model(checkpoint, device)
    dataset_kind = TASKS.get(checkpoint.task).dataset
    data_config = dataclasses.replace(config.data, root=str(data), max_images=None, num_workers=0)
    for name, export in exports.items():
        kind = kind_of(export)
        held_out_config = dataclasses.replace(data_config, **kind.data_options(name, export, dataset_kind))
        held_out = DATASETS.build(dataset_kind, data=held_out_config, train=False)
        held = HeldOut(held_out, range(min(count, len(held_out))))
        if kind.reference_from_training:
            train = DATASETS.build(dataset_kind, data=held_out_config, train=True)
            order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
            held = dataclasses.replace(held, reference=train, reference_indices=order.tolist())
        with torch.no_grad():
            report.add(score_exports(scoring, task, {name: export}, held)[name])
    return report


def build_suite(report, wanted, classifier, inception_weights, seed, count, device, explicit=False) -> Suite:
    """The extractors and LPIPS model the asked metrics need; what is missing becomes a note."""
    suite = Suite(wanted, seed=seed, pairs=max(1, min(100, count // 2)))
    if suite.wants(*DISTRIBUTION):
        try:
            suite.extractors.append(inception_extractor(inception_weights, device))
        except MissingWeights as exc:
            if inception_weights is not None:
                raise
            report.note(f"FID/KID/IS on Inception skipped: {exc}")
    if classifier is not None:
        extractor, _ = classifier_extractor(classifier, device)
        suite.extractors.append(extractor)
        suite.classifier = extractor
    elif "domain" in wanted:
        report.note(
            "classifier scores (domain) need --classifier clf.pt: train one with "
            "`translate classifier train DATA --out clf.pt`"
        )
    if suite.wants("lpips", "diversity"):
        try:
            suite.lpips = load_lpips("alex", device)
        except MissingWeights as exc:
            if explicit and "lpips" in wanted:
                raise
            report.note(f"LPIPS skipped: {exc}")
    for extractor in suite.extractors:
        report.extractors[extractor.key] = extractor.describe()
    if suite.lpips is not None:
        weights = suite.lpips.weights
        report.extractors["lpips"] = {
            "name": suite.lpips.name,
            "weights": weights,
            "sha256": sha256(weights) if weights else None,
        }
    return suite


def write_report(report: Report, run: str | Path) -> Path:
    """``eval.json`` in the run folder (beside the checkpoint when a checkpoint was named), atomically."""
    file = ckpt.resolve_model_file(run)
    if file.parent.parent.name == "checkpoints":
        folder = file.parent.parent.parent
    else:
        folder = Path(run) if Path(run).is_dir() else file.parent
    path = folder / "eval.json"
    partial = path.with_name("eval.json.partial")
    partial.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    partial.replace(path)
    return path


def score_pairs(
    run: str | Path,
    aligned: str | Path | None,
    inputs: str | Path | None,
    targets: tuple[str, ...],
    direction: str | None = None,
    label_colors: int | None = None,
    train_pairs: str | Path | None = None,
    size: int | None = None,
):
    """``translate eval``'s paired mode: L1, PSNR, SSIM (and label accuracy) against paired ground truth.

    Args:
        run: the model.
        aligned: a folder of A|B pairs; or ``inputs`` with ``targets`` (folders of the same file names).
        direction: ``a2b`` or ``b2a`` (default: the run's with ``aligned``, else ``a2b``).
        label_colors: also score label accuracy over this many colours.
        train_pairs: A|B training pairs whose most common label per pixel is the trivial baseline.
        size: resize to ``size`` x ``size`` (default: the run's image size).

    Returns:
        ``translate.metrics.evaluate.PairedScores``.
    """
    from translate.inference import Translator
    from translate.metrics.evaluate import aligned_pairs, evaluate_pairs, named_pairs

    if direction not in (None, "a2b", "b2a"):
        raise ConfigError(f"--direction must be a2b or b2a; got {direction}")
    if bool(aligned) == bool(inputs and targets):
        raise ConfigError("give either --aligned DIR or both --inputs DIR and --targets DIR")
    trained = ckpt.load_model_checkpoint(run).config["data"]
    direction = direction or (trained["direction"] if aligned else "a2b")
    size = size or trained["image_size"]
    translator = Translator.from_run(run, direction=direction)
    if aligned:
        pairs = aligned_pairs(Path(aligned), direction, translator.in_channels, size)
    else:
        pairs = named_pairs(Path(inputs), [Path(t) for t in targets], translator.in_channels, size)
    train_targets = None
    if train_pairs:
        if not (aligned and label_colors):
            raise ConfigError("--train-pairs needs --aligned and --label-colors")
        found = aligned_pairs(Path(train_pairs), direction, translator.in_channels, size)
        train_targets = torch.stack([target for _, target in found])
    return evaluate_pairs(translator.translate_many, pairs, label_colors, train_targets)
