"""Scores for noise -> image models: Frechet distance, class coverage, conditional accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from translate.metrics import (
    class_coverage,
    conditional_accuracy,
    feature_statistics,
    features_and_predictions,
    frechet_distance,
    frechet_distance_between,
    generative_scores,
)
from translate.metrics.domain_classifier import DomainClassifier, train_domain_classifier


def test_frechet_distance_of_a_set_to_itself_is_zero():
    features = np.random.default_rng(0).normal(size=(500, 16))
    assert frechet_distance_between(features, features) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance_between(torch.from_numpy(features).float(), features) < 1e-4


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = ((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    # a singular covariance (a collapsed generator) is fine: the distance is ||mu||^2 + tr(sigma)
    assert frechet_distance(mu1, np.zeros((3, 3)), mu2, np.diag(s2)) == pytest.approx(
        ((mu1 - mu2) ** 2).sum() + s2.sum()
    )


def test_frechet_distance_of_full_covariances_matches_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(8, 8)), rng.normal(size=(8, 8))
    sigma1, sigma2 = a @ a.T, b @ b.T + np.eye(8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    covmean = scipy_linalg.sqrtm(sigma1 @ sigma2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * covmean)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_samples_approaches_the_population_value():
    rng = np.random.default_rng(2)
    a = rng.normal(0.0, 1.0, size=(20000, 4))
    b = rng.normal(0.5, 2.0, size=(20000, 4))
    expected = 4 * 0.5**2 + 4 * (1 + 4 - 2 * 2)
    assert frechet_distance_between(a, b) == pytest.approx(expected, rel=0.05)
    mu, sigma = feature_statistics(a)
    assert mu.shape == (4,) and sigma.shape == (4, 4)
    with pytest.raises(ValueError):
        frechet_distance(mu, sigma, mu[:3], sigma[:3, :3])


def test_class_coverage_uniform_against_one_class():
    even = class_coverage(torch.arange(1000) % 10, 10)
    assert even["entropy"] == pytest.approx(1.0)
    assert even["covered"] == even["seen"] == 10
    assert even["max_share"] == pytest.approx(0.1)
    assert sum(even["shares"]) == pytest.approx(1.0)

    collapsed = class_coverage(torch.full((1000,), 3), 10)
    assert collapsed["entropy"] == pytest.approx(0.0)
    assert collapsed["covered"] == collapsed["seen"] == 1
    assert collapsed["max_share"] == 1.0

    # two classes evenly: entropy log 2 / log 10; a few misreads are seen but not covered
    two = class_coverage(np.array([0] * 490 + [1] * 490 + [2] * 20), 10)
    assert two["covered"] == 2 and two["seen"] == 3
    assert 0.3 < two["entropy"] < math.log(3) / math.log(10)
    with pytest.raises(ValueError):
        class_coverage(torch.tensor([10]), 10)


def test_conditional_accuracy():
    requested = torch.arange(100) % 10
    assert conditional_accuracy(requested, requested) == 1.0
    assert conditional_accuracy((requested + 1) % 10, requested) == 0.0
    half = torch.where(torch.arange(100) < 50, requested, (requested + 1) % 10)
    assert conditional_accuracy(half, requested) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        conditional_accuracy(requested[:5], requested)


def patterns(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Four classes of 16x16 gray images: horizontal stripes, vertical stripes, a centre blob, a
    checkerboard; with noise and random intensity."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    bases = torch.stack(
        [
            torch.sin(y * math.pi / 2),
            torch.sin(x * math.pi / 2),
            torch.exp(-((y - 7.5) ** 2 + (x - 7.5) ** 2) / 12) * 2 - 1,
            ((y // 4 + x // 4) % 2) * 2 - 1,
        ]
    )
    labels = torch.arange(count) % 4
    scale = 0.5 + 0.5 * torch.rand(count, 1, 1, generator=generator)
    noise = 0.2 * torch.randn(count, 16, 16, generator=generator)
    return (bases[labels] * scale + noise).clamp(-1, 1).unsqueeze(1), labels


def test_classifier_learns_four_patterns_and_scores_them():
    torch.manual_seed(0)
    train_images, train_labels = patterns(256, seed=0)
    test_images, test_labels = patterns(200, seed=1)
    classifier = train_domain_classifier(train_images, train_labels, 4, steps=200, batch_size=32)
    assert not classifier.training

    features, predicted = features_and_predictions(classifier, test_images, batch_size=64)
    assert features.shape == (200, 256) and predicted.shape == (200,)
    assert conditional_accuracy(predicted, test_labels) > 0.95
    assert class_coverage(predicted, 4)["covered"] == 4

    reference = feature_statistics(features)
    real = generative_scores(classifier, patterns(200, seed=2)[0], reference, 4, requested=test_labels)
    one_class = generative_scores(classifier, test_images[test_labels == 2], reference, 4)
    noise = generative_scores(classifier, torch.rand(200, 1, 16, 16) * 2 - 1, reference, 4)
    assert real["requested_accuracy"] > 0.95 and "requested_accuracy" not in one_class
    assert real["fd"] < one_class["fd"] and real["fd"] < noise["fd"]
    assert one_class["coverage"]["covered"] == 1 and real["coverage"]["entropy"] > 0.95


def test_features_and_predictions_restores_the_mode_and_matches_forward():
    classifier = DomainClassifier(1, 3, base_channels=4).train()
    images = torch.rand(10, 1, 16, 16) * 2 - 1
    features, predicted = features_and_predictions(classifier, images, batch_size=3)
    assert classifier.training
    with torch.no_grad():
        expected = classifier.eval()(images).argmax(1)
    assert torch.equal(predicted, expected) and features.shape == (10, 32)


def test_classifier_augmentation_can_leave_out_shifts_and_flips():
    from translate.metrics.domain_classifier import augment

    images = torch.rand(2, 1, 16, 16)
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(augment(images, generator, max_shift=0, flip=False), images)
    flipped_or_not = [augment(images, generator, max_shift=0) for _ in range(20)]
    assert all(torch.equal(x, images) or torch.equal(x, images.flip(-1)) for x in flipped_or_not)
    assert any(not torch.equal(x, images) for x in flipped_or_not)
