"""Metrics: paired (L1, PSNR, label accuracy)."""

from translate.metrics.paired import estimate_palette, l1_distance, label_accuracy, psnr, to_labels

__all__ = ["estimate_palette", "l1_distance", "label_accuracy", "psnr", "to_labels"]
