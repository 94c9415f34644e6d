"""What every kind of model answers: how to call its network, score it, benchmark it and serve it.

A ``Kind`` holds everything the toolkit knows about one export kind (``translate.exports``): the callable
that runs its network as ``translate apply`` / ``translate sample`` do, what its held-out data looks like,
how ``translate.metrics.scoring`` scores it beside its baseline, random inputs of the right shape, the
controls of its ``serve`` page and the command that uses it. Code outside ``translate/kinds`` reaches a
kind only through ``translate.kinds.kind_of``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from translate.exports import Export
from translate.metrics.report import Score
from translate.metrics.scoring import Suite


@dataclass
class Plan:
    """Which keys of the held-out items one export reads.

    ``inputs``: the images it translates (None: it draws noise); ``reference``: the real images its outputs
    are compared with; ``paired``: ``reference`` is the ground truth of each input."""

    inputs: str | None
    reference: str
    paired: bool = False


@dataclass
class Scoring:
    """What an evaluation scores with, shared by ``translate eval`` and ``train.eval_every``.

    Attributes:
        suite: the metrics asked and their extractors, classifier and LPIPS model.
        device: where the networks run.
        seed: noise codes, subsets and dropout are drawn from it.
        batch_size: images per forward pass.
        note: takes one line for the reader (a score that could not be computed, and why).
        sections: the description of what each section scored, by section name.
    """

    suite: Suite
    device: torch.device
    seed: int = 0
    batch_size: int = 16
    note: Callable[[str], None] = lambda text: None
    sections: dict[str, str] = field(default_factory=dict)


@dataclass
class HeldOut:
    """The data an export is scored on.

    Attributes:
        items: held-out dataset items (evaluation transforms, no augmentation), indexable.
        indices: the items scored, in order.
        reference: real images to compare with (``translate eval``: training items); None: ``items``.
        reference_indices: the reference items read.
    """

    items: Sequence[dict[str, Any]]
    indices: Sequence[int]
    reference: Sequence[dict[str, Any]] | None = None
    reference_indices: Sequence[int] = ()

    def batches(self, keys: Sequence[str], batch_size: int, distinct: bool = True) -> Iterator[dict]:
        """The scored items' ``keys``, stacked in batches of ``batch_size``.

        Args:
            keys: item keys to stack (``"input"``, ``"A"``, ``"label"`` ...).
            batch_size: items per batch.
            distinct: skip an item whose image file (``path_<key>`` of the first key) was read already
                (two domains of different sizes repeat the smaller one's files).

        Returns:
            An iterator of ``{key: (B, ...) tensor}``.
        """
        return stacked(self.items, self.indices, keys, batch_size, distinct)

    def reference_images(self, key: str, batch_size: int, limit: int | None = None) -> Iterator[torch.Tensor]:
        """The reference images ``(B, C, H, W)``: of ``reference``, else the scored items' ``key``; at most
        ``limit`` of them."""
        if self.reference is None:
            items, indices = self.items, self.indices
        else:
            items, indices = self.reference, self.reference_indices
        indices = list(indices)[:limit] if limit is not None else indices
        return (batch[key] for batch in stacked(items, indices, [key], batch_size, True))


def stacked(
    items: Sequence[dict[str, Any]], indices: Iterable[int], keys: Sequence[str], size: int, distinct: bool
) -> Iterator[dict[str, torch.Tensor]]:
    """``items[i]`` for ``indices``, the ``keys`` stacked in batches of ``size`` (see ``HeldOut.batches``)."""
    seen: set[str] = set()
    chunk: list[dict[str, Any]] = []
    for index in indices:
        item = items[int(index)]
        path = item.get(f"path_{keys[0]}")
        if distinct and path is not None:
            if path in seen:
                continue
            seen.add(path)
        chunk.append(item)
        if len(chunk) == size:
            yield {k: torch.stack([torch.as_tensor(c[k]) for c in chunk]) for k in keys}
            chunk = []
    if chunk:
        yield {k: torch.stack([torch.as_tensor(c[k]) for c in chunk]) for k in keys}


class Kind:
    """One kind of model. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]
    command: ClassVar[str]
    """The command a user runs for it (named in errors when another command is given such a model)."""
    controls: ClassVar[tuple[str, ...]]
    """The inputs the ``serve`` page offers: ``image``, ``target``, ``noise``."""

    reference_from_training: ClassVar[bool] = False
    """``translate eval`` compares its outputs with training images (else with held-out ones)."""

    def data_options(self, name: str, export: Export, dataset: str) -> dict[str, Any]:
        """``DataConfig`` fields that ``translate eval`` sets to read export ``name``'s held-out data of
        dataset kind ``dataset``."""
        return {}

    def translator_arguments(self, options: dict[str, Any], task: nn.Module | None) -> dict[str, Any]:
        """What ``translate.inference.Translator`` needs beyond the network for a model of this kind.

        Args:
            options: the export's options (an exported file's: its contract's).
            task: the trained task (None for an exported file).

        Returns:
            ``Translator`` keyword arguments.
        """
        return {}

    def network_inputs(self, export: Export) -> list[str]:
        """The names of the network's positional inputs (an exported file's contract)."""
        raise NotImplementedError

    def example_inputs(
        self,
        export: Export,
        batch: int,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
    ) -> tuple[torch.Tensor, ...]:
        """Random inputs of the network: ``batch`` of them, images of ``height`` x ``width``."""
        raise NotImplementedError

    def plan(self, name: str, export: Export, probe: dict[str, Any]) -> Plan | None:
        """Which keys of held-out items like ``probe`` export ``name`` reads; None: it cannot be scored."""
        raise NotImplementedError

    def score(
        self, scoring: Scoring, name: str, export: Export, task: nn.Module, plan: Plan, data: HeldOut
    ) -> list[Score]:
        """The scores of export ``name`` of the trained ``task`` (eval mode) and of its baseline.

        Args:
            scoring: metrics, device, seed, batch size and where notes go.
            name, export: the export scored.
            task: the trained task, holding the export's network (and its classifier, if any).
            plan: the keys it reads (``plan()``).
            data: the held-out data.

        Returns:
            ``translate.metrics`` scores, in section ``name``.
        """
        raise NotImplementedError
