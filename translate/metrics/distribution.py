"""Distribution metrics on any features: FID (``frechet_distance``), KID and IS.

KID and IS are torch-fidelity's own functions on the features (``kid_features_to_metric``,
``isc_features_to_metric``): the unbiased MMD^2 with the cubic polynomial kernel
``k(x, y) = (x.y / d + 1)^3`` averaged over random subsets (Binkowski et al., 2018), and
``exp(E KL(p(y|x) || p(y)))`` over splits (Salimans et al., 2016), with their defaults (100 subsets of
1000, 10 splits; fewer when there are fewer samples). The Frechet distance is this package's
``frechet_distance`` (the same formula as the reference, computed in float64 without complex parts).
"""

from __future__ import annotations

import numpy as np
import torch

from translate.metrics.generative import frechet_distance_between

ArrayLike = np.ndarray | torch.Tensor


def fid(features_a: ArrayLike, features_b: ArrayLike) -> float:
    """The Frechet distance between two sets of features ``(N, D)`` and ``(M, D)``."""
    return frechet_distance_between(features_a, features_b)


def kid(
    features_a: ArrayLike, features_b: ArrayLike, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Kernel Inception Distance: mean and standard deviation over ``subsets`` random subsets of
    ``min(subset_size, N, M)`` samples of each set; of half the samples when that would take every sample of
    the smaller set, since such subsets would all be equal (a standard deviation of 0 that says nothing)."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    a, b = torch.as_tensor(features_a).cpu(), torch.as_tensor(features_b).cpu()
    size = min(subset_size, len(a), len(b))
    if subsets > 1 and size == min(len(a), len(b)) and size >= 4:
        size //= 2
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples in each set; got {len(a)} and {len(b)}")
    out = kid_features_to_metric(
        a, b, kid_subsets=subsets, kid_subset_size=size, rng_seed=seed, verbose=False
    )
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]


def inception_score(logits: ArrayLike, splits: int = 10, seed: int = 0) -> tuple[float, float]:
    """Inception Score of class ``logits`` ``(N, classes)``: mean and standard deviation over ``splits``
    (at most ``N // 2``) splits of the shuffled samples."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    logits = torch.as_tensor(logits).cpu()
    splits = max(1, min(splits, len(logits) // 2))
    out = isc_features_to_metric(logits, splits=splits, shuffle=True, rng_seed=seed)
    return out[KEY_METRIC_ISC_MEAN], out[KEY_METRIC_ISC_STD]
