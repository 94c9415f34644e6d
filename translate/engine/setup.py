"""What the trainer builds before its first step from the config: the task on its device, the update
schedule, the optimizers, and the networks' memory format and compilation."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from translate.config import Config, TrainConfig
from translate.data.transforms import RANDOM_CROP_MODES
from translate.engine.device import native_bf16
from translate.engine.guards import check_compile, check_image_size
from translate.engine.optimizers import OptimizerGroup, build_optimizer_groups
from translate.errors import ConfigError
from translate.registry import TASKS, accepted_kwargs
from translate.tasks.base import Task, Update

log = logging.getLogger("translate")


def task_arguments(config: Config, data_arguments: dict[str, Any]) -> dict[str, Any]:
    """What the task is built from: the dataset's arguments (channels, domains, an aligned set's direction),
    ``data.direction`` for a task on unpaired data that takes one (CUT: ``--direction b2a``), then ``model``.

    Args:
        config: the resolved config.
        data_arguments: the dataset's ``task_kwargs()``.

    Returns:
        The keyword arguments of ``TASKS.build``.
    """
    takes = accepted_kwargs(TASKS.get(config.task)) or []
    direction = {"direction": config.data.direction} if "direction" in takes else {}
    return {**direction, **data_arguments, **config.model}


def build_task(config: Config, task_kwargs: dict, device: torch.device) -> Task:
    """The task on the training device, with the configured loss weights; images that do not fit its
    networks are a ConfigError.

    Args:
        config: the resolved config.
        task_kwargs: what the task is built from (the dataset's, then ``model``).
        device: the training device.
    """
    task = TASKS.build({"name": config.task, **task_kwargs}).to(device)
    task.set_loss_weights(config.loss_weights)
    if config.data.preprocess in RANDOM_CROP_MODES:
        check_image_size(task, config.data.image_size)
    return task


def build_schedule(task: Task, config: Config, groups: dict[str, list[nn.Module]]) -> list[Update]:
    """The task's updates of one step; one of a group the task does not have is a ConfigError."""
    schedule = task.schedule(config.train.n_critic)
    unknown = {u.group for u in schedule} - set(groups)
    if unknown:
        raise ConfigError(f"{config.task}'s schedule updates unknown group(s) {', '.join(sorted(unknown))}")
    return schedule


def build_optimizers(config: Config, groups: dict[str, list[nn.Module]]) -> dict[str, OptimizerGroup]:
    """One optimizer per group (``optim``, else ``train.lr`` / ``train.betas``)."""
    train = config.train
    try:
        return build_optimizer_groups(groups, config.optim, {"lr": train.lr, "betas": tuple(train.betas)})
    except ValueError as exc:  # torch's own checks of optimizer options (betas, eps, momentum)
        raise ConfigError(f"optim: {exc}") from None


def use_channels_last(task: Task, train: TrainConfig, device: torch.device) -> bool:
    """``train.channels_last`` on CUDA: the networks' weights in that format now (batches follow);
    elsewhere ignored with a warning. Returns: whether it is on."""
    if not train.channels_last:
        return False
    if device.type != "cuda":
        log.warning(
            "train.channels_last is ignored on %s: InstanceNorm2d's backward in channels_last returns "
            "wrong input gradients there at batch 1",
            device.type,
        )
        return False
    task.to(memory_format=torch.channels_last)
    return True


def use_amp(train: TrainConfig, device: torch.device) -> bool:
    """``train.amp`` where the device computes bf16 natively (a CUDA GPU, a CPU with AVX512-BF16 or AMX:
    ``native_bf16``); elsewhere torch emulates bf16, slower than fp32, so it is ignored with a warning.
    Returns: whether the steps run under bf16 autocast (the weights, optimizer moments and the gradient
    penalty stay fp32)."""
    if not train.amp:
        return False
    if not native_bf16(device):
        log.warning("train.amp is ignored: this %s has no native bf16 (emulated: slower)", device.type)
        return False
    return True


def compile_networks(task: Task, groups: dict[str, list[nn.Module]]) -> None:
    """``torch.compile`` each trained network in place (after ``check_compile``): its state dict keeps its
    keys, so checkpoints, exports and EMA see the same parameters; calls other than ``forward`` stay
    eager."""
    check_compile(task)
    for modules in groups.values():
        for module in modules:
            module.compile()
