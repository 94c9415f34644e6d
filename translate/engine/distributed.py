"""Training on several processes: ``torchrun --nproc_per_node N -m translate train ...`` (or
``translate train --nproc N``), one process per GPU (NCCL) or per CPU share (gloo).

Every process holds the whole task and reads its own slice of each global batch (``ResumableSampler``'s
shards). The trainer runs a task's schedule of updates, freezing the other groups for each, and tasks call
their networks directly, so wrapping networks in ``DistributedDataParallel`` (which synchronises inside
the wrapper's forward and backward) does not fit; instead each update averages its group's gradients
across the processes after ``backward`` and before clipping and the optimizer step
(:meth:`World.average_gradients`, one all-reduce per bucket of the group's gradients). The weights start
equal (broadcast from rank 0) and stay equal: every process applies the same averaged gradient to the
same weights with the same optimizer state. Rank 0 alone writes the run folder; what it decides there
(a failed write, a NaN found before saving) reaches every process (:meth:`World.on_main`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from translate.data.sampler import mix_seed
from translate.errors import ConfigError, TrainingInterrupted

log = logging.getLogger("translate")

T = TypeVar("T")

BUCKET_ELEMENTS = 1 << 24
"""Gradients are averaged in buckets of at most this many elements (64 MB of float32)."""
NPROC_ENV = "TRANSLATE_NPROC"
"""Set by ``translate train --nproc N`` for its processes, so that they name the command that resumes."""
_initialised_here = False


@dataclass(frozen=True)
class World:
    """The processes of one training run and this one's place among them (torchrun's ``RANK``,
    ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``). ``World()`` is a single process: then every
    method is a no-op that costs nothing."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, logs, samples and shows progress."""
        return self.rank == 0

    @property
    def nodes(self) -> int:
        return max(1, self.size // max(1, self.local_size))

    # ------------------------------------------------------------------------------------ devices
    def place(self, device: torch.device) -> torch.device:
        """The device of this process: ``cuda`` becomes ``cuda:LOCAL_RANK`` with several processes."""
        if self.size == 1 or device.type == "cpu":
            return device
        if device.type != "cuda":
            raise ConfigError(f"train.device {device}: training on several processes runs on cpu or cuda")
        if device.index is not None:
            raise ConfigError(
                f"train.device {device}: with {self.size} processes each takes cuda:LOCAL_RANK; "
                "set train.device to cuda or auto (choose GPUs with CUDA_VISIBLE_DEVICES)"
            )
        if self.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"process {self.rank} (local rank {self.local_rank}) has no GPU: this machine has "
                f"{torch.cuda.device_count()}; start at most that many processes per node"
            )
        torch.cuda.set_device(self.local_rank)
        return torch.device("cuda", self.local_rank)

    def spread(self, module: nn.Module, device: torch.device, batch_size: int) -> bool:
        """With several processes: batch norm synchronised across them on GPUs (on the CPU each normalises
        its own batch, with a warning) and rank 0's initial weights everywhere.

        Args:
            module: the task, every process's.
            device: this process's training device.
            batch_size: the batch of one process.

        Returns:
            Whether batch norm is synchronised.
        """
        if self.size == 1:
            return False
        log.info(
            "training on %d processes (%d node(s)): batch %d per process, %d in all",
            self.size,
            self.nodes,
            batch_size,
            batch_size * self.size,
        )
        has_batch_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())
        synced = has_batch_norm and device.type == "cuda"
        if synced:
            nn.SyncBatchNorm.convert_sync_batchnorm(module)
        elif has_batch_norm:
            log.warning(
                "batch norm: each process normalises its own batch of %d (PyTorch's SyncBatchNorm runs on "
                "GPUs only), so the run differs from one process with batch %d",
                batch_size,
                batch_size * self.size,
            )
        self.broadcast_module(module)
        return synced

    def launch_command(self, command: str) -> str:
        """Args: command: a ``translate`` command line. Returns: it as these processes were started
        (``--nproc N``, or under torchrun)."""
        if self.size == 1:
            return command
        if os.environ.get(NPROC_ENV) == str(self.size):
            return f"{command} --nproc {self.size}"
        if self.nodes == 1:
            return f"torchrun --nproc_per_node {self.size} -m {command}"
        return f"torchrun --nnodes {self.nodes} --nproc_per_node {self.local_size} ... -m {command}"

    # ------------------------------------------------------------------------------------ tensors
    def average_gradients(self, parameters: Iterable[nn.Parameter]) -> None:
        """Replace each gradient with its mean over the processes (in place). Parameters without a
        gradient are skipped: every process must leave the same ones out (same task, same code path)."""
        if self.size == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        for bucket in _buckets(grads):
            flat = torch.cat([g.reshape(-1) for g in bucket])
            dist.all_reduce(flat)
            flat.div_(self.size)
            offset = 0
            for grad in bucket:
                grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
                offset += grad.numel()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` averaged over the processes (a new tensor; ``values`` itself with one process)."""
        if self.size == 1:
            return values
        values = values.detach().clone()
        dist.all_reduce(values)
        return values.div_(self.size)

    def broadcast_module(self, module: nn.Module) -> None:
        """Every weight and buffer of ``module`` set to rank 0's."""
        if self.size == 1:
            return
        with torch.no_grad():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, src=0)

    def max(self, value: int) -> int:
        """The largest of the processes' ``value`` (a CPU all-reduce: no device sync)."""
        if self.size == 1:
            return value
        tensor = torch.tensor([value], dtype=torch.int64)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())

    # ------------------------------------------------------------------------------------ objects
    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every process."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: T) -> list[T] | None:
        """Every process's ``obj``, by rank, on rank 0 (None on the others). Tensors should be on the CPU."""
        if self.size == 1:
            return [obj]
        out: list[Any] | None = [None] * self.size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def on_main(self, action: Callable[[], T]) -> T:
        """``action()`` run on rank 0 alone; its result is returned on every process, and what it raises
        (a failed write, a NaN found before saving) is raised on every process, so all stop together."""
        if self.size == 1:
            return action()
        outcome: tuple[bool, Any] | None = None
        if self.is_main:
            try:
                outcome = (True, action())
            except Exception as exc:  # sent to the others, then raised here too
                outcome = (False, exc if _picklable(exc) else RuntimeError(f"{type(exc).__name__}: {exc}"))
                original = exc
        ok, value = self.broadcast(outcome)
        if not ok:
            if self.is_main:
                raise original
            raise value
        return value


def _picklable(obj: object) -> bool:
    try:
        pickle.loads(pickle.dumps(obj))
    except Exception:
        return False
    return True


def _buckets(grads: list[torch.Tensor]) -> Iterator[list[torch.Tensor]]:
    """Consecutive gradients of one dtype and device, at most BUCKET_ELEMENTS each (or one larger one)."""
    bucket: list[torch.Tensor] = []
    size = 0
    for grad in grads:
        same = not bucket or (grad.dtype == bucket[0].dtype and grad.device == bucket[0].device)
        if bucket and (not same or size + grad.numel() > BUCKET_ELEMENTS):
            yield bucket
            bucket, size = [], 0
        bucket.append(grad)
        size += grad.numel()
    if bucket:
        yield bucket


def setup() -> World:
    """This process's World: from an initialised process group, else from torchrun's environment
    (initialising the group: gloo for CPU tensors, NCCL for CUDA tensors where CUDA is available), else a
    single process. Other ranks than 0 log errors only."""
    global _initialised_here
    if dist.is_available() and dist.is_initialized():
        world = World(dist.get_rank(), dist.get_world_size(), *_local(dist.get_rank(), dist.get_world_size()))
    else:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return World()
        if not dist.is_available():
            raise ConfigError("WORLD_SIZE is set but this PyTorch has no torch.distributed")
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        _initialised_here = True
        world = World(dist.get_rank(), dist.get_world_size(), *_local(dist.get_rank(), size))
    if not world.is_main:
        logging.getLogger("translate").setLevel(logging.ERROR)
    return world


def _local(rank: int, size: int) -> tuple[int, int]:
    return int(os.environ.get("LOCAL_RANK", rank)), int(os.environ.get("LOCAL_WORLD_SIZE", size))


def teardown(finished: bool = True) -> None:
    """Destroy the process group if :func:`setup` made it. After a ``finished`` run every process first
    waits for the others, so none closes its connections while a peer still has work on them (gloo
    could abort a peer at exit then: "terminate called without an active exception")."""
    global _initialised_here
    if _initialised_here and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()
    _initialised_here = False


@contextlib.contextmanager
def session() -> Iterator[World]:
    """:func:`setup`, and :func:`teardown` on the way out."""
    world = setup()
    try:
        yield world
    except TrainingInterrupted:  # every process stopped at the same step
        teardown()
        raise
    except BaseException:
        teardown(finished=False)
        raise
    teardown()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank`` > 0 (rank 0 keeps ``seed``, so it draws as a single process would);
    small enough for NumPy."""
    return mix_seed(seed, 0x72616E6B, rank) % 2**32


def launch(nproc: int, argv: list[str], shutdown_timeout: int = 300) -> int:
    """Run ``python -m translate ARGV`` in ``nproc`` processes on this machine, as ``torchrun --standalone
    --nproc_per_node NPROC`` does, and return the exit status: 0, the status of the processes that stopped
    (130 Ctrl-C, 143 SIGTERM, 1 an error they printed), or 128 + the signal that stopped the launcher. A
    signal to the launcher reaches every process once, and they get ``shutdown_timeout`` seconds to save
    a checkpoint."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, get_args_parser

    args = get_args_parser().parse_args(
        [
            f"--nproc-per-node={nproc}",
            f"--shutdown-timeout={shutdown_timeout}",
            "--module",
            "translate",
            *argv,
        ]
    )
    args.rdzv_backend, args.rdzv_endpoint, args.rdzv_id = "c10d", "localhost:0", str(uuid.uuid4())
    # the CPU cores shared out (torchrun would give each process one thread, with a banner saying so)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    os.environ[NPROC_ENV] = str(nproc)
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the processes say why
    config, command, command_args = config_from_args(args)
    try:
        elastic_launch(config, command)(*command_args)
    except ChildFailedError as exc:
        codes = [failure.exitcode for _, failure in sorted(exc.failures.items())]
        for rank, code in zip(sorted(exc.failures), codes):
            if code < 0:
                logging.getLogger("translate").error(
                    "process %d was killed by %s", rank, signal.Signals(-code).name
                )
        stopped = [c for c in codes if c in (130, 143)]
        if stopped:
            return max(stopped)
        return next((c for c in codes if c > 0), 1)
    except SignalException as exc:
        return 128 + int(exc.sigval)
    return 0
