"""An endless, resumable stream of ``(index, sample_seed)`` items for training datasets.

Sample ``k`` (counted over the whole run) is position ``k % n`` of epoch ``k // n``'s permutation, drawn
from a generator seeded with ``(seed, epoch)``, and carries its own seed derived from ``(seed, k)``. The
stream is a pure function of ``(seed, k)``: a run resumed with ``start = samples seen`` continues exactly,
and a dataset that seeds its augmentation with ``sample_seed`` gives the same tensors in any worker.

Several training processes share one stream: with ``world_size`` W and per-process batch B, each global
batch is the next B * W samples and process ``rank`` takes its ``rank``-th slice of B, so the processes'
batches put together are exactly the batch of B * W that one process would read.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler

Item = tuple[int, int]
"""What the sampler yields and training datasets take: ``(index, sample_seed)``."""

_PERMUTATION, _SAMPLE = 0, 1  # stream tags, so the two derived seeds never coincide


def mix_seed(*values: int) -> int:
    """A well-mixed, deterministic 63-bit seed from integers (any sign, any size)."""
    words = [v & 0xFFFF_FFFF_FFFF_FFFF for v in values]
    return int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0]) >> 1


def split_item(item: int | Item) -> tuple[int, int | None]:
    """``(index, sample_seed)`` from a sampler item; a plain int index means evaluation (seed None)."""
    if isinstance(item, tuple | list):
        index, seed = item
        return int(index), int(seed)
    return int(item), None


class ResumableSampler(Sampler[Item]):
    """Endless ``(index, sample_seed)`` items over ``num_items``: a fresh permutation each epoch.

    ``start`` skips that many samples (the samples a resumed run has already seen, by all processes);
    ``shuffle=False`` walks ``0..n-1`` in order each epoch (sample seeds still differ).
    Use with ``DataLoader(dataset, batch_size=B, sampler=ResumableSampler(len(dataset), seed))``.
    ``rank``, ``world_size`` and ``batch_size`` (B) shard the stream: this process yields samples
    ``start + g * B * world_size + rank * B + i`` for ``i < B``, ``g = 0, 1, ...``.
    """

    def __init__(
        self,
        num_items: int,
        seed: int,
        start: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
        batch_size: int = 1,
    ) -> None:
        if num_items < 1:
            raise ValueError(f"ResumableSampler needs at least one item, got {num_items}")
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if world_size < 1 or not 0 <= rank < world_size or batch_size < 1:
            raise ValueError(f"bad shard: rank {rank} of {world_size}, batch {batch_size}")
        super().__init__()
        self.num_items = num_items
        self.seed = seed
        self.start = start
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.batch_size = batch_size

    def permutation(self, epoch: int) -> torch.Tensor:
        """The order of epoch ``epoch``: a permutation of ``0..n-1``."""
        if not self.shuffle:
            return torch.arange(self.num_items)
        generator = torch.Generator().manual_seed(mix_seed(self.seed, _PERMUTATION, epoch))
        return torch.randperm(self.num_items, generator=generator)

    def sample_seed(self, k: int) -> int:
        """The seed of the ``k``-th sample of the run."""
        return mix_seed(self.seed, _SAMPLE, k)

    def positions(self) -> Iterator[int]:
        """The sample numbers ``k`` this process reads, in order."""
        if self.world_size == 1:
            yield from itertools.count(self.start)
            return
        step = self.batch_size * self.world_size
        for first in itertools.count(self.start + self.rank * self.batch_size, step):
            yield from range(first, first + self.batch_size)

    def __iter__(self) -> Iterator[Item]:
        epoch, order = -1, []
        for k in self.positions():
            if k // self.num_items != epoch:
                epoch = k // self.num_items
                order = self.permutation(epoch).tolist()
            yield order[k % self.num_items], self.sample_seed(k)
