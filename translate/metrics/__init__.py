"""Metrics: paired (L1, PSNR, label accuracy); generative (Frechet distance in a classifier's feature space,
class coverage, conditional accuracy)."""

from translate.metrics.generative import (
    class_coverage,
    conditional_accuracy,
    feature_statistics,
    features_and_predictions,
    frechet_distance,
    frechet_distance_between,
    generative_scores,
)
from translate.metrics.paired import estimate_palette, l1_distance, label_accuracy, psnr, to_labels

__all__ = [
    "class_coverage",
    "conditional_accuracy",
    "estimate_palette",
    "feature_statistics",
    "features_and_predictions",
    "frechet_distance",
    "frechet_distance_between",
    "generative_scores",
    "l1_distance",
    "label_accuracy",
    "psnr",
    "to_labels",
]
