"""Score a trained model of any export kind, from callables and batches of images (never a model class):

- ``evaluate_translation``: image -> image (CycleGAN, UNIT, pix2pix): the translations of held-out inputs
  against the real target domain (FID, KID, IS), against their ground truth when there is one (SSIM,
  PSNR, L1, LPIPS), and the share a domain classifier reads as the target domain;
- ``evaluate_targets``: image + target -> image (StarGAN): every label flipped (or switched on), the share
  read with the asked value per label, and the distribution of the translations;
- ``evaluate_sampling``: noise -> image (GAN family): samples against real training images, class
  coverage and (cGAN) class accuracy read by a classifier, diversity between codes, and the distance to
  the nearest training image (memorisation).

The baseline is always scored in the same way beside the model: the untranslated input, or for noise
models the real held-out images. Images stream through in batches: only features, per-image scores and
small (``nn_size`` px) copies for the memorisation check are kept.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from translate.config import EVAL_METRICS
from translate.metrics.distribution import fid, inception_score, kid
from translate.metrics.features import Extractor
from translate.metrics.generative import class_coverage
from translate.metrics.paired import l1_distance, psnr
from translate.metrics.perceptual import LPIPS, ssim
from translate.metrics.report import Score

METRICS = ("fid", "kid", "is", "lpips", "ssim", "psnr", "l1", "domain", "diversity", "nn")
"""What ``translate eval --metrics`` takes."""
DISTRIBUTION = ("fid", "kid", "is")
PAIRED = ("ssim", "psnr", "l1", "lpips")
TRAINING_METRICS = {name: "fid" if name == "fd" else name for name in EVAL_METRICS}
"""What ``train.eval_metrics`` takes -> the ``METRICS`` name computed: ``fd`` is FID's formula in the
features of the run's classifier (or of ``RandomFeatures``), never Inception's."""
HIGHER_IS_BETTER = ("psnr", "ssim")
"""Training metrics that improve upwards (the others downwards)."""


def training_name(score: Score) -> str | None:
    """The name a training-time evaluation logs ``score`` under (``psnr``, ``fd``, ``fd_random`` ...), or
    None for a score that ``train.eval_metrics`` cannot name."""
    name = {"FID": "fd", "FD": "fd"}.get(score.metric, score.metric.lower())
    if name not in TRAINING_METRICS:
        return None
    return f"{name}_random" if score.features == "random" else name


@dataclass
class Suite:
    """What to compute and with what: the asked ``metrics``, the feature ``extractors`` (Inception and/or
    the classifier), the ``classifier`` that judges domains, classes and attributes (one of the
    extractors), and the LPIPS model (paired LPIPS and diversity)."""

    metrics: set[str]
    extractors: list[Extractor] = field(default_factory=list)
    classifier: Extractor | None = None
    lpips: LPIPS | None = None
    seed: int = 0
    kid_subsets: int = 100
    is_splits: int = 10
    nn_size: int = 32
    """Side of the copies compared in the memorisation check."""
    nn_images: int = 5000
    """Training images searched for each sample's nearest neighbour."""
    pairs: int = 100
    """Image pairs of the diversity score."""

    def wants(self, *names: str) -> bool:
        return any(name in self.metrics for name in names)

    def active(self) -> list[Extractor]:
        """The extractors some asked metric needs."""
        out = []
        for extractor in self.extractors:
            judge = extractor is self.classifier and self.wants("domain")
            if self.wants(*DISTRIBUTION) or judge:
                out.append(extractor)
        return out


class Collected:
    """What the metrics need of one set of images, gathered batch by batch: features and logits of every
    active extractor, per-image paired scores, small copies (``keep_small``) and labels."""

    def __init__(self, suite: Suite, keep_small: bool = False) -> None:
        self.suite = suite
        self.keep_small = keep_small
        self.features: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.logits: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.paired: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.small: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        self.count = 0

    def add(
        self, images: torch.Tensor, targets: torch.Tensor | None = None, labels: torch.Tensor | None = None
    ) -> None:
        images = images.detach().float().cpu()
        if not len(images):
            return
        self.count += len(images)
        for extractor in self.suite.active():
            features, logits = extractor(images)
            self.features[extractor.key].append(features)
            self.logits[extractor.key].append(logits)
        if targets is not None and targets.shape == images.shape:
            self._pairs(images, targets.detach().float().cpu())
        if self.keep_small:
            self.small.append(shrink(images, self.suite.nn_size))
        if labels is not None:
            self.labels.append(labels.detach().cpu())

    def _pairs(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        if self.suite.wants("l1"):
            self.paired["L1"].append(l1_distance(images, targets))
        if self.suite.wants("psnr"):
            self.paired["PSNR"].append(psnr(images, targets))
        if self.suite.wants("ssim"):
            self.paired["SSIM"].append(ssim(images, targets))
        if self.suite.wants("lpips") and self.suite.lpips is not None:
            self.paired["LPIPS"].append(self.suite.lpips(images, targets))

    def feature(self, key: str) -> torch.Tensor:
        return torch.cat(self.features[key])

    def logit(self, key: str) -> torch.Tensor:
        return torch.cat(self.logits[key])

    def predictions(self) -> torch.Tensor:
        """The judging classifier's classes ``(N,)`` (argmax)."""
        return self.logit("classifier").argmax(1)

    def label_tensor(self) -> torch.Tensor:
        return torch.cat(self.labels)


def shrink(images: torch.Tensor, size: int) -> torch.Tensor:
    """``images`` area-downsampled to at most ``size`` px a side, on the [0, 1] scale, flattened."""
    if max(images.shape[-2:]) > size:
        height, width = images.shape[-2:]
        scale = size / max(height, width)
        target = (max(1, round(height * scale)), max(1, round(width * scale)))
        images = F.interpolate(images, size=target, mode="area")
    return ((images + 1) / 2).flatten(1)


# ----------------------------------------------------------------------------------------- shared scores
def distribution_scores(
    suite: Suite, subject: Collected, reference: Collected | None, name: str, section: str
) -> list[Score]:
    """FID (FD on the classifier's features), KID to ``reference`` and IS of ``subject``, per extractor."""
    scores = []
    for extractor in suite.extractors:
        if extractor.key not in subject.features or subject.count < 2:
            continue
        key, features = extractor.key, subject.feature(extractor.key)
        if reference is not None and reference.count >= 2 and key in reference.features:
            real = reference.feature(key)
            if suite.wants("fid"):
                metric = "FID" if key == "inception" else "FD"
                scores.append(Score(metric, name, fid(features, real), subject.count, key, section=section))
            if suite.wants("kid"):
                mean, std = kid(features, real, suite.kid_subsets, seed=suite.seed)
                scores.append(Score("KID", name, mean, subject.count, key, std, section))
        if suite.wants("is") and extractor.kind == "domains":
            mean, std = inception_score(subject.logit(key), suite.is_splits, suite.seed)
            scores.append(Score("IS", name, mean, subject.count, key, std, section))
    return scores


def paired_scores(subject: Collected, name: str, section: str) -> list[Score]:
    """The mean of each per-image paired score (SSIM, PSNR, L1, LPIPS) of ``subject``."""
    scores = []
    for metric, values in subject.paired.items():
        values = torch.cat(values)
        features = "lpips" if metric == "LPIPS" else "-"
        scores.append(
            Score(metric, name, values.float().mean().item(), len(values), features, section=section)
        )
    return scores


def pair_distance(suite: Suite, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Distance of each image pair ``(a[i], b[i])``: LPIPS when loaded, else the L2 distance of the
    classifier's (or Inception's) features, else the mean absolute pixel difference on the [0, 1] scale.
    Returns the distances ``(N,)`` and the features they were measured in."""
    if suite.lpips is not None:
        return suite.lpips(a, b), "lpips"
    for extractor in [suite.classifier, *suite.extractors]:
        if extractor is not None:
            fa, _ = extractor(a)
            fb, _ = extractor(b)
            return (fa - fb).norm(dim=1), extractor.key
    return l1_distance(a.float().cpu(), b.float().cpu()), "pixels"


def nearest_distances(queries: torch.Tensor, references: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """For each flattened image in ``queries`` ``(N, P)``, the root-mean-square pixel distance to its
    nearest image in ``references`` ``(M, P)``: ``(N,)``."""
    out = []
    for start in range(0, len(queries), chunk):
        distances = torch.cdist(queries[start : start + chunk].double(), references.double())
        out.append(distances.min(1).values / queries.shape[1] ** 0.5)
    return torch.cat(out).float()


# ----------------------------------------------------------------------------------------- image -> image
def evaluate_translation(
    suite: Suite,
    translate: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterable[dict[str, torch.Tensor]],
    reference: Iterable[torch.Tensor] | None = None,
    target_class: int | None = None,
    section: str = "",
) -> list[Score]:
    """Translate each batch's ``input`` (``(B, C, H, W)`` in [-1, 1]); score the translations and the
    inputs as they are against the batch's ``target`` (ground truth, optional: paired scores) and the
    ``reference`` images of the target domain (distribution scores; default: the targets). With
    ``target_class`` (the judging classifier's index of the target domain): the share read as it."""
    outputs, inputs, real = Collected(suite), Collected(suite), Collected(suite)
    for batch in batches:
        images, targets = batch["input"], batch.get("target")
        outputs.add(translate(images), targets)
        inputs.add(images, targets)
        if reference is None and targets is not None:
            real.add(targets)
    for images in reference or ():
        real.add(images)
    scores = []
    for subject, name in ((outputs, "translation"), (inputs, "input as-is")):
        scores += distribution_scores(suite, subject, real if real.count else None, name, section)
        scores += paired_scores(subject, name, section)
        if target_class is not None and suite.wants("domain") and subject.count:
            share = (subject.predictions() == target_class).double().mean().item()
            scores.append(Score("target share", name, share, subject.count, "classifier", section=section))
    return scores


# ----------------------------------------------------------------------------------------- image + target
def evaluate_targets(
    suite: Suite,
    translate: Callable[[torch.Tensor, torch.Tensor, dict[str, float]], torch.Tensor],
    batches: Iterable[dict[str, torch.Tensor]],
    names: list[str],
    switch_on: set[str],
    judge: Callable[[torch.Tensor], dict[str, torch.Tensor]] | None,
    judge_features: str = "classifier",
    reference: Iterable[torch.Tensor] | None = None,
    section: str = "",
) -> list[Score]:
    """StarGAN: each batch holds ``image`` and its own ``label`` ``(B, len(names))`` 0/1.
    ``translate(images, source_labels, target)`` with ``target`` like ``{"Male": 0.0}``. Every label is
    flipped (those in ``switch_on``, members of exclusive groups or domains, are switched on instead),
    and ``judge(images)`` (name -> ``(N,)`` 0/1, for the labels it reads) tells whether the translation
    has the asked value (rows ``flip <name>`` and ``to <name>``: the share read with it); the untranslated
    input is read the same way as the baseline.
    Distribution scores: the translations (input ``i`` with the ``i % len(names)``-th target) and the
    inputs against ``reference`` (real training images)."""
    mixed, inputs, real = Collected(suite), Collected(suite), Collected(suite)
    hits: dict[str, dict[str, list[torch.Tensor]]] = {n: defaultdict(list) for n in names}
    judging = judge is not None and suite.wants("domain")
    for batch in batches:
        images, labels = batch["image"], batch["label"].float()
        outputs = torch.empty_like(images)
        read_input = judge(images) if judging else {}
        for column, name in enumerate(names):
            values = torch.ones(len(images)) if name in switch_on else 1 - labels[:, column].cpu()
            translated = _translate_to_values(translate, images, labels, name, values)
            pick = torch.nonzero((torch.arange(len(images)) + inputs.count) % len(names) == column).flatten()
            outputs[pick] = translated[pick]
            read = judge(translated) if judging else {}
            if name in read:
                hits[name]["translation"].append((read[name].cpu() == values).double())
                hits[name]["input as-is"].append((read_input[name].cpu() == values).double())
        mixed.add(outputs)
        inputs.add(images)
    for images in reference or ():
        real.add(images)
    scores = []
    for subject, name in ((mixed, "translation"), (inputs, "input as-is")):
        scores += distribution_scores(suite, subject, real if real.count else None, name, section)
    for label in names:
        for subject, values in hits[label].items():
            values = torch.cat(values)
            verb = "to" if label in switch_on else "flip"
            scores.append(
                Score(
                    f"{verb} {label}",
                    subject,
                    values.mean().item(),
                    len(values),
                    judge_features,
                    section=section,
                )
            )
    return scores


def _translate_to_values(translate, images, labels, name: str, values: torch.Tensor) -> torch.Tensor:
    """``images`` translated with label ``name`` set to each image's own value in ``values`` ``(N,)``."""
    translated = torch.empty_like(images)
    for value in values.unique().tolist():
        rows = torch.nonzero(values == value).flatten()
        translated[rows] = translate(images[rows], labels[rows], {name: float(value)}).to(images.device)
    return translated


# ----------------------------------------------------------------------------------------- noise -> image
def evaluate_sampling(
    suite: Suite,
    generate: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    codes: torch.Tensor,
    labels: torch.Tensor | None,
    train: Iterable[tuple[torch.Tensor, torch.Tensor | None]],
    held_out: Iterable[tuple[torch.Tensor, torch.Tensor | None]],
    class_map: dict[int, int] | None = None,
    pair_codes: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None,
    batch_size: int = 64,
    section: str = "",
) -> list[Score]:
    """Score a noise -> image model (the GAN family) beside real held-out images.

    Args:
        suite: what to compute and with what.
        generate: ``generate(codes, labels)`` -> images ``(B, C, H, W)`` in ``[-1, 1]``.
        codes: ``(n, latent_dim)``; ``labels``: their classes ``(n,)`` (class-conditional models) or None.
        train: batches of real training images and their labels (or None): the first ``n`` are the
            reference; the nearest-neighbour search reads up to ``suite.nn_images``.
        held_out: real held-out batches, up to ``n`` scored in the same way as the baseline.
        class_map: the model's class index -> the classifier's, for the class accuracy.
        pair_codes: ``(z1, z2, labels)``: the diversity pairs ``generate(z1, l)`` vs ``generate(z2, l)``.
        batch_size: codes per ``generate`` call.
        section: the section of every score.

    Returns:
        Distribution, classifier, memorisation and diversity scores of ``samples`` and ``real held-out``.
    """
    n, keep_small = len(codes), suite.wants("nn")
    samples = Collected(suite, keep_small)
    for start in range(0, n, batch_size):
        chunk = None if labels is None else labels[start : start + batch_size]
        samples.add(generate(codes[start : start + batch_size], chunk), labels=chunk)
    real, train_small = _reference_and_small(suite, train, n)
    baseline, pool = _baseline_and_pool(suite, held_out, n)
    subjects = ((samples, "samples"), (baseline, "real held-out"))
    scores = []
    for subject, name in subjects:
        scores += distribution_scores(suite, subject, real if real.count else None, name, section)
    if suite.classifier is not None and suite.wants("domain"):
        scores += _class_scores(suite, subjects, class_map, section)
    if keep_small and train_small:
        references = torch.cat(train_small)
        for subject, name in subjects:
            if subject.small:
                distance = nearest_distances(torch.cat(subject.small), references).mean().item()
                scores.append(
                    Score("NN train distance", name, distance, subject.count, "pixels", section=section)
                )
    if suite.wants("diversity") and pair_codes is not None:
        if labels is None:  # unconditional: pairs of any two real images, as the samples' pairs are
            pool = [(images, None) for images, _ in pool]
        scores += _diversity_scores(suite, generate, pair_codes, pool, batch_size, section)
    return scores


def _reference_and_small(
    suite: Suite, train: Iterable[tuple[torch.Tensor, torch.Tensor | None]], n: int
) -> tuple[Collected, list[torch.Tensor]]:
    """The first ``n`` training images, collected, and small copies of up to ``suite.nn_images`` of them
    (when the memorisation check is asked)."""
    real, small, searched = Collected(suite), [], 0
    wants_nn = suite.wants("nn")
    for images, _ in train:
        if real.count < n:
            real.add(images[: n - real.count])
        if wants_nn and searched < suite.nn_images:
            small.append(shrink(images[: suite.nn_images - searched].float().cpu(), suite.nn_size))
            searched += len(small[-1])
        if real.count >= n and (not wants_nn or searched >= suite.nn_images):
            break
    return real, small


def _baseline_and_pool(
    suite: Suite, held_out: Iterable[tuple[torch.Tensor, torch.Tensor | None]], n: int
) -> tuple[Collected, list[tuple[torch.Tensor, torch.Tensor | None]]]:
    """Up to ``n`` held-out images, collected as the baseline, and a pool of them for real pairs."""
    baseline = Collected(suite, suite.wants("nn"))
    pool: list[tuple[torch.Tensor, torch.Tensor | None]] = []
    for images, image_labels in held_out:
        images = images[: n - baseline.count]
        image_labels = None if image_labels is None else image_labels[: len(images)]
        baseline.add(images, labels=image_labels)
        if sum(len(p[0]) for p in pool) < 4 * suite.pairs:
            pool.append((images.float().cpu(), image_labels))
        if baseline.count >= n:
            break
    return baseline, pool


def _class_scores(suite: Suite, subjects, class_map: dict[int, int] | None, section: str) -> list[Score]:
    """Class coverage (entropy, classes covered) and, with ``class_map``, the class accuracy of each subject
    as the judging classifier reads it."""
    scores, num_classes = [], len(suite.classifier.classes)
    for subject, name in subjects:
        if not subject.count or "classifier" not in subject.logits:
            continue
        predicted = subject.predictions()
        coverage = class_coverage(predicted, num_classes)
        for metric, key in (("coverage entropy", "entropy"), ("classes covered", "covered")):
            scores.append(Score(metric, name, coverage[key], subject.count, "classifier", section=section))
        if class_map and subject.labels:
            asked = subject.label_tensor()
            known = torch.tensor([int(a) in class_map for a in asked])
            if known.any():
                expected = torch.tensor([class_map.get(int(a), -1) for a in asked])
                accuracy = (predicted[known] == expected[known]).double().mean().item()
                scores.append(
                    Score("class accuracy", name, accuracy, int(known.sum()), "classifier", section=section)
                )
    return scores


def _diversity_scores(suite, generate, pair_codes, pool, batch_size: int, section: str) -> list[Score]:
    """The mean distance between the images of two codes of the same class, and between two real images
    (of the same label when they have labels) as the baseline."""
    z1, z2, pair_labels = pair_codes
    values, features = [], "-"
    for start in range(0, len(z1), batch_size):
        chunk = None if pair_labels is None else pair_labels[start : start + batch_size]
        a = generate(z1[start : start + batch_size], chunk)
        b = generate(z2[start : start + batch_size], chunk)
        distance, features = pair_distance(suite, a, b)
        values.append(distance)
    values = torch.cat(values)
    scores = [Score("diversity", "samples", values.mean().item(), len(values), features, section=section)]
    real_pairs = same_label_pairs(pool, suite.pairs)
    if real_pairs is not None:
        distance, features = pair_distance(suite, *real_pairs)
        scores.append(
            Score(
                "diversity", "real held-out", distance.mean().item(), len(distance), features, section=section
            )
        )
    return scores


def same_label_pairs(
    pool: list[tuple[torch.Tensor, torch.Tensor | None]], count: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Up to ``count`` pairs of different real images, of the same label when the images have labels (a
    class-conditional model's pairs share their class)."""
    if not pool:
        return None
    images = torch.cat([p[0] for p in pool])
    labelled = all(p[1] is not None for p in pool)
    groups = [torch.arange(len(images))]
    if labelled:
        labels = torch.cat([p[1] for p in pool])
        groups = [torch.nonzero(labels == value).flatten() for value in labels.unique()]
    first, second = [], []
    for group in groups:
        pairs = len(group) // 2
        first.append(group[:pairs])
        second.append(group[pairs : 2 * pairs])
    first, second = torch.cat(first)[:count], torch.cat(second)[:count]
    if not len(first):
        return None
    return images[first], images[second]
