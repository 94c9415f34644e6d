"""Scores for noise -> image models (GAN, cGAN, DCGAN, WGAN), read through a small classifier trained on
the real training images (``translate.metrics.domain_classifier``) rather than a pretrained Inception:

    features, predicted = features_and_predictions(classifier, generated)
    fd = frechet_distance(*feature_statistics(features), *feature_statistics(real_test_features))
    coverage = class_coverage(predicted, num_classes)       # mode collapse: low entropy, few classes
    accuracy = conditional_accuracy(predicted, requested)   # cGAN: the class that was asked for

The Frechet distance is the FID formula in the classifier's feature space: its absolute value depends on
that classifier (and on the sample sizes), so compare it with the real train-vs-test distance (the floor)
scored by the same classifier, never with published FIDs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

ArrayLike = np.ndarray | torch.Tensor


def _float64(array: ArrayLike) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().double().numpy()
    return np.asarray(array, dtype=np.float64)


def feature_statistics(features: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (unbiased, float64) of ``features`` ``(N, D)``."""
    features = _float64(features)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must be (N, D) with N >= 2; got shape {features.shape}")
    return features.mean(0), np.atleast_2d(np.cov(features, rowvar=False))


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative rounding noise clipped to 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(values.clip(min=0))) @ vectors.T


def frechet_distance(mu1: ArrayLike, sigma1: ArrayLike, mu2: ArrayLike, sigma2: ArrayLike) -> float:
    """Frechet distance between the Gaussians N(mu1, sigma1) and N(mu2, sigma2):
    ``||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr(sqrtm(sigma1 sigma2))``.

    ``tr(sqrtm(sigma1 sigma2))`` is computed as the sum of the square roots of the eigenvalues of the
    symmetric PSD matrix ``sqrt(sigma1) sigma2 sqrt(sigma1)`` (similar to ``sigma1 sigma2``), all in float64:
    no complex parts and no ``eps`` offset for singular covariances (e.g. fewer samples than dimensions, or
    a collapsed generator with zero covariance). Clipped at 0 against rounding.
    """
    mu1, mu2 = _float64(mu1).ravel(), _float64(mu2).ravel()
    sigma1, sigma2 = np.atleast_2d(_float64(sigma1)), np.atleast_2d(_float64(sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (len(mu1), len(mu1)):
        raise ValueError(
            f"shapes do not match: mu {mu1.shape} and {mu2.shape}, sigma {sigma1.shape} and {sigma2.shape}"
        )
    root1 = _sqrt_psd(sigma1)
    product = root1 @ sigma2 @ root1
    trace_sqrt = np.sqrt(np.linalg.eigvalsh((product + product.T) / 2).clip(min=0)).sum()
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    return float(max(distance, 0.0))


def frechet_distance_between(features_a: ArrayLike, features_b: ArrayLike) -> float:
    """Frechet distance between two sets of features ``(N, D)`` and ``(M, D)``."""
    return frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))


def class_coverage(predicted: ArrayLike, num_classes: int, min_share: float | None = None) -> dict:
    """How evenly the predicted classes ``(N,)`` (integers in ``0..num_classes - 1``) cover the classes.

    Returns ``shares`` (list of ``num_classes`` floats summing to 1), ``entropy`` (normalised: 1.0 for
    perfectly even shares, 0.0 for a single class), ``covered`` (classes with a share of at least
    ``min_share``, by default half of an even share ``0.5 / num_classes``, so that a few misreads do not count
    as covering a class), ``seen`` (classes predicted at least once) and ``max_share``.
    """
    predicted = torch.as_tensor(predicted).long().flatten()
    if len(predicted) == 0:
        raise ValueError("no predictions")
    if predicted.min() < 0 or predicted.max() >= num_classes:
        raise ValueError(f"predicted classes must be in 0..{num_classes - 1}")
    shares = torch.bincount(predicted, minlength=num_classes).double() / len(predicted)
    nonzero = shares[shares > 0]
    entropy = float(-(nonzero * nonzero.log()).sum()) / math.log(num_classes) if num_classes > 1 else 1.0
    threshold = 0.5 / num_classes if min_share is None else min_share
    return {
        "shares": shares.tolist(),
        "entropy": max(0.0, min(1.0, entropy)),
        "covered": int((shares >= threshold).sum()),
        "seen": int((shares > 0).sum()),
        "max_share": float(shares.max()),
    }


def conditional_accuracy(predicted: ArrayLike, requested: ArrayLike) -> float:
    """Share of images whose predicted class is the one that was requested (both ``(N,)`` integers)."""
    predicted, requested = torch.as_tensor(predicted).flatten(), torch.as_tensor(requested).flatten()
    if predicted.shape != requested.shape or len(predicted) == 0:
        raise ValueError(f"need as many predictions as requests; got {len(predicted)} and {len(requested)}")
    return float((predicted.long() == requested.long()).double().mean())


@torch.no_grad()
def features_and_predictions(
    classifier: nn.Module, images: torch.Tensor, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pooled features ``(N, D)`` (float32, CPU) and predicted classes ``(N,)`` of ``images``, in batches, in
    eval mode (the classifier's mode is restored afterwards). ``classifier`` has ``features(x) -> (N, D)``
    and ``head(features) -> logits``, as ``DomainClassifier``."""
    was_training = classifier.training
    classifier.eval()
    device = next(classifier.parameters()).device
    features, predictions = [], []
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device, torch.float32)
            pooled = classifier.features(batch)
            features.append(pooled.float().cpu())
            predictions.append(classifier.head(pooled).argmax(1).cpu())
    finally:
        classifier.train(was_training)
    return torch.cat(features), torch.cat(predictions)


def generative_scores(
    classifier: nn.Module,
    images: torch.Tensor,
    reference: tuple[np.ndarray, np.ndarray],
    num_classes: int,
    requested: torch.Tensor | None = None,
    batch_size: int = 256,
) -> dict:
    """All scores of one set of images: ``fd`` to the ``reference`` feature statistics (mean, covariance),
    ``coverage`` (``class_coverage``) and, when ``requested`` classes are given, ``requested_accuracy``."""
    features, predicted = features_and_predictions(classifier, images, batch_size)
    scores = {
        "n": len(images),
        "fd": frechet_distance(*feature_statistics(features), *reference),
        "coverage": class_coverage(predicted, num_classes),
    }
    if requested is not None:
        scores["requested_accuracy"] = conditional_accuracy(predicted, requested)
    return scores
