"""The best evaluation of a run so far by ``train.best_metric`` (kept as ``checkpoints/best``)."""

from __future__ import annotations

import math
from typing import Any


def best_after(
    best: dict[str, Any] | None, values: dict[str, float], metric: str | None, mode: str | None, step: int
) -> dict[str, Any] | None:
    """The best evaluation once ``values`` (of ``step``) are in.

    Args:
        best: the best so far (``metric``, ``value``, ``step``, ``mode``), or None.
        values: this evaluation's metrics by name (``eval/psnr``).
        metric: ``train.best_metric`` (None: nothing is kept).
        mode: ``min`` or ``max``: which way ``metric`` improves.
        step: the step evaluated.

    Returns:
        A new record when ``values`` improve on ``best`` (a NaN never does), else ``best`` itself.
    """
    value = values.get(metric, math.nan) if metric is not None else math.nan
    if not math.isfinite(value):
        return best
    previous = best["value"] if best is not None else None
    if previous is None or (value < previous if mode == "min" else value > previous):
        return {"metric": metric, "value": value, "step": step, "mode": mode}
    return best


def describe_evaluation(values: dict[str, float], best: dict[str, Any] | None) -> str:
    """``psnr 21.3, ssim 0.61 (best psnr 21.3 at step 400)``: an evaluation's log line."""
    shown = ", ".join(f"{name.removeprefix('eval/')} {v:.4g}" for name, v in values.items())
    if best is None:
        return shown
    return f"{shown} (best {best['metric'].removeprefix('eval/')} {best['value']:.4g} at step {best['step']})"
