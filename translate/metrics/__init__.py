"""Metrics: paired (L1, PSNR, SSIM, LPIPS, label accuracy); distribution (FID, KID, IS) on pluggable
features (Inception-v3 pool3, or the toolkit's own domain classifier); generative (Frechet distance in a
classifier's feature space, class coverage, conditional accuracy); and ``scoring``: a whole model of any
export kind scored from callables, next to its baseline (``translate eval``)."""

from translate.metrics.distribution import fid, inception_score, kid
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
from translate.metrics.perceptual import load_lpips, ssim

__all__ = [
    "class_coverage",
    "conditional_accuracy",
    "estimate_palette",
    "feature_statistics",
    "features_and_predictions",
    "fid",
    "frechet_distance",
    "frechet_distance_between",
    "generative_scores",
    "inception_score",
    "kid",
    "l1_distance",
    "label_accuracy",
    "load_lpips",
    "psnr",
    "ssim",
    "to_labels",
]
