"""Smoke tests of tools/benchmark.py on tiny networks: FLOP counts against hand counts, rows, table, JSON.

No timing is asserted: only that times are positive and the counted work is what the networks do.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from translate.registry import TASKS

TOOL = Path(__file__).resolve().parents[1] / "tools" / "benchmark.py"
TINY = [
    "--base-channels",
    "4",
    "--sizes",
    "32",
    "--batch-sizes",
    "2",
    "--repeats",
    "1",
    "--warmup",
    "0",
    "--gemm-size",
    "64",
    "--device",
    "cpu",
    "--set",
    "pix2pix:model.generator.name=unet",
    "--set",
    "pix2pix:model.generator.num_downs=5",
    "--set",
    "cyclegan:model.generator.name=resnet_6blocks",
    "--set",
    "model.discriminator.num_layers=2",
]


def _load_tool():
    spec = importlib.util.spec_from_file_location("translate_benchmark_tool", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _load_tool()


@pytest.fixture(scope="module")
def results():
    args = bench.parse_args(
        [*TINY, "--methods", "pix2pix", "cyclegan", "--threads", str(torch.get_num_threads())]
    )
    return bench.run(args)


def _rows(results, method, what):
    return [r for r in results["rows"] if r["method"] == method and r["what"].startswith(what)]


def hand_counted_conv_flops(module: nn.Module, x: torch.Tensor) -> int:
    """2 x multiply-adds of every (transposed) convolution in one forward pass, from the layer shapes."""
    total = 0

    def hook(layer, inputs, output):
        nonlocal total
        k = layer.kernel_size[0] * layer.kernel_size[1]
        if isinstance(layer, nn.ConvTranspose2d):  # every input pixel scatters a k x k x C_out patch
            total += 2 * inputs[0].numel() * layer.out_channels * k // layer.groups
        else:  # every output pixel gathers a k x k x C_in patch
            total += 2 * output.numel() * layer.in_channels * k // layer.groups

    handles = [
        m.register_forward_hook(hook)
        for m in module.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
    ]
    with torch.no_grad():
        module(x)
    for h in handles:
        h.remove()
    return total


def test_flop_counter_matches_single_conv_by_hand():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    x = torch.randn(2, 3, 16, 16)
    assert bench.count_flops(lambda: conv(x)) == 2 * (2 * 8 * 16 * 16) * (3 * 3 * 3)
    up = nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1)
    y = torch.randn(1, 8, 8, 8)
    assert bench.count_flops(lambda: up(y)) == 2 * (8 * 8 * 8) * (3 * 4 * 4)
    # backward of a conv whose input needs no gradient: the weight gradient only, as many FLOPs as forward
    w = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert bench.count_flops(lambda: w(x).sum().backward()) == 2 * 2 * (2 * 8 * 16 * 16) * (3 * 3 * 3)


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_generator_row_flops_equal_layer_by_layer_count(results, method):
    (row,) = _rows(results, method, "generator forward")
    per_method = bench.split_overrides(bench.parse_args(TINY).overrides, [method])[method]
    config = bench.benchmark_config(method, 32, 2, "cpu", "unused", per_method, base_channels=4)
    assert config.model["generator"]["base_channels"] == 4
    task = TASKS.build({"name": method, **config.model})
    generator = task.get_submodule(next(iter(task.exports().values())).module).eval()
    expected = hand_counted_conv_flops(generator, torch.zeros(2, 3, 32, 32))
    assert expected > 0
    assert row["details"]["flops_per_batch"] == expected
    assert row["gflop"] == pytest.approx(expected / 2 / 1e9)
    assert row["ms"] > 0 and row["images_per_s"] > 0 and row["gflops"] > 0 and row["pct_of_peak"] > 0


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_train_rows_count_forward_and_backward(results, method):
    (forward,) = _rows(results, method, "generator forward")
    fused, plain = _rows(results, method, "train step")
    assert (fused["what"], plain["what"]) == ("train step (fused Adam)", "train step (plain Adam)")
    g_batch = forward["details"]["flops_per_batch"]
    step = fused["details"]["flops_per_step"]
    assert step == plain["details"]["flops_per_step"] and fused["gflop"] == pytest.approx(step / 1e9)
    # the generator pass runs with gradients: forward + input and weight gradients is close to 3x its
    # forward (pix2pix: G once; cyclegan: each G three times per image, plus identity), plus D's work
    passes = {"pix2pix": 1, "cyclegan": 3}[method]
    assert step > 2.5 * passes * g_batch
    assert fused["details"]["batches_per_step"] == 1 and fused["images_per_s"] > 0
    assert plain["ratio"] == 1.0 and fused["ratio"] > 0
    assert fused["ratio"] == pytest.approx(plain["ms"] / fused["ms"])


def test_table_renders_every_row(results):
    table = results["table"]
    lines = table.splitlines()
    assert lines[0].startswith(f"{results['machine']}. Dense fp32 GEMM peak measured in this run:")
    assert "bf16" in results["machine"] and "bf16: " in lines[0], "what the CPU has and its bf16 peak"
    assert "| method | what | size | batch | ms |" in table and "% GEMM peak" in table
    body = [line for line in lines if line.startswith("| pix2pix") or line.startswith("| cyclegan")]
    assert len(body) == len(results["rows"]) == 6
    assert "1.00x (baseline)" in table and "x vs plain Adam step" in table
    assert results["gemm_peak_gflops"] >= max(results["gemm_gflops_start"], results["gemm_gflops_end"]) > 0


def test_the_plain_optimizer_is_the_same_kind_over_the_same_groups():
    params = [nn.Parameter(torch.randn(3)), nn.Parameter(torch.randn(2))]
    fused = torch.optim.Adam(params, lr=1e-3, betas=(0.5, 0.999), fused=True)
    plain = bench.plain_optimizer(fused)
    (group,) = plain.param_groups
    assert group["params"] == params and group["lr"] == 1e-3 and group["betas"] == (0.5, 0.999)
    assert not group["fused"] and group["foreach"] is False
    rmsprop = bench.plain_optimizer(torch.optim.RMSprop(params, lr=5e-5))
    assert isinstance(rmsprop, torch.optim.RMSprop) and rmsprop.param_groups[0]["lr"] == 5e-5


def test_scoped_overrides():
    per = bench.split_overrides(["train.lr=1e-3", "cyclegan:model.pool_size=0"], ["pix2pix", "cyclegan"])
    assert per["pix2pix"] == [{"train": {"lr": 1e-3}}]
    assert per["cyclegan"] == [{"train": {"lr": 1e-3}}, {"model": {"pool_size": 0}}]


def test_main_writes_json_and_reports_unfit_sizes(tmp_path, capsys):
    out = tmp_path / "bench.json"
    before = sorted(Path.cwd().iterdir())
    # pix2pix's default unet_256 cannot take 32 px: that combination is skipped with a hint, not a crash
    code = bench.main(
        [
            "--methods",
            "pix2pix",
            "--base-channels",
            "4",
            "--sizes",
            "32",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--gemm-size",
            "64",
            "--device",
            "cpu",
            "--no-train",
            "--threads",
            str(torch.get_num_threads()),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    data = json.loads(out.read_text())
    assert data["rows"] == [] and len(data["skipped"]) == 1
    assert "multiples of 256" in data["skipped"][0]["reason"]
    assert "num_downs: 5" in capsys.readouterr().out
    assert sorted(Path.cwd().iterdir()) == before, "the benchmark must not write into the current folder"


def test_stargan_and_unit_rows():
    args = bench.parse_args(
        [
            *TINY[:12],  # sizes, batches, repeats, warm-up, GEMM size, device: no per-network options
            "--methods",
            "stargan",
            "unit",
            "--set",
            "stargan:model.generator.base_channels=4",
            "--set",
            "stargan:model.discriminator={name: stargan, base_channels: 4, num_layers: 3}",
            "--set",
            "unit:model.base_channels=4",
            "--set",
            "unit:model.discriminator.discriminator={name: patchgan, base_channels: 4, num_layers: 1}",
        ]
    )
    results = bench.run(args)
    for method, batches in (("stargan", 5), ("unit", 1)):  # StarGAN: 5 critic updates + G per step
        (forward,) = _rows(results, method, "generator forward")
        fused, _ = _rows(results, method, "train step")
        assert (
            forward["gflop"] > 0
            and fused["details"]["flops_per_step"] > forward["details"]["flops_per_batch"]
        )
        assert fused["details"]["batches_per_step"] == batches
