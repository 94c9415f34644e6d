"""Learning-rate multipliers as pure functions of the step, so resuming needs only the step."""

from __future__ import annotations

import math
from collections.abc import Callable

from translate.errors import ConfigError


def decay_span(schedule: str, total_steps: int, decay_steps: int | None = None) -> tuple[int, int]:
    """The steps ``(start, end)`` over which a linear or cosine schedule decays (``STRETCHED``)."""
    if schedule == "linear":
        return total_steps - (total_steps // 2 if decay_steps is None else decay_steps), total_steps
    return 0, total_steps


def _linear(step: int, total_steps: int, decay_steps: int | None, **_: float) -> float:
    # junyanz: n_epochs at the full LR, then n_epochs_decay linearly to zero (here in steps)
    start, end = decay_span("linear", total_steps, decay_steps)
    if step < start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / max(end - start, 1))


def _cosine(step: int, total_steps: int, **_: float) -> float:
    progress = min(max(step, 0), total_steps) / max(total_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


STRETCHED = ("linear", "cosine")
"""Schedules whose shape depends on the total steps: changing ``train.steps`` on resume moves their decay."""

SCHEDULES: dict[str, Callable[..., float]] = {
    "constant": lambda step, total_steps, **_: 1.0,
    "linear": _linear,
    "step": lambda step, total_steps, step_size, gamma, **_: gamma ** (step // step_size),
    "cosine": _cosine,
}


def lr_factor(
    step: int,
    total_steps: int,
    schedule: str,
    decay_steps: int | None = None,
    step_size: int = 50_000,
    gamma: float = 0.1,
) -> float:
    """Multiplier of the base LR at ``step`` (0-based) of ``total_steps``.

    ``constant``: 1. ``linear``: 1 until ``total_steps - decay_steps``, then linearly to 0 at
    ``total_steps`` (``decay_steps`` defaults to half). ``step``: ``gamma ** (step // step_size)``.
    ``cosine``: ``0.5 * (1 + cos(pi * step / total_steps))``.
    """
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown LR schedule {schedule!r}. Known: {', '.join(SCHEDULES)}")
    return SCHEDULES[schedule](step, total_steps, decay_steps=decay_steps, step_size=step_size, gamma=gamma)
