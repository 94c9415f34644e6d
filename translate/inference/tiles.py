"""Huge images in overlapping tiles, normalised with whole-image statistics.

A network with instance norm (or group / layer norm) normalises each feature map by the statistics of the
whole image it sees. Cut into tiles, every tile would be normalised by its own statistics and the tone would
shift from tile to tile. Here the tiles share the statistics the untiled image would have:

1. For each such norm layer in the order the network calls them, one pass over the tiles sums that layer's
   input (mean and mean square per channel, or per group) over each tile's own part of the image (the tiles'
   cores partition it), with the layers before it already normalised by their whole-image statistics; the
   pass stops at that layer. Layer ``k``'s statistics so depend on the exact ones of layers ``< k``.
2. A last pass normalises every tile with those statistics and blends the tiles' outputs: over each
   overlap the weights go from one tile to the other along a raised cosine over the overlap's middle half,
   so that the outer quarter by each tile's edge, where the tile lacks context, does not count.

A pass need not start at the input: the network's trunk (its ``nn.Sequential`` holding the most of those
norm layers: a ResNet generator's whole body) is a chain, so the output of a trunk layer whose norms all
have their statistics is the same in every later pass. Each tile's latest such output is kept in a temporary
folder (where it holds at most ``CACHE_VALUES_PER_PIXEL`` values per pixel: a ResNet's low-resolution
middle) and later passes resume there. A ResNet-9 then costs about two forward passes over the tiles instead
of eleven.

The result equals the untiled one up to the receptive-field edges of the tiles (the overlap hides them). Peak
memory is that of one tile plus the input and output images; time grows linearly with the pixels, times the
statistics passes (each runs the network up to its layer only). Batch norm in eval mode normalises with
stored statistics and needs nothing; batch norm on the batch's own statistics (pix2pix's test mode) is an
instance norm with a learned scale and shift (``per_image_norms``) and is tiled as one.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from translate.errors import ConfigError

log = logging.getLogger("translate")

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 64
TILE_ABOVE_PIXELS = 4_000_000
"""Images with more pixels are tiled unless told otherwise (``DEFAULT_TILE`` px tiles)."""
CACHE_VALUES_PER_PIXEL = 16
"""Trunk outputs with at most this many values per tile pixel are kept between passes (on disk)."""


# ---------------------------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Axis:
    """Tiles of ``size`` px along one axis of ``length`` px: their ``starts``, evenly spread, and their
    ``cores``, which partition the axis (split at the middle of each overlap, so each lies in its tile)."""

    length: int
    size: int
    starts: tuple[int, ...]
    cores: tuple[tuple[int, int], ...]

    @classmethod
    def plan(cls, length: int, tile: int, overlap: int, multiple: int = 1) -> Axis:
        """Tiles of ``tile`` px overlapping by at least ``overlap`` px; the tile size, starts and core bounds
        are multiples of ``multiple`` (``length`` must be one)."""
        size = min(round_up(max(tile, multiple), multiple), length)
        overlap = min(round_up(overlap, multiple), size - multiple)
        count = 1 if size == length else -(-(length - size) // (size - overlap)) + 1
        starts = [round(i * (length - size) / max(count - 1, 1) / multiple) * multiple for i in range(count)]
        bounds = [0]
        for left, right in zip(starts, starts[1:]):
            bounds.append((left + size + right) // 2 // multiple * multiple)  # the middle of the overlap
        bounds.append(length)
        return cls(length, size, tuple(starts), tuple(zip(bounds, bounds[1:])))

    def crop(self, index: int) -> slice:
        return slice(self.starts[index], self.starts[index] + self.size)

    def core(self, index: int) -> tuple[float, float]:
        """Tile ``index``'s core as fractions of the tile: the same on every feature map of the network."""
        start = self.starts[index]
        return tuple((bound - start) / self.size for bound in self.cores[index])  # type: ignore[return-value]

    def window(self, index: int) -> torch.Tensor:
        """``(size,)`` blending weights of tile ``index``: 1, with a ramp over each overlap with a neighbour
        (where two tiles overlap, their weights sum to 1)."""
        start, weights = self.starts[index], torch.ones(self.size, dtype=torch.float64)
        if index > 0:
            width = self.starts[index - 1] + self.size - start
            weights[:width] = ramp(width)
        if index + 1 < len(self.starts):
            width = start + self.size - self.starts[index + 1]
            weights[self.size - width :] *= ramp(width).flip(0)
        return weights


def ramp(width: int) -> torch.Tensor:
    """``width`` weights rising from 0 to 1 over the middle half (``sin^2``): ``ramp + ramp.flip(0)`` is 1.
    A tile's outer quarter of the overlap, where its missing context shows, weighs nothing."""
    quarter = width // 4
    middle = width - 2 * quarter
    rise = torch.sin((torch.arange(middle, dtype=torch.float64) + 0.5) / middle * math.pi / 2) ** 2
    return torch.cat(
        [torch.zeros(quarter, dtype=torch.float64), rise, torch.ones(quarter, dtype=torch.float64)]
    )


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


# ---------------------------------------------------------------------------------------------- norms
def normalises_by_input(layer: nn.Module) -> bool:
    """Whether ``layer`` normalises each image by the statistics of that image (what tiling changes)."""
    if isinstance(layer, nn.modules.instancenorm._InstanceNorm):
        return layer.training or not layer.track_running_stats
    return isinstance(layer, nn.GroupNorm)


def per_image_norms(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose batch norms normalise each image by its own statistics, whatever the batch:
    an instance norm with the batch norm's scale, shift and eps. That is what batch norm on the batch's
    statistics computes for one image at a time (pix2pix's test mode), as a layer any batch, tile or
    exporter can take. ``module`` is left unchanged."""
    copied = copy.deepcopy(module)
    for parent in list(copied.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d):
                norm = nn.InstanceNorm2d(child.num_features, eps=child.eps, affine=child.affine)
                if child.affine:
                    norm.weight, norm.bias = child.weight, child.bias
                setattr(parent, name, norm)
    return copied


class _StopPass(Exception):
    """Raised by the layer whose statistics a pass gathers: the rest of the network is not needed."""


class _Moments:
    """Mean and variance per group (a channel for instance norm) of one layer's input over the tiles' cores,
    combined tile by tile in float64 on the CPU (Chan et al.'s pairwise update: no cancellation)."""

    def __init__(self, groups: int) -> None:
        self.count = 0
        self.mean = torch.zeros(groups, dtype=torch.float64)
        self.m2 = torch.zeros(groups, dtype=torch.float64)

    def add(self, values: torch.Tensor) -> None:
        """``values`` ``(groups, n)``."""
        var, mean = (v.double().cpu() for v in torch.var_mean(values, dim=1, correction=0))
        count, total = values.shape[1], self.count + values.shape[1]
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += var * count + delta**2 * self.count * count / total
        self.count = total

    def mean_and_var(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean.to(device), (self.m2 / self.count).to(device)


class WholeImageNorms:
    """While active (``with norms.active():``), the network's per-image norm layers normalise with
    ``stats`` (whole-image mean and variance per group, by call order), and the layer at call index
    ``gather`` (if any) sums its input over ``cores`` and stops the pass."""

    def __init__(self, network: nn.Module) -> None:
        self.layers = [m for m in network.modules() if normalises_by_input(m)]
        self.stats: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.gather: int | None = None
        self.cores: list[tuple[int, int, int, int]] = []
        """Each image's core ``(top, bottom, left, right)`` as fractions of its height and width."""
        self.moments: _Moments | None = None
        self.calls = 0
        self.called: list[nn.Module] = []
        """The layer of each call index reached so far."""

    def final(self) -> set[nn.Module]:
        """The layers whose whole-image statistics are known."""
        return set(self.called[: len(self.stats)])

    @contextmanager
    def active(self) -> Iterator[WholeImageNorms]:
        for layer in self.layers:
            layer.forward = self._forward_of(layer)  # an instance attribute shadows the class's forward
        try:
            yield self
        finally:
            for layer in self.layers:
                del layer.forward

    def _forward_of(self, layer: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
        groups = layer.num_groups if isinstance(layer, nn.GroupNorm) else layer.num_features

        def forward(x: torch.Tensor) -> torch.Tensor:
            index, self.calls = self.calls, self.calls + 1
            if index == len(self.called):
                self.called.append(layer)
            grouped = x.reshape(len(x), groups, -1, *x.shape[-2:])  # (N, groups, channels per group, h, w)
            if index == self.gather:
                self._accumulate(grouped)
                raise _StopPass
            mean, var = (s.to(x.dtype)[:, None, None, None] for s in self.stats[index])
            y = (grouped - mean).mul_(torch.rsqrt(var + layer.eps)).reshape(x.shape)
            if layer.weight is not None:
                y.mul_(layer.weight[:, None, None]).add_(layer.bias[:, None, None])
            return y

        return forward

    def _accumulate(self, grouped: torch.Tensor) -> None:
        height, width = grouped.shape[-2:]
        if self.moments is None:
            self.moments = _Moments(grouped.shape[1])
        for image, (top, bottom, left, right) in zip(grouped, self.cores):
            rows = slice(round(top * height), round(bottom * height))
            columns = slice(round(left * width), round(right * width))
            self.moments.add(image[..., rows, columns].reshape(len(image), -1))


class TrunkCache:
    """Each tile's output of the latest layer of the network's trunk whose norm layers are all final, kept
    in ``folder`` so that later passes resume there (see the module's docstring). Not for networks with
    dropout (a pass that resumes would draw other masks)."""

    def __init__(self, network: nn.Module, norms: WholeImageNorms, folder: Path, tile_pixels: int) -> None:
        self.norms, self.folder, self.limit = norms, folder, CACHE_VALUES_PER_PIXEL * tile_pixels
        layers = set(norms.layers)

        def norms_in(child: nn.Module) -> set[nn.Module]:
            return layers & set(child.modules())

        sequences = [m for m in network.modules() if isinstance(m, nn.Sequential)]
        trunk = max(sequences, key=lambda s: sum(bool(norms_in(c)) for c in s), default=nn.Sequential())
        dropout = any(isinstance(m, nn.Dropout) and m.p > 0 for m in network.modules())
        useful = sum(bool(norms_in(c)) for c in trunk) >= 2 and not dropout
        self.trunk: nn.Module | None = trunk if useful else None
        self.children = list(trunk) if useful else []
        self.norms_in = [norms_in(child) for child in self.children]
        self.point: int | None = None
        """The trunk layer whose output is on disk for every tile: passes resume after it."""
        self.tile = 0
        self.pending: tuple[int, torch.Tensor] | None = None
        self.calls_after: dict[int, int] = {}
        """How many norm layers the network has called when trunk layer ``index`` is done."""
        self.in_trunk = False

    @contextmanager
    def active(self) -> Iterator[TrunkCache]:
        modules = [self.trunk, *self.children] if self.trunk is not None else []
        saved = [module.__dict__.get("forward") for module in modules]  # a norm layer's, from the norms
        for index, child in enumerate(self.children):
            child.forward = self._forward_of(index, child.forward)
        if self.trunk is not None:
            self.trunk.forward = self._trunk_forward(self.trunk.forward)
        try:
            yield self
        finally:
            for module, forward in zip(modules, saved):
                if forward is None:
                    del module.forward
                else:
                    module.forward = forward

    def _trunk_forward(self, inner: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        def forward(x: torch.Tensor) -> torch.Tensor:
            self.in_trunk = True  # the children resume only inside the trunk (a shared layer elsewhere runs)
            try:
                return inner(x)
            finally:
                self.in_trunk = False

        return forward

    def _forward_of(self, index: int, inner: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        def forward(x: torch.Tensor) -> torch.Tensor:
            if not self.in_trunk:
                return inner(x)
            if self.point is not None and index < self.point:  # resuming: the input goes by unused
                return x
            if self.point is not None and index == self.point:
                self.norms.calls = self.calls_after[index]  # the norm layers skipped count as called
                return torch.load(self.folder / f"{self.tile}.pt", weights_only=True, map_location=x.device)
            y = inner(x)
            if y.numel() <= self.limit and self.norms_in[index] <= self.norms.final():
                self.pending = (index, y)  # the same in every later pass
                self.calls_after[index] = self.norms.calls
            return y

        return forward

    def start(self, tile: int) -> None:
        self.tile, self.pending = tile, None

    def finish(self) -> int | None:
        """After a tile's pass: put its newest final trunk output on disk; returns that layer's index (where
        the next pass may resume)."""
        if self.pending is None:
            return self.point
        index, output = self.pending
        torch.save(output.cpu(), self.folder / f"{self.tile}.pt")
        self.pending = None
        return index


# ---------------------------------------------------------------------------------------------- tiling
@torch.no_grad()
def translate_tiled(
    network: nn.Module,
    image: torch.Tensor,
    run: Callable[[torch.Tensor], torch.Tensor] | None = None,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    multiple: int = 1,
    progress: bool = False,
) -> torch.Tensor:
    """``run(tile)`` (default: ``network(tile)``) over overlapping tiles of ``image`` ``(1, C, H, W)``,
    blended into ``(1, out_channels, H, W)``, with ``network``'s per-image norms on whole-image statistics.

    H and W must be multiples of ``multiple`` (the network's size multiple). ``progress``: a bar of the tile
    passes on a terminal."""
    run = run or network
    rows = Axis.plan(image.shape[-2], tile, overlap, multiple)
    columns = Axis.plan(image.shape[-1], tile, overlap, multiple)
    tiles = [(r, c) for r in range(len(rows.starts)) for c in range(len(columns.starts))]
    norms = WholeImageNorms(network)
    output = weights = None
    bar = tqdm(
        total=(len(norms.layers) + 1) * len(tiles), desc="tiles", leave=False, disable=not progress or None
    )
    with tempfile.TemporaryDirectory(prefix="translate-tiles-") as folder, bar, norms.active():
        cache = TrunkCache(network, norms, Path(folder), rows.size * columns.size)
        with cache.active():
            while True:  # a pass per norm layer, gathering its statistics; then the pass that runs to the end
                norms.gather, norms.moments = len(norms.stats), None
                resume_at = set()
                for index, (r, c) in enumerate(tiles):
                    norms.calls, norms.cores = 0, [(*rows.core(r), *columns.core(c))]
                    cache.start(index)
                    bar.update(1)
                    try:
                        result = run(image[..., rows.crop(r), columns.crop(c)])
                    except _StopPass:
                        resume_at.add(cache.finish())
                        continue
                    if output is None:
                        output = result.new_zeros(1, result.shape[1], *image.shape[-2:])
                        weights = result.new_zeros(image.shape[-2:])
                    window = (rows.window(r)[:, None] * columns.window(c)[None, :]).to(result)
                    output[..., rows.crop(r), columns.crop(c)] += result * window
                    weights[rows.crop(r), columns.crop(c)] += window
                if norms.moments is None:  # no layer left to gather: this pass made the output
                    return output / weights
                norms.stats.append(norms.moments.mean_and_var(image.device))
                cache.point = resume_at.pop() if len(resume_at) == 1 else None


# ---------------------------------------------------------------------------------------------- policy
@dataclass
class TilePolicy:
    """Which images a Translator translates in tiles, and how large.

    Args:
        tile: None: images above ``above_pixels`` in ``default`` px tiles (with a one-line note); 0: never;
            N: every image larger than N px.
        overlap: how far tiles overlap, in px (at most half a tile).
        unreachable_norms: the network normalises by its input in layers tiles cannot reach (an exported
            file): tiles on request are an error, huge images are translated whole (with a note).
        above_pixels: the pixel budget of ``tile=None``.
        default: the tile size of ``tile=None``.

    Raises:
        ConfigError: sizes that cannot work, or tiles requested for an exported file.
    """

    tile: int | None = None
    overlap: int = DEFAULT_OVERLAP
    unreachable_norms: bool = False
    above_pixels: int = TILE_ABOVE_PIXELS
    default: int = DEFAULT_TILE
    noted: bool = False
    """Whether the one-line note (tiling, or not tiling an exported file) was logged."""

    def __post_init__(self) -> None:
        tile, overlap = self.tile, self.overlap
        if (tile is not None and tile < 0) or overlap < 0:
            raise ConfigError(
                f"tile and overlap are sizes in pixels (tile 0: never tile); got {tile}, {overlap}"
            )
        if tile != 0 and 2 * overlap > (tile or self.default):
            raise ConfigError(
                f"the overlap ({overlap} px) must be at most half a tile ({tile or self.default} px)"
            )
        if tile and self.unreachable_norms:
            raise ConfigError(
                "tiles need the PyTorch model (whole-image statistics of its instance norms): "
                "translate with the run, not an exported file"
            )

    def size(self, height: int, width: int) -> int:
        """The tile size for a (padded) ``height`` x ``width`` image; 0: translate it whole."""
        if self.tile == 0 or (self.tile is None and height * width <= self.above_pixels):
            return 0
        tile = self.tile or self.default
        if max(height, width) <= tile:
            return 0
        if self.unreachable_norms:  # only above the budget: tiles on request are refused in __post_init__
            if not self.noted:
                log.warning(
                    "images above %.0f MP are translated whole with an exported model",
                    1e-6 * self.above_pixels,
                )
                self.noted = True
            return 0
        if self.tile is None and not self.noted:
            log.info(
                "%dx%d px is above %.0f MP: translating in %d px tiles with whole-image statistics "
                "(bounded memory; a pass per norm layer; --tile 0 to translate whole)",
                width,
                height,
                1e-6 * self.above_pixels,
                tile,
            )
            self.noted = True
        return tile
