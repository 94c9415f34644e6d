"""The fast inference path: the same generator, rewritten for speed and checked against itself.

``fast_network(generator)`` returns an equivalent network for eval-mode inference: weights and
activations in the channels_last memory format, compiled by ``torch.compile`` with constant weights
(inductor's freezing: norms and activations fused, weights prepacked), per input shape. Optionally every
stride-2 transposed convolution becomes four ordinary convolutions interleaved by ``PixelShuffle(2)``
(exact: each output phase is a convolution of the input with a sub-kernel).

``FastPath`` runs it where compiling pays (see its docstring: once the plain network has spent as long on
one input shape as a compile costs), checks its first output for each shape against the plain network
(max |diff| <= ``tolerance``) and falls back to the plain network, with a one-line note, where it is not
exact or cannot be built. Each compile is announced in one line. Inductor keeps the compiled C++ kernels
on disk (``$TORCHINDUCTOR_CACHE_DIR``, by default ``/tmp/torchinductor_$USER``), so a later run's compile
of the same network and shape is quicker (30 s -> 10 s measured for ``resnet_9blocks``); torch's FX graph
cache, which would skip the rest, bypasses frozen CPU graphs (their prepacked mkldnn weights cannot be
pickled, torch 2.14).

In ``bf16`` precision (``auto`` chooses it where the device computes bf16 natively: AVX512-BF16 or AMX
CPUs) the copy's weights and activations are bf16; its check is a PSNR of at least ``MIN_PSNR`` dB
against the fp32 output, and a shape that fails it turns the copy back to fp32, with one line.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
from time import perf_counter

import torch
import torch.nn.functional as F
from torch import nn

from translate.engine.device import native_bf16
from translate.errors import ConfigError

log = logging.getLogger(__name__)

FAST_ENV = "TRANSLATE_FAST"
"""``TRANSLATE_FAST=0`` in the environment turns the fast path off where it is not asked for explicitly."""

TOLERANCE = 1e-4
"""The largest difference to the plain network (outputs in [-1, 1]) at which the fp32 fast path is used."""

PRECISIONS = ("auto", "fp32", "bf16")
"""What the fast path computes in: ``auto`` is bf16 where the device has it natively (``native_bf16``)."""

MIN_PSNR = 40.0
"""The lowest PSNR (dB, outputs in [-1, 1]) of the bf16 fast path against the plain fp32 network."""


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16`` for ``precision`` (one of ``PRECISIONS``) on ``device``.

    Args:
        precision: ``auto``, ``fp32`` or ``bf16``.
        device: where the network runs.

    Returns:
        ``bf16`` when asked, or when ``auto`` and the device computes bf16 natively; else ``fp32``.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return precision


def psnr(output: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB of ``output`` against ``reference``, both in ``[-1, 1]`` (peak-to-peak 2); inf if equal."""
    mse = float((output.float() - reference.float()).pow(2).mean())
    return math.inf if mse == 0 else 10 * math.log10(4 / mse)


def phase_taps(size: int, padding: int) -> dict[tuple[int, int], int]:
    """Along one axis of a stride-2 transposed convolution: ``{(phase a, input offset d): kernel tap k}``,
    output ``2m + a`` taking input ``m + d`` through tap ``k`` (``2(m + d) - padding + k = 2m + a``)."""
    return {(a, (a + padding - k) // 2): k for a in (0, 1) for k in range(size) if (a + padding - k) % 2 == 0}


def span(taps: dict[tuple[int, int], int]) -> tuple[int, int]:
    """The lowest input offset of ``taps`` and how many offsets they span (the ordinary kernel's size)."""
    offsets = [d for _, d in taps]
    return min(offsets), max(offsets) - min(offsets) + 1


class ShuffledTransposedConv(nn.Module):
    """A stride-2 ``ConvTranspose2d`` computed as four ordinary convolutions, one per output phase (even
    or odd row x even or odd column), each with the sub-kernel of the taps that reach that phase, then
    interleaved by ``PixelShuffle(2)``: the same numbers and FLOPs, in oneDNN's fast convolution."""

    def __init__(self, transposed: nn.ConvTranspose2d) -> None:
        super().__init__()
        weight = transposed.weight.detach()  # (in, out, kh, kw)
        row_taps, col_taps = (phase_taps(k, p) for k, p in zip(transposed.kernel_size, transposed.padding))
        self.phases = nn.ModuleList()
        self.pads: list[tuple[int, int, int, int]] = []
        for a, b in ((0, 0), (0, 1), (1, 0), (1, 1)):
            rows = sorted((d, k) for (phase, d), k in row_taps.items() if phase == a)
            cols = sorted((d, k) for (phase, d), k in col_taps.items() if phase == b)
            kernel = weight[:, :, [k for _, k in rows]][:, :, :, [k for _, k in cols]]
            conv = nn.Conv2d(
                weight.shape[0], weight.shape[1], kernel.shape[2:], bias=transposed.bias is not None
            )
            conv.weight.data = kernel.transpose(0, 1).contiguous()
            if transposed.bias is not None:
                conv.bias.data = transposed.bias.detach().clone()
            self.phases.append(conv)
            # F.pad's order: left, right, top, bottom; input m + d for output phase row m
            self.pads.append((-cols[0][0], cols[-1][0], -rows[0][0], rows[-1][0]))
        self.shuffle = nn.PixelShuffle(2)

    @staticmethod
    def fits(module: nn.Module) -> bool:
        """A transposed convolution this rewrite reproduces: stride 2, no groups or dilation, and an output
        of exactly twice the input (``kernel - 2 * padding + output_padding == 2``)."""
        if not isinstance(module, nn.ConvTranspose2d):
            return False
        return (
            module.stride == (2, 2)
            and module.groups == 1
            and module.dilation == (1, 1)
            and module.padding_mode == "zeros"
            and all(
                k - 2 * p + op == 2
                for k, p, op in zip(module.kernel_size, module.padding, module.output_padding)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        phases = [conv(F.pad(x, pad)) for conv, pad in zip(self.phases, self.pads)]
        stacked = torch.stack(phases, dim=2)  # (N, C, 4, H, W): channel c * 4 + 2a + b, as PixelShuffle reads
        return self.shuffle(stacked.flatten(1, 2))


def rewrite_transposed_convs(network: nn.Module) -> tuple[nn.Module, int]:
    """A copy of ``network`` with every fitting transposed convolution as ``ShuffledTransposedConv``;
    returns it and how many were rewritten."""
    network = copy.deepcopy(network)
    count = 0
    for module in list(network.modules()):
        for child_name, child in list(module.named_children()):
            if ShuffledTransposedConv.fits(child):
                setattr(module, child_name, ShuffledTransposedConv(child))
                count += 1
    return network, count


def fast_network(
    network: nn.Module, compile: bool = True, rewrite: bool = False, dtype: torch.dtype = torch.float32
) -> nn.Module:
    """An eval-mode copy of ``network`` in channels_last (and ``dtype``), with ``compile``: compiled by
    inductor with its weights as constants (freezing: folded and prepacked); with ``rewrite``: its
    transposed convolutions as ``ShuffledTransposedConv`` (off by default: with torch 2.14's oneDNN on the
    CPU, transposed convolutions already run near the GEMM peak and the rewrite measured 0.9x;
    tools/benchmark.py --fast shows it). The copy takes and returns ``dtype`` tensors."""
    fast = rewrite_transposed_convs(network)[0] if rewrite else copy.deepcopy(network)
    fast = fast.eval().to(dtype=dtype, memory_format=torch.channels_last)
    for p in fast.parameters():
        p.requires_grad_(False)
    if compile:
        # torch notes once that a CPU-only build has no CUDA runtime when it first compiles: not our news
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        fast = torch.compile(fast, dynamic=False)  # frozen by FastPath, which calls it under frozen_weights()
    return fast


def frozen_weights() -> contextlib.AbstractContextManager:
    """Inductor's freezing (weights as constants of the graph: folded, prepacked) for what compiles inside,
    and only there: a global setting would freeze the weights of a model still training in this process."""
    import torch._inductor.config as inductor_config

    return inductor_config.patch(freezing=True)


MAX_SHAPES = 4
"""Input shapes compiled per model; images of further shapes run the plain network (with a note)."""

COMPILE_SECONDS = 12.0
"""What one shape's compile is expected to cost before one has been measured: a first compile of a
``resnet_9blocks`` generator on a 2-core CPU (issue 23; 12 to 25 s by the machine's load). Once a
``FastPath`` has compiled a shape, its measured cost stands in for this."""


class FastPath:
    """Runs ``network`` (eval mode, no grad) through ``fast_network`` where that pays.

    The rule: an input shape runs the plain network until the plain network has spent ``compile_after``
    seconds on it (by default what a compile costs: ``COMPILE_SECONDS``, or this path's last measured
    compile); its next call builds the fast path for it, checks it against the plain network, and from
    then on uses it for that shape when it was exact to ``tolerance``. So a folder whose shapes each take
    less plain time than a compile (a few small images of mixed sizes) never compiles and costs what the
    plain network costs; a large folder of one shape compiles after about ``compile_after`` seconds and
    runs fast from then on; and, when the estimate is right, no folder costs much more than twice what the
    better choice made in advance would have (the waiting costs at most one compile). Each compile is
    announced in one line.

    ``compile``: compile per shape (a one-off cost of seconds; at most ``MAX_SHAPES`` shapes), else
    channels_last alone, which costs nothing to build (``compile_after`` 0: the second call of a shape
    builds it); ``rewrite``: also rewrite the transposed convolutions. On the CPU batches run one image at
    a time (as fast: the work is compute-bound), so that one compiled graph serves every batch size. A
    failure to build or compile the fast copy (no C++ compiler...) turns it off for good, a later failure
    on a checked shape falls back for that shape; both with a one-line note. The copy is taken at the first
    build: weights changed afterwards are not seen (make a new FastPath for new weights)."""

    def __init__(
        self,
        network: nn.Module,
        compile: bool = True,
        tolerance: float = TOLERANCE,
        rewrite: bool = False,
        precision: str = "fp32",
        compile_after: float | None = None,
    ) -> None:
        self.network = network
        self.compile = compile
        self.rewrite = rewrite
        self.tolerance = tolerance
        self.compile_after = compile_after
        """Plain-network seconds on one shape before it is built; None: what a compile costs."""
        device = next(network.parameters(), torch.empty(0)).device
        self.precision = resolve_precision(precision, device)
        """``fp32`` or ``bf16``: what the fast copy computes in (bf16 turns fp32 on a failed check)."""
        self._fast: nn.Module | None = None
        self._broken = False
        """The fast copy failed to build or compile: the plain network from then on."""
        self.plain_seconds: dict[tuple, float] = {}
        """Per input signature: seconds the plain network spent on it before its fast path was built."""
        self._exact: dict[tuple, bool] = {}
        """Per input signature (shapes, dtype, device): whether the fast path matched the plain one."""
        self.build_seconds: dict[tuple, float] = {}
        """Per input signature: seconds of the first fast call (compilation included)."""

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.precision == "bf16" else torch.float32

    def compile_seconds(self) -> float:
        """What compiling one more shape is expected to cost: the last measured, else ``COMPILE_SECONDS``."""
        return list(self.build_seconds.values())[-1] if self.build_seconds else COMPILE_SECONDS

    def budget(self) -> float:
        """Seconds of plain-network time on one shape after which the fast path is built for it."""
        if self.compile_after is not None:
            return self.compile_after
        return self.compile_seconds() if self.compile else 0.0

    def _pays(self, key: tuple) -> bool:
        spent = self.plain_seconds.get(key)
        return spent is not None and spent >= self.budget()

    def _fast_inputs(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        def convert(x: torch.Tensor) -> torch.Tensor:
            x = x.to(self.dtype) if x.is_floating_point() else x
            return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x

        return tuple(convert(x) for x in inputs)

    def _agrees(self, fast: torch.Tensor, plain: torch.Tensor) -> tuple[bool, str]:
        """Whether the fast output may stand for the plain one, and the measure that says so."""
        if self.precision == "bf16":
            value = psnr(fast, plain)
            return value >= MIN_PSNR, f"PSNR {value:.1f} dB (needs {MIN_PSNR:.0f})"
        difference = float((fast - plain).abs().max())
        return difference <= self.tolerance, f"by {difference:.2g} (limit {self.tolerance:.0e})"

    @torch.no_grad()
    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        if inputs[0].device.type == "cpu" and len(inputs[0]) > 1:
            return torch.cat([self(*(x[i : i + 1] for x in inputs)) for i in range(len(inputs[0]))])
        key = tuple((tuple(x.shape), x.dtype, x.device.type) for x in inputs)
        exact = self._exact.get(key)
        if exact is False or self._broken:
            return self.network(*inputs)
        if exact:
            return self._run_fast(key, inputs)
        if not self._pays(key):
            return self._run_plain(key, inputs)
        if len(self._exact) >= MAX_SHAPES and self.compile:
            log.info(
                "fast path: more than %d input shapes; %s runs the plain network",
                MAX_SHAPES,
                describe(inputs),
            )
            self._exact[key] = False
            return self.network(*inputs)
        return self._build(key, inputs)

    def _run_plain(self, key: tuple, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The plain network, its time added to the shape's ``plain_seconds``."""
        started = perf_counter()
        output = self.network(*inputs)
        if output.device.type == "cuda":
            torch.cuda.synchronize(output.device)
        self.plain_seconds[key] = self.plain_seconds.get(key, 0.0) + perf_counter() - started
        return output

    def _run_fast(self, key: tuple, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        try:
            with frozen_weights():
                return self._fast(*self._fast_inputs(inputs)).to(plain_dtype(inputs)).contiguous()
        except Exception as exc:  # noqa: BLE001  (a recompile that fails: the plain network is there)
            self._exact[key] = False
            log.info("fast path failed on %s (%s); running the plain network", describe(inputs), exc)
            return self.network(*inputs)

    def _build(self, key: tuple, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Build (compile) the fast path for ``key``'s shape, check it against the plain network on
        ``inputs`` and return the plain output."""
        plain = self.network(*inputs)
        if self.compile:
            log.info(
                "fast path: compiling the generator for %s images (once per size; the plain network "
                "has spent %.1f s on them, a compile costs about %.0f s; --no-fast turns it off)",
                describe(inputs),
                self.plain_seconds[key],
                self.compile_seconds(),
            )
        try:
            if self._fast is None:
                self._fast = fast_network(self.network, self.compile, self.rewrite, self.dtype)
            started = perf_counter()
            with frozen_weights():
                fast = self._fast(*self._fast_inputs(inputs)).to(plain.dtype).contiguous()
            self.build_seconds[key] = perf_counter() - started
        except Exception as exc:  # noqa: BLE001  (any failure to build or run: the plain network is there)
            self._broken = True
            log.info("fast path unavailable (%s: %s); running the plain network", type(exc).__name__, exc)
            return plain
        agrees, measure = self._agrees(fast, plain)
        if not agrees and self.precision == "bf16":
            log.info("fast path in bf16 on %s: %s fails; fp32 from now on", describe(inputs), measure)
            self.precision, self._fast, self._exact = "fp32", None, {}
            return plain
        self._exact[key] = agrees
        if not agrees:
            log.info(
                "fast path differs from the plain network %s on %s: running the plain network",
                measure,
                describe(inputs),
            )
        else:
            log.debug(
                "fast path built for %s in %.1f s (%s; checked against the plain network: %s)",
                describe(inputs),
                self.build_seconds[key],
                self.precision,
                measure,
            )
        return plain


def plain_dtype(inputs: tuple[torch.Tensor, ...]) -> torch.dtype:
    """The floating dtype the plain network returns for ``inputs`` (their first floating one)."""
    return next((x.dtype for x in inputs if x.is_floating_point()), torch.float32)


def describe(inputs: tuple[torch.Tensor, ...]) -> str:
    return ", ".join("x".join(map(str, x.shape)) for x in inputs)
