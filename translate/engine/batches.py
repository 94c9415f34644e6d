"""The training data as the loop takes it: endless batches that continue from a data position, each
process's slice of every global batch, on the training device, augmented there when the config says so."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from translate.config import Config
from translate.data.device_augment import DeviceAugment
from translate.data.sampler import ResumableSampler
from translate.tasks.base import Batch

if TYPE_CHECKING:
    from translate.engine.distributed import World


def move_batch(batch: Batch, device: torch.device) -> Batch:
    """Args: batch: a batch; device: where to. Returns: its tensors on ``device``, the rest as it is."""
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
    }


def channels_last_images(batch: Batch) -> Batch:
    """The batch's image tensors (4-D) in the channels_last memory format; other entries as they are."""

    def convert(v: Any) -> Any:
        is_image = isinstance(v, torch.Tensor) and v.dim() == 4
        return v.contiguous(memory_format=torch.channels_last) if is_image else v

    return {k: convert(v) for k, v in batch.items()}


class TrainingData:
    """The batches of a training run.

    Args:
        dataset: the training data.
        config: the resolved config (``train.batch_size``, ``train.seed``, ``train.num_samples``,
            ``data.num_workers``, ``data.augment_on``).
        world: the training processes.
        device: the training device.
        worker_init: the data-loader workers' ``worker_init_fn``.
        channels_last: give image tensors in the channels_last memory format.
    """

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        config: Config,
        world: World,
        device: torch.device,
        worker_init: Callable[[int], None],
        channels_last: bool,
    ) -> None:
        self.dataset, self.config, self.world, self.device = dataset, config, world, device
        self.worker_init = worker_init
        self.channels_last = channels_last

    @property
    def global_batch(self) -> int:
        """The images of one step over all processes."""
        return self.config.train.batch_size * self.world.size

    def batches(self, samples_seen: int) -> Iterator[Batch]:
        """Endless batches, continuing after ``samples_seen`` images (of all processes), so a resumed run
        sees the same data; with several processes, this one's slice of each global batch.

        Args:
            samples_seen: the data position: images of earlier steps, over all processes.
        """
        train, world = self.config.train, self.world
        sampler = ResumableSampler(
            len(self.dataset),
            seed=train.seed,
            start=samples_seen,
            rank=world.rank,
            world_size=world.size,
            batch_size=train.batch_size,
        )
        loader = DataLoader(
            self.dataset,
            batch_size=train.batch_size,
            sampler=sampler,
            num_workers=self.config.data.num_workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=self.config.data.num_workers > 0,
            worker_init_fn=self.worker_init,
            # The loader draws worker seeds from this, not from the global RNG that
            # checkpoints restore; augmentation is seeded per sample by the sampler.
            generator=torch.Generator().manual_seed(train.seed),
        )
        # augment_on=device: crop/flip/jitter here, seeded by (train.seed, samples seen before the batch)
        on_device = self.config.data.augment_on == "device"
        augment = DeviceAugment(self.config.data, train.seed) if on_device else None
        for batch in loader:
            seen = samples_seen + world.rank * train.batch_size  # where this process's slice starts
            samples_seen += self.global_batch
            batch = move_batch(batch, self.device)
            yield self._formatted(augment(batch, seen) if augment is not None else batch)

    def fixed_batch(self) -> Batch:
        """The first ``train.num_samples`` items, without augmentation (the sample grids' images)."""
        items = [self.dataset[i] for i in range(min(self.config.train.num_samples, len(self.dataset)))]
        return self._formatted(move_batch(torch.utils.data.default_collate(items), self.device))

    def _formatted(self, batch: Batch) -> Batch:
        return channels_last_images(batch) if self.channels_last else batch
