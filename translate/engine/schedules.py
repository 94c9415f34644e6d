"""Learning-rate multipliers as pure functions of the step, so resuming needs only the step.

``train.decay_every``: ``step`` (default) recomputes the factor at every step: ``linear`` reaches exactly 0
at the last step. ``epoch`` is junyanz/pytorch-CycleGAN-and-pix2pix's ``lr_policy linear``: the factor
changes once per epoch (``steps_per_epoch``), ``1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1)`` in
epoch ``e`` (0-based), so the last epoch trains at ``1 / (n_epochs_decay + 1)``, never at 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from translate.config import DECAY_EVERY
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


def junyanz_linear(epoch: int, n_epochs: int, n_epochs_decay: int, epoch_count: int = 1) -> float:
    """junyanz's ``lambda_rule`` (``networks.get_scheduler``, ``lr_policy linear``) at scheduler epoch
    ``epoch``: ``1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1)``.

    Its ``LambdaLR`` is stepped at the end of each epoch, so epoch ``e`` (0-based) of a fresh run
    (``epoch_count`` 1) trains at ``junyanz_linear(e, ...)``: ``n_epochs`` epochs at 1, then
    ``1 - 1 / (d + 1)`` down to ``1 / (d + 1)`` over the ``d = n_epochs_decay`` epochs."""
    return 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)


def epochs_of(total_steps: int, decay_steps: int | None, steps_per_epoch: int) -> tuple[int, int]:
    """``(n_epochs, n_epochs_decay)`` of ``total_steps`` with ``decay_steps`` of decay (None: half), in whole
    epochs: ``ceil(total_steps / steps_per_epoch)`` epochs in all, the decay rounded to whole epochs."""
    total_epochs = max(1, math.ceil(total_steps / steps_per_epoch))
    decay = total_steps // 2 if decay_steps is None else decay_steps
    n_epochs_decay = min(total_epochs, round(decay / steps_per_epoch))
    return total_epochs - n_epochs_decay, n_epochs_decay


def steps_per_epoch(dataset_size: int, batch_size: int, repeats: Sequence[int] = (1,)) -> int:
    """Steps that read ``dataset_size`` samples once, at least 1: ``ceil(dataset_size / (batch_size x
    batches per step))``, as junyanz's loader (no ``drop_last``) makes ``ceil(n / batch_size)`` iterations.

    ``batch_size``: the global batch (all processes); ``repeats``: of the schedule's updates. A step takes a
    new batch for its first update and for every repetition after an update's first (the trainer's rule),
    so ``1 + sum(r - 1)`` batches: 5 for a critic 5x then generator schedule."""
    batches = 1 + sum(max(r, 1) - 1 for r in repeats)
    return max(1, math.ceil(dataset_size / (batch_size * batches)))


def lr_factor(
    step: int,
    total_steps: int,
    schedule: str,
    decay_steps: int | None = None,
    step_size: int = 50_000,
    gamma: float = 0.1,
    decay_every: str = "step",
    steps_per_epoch: int = 1,
) -> float:
    """Multiplier of the base LR at ``step`` (0-based) of ``total_steps``.

    ``constant``: 1. ``linear``: 1 until ``total_steps - decay_steps``, then linearly to 0 at
    ``total_steps`` (``decay_steps`` defaults to half). ``step``: ``gamma ** (step // step_size)``.
    ``cosine``: ``0.5 * (1 + cos(pi * step / total_steps))``.

    ``decay_every="epoch"`` (``linear`` and ``constant`` only): junyanz's per-epoch linear decay,
    :func:`junyanz_linear` at epoch ``step // steps_per_epoch`` with the epochs of :func:`epochs_of`; steps
    past the last epoch (``--keep-schedule``) train at the last epoch's factor.
    """
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown LR schedule {schedule!r}. Known: {', '.join(SCHEDULES)}")
    if decay_every not in DECAY_EVERY:
        raise ConfigError(f"train.decay_every must be one of {', '.join(DECAY_EVERY)}; got {decay_every!r}")
    if decay_every == "epoch" and schedule != "constant":
        if schedule != "linear":
            raise ConfigError(
                f"train.decay_every: epoch is junyanz's per-epoch linear decay; the {schedule} schedule "
                "decays per step (set train.schedule: linear, or train.decay_every: step)"
            )
        if steps_per_epoch < 1:
            raise ConfigError(f"steps_per_epoch must be at least 1; got {steps_per_epoch}")
        n_epochs, n_epochs_decay = epochs_of(total_steps, decay_steps, steps_per_epoch)
        epoch = min(max(step, 0) // steps_per_epoch, n_epochs + n_epochs_decay - 1)
        return junyanz_linear(epoch, n_epochs, n_epochs_decay)
    return SCHEDULES[schedule](step, total_steps, decay_steps=decay_steps, step_size=step_size, gamma=gamma)
