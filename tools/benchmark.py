"""Throughput benchmark: generator inference and full training steps, as ratios against baselines.

For each method x image size x batch size it measures

* the main generator's forward pass (eval mode, ``no_grad``): ms/batch, images/s, FLOPs per image and
  achieved GFLOP/s;
* one full training step through the real ``Trainer.train_step`` (one generator update and ``n_critic``
  discriminator updates) with the trainer's optimizers (fused Adam; RMSprop for WGAN), and the same step
  with the same optimizer written plainly (``fused=False, foreach=False``) swapped in: ms/step, images/s,
  FLOPs per step (forward + backward) and achieved GFLOP/s.

Speed is reported against baselines measured in the same run, never as bare numbers to compare across
machines: every row's GFLOP/s as a percentage of the dense fp32 GEMM peak measured on the spot, and the
fused step as a speedup over the plain step. FLOPs come from ``torch.utils.flop_counter``
(convolutions and matrix products; norms, activations and optimizer updates are not counted), counted once
outside the timed runs.

    python tools/benchmark.py --methods gan cgan --sizes 28 --batch-sizes 64 --set data.out_channels=1
    python tools/benchmark.py --methods dcgan wgan wgangp lsgan --sizes 64 --batch-sizes 64
    python tools/benchmark.py --methods pix2pix cyclegan --sizes 64 128 --batch-sizes 1 4 \\
        --set pix2pix:model.generator.name=unet --set pix2pix:model.generator.num_downs=6 \\
        --device cpu --repeats 3 --warmup 1 --out results.json

``--set key=value`` overrides every method's config; ``--set METHOD:key=value`` only that method's.
Nothing is written except ``--out``: the trainer runs in a temporary folder on in-memory random data.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch.utils.data import Dataset, default_collate
from torch.utils.flop_counter import FlopCounterMode

import translate.api  # noqa: F401  (registers every component)
from translate.config import Config, build_config
from translate.config_files import parse_override
from translate.engine.device import describe_cpu, resolve_device
from translate.engine.trainer import Trainer
from translate.errors import ConfigError
from translate.inference.fast import FastPath
from translate.kinds import kind_of
from translate.labels import HAIR_COLOURS, LabelSpace
from translate.registry import DISCRIMINATORS, GENERATORS, TASKS, accepted_kwargs

LABELS = LabelSpace.with_groups(["Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"], [HAIR_COLOURS])
CLASSES = [str(i) for i in range(10)]

# --------------------------------------------------------------------------------------------- data


class SyntheticDataset(Dataset):
    """Random images in ``[-1, 1]`` in the item format of the task's dataset kind; nothing is read from disk.

    ``kind`` is the task's ``dataset`` (``aligned``: ``{"input", "target", "path"}``, ``unaligned``:
    ``{"A", "B", "path_A", "path_B"}``, ``labelled``: ``{"image", "label", "path"}`` with StarGAN's five
    CelebA attributes, ``images``: ``{"image", "label", "path"}`` with one of ten classes). Items are
    deterministic per index; sampler items ``(index, seed)`` are accepted like plain indices.
    """

    def __init__(
        self,
        kind: str,
        size: int,
        in_channels: int = 3,
        out_channels: int = 3,
        direction: str = "a2b",
        length: int = 16,
    ) -> None:
        if kind not in ("aligned", "unaligned", "labelled", "images"):
            raise ConfigError(
                f"the benchmark has no synthetic data for dataset kind {kind!r} "
                "(known: aligned, unaligned, labelled, images)"
            )
        self.kind, self.size, self.length = kind, size, length
        self.in_channels, self.out_channels, self.direction = in_channels, out_channels, direction

    def task_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"in_channels": self.in_channels, "out_channels": self.out_channels}
        if self.kind == "aligned":
            kwargs["direction"] = self.direction
        if self.kind == "labelled":
            kwargs["labels"] = LABELS.to_dict()
            kwargs["image_size"] = self.size
        if self.kind == "images":
            kwargs.update(in_channels=self.out_channels, image_size=self.size, classes=CLASSES)
        return kwargs

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        index = item[0] if isinstance(item, tuple) else item
        gen = torch.Generator().manual_seed(int(index))

        def image(channels: int) -> torch.Tensor:
            return torch.rand(channels, self.size, self.size, generator=gen) * 2 - 1

        if self.kind == "aligned":
            return {
                "input": image(self.in_channels),
                "target": image(self.out_channels),
                "path": f"{index}.png",
            }
        if self.kind == "labelled":
            label = LABELS.from_logits(torch.randn(1, len(LABELS), generator=gen))[0]
            return {"image": image(self.in_channels), "label": label, "path": f"{index}.png"}
        if self.kind == "images":
            label = torch.randint(len(CLASSES), (), generator=gen)
            return {"image": image(self.out_channels), "label": label, "path": f"{index}.png"}
        return {
            "A": image(self.in_channels),
            "B": image(self.out_channels),
            "path_A": f"a/{index}.png",
            "path_B": f"b/{index}.png",
        }


class CountingBatches:
    """An endless iterator over a few pre-collated batches (moved to ``device``), counting what it yields."""

    def __init__(self, dataset: Dataset, batch_size: int, device: torch.device, distinct: int = 2) -> None:
        batches = []
        for b in range(distinct):
            items = [dataset[(b * batch_size + i) % len(dataset)] for i in range(batch_size)]
            batch = default_collate(items)
            batches.append({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
        self._cycle = itertools.cycle(batches)
        self.yielded = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        self.yielded += 1
        return next(self._cycle)


# --------------------------------------------------------------------------------------------- measuring


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds one call of ``fn`` takes, with the device synchronized on both sides."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleaved_times(
    variants: dict[str, Callable[[], Any]], device: torch.device, repeats: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds of each variant's calls, interleaved in alternating order (ABBA...) so that load drifting
    on a shared machine hits every variant alike."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for r in range(max(repeats, 1)):
        for name in order if r % 2 == 0 else order[::-1]:
            times[name].append(time_call(variants[name], device))
    return times


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call of ``fn`` (forward and backward convolutions/matmuls), by ``FlopCounterMode``."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def gemm_peak_gflops(
    device: torch.device, n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32
) -> float:
    """Dense GEMM throughput (GFLOP/s) of ``torch.mm`` on ``n x n`` matrices (fp32 unless ``dtype``):
    best of ``repeats``."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    for _ in range(2):
        torch.mm(a, b, out=out)
    best = min(time_call(lambda: torch.mm(a, b, out=out), device) for _ in range(max(repeats, 1)))
    return 2 * n**3 / best / 1e9


# --------------------------------------------------------------------------------------------- config


def split_overrides(items: list[str], methods: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``--set`` items per method: ``key=value`` applies to all, ``method:key=value`` to one."""
    per_method: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for item in items:
        key, sep, value = item.partition("=")
        targets = methods
        if ":" in key:
            method, key = key.split(":", 1)
            if method not in TASKS:
                TASKS.get(method)  # raises, naming the known methods
            targets = [method] if method in per_method else []
        for method in targets:
            per_method[method].append(parse_override(key + sep + value))
    return per_method


def base_channels_layer(base_channels: int | None, model: dict[str, Any]) -> dict[str, Any]:
    """``--base-channels`` as a config layer for the generator and discriminator specs in ``model`` that
    take one and do not set it already."""
    if base_channels is None:
        return {}
    layer: dict[str, Any] = {}
    for role, registry in (("generator", GENERATORS), ("discriminator", DISCRIMINATORS)):
        spec = model.get(role)
        if isinstance(spec, dict) and "name" in spec and "base_channels" not in spec:
            accepted = accepted_kwargs(registry.get(spec["name"]))
            if accepted is None or "base_channels" in accepted:
                layer[role] = {"base_channels": base_channels}
    return {"model": layer}


def benchmark_config(
    method: str,
    size: int,
    batch_size: int,
    device: str,
    run_dir: str,
    overrides: list[dict[str, Any]],
    base_channels: int | None = None,
) -> Config:
    """The method's config (task defaults < ``--set`` < base channels) for one size and batch size.

    No data folder is involved: the benchmark injects its own in-memory dataset.
    """
    run_layer = {
        "data": {"image_size": size, "num_workers": 0},
        "train": {"batch_size": batch_size, "device": device},
    }
    layers = [{"task": method, "run_dir": run_dir}, TASKS.get(method).default_config, *overrides]
    chosen = build_config(*layers).model
    return build_config(*layers, base_channels_layer(base_channels, chosen), run_layer)


FAST_WARMUP = 3
"""Extra untimed steps of the fast variant: torch.compile recompiles once per network and grad mode."""


def fast_config(config: Config, device: torch.device) -> Config:
    """``config`` with every speed option of the trainer on (bf16 autocast and channels_last apply on
    CUDA only; compile everywhere)."""
    on_cuda = device.type == "cuda"
    train = dataclasses.replace(config.train, compile=True, amp=on_cuda, channels_last=on_cuda)
    return dataclasses.replace(config, train=train)


def describe_fast(config: Config, device: torch.device) -> str:
    train = config.train
    parts = ["bf16 autocast"] if train.amp and device.type == "cuda" else []
    parts += ["channels_last"] if train.channels_last and device.type == "cuda" else []
    return " + ".join(parts + ["compile"])


def plain_optimizer(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """The same optimizer (Adam, RMSprop...) over the same parameter groups and hyperparameters, written as
    the reference implementations use it: a per-parameter loop (``foreach=False``, ``fused=False``)."""
    groups = [
        {k: v for k, v in group.items() if k not in ("fused", "foreach")} for group in optimizer.param_groups
    ]
    plain = {"foreach": False}
    if "fused" in inspect.signature(type(optimizer)).parameters:
        plain["fused"] = False
    return type(optimizer)(groups, **plain)


# --------------------------------------------------------------------------------------------- rows


@dataclass
class Row:
    method: str
    what: str
    """``generator forward``, ``train step (fused Adam)`` or ``train step (plain Adam)``."""
    size: int
    batch: int
    ms: float
    """Milliseconds per batch (forward) or per step (training)."""
    images_per_s: float
    gflop: float
    """GFLOP per image (forward) or per step (training)."""
    gflop_per_unit: str
    """``image`` or ``step``."""
    gflops: float
    """Achieved GFLOP/s."""
    pct_of_peak: float
    """Achieved GFLOP/s as a percentage of the GEMM peak measured in the same run."""
    ratio: float | None = None
    """Speedup against the row's baseline (fused Adam step vs plain Adam step), None when there is none."""
    baseline: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def bench_one(
    method: str,
    size: int,
    batch_size: int,
    args: argparse.Namespace,
    overrides: list[dict[str, Any]],
    peak: float,
) -> list[Row]:
    """Rows for one method x size x batch size: generator forward, then fused and plain Adam train steps."""
    with tempfile.TemporaryDirectory(prefix="translate-bench-") as run_dir:
        config = benchmark_config(
            method, size, batch_size, args.device, run_dir, overrides, args.base_channels
        )
        data = config.data
        dataset = SyntheticDataset(
            TASKS.get(method).dataset,
            size,
            data.in_channels,
            data.out_channels,
            data.direction,
            length=max(16, 2 * batch_size),
        )
        trainer = Trainer(config, os.path.join(run_dir, "run"), dataset=dataset)
        direction, export = next(iter(trainer.task.exports().items()))
        generator = trainer.task.get_submodule(export.module)
        common = {
            "generator": config.model.get("generator"),
            "direction": direction,
            "discriminator": config.model.get("discriminator"),
            "generator_params": sum(p.numel() for p in generator.parameters()),
            # what the optimizers update: the Adam step's cost grows with this, not with image size
            "optimized_params": {
                name: sum(p.numel() for p in group.parameters) for name, group in trainer.optimizers.items()
            },
        }
        rows: list[Row] = []
        if not args.no_forward:
            rows += bench_forward(method, size, batch_size, args, trainer, export, peak, common)
        if args.apply and kind_of(export).controls == ("image",):
            rows.append(bench_apply(method, size, batch_size, args, generator, export, peak, common))
        if not args.no_train:
            rows += bench_steps(method, size, batch_size, args, trainer, dataset, run_dir, peak, common)
        return rows


def bench_forward(method, size, batch_size, args, trainer, export, peak: float, common: dict) -> list[Row]:
    """The generator's eval-mode forward (and with ``--fast`` the fast path's), timed interleaved."""
    device, task = trainer.device, trainer.task
    generator = task.get_submodule(export.module)
    inputs = kind_of(export).example_inputs(export, batch_size, size, size, device=device)
    task.eval()
    with torch.no_grad():
        flops = count_flops(lambda: generator(*inputs))
        common["flops_per_image"] = flops / batch_size
        variants = {"generator forward": lambda: generator(*inputs)}
        first_call_s: dict[str, float] = {}
        if args.fast:
            fast_variants = [
                ("", False, "fp32"),
                (" + pixel-shuffle rewrite", True, "fp32"),
                (", bf16", False, "bf16"),
            ]
            for label, rewrite, precision in fast_variants:
                name = f"generator forward (fast path{label})"
                # compile_after=0: the compiled path itself (apply compiles a shape once it pays)
                fast = FastPath(generator, rewrite=rewrite, precision=precision, compile_after=0)
                variants[name] = functools.partial(fast, *inputs)
                variants[name]()  # a shape's first call runs plain; the second compiles and checks
                first_call_s[name] = time_call(variants[name], device)
        times = interleaved_times(variants, device, args.repeats, args.warmup)
    task.train()
    plain = statistics.median(times["generator forward"])
    rows = []
    for what, samples in times.items():
        seconds = statistics.median(samples)
        gflops = flops / seconds / 1e9
        first = {"first_call_ms": first_call_s[what] * 1e3} if what in first_call_s else {}
        details = {**common, "flops_per_batch": flops, "times_ms": [t * 1e3 for t in samples], **first}
        rows.append(
            Row(
                method,
                what,
                size,
                batch_size,
                seconds * 1e3,
                batch_size / seconds,
                flops / batch_size / 1e9,
                "image",
                gflops,
                100 * gflops / peak,
                ratio=plain / seconds if args.fast else None,
                baseline="plain eager forward",
                details=details,
            )
        )
    return rows


def bench_steps(
    method, size, batch_size, args, trainer, dataset, run_dir, peak: float, common: dict
) -> list[Row]:
    """Training steps with the fused optimizers against plain ones (and with ``--fast`` the fast options)."""
    config, device = trainer.config, trainer.device
    trainer.task.train()
    batches = CountingBatches(dataset, batch_size, device)
    kind = "/".join(sorted({type(g.optimizer).__name__ for g in trainer.optimizers.values()}))
    fused, plain = f"fused {kind}", f"plain {kind}"
    variants = {
        fused: dict(trainer.optimizers),
        plain: {
            name: dataclasses.replace(group, optimizer=plain_optimizer(group.optimizer))
            for name, group in trainer.optimizers.items()
        },
    }
    before = batches.yielded
    flops = count_flops(lambda: trainer.train_step(batches))  # also a warm-up step (fused)
    batches_per_step = batches.yielded - before

    def step(variant: str) -> Callable[[], Any]:
        def run() -> None:
            trainer.optimizers = variants[variant]
            trainer.train_step(batches)

        return run

    steps = {variant: step(variant) for variant in variants}
    first_step_s: dict[str, float] = {}
    if args.fast:
        fast_trainer = Trainer(fast_config(config, device), os.path.join(run_dir, "fast"), dataset=dataset)
        fast_trainer.task.train()
        fast = f"fast: {describe_fast(fast_trainer.config, device)}, {fused}"
        steps[fast] = lambda: fast_trainer.train_step(batches)
        first_step_s[fast] = time_call(steps[fast], device)  # compilation, reported
    for variant, fn in steps.items():  # compiled steps recompile once per network and grad mode
        for _ in range(FAST_WARMUP if variant in first_step_s else 0):
            fn()
    times = interleaved_times(steps, device, args.repeats, args.warmup)
    trainer.optimizers = variants[fused]
    medians = {v: statistics.median(t) for v, t in times.items()}
    rows = []
    for variant, seconds in medians.items():
        gflops = flops / seconds / 1e9
        first = {"first_step_ms": first_step_s[variant] * 1e3} if variant in first_step_s else {}
        details = {
            **common,
            "n_critic": config.train.n_critic,
            "batches_per_step": batches_per_step,
            "flops_per_step": flops,
            "times_ms": [t * 1e3 for t in times[variant]],
            **first,
        }
        rows.append(
            Row(
                method,
                f"train step ({variant})",
                size,
                batch_size,
                seconds * 1e3,
                batch_size * batches_per_step / seconds,
                flops / 1e9,
                "step",
                gflops,
                100 * gflops / peak,
                ratio=1.0 if variant == plain else medians[plain] / seconds,
                baseline=f"{plain} step",
                details=details,
            )
        )
    return rows


def bench_apply(
    method: str,
    size: int,
    batch_size: int,
    args: argparse.Namespace,
    generator: torch.nn.Module,
    export: Any,
    peak: float,
    common: dict[str, Any],
) -> Row:
    """``Translator.apply_paths`` on a folder of ``args.apply`` JPEGs of ``size`` px, against the network
    time of the same images (``translate_tensor`` on tensors already in memory, same batches): the ratio is
    network time / apply time, so 1.0 means reading, resizing and writing are completely hidden."""
    import numpy as np
    from PIL import Image

    from translate.inference import Translator

    device = next(generator.parameters()).device
    translator = Translator(generator, export.in_channels, export.out_channels, device, fast=args.fast)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="translate-apply-") as folder:
        inputs = os.path.join(folder, "in")
        os.makedirs(inputs)
        arrays = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(args.apply)]
        for i, array in enumerate(arrays):
            Image.fromarray(array).save(os.path.join(inputs, f"{i:04d}.jpg"), quality=95)
        tensors = [translator.to_tensor(array) for array in arrays]
        # warm-up: the fast path compiles an image size the second time it comes
        translator.translate_many(tensors[: max(batch_size, 2)], batch_size)

        def network() -> None:
            translator.translate_many(tensors, batch_size)

        def apply() -> None:
            translator.apply_paths(
                [inputs], os.path.join(folder, "out"), batch_size, progress=False, overwrite=True
            )

        times = interleaved_times({"network": network, "apply": apply}, device, max(args.repeats // 2, 1), 0)
    seconds = statistics.median(times["apply"])
    network_seconds = statistics.median(times["network"])
    flops = common.get("flops_per_image", 0)
    return Row(
        method,
        f"apply folder ({args.apply} JPEGs{', fast path' if args.fast else ''})",
        size,
        batch_size,
        seconds * 1e3,
        args.apply / seconds,
        flops / 1e9,
        "image",
        flops * args.apply / seconds / 1e9,
        100 * flops * args.apply / seconds / 1e9 / peak,
        ratio=network_seconds / seconds,
        baseline="the network alone on the same images (1.00x: I/O fully hidden)",
        details={
            **common,
            "network_ms": network_seconds * 1e3,
            "times_ms": [t * 1e3 for t in times["apply"]],
        },
    )


# --------------------------------------------------------------------------------------------- output


def _num(x: float) -> str:
    """Three significant digits without exponents for the sizes a table holds (0.00095, 1.23, 12.3, 1234)."""
    return f"{x:.1f}" if abs(x) >= 100 else f"{x:.3g}" if abs(x) >= 1e-3 else f"{x:.2e}"


def render_table(rows: list[Row], peak: float, bf16_peak: float | None = None, machine: str = "") -> str:
    """Markdown table of the rows; the machine and its fp32 and bf16 GEMM peaks are stated above it."""
    header = [
        "method",
        "what",
        "size",
        "batch",
        "ms",
        "img/s",
        "GFLOP (per img | per step)",
        "GFLOP/s",
        "% GEMM peak",
        "ratio vs baseline",
    ]
    lines = [
        (f"{machine}. " if machine else "")
        + f"Dense fp32 GEMM peak measured in this run: {peak:.1f} GFLOP/s"
        + (f"; bf16: {bf16_peak:.1f} GFLOP/s" if bf16_peak else ""),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|",
    ]
    for row in rows:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x vs {row.baseline}"
        if row.ratio == 1.0 and ("plain" in row.what or row.what == "generator forward"):
            ratio = "1.00x (baseline)"
        unit = "img" if row.gflop_per_unit == "image" else "step"
        cells = [
            row.method,
            row.what,
            str(row.size),
            str(row.batch),
            _num(row.ms),
            _num(row.images_per_s),
            f"{_num(row.gflop)} /{unit}",
            _num(row.gflops),
            f"{_num(row.pct_of_peak)}%",
            ratio,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def default_threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--methods", nargs="+", default=["pix2pix", "cyclegan"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1])
    parser.add_argument(
        "--base-channels",
        type=int,
        default=None,
        help="generator (and discriminator) base width; default: the task's (64)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="[METHOD:]KEY=VALUE",
        help="config override, for all methods or one (repeatable)",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
    parser.add_argument("--threads", type=int, default=None, help="torch threads; default: all cores")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    parser.add_argument(
        "--gemm-size", type=int, default=2048, help="side of the matrices of the GEMM baseline"
    )
    parser.add_argument("--no-forward", action="store_true", help="skip the generator forward rows")
    parser.add_argument("--no-train", action="store_true", help="skip the training step rows")
    parser.add_argument(
        "--apply",
        type=int,
        default=0,
        metavar="N",
        help="also time `apply` on a folder of N JPEGs against the network alone on the same images",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="also time the step with the trainer's speed options (compile; on CUDA bf16 autocast and "
        "channels_last too) against the same plain baseline; the first (compiling) step is reported",
    )
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the benchmark described by ``args``; returns the JSON-able results (rows, skipped, baselines)."""
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    for method in args.methods:
        TASKS.get(method)  # unknown names fail before any measuring
    per_method = split_overrides(args.overrides, args.methods)
    device = resolve_device(args.device)
    peak_start = gemm_peak_gflops(device, args.gemm_size)
    log(f"GEMM peak: {peak_start:.1f} GFLOP/s ({threads} threads, {device})")
    rows: list[Row] = []
    skipped: list[dict[str, Any]] = []
    for method, size, batch in itertools.product(args.methods, args.sizes, args.batch_sizes):
        started = time.perf_counter()
        try:
            new = bench_one(method, size, batch, args, per_method[method], peak_start)
        except ConfigError as exc:
            skipped.append({"method": method, "size": size, "batch": batch, "reason": str(exc)})
            log(f"skipped {method} {size}px batch {batch}: {exc}")
            continue
        rows += new
        log(f"{method} {size}px batch {batch}: {time.perf_counter() - started:.1f} s")
    peak_end = gemm_peak_gflops(device, args.gemm_size)
    peak = max(peak_start, peak_end)
    bf16_peak = gemm_peak_gflops(
        device, args.gemm_size * (2 if device.type == "cuda" else 1), dtype=torch.bfloat16
    )
    log(f"bf16 GEMM peak: {bf16_peak:.1f} GFLOP/s")
    machine = describe_cpu() if device.type == "cpu" else torch.cuda.get_device_name(device)
    for row in rows:  # against the best GEMM of the run
        row.pct_of_peak = 100 * row.gflops / peak
    return {
        "gemm_peak_gflops": peak,
        "gemm_gflops_start": peak_start,
        "gemm_gflops_end": peak_end,
        "gemm_size": args.gemm_size,
        "bf16_gemm_peak_gflops": bf16_peak,
        "device": str(device),
        "threads": threads,
        "torch": torch.__version__,
        "machine": machine,
        "args": vars(args),
        "rows": [asdict(row) for row in rows],
        "skipped": skipped,
        "table": render_table(rows, peak, bf16_peak, machine),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = run(args, log=lambda s: print(s, file=sys.stderr, flush=True))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(results["table"])
    for skip in results["skipped"]:
        print(f"\nskipped {skip['method']} {skip['size']}px batch {skip['batch']}: {skip['reason']}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
