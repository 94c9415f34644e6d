"""What keeps a training run safe: checks that the networks can take the configured images (before and at
the first step), NaN and infinity checks (of the losses of each log interval, and of the weights before
each save), the rollbacks of ``train.on_nan: rollback``, and the stop signals (Ctrl-C and SIGTERM stop
after the current step, agreed between the processes).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch

from translate.errors import ConfigError, TrainingDiverged

if TYPE_CHECKING:
    from translate.engine.distributed import World

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""Signals that stop training after the current step, with a checkpoint (Ctrl-C; schedulers, docker stop)."""
MAX_ROLLBACKS = 3
"""``train.on_nan: rollback`` gives up after this many rollbacks to one checkpoint."""


SIZE_ERRORS = (
    "spatial element",
    "value per channel",
    "Kernel size can't be greater",
    "Padding size should be less",
    "Output size is too small",
)
"""What PyTorch says when images are too small for a network (read on the first step only)."""


class NonFinite(Exception):
    """A loss or weight is NaN or infinite (internal: ``fit`` stops or rolls back)."""


# ------------------------------------------------------------------------------------- image sizes
def check_image_size(task: torch.nn.Module, image_size: int) -> None:
    """Every network that declares a ``size_multiple`` must get images that are a multiple of it.

    Args:
        task: the task, whose networks are checked.
        image_size: ``data.image_size``.
    """
    for name, module in task.named_modules():
        multiple = getattr(module, "size_multiple", None)
        if multiple and (image_size % multiple or image_size < multiple):
            sizes = ", ".join(str(multiple * k) for k in (1, 2, 3, 4))
            hint = ""
            if hasattr(module, "num_downs"):
                depth = image_size.bit_length() - 1
                hint = (
                    f"; choose a U-Net that fits: --set model.{name}.name=unet_128 (128 px), unet_256 "
                    f"(256 px), or --set 'model.{name}={{name: unet, num_downs: N}}' for multiples of 2**N"
                    + (f" (num_downs: {depth} here)" if 2**depth == image_size else "")
                )
            raise ConfigError(
                f"data.image_size {image_size} does not fit the {name} network: it takes multiples of "
                f"{multiple} ({sizes}, ...){hint}"
            )


def image_size_error(exc: Exception, image_size: int) -> ConfigError | None:
    """Args: exc: what the first step raised; image_size: ``data.image_size``. Returns: the ConfigError
    to raise instead when PyTorch said the images are too small for the networks, else None."""
    if not any(text in str(exc) for text in SIZE_ERRORS):
        return None
    return ConfigError(
        f"data.image_size {image_size} is too small for these networks ({str(exc).splitlines()[0]}); "
        "use larger images or shallower networks"
    )


def check_compile(task: torch.nn.Module) -> None:
    """``train.compile`` with a gradient penalty needs torch >= 2.6: else a ConfigError.

    Args:
        task: the task (a module with ``uses_gradient_penalty`` set needs the penalty).
    """
    if not hasattr(torch.compiler, "set_stance") and any(
        getattr(m, "uses_gradient_penalty", False) for m in task.modules()
    ):
        raise ConfigError(
            "train.compile with a gradient penalty needs torch >= 2.6 (to run the critic eagerly "
            f"for the penalty's double backward); this is torch {torch.__version__}"
        )


# ------------------------------------------------------------------------------------- NaN checks
def non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """Args: tensors: named tensors. Returns: the name of the first floating-point one holding a NaN or
    infinity, or None (one host sync)."""
    names = [k for k, v in tensors.items() if v.is_floating_point() and v.numel()]
    if not names:
        return None
    bad = torch.stack([~torch.isfinite(tensors[k]).all() for k in names])
    return names[int(bad.to(torch.uint8).argmax())] if bool(bad.any()) else None


def check_finite(tensors: dict[str, torch.Tensor], what: str, since: int, step: int) -> None:
    """Raise NonFinite naming the first tensor of ``tensors`` that is NaN or infinite.

    Args:
        tensors: weights or optimizer state, checked before saving.
        what: what they are, for the message (``EMA weight``).
        since: the step they are known to be finite at (the last save).
        step: this step.
    """
    bad = non_finite(tensors)
    if bad is not None:
        kind = "nan" if torch.isnan(tensors[bad]).any() else "inf"
        raise NonFinite(f"{what} {bad} became {kind} between steps {since} and {step}")


class LossWindow:
    """The losses of one log interval, added up on the device: no host sync until ``means``.

    Args:
        world: the training processes (with several, ``means`` is their mean, so all decide alike).
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.finite_step = 0
        """Losses are known to be finite up to this step (the last check or save)."""
        self.reset(0)

    def reset(self, step: int) -> None:
        """Start a log interval at ``step``.

        Args:
            step: the step the interval starts after.
        """
        self.sums: dict[str, torch.Tensor] = {}
        self.steps = 0
        self.start = (time.time(), step)

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        """Args: losses: one step's losses (detached tensors)."""
        for name, value in losses.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value
        self.steps += 1

    def _reduced(self) -> dict[str, torch.Tensor]:
        """The sums; with several processes, their mean over the processes (one all-reduce)."""
        if self.world.size == 1 or not self.sums:
            return self.sums
        reduced = self.world.mean(torch.stack([v.float() for v in self.sums.values()]))
        return dict(zip(self.sums, reduced))

    def means(self, step: int) -> dict[str, float]:
        """The mean of each loss since the interval started (the host sync of the log interval).

        Args:
            step: this step.

        Returns:
            ``{name: mean}``; raises NonFinite naming the losses that are NaN or infinite.
        """
        means = {k: v.item() / self.steps for k, v in self._reduced().items()}
        bad = [f"{k} became {v}" for k, v in means.items() if not math.isfinite(v)]
        if bad:
            raise NonFinite(f"{', '.join(bad)} between steps {self.finite_step} and {step}")
        self.finite_step = step
        return means

    def check(self, step: int) -> None:
        """Raise NonFinite when a loss of the interval so far is NaN or infinite (before a save).

        Args:
            step: this step.
        """
        if self.steps:
            pending = torch.stack([v.float() for v in self._reduced().values()])
            if not bool(torch.isfinite(pending).all()):
                self.means(step)

    def steps_per_s(self, step: int) -> float:
        """Args: step: this step. Returns: the speed since the interval started."""
        start_time, start_step = self.start
        return (step - start_step) / max(time.time() - start_time, 1e-9)


class Rollbacks:
    """How often ``train.on_nan: rollback`` went back to each checkpoint.

    Args:
        on_nan: ``train.on_nan`` (``stop`` or ``rollback``).
    """

    def __init__(self, on_nan: str) -> None:
        self.on_nan = on_nan
        self._tries: dict[int, int] = {}

    def next_try(self, reason: str, good_step: int | None, resume_command: Callable[[], str]) -> int:
        """Count one more rollback to the checkpoint of ``good_step``, or stop.

        Args:
            reason: what diverged.
            good_step: the step of the newest intact checkpoint (None: there is none).
            resume_command: the command that resumes the run, for the message.

        Returns:
            How many times training rolled back to it now (1 to ``MAX_ROLLBACKS``). Raises
            TrainingDiverged that says how to go on when there is no rollback to make.
        """
        if self.on_nan == "rollback" and good_step is not None:
            tries = self._tries[good_step] = self._tries.get(good_step, 0) + 1
            if tries <= MAX_ROLLBACKS:
                return tries
            reason += f", again after {MAX_ROLLBACKS} rollbacks to step {good_step}"
        if good_step is None:
            raise TrainingDiverged(
                f"{reason}; no checkpoint was saved before: lower the learning rate (--set train.lr=...)"
            )
        raise TrainingDiverged(
            f"{reason}; the last good checkpoint is step {good_step}: {resume_command()} "
            f"--on-nan rollback (continues from it, halving the learning rate where it diverges)"
        )


# ------------------------------------------------------------------------------------- signals
class WorkerSignals:
    """The data-loader workers' ``worker_init_fn``: while the main process trains, they leave Ctrl-C and
    SIGTERM to it (it stops after the step and then shuts them down), so that a signal sent to the whole
    process group (a terminal's Ctrl-C, ``kill -- -PGID``, systemd) does not kill them mid-step. Outside
    ``training`` a SIGTERM ends them as usual (the data loader's and multiprocessing's shutdown use it)."""

    def __init__(self) -> None:
        self.training = multiprocessing.Value("b", 0, lock=False)

    def __call__(self, worker_id: int) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, self._terminate)

    def _terminate(self, signum: int, frame: Any) -> None:
        if not self.training.value:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)


class StopRequests:
    """Ctrl-C and SIGTERM while training: a stop after the current step (a second Ctrl-C stops at once, a
    second SIGTERM kills), agreed between the processes.

    Args:
        world: the training processes.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.requested = False
        """Set by a stop signal (or by code): training stops after the current step."""
        self.signal: signal.Signals | None = None
        """The signal that stopped training, if one did (with several processes: sent to any of them)."""
        self._signalled = False
        """This process got a stop signal (a second one stops at once)."""
        self.workers = WorkerSignals()
        """The data loader's ``worker_init_fn``."""

    @contextlib.contextmanager
    def handled(self) -> Iterator[None]:
        """Inside the block the stop signals set ``requested`` (handlers live in the main thread)."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {signum: signal.signal(signum, self._handle) for signum in STOP_SIGNALS}
        self.workers.training.value = 1
        try:
            yield
        finally:
            self.workers.training.value = 0
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self._signalled:  # the second signal to this process stops at once
            if signum == signal.SIGTERM and self.world.size > 1:
                return  # torchrun and a scheduler may each send one; torchrun kills after its timeout
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        self._signalled = True
        self.requested = True
        self.signal = signal.Signals(signum)

    def agreed(self) -> bool:
        """Returns: whether to stop now: ``requested``, agreed between the processes at each step (a stop on
        any of them stops every one after the same step)."""
        if self.world.size == 1:
            return self.requested
        mine = int(self.signal) if self.signal is not None else int(self.requested)
        agreed = self.world.max(mine)
        if agreed:
            self.requested = True
            if agreed > 1 and self.signal is None:
                self.signal = signal.Signals(agreed)
        return agreed > 0  # not ``requested``: a signal during the all-reduce waits for the next step
