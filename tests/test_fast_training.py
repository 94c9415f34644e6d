"""Training options for speed (``train.compile``, ``train.channels_last``, ``train.amp``): the same training,
faster. What a GPU is needed for is skipped without one."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import TINY_SIZE, tiny_overrides
from safetensors.torch import load_file

from translate.catalog.demo import make_demo_dataset
from translate.config import build_config
from translate.engine.checkpoint import checkpoint_dirs
from translate.engine.device import native_bf16
from translate.engine.trainer import Trainer
from translate.registry import TASKS

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return {
        layout: make_demo_dataset(root / layout, layout=layout, num_train=4, num_test=2, size=TINY_SIZE)
        for layout in ("aligned", "unaligned")
    }


def config_for(task: str, data: dict, run_dir, steps: int = 2, **train):
    data = {"root": str(data["unaligned" if task == "cyclegan" else "aligned"])}
    if task == "cyclegan":
        data["domains"] = ["photo", "anime"]
    return build_config(
        {"task": task, "run_dir": str(run_dir)},
        TASKS.get(task).default_config,
        tiny_overrides(task, steps=steps, **train),
        {"data": data},
    )


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(checkpoint_dirs(run_dir)[-1] / "model.safetensors")


def assert_close_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0, msg=key)


def test_channels_last_is_ignored_on_the_cpu_where_instance_norm_gradients_are_wrong(
    demo_data, tmp_path, caplog
):
    # The trap it avoids: on the CPU, InstanceNorm2d's backward in channels_last at batch 1 is wrong.
    x = torch.randn(1, 4, 8, 8)
    grad = torch.randn(1, 4, 8, 8)
    plain = x.clone().requires_grad_()
    torch.nn.InstanceNorm2d(4)(plain).backward(grad)
    last = x.clone().contiguous(memory_format=torch.channels_last).requires_grad_()
    torch.nn.InstanceNorm2d(4)(last).backward(grad.contiguous(memory_format=torch.channels_last))
    if torch.allclose(plain.grad, last.grad, atol=1e-5):
        pytest.skip("this torch computes InstanceNorm2d's channels_last backward right on the CPU")

    root = demo_data
    Trainer(config_for("cyclegan", root, tmp_path / "a", device="cpu"), tmp_path / "a").fit()
    with caplog.at_level(logging.WARNING):
        trainer = Trainer(
            config_for("cyclegan", root, tmp_path / "b", device="cpu", channels_last=True), tmp_path / "b"
        )
    assert "channels_last is ignored" in caplog.text
    trainer.fit()
    assert_close_weights(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"), atol=0)


@pytest.mark.slow
def test_a_compiled_run_trains_like_an_eager_one(demo_data, tmp_path):
    root = demo_data
    Trainer(config_for("pix2pix", root, tmp_path / "eager", device="cpu"), tmp_path / "eager").fit()
    compiled = config_for("pix2pix", root, tmp_path / "compiled", device="cpu", compile=True)
    Trainer(compiled, tmp_path / "compiled").fit()
    assert_close_weights(final_weights(tmp_path / "eager"), final_weights(tmp_path / "compiled"), atol=1e-4)


@CUDA
@pytest.mark.parametrize("batch", [1, 4])
def test_instance_norm_gradients_in_channels_last_match_on_cuda(batch):
    x = torch.randn(batch, 8, 16, 16, device="cuda")
    grad = torch.randn_like(x)
    norm = torch.nn.InstanceNorm2d(8, affine=True).cuda()
    plain = x.clone().requires_grad_()
    norm(plain).backward(grad)
    last = x.clone().contiguous(memory_format=torch.channels_last).requires_grad_()
    norm(last).backward(grad.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(plain.grad, last.grad, atol=1e-5, rtol=1e-5)


@CUDA
@pytest.mark.parametrize("task", ["cyclegan", "pix2pix"])
def test_channels_last_training_on_cuda_matches_the_contiguous_run(task, demo_data, tmp_path):
    root = demo_data
    # Exact float32 convolutions: TF32 (cuDNN's default) rounds differently in each memory format.
    torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32 = True, False
    try:
        Trainer(config_for(task, root, tmp_path / "a", device="cuda"), tmp_path / "a").fit()
        last = config_for(task, root, tmp_path / "b", device="cuda", channels_last=True)
        Trainer(last, tmp_path / "b").fit()
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32 = False, True
    assert_close_weights(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"), atol=1e-4)


@CUDA
def test_fast_cuda_training_resumes_and_exports(demo_data, tmp_path):
    from translate.inference import Translator

    root = demo_data
    fast = {"device": "cuda", "amp": True, "channels_last": True, "compile": True}
    Trainer(config_for("cyclegan", root, tmp_path / "run", steps=2, **fast), tmp_path / "run").fit()
    longer = config_for("cyclegan", root, tmp_path / "run", steps=4, **fast)
    Trainer(longer, tmp_path / "run", resume=True).fit()
    weights = final_weights(tmp_path / "run")
    assert all(torch.isfinite(w).all() for w in weights.values())
    out = Translator(tmp_path / "run", device="cpu")(torch.rand(1, 3, 32, 32) * 2 - 1)
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()


NATIVE_BF16 = pytest.mark.skipif(
    not native_bf16(torch.device("cpu")), reason="this CPU has no native bf16 (AVX512-BF16 or AMX)"
)


@NATIVE_BF16
@pytest.mark.parametrize("task", ["cyclegan", "pix2pix"])
def test_amp_on_a_cpu_with_native_bf16_trains_like_fp32_and_resumes_exactly(task, demo_data, tmp_path):
    data = demo_data
    Trainer(config_for(task, data, tmp_path / "fp32", steps=4, device="cpu"), tmp_path / "fp32").fit()
    Trainer(
        config_for(task, data, tmp_path / "bf16", steps=4, device="cpu", amp=True), tmp_path / "bf16"
    ).fit()
    fp32, bf16 = final_weights(tmp_path / "fp32"), final_weights(tmp_path / "bf16")
    assert all(torch.isfinite(w).all() for w in bf16.values())
    assert all(w.dtype == torch.float32 for w in bf16.values() if w.is_floating_point()), (
        "fp32 master weights"
    )
    assert any(not torch.equal(fp32[k], bf16[k]) for k in fp32), "the steps ran in bf16"
    assert_close_weights(fp32, bf16, atol=2e-2)

    half = config_for(task, data, tmp_path / "resumed", steps=2, device="cpu", amp=True)
    Trainer(half, tmp_path / "resumed").fit()
    rest = config_for(task, data, tmp_path / "resumed", steps=4, device="cpu", amp=True)
    Trainer(rest, tmp_path / "resumed", resume=True).fit()
    assert_close_weights(bf16, final_weights(tmp_path / "resumed"), atol=0)


def test_amp_is_ignored_with_a_warning_where_bf16_is_emulated(demo_data, tmp_path, caplog, monkeypatch):
    from translate.engine import setup

    monkeypatch.setattr(setup, "native_bf16", lambda device: False)
    Trainer(config_for("pix2pix", demo_data, tmp_path / "a", device="cpu"), tmp_path / "a").fit()
    with caplog.at_level(logging.WARNING):
        trainer = Trainer(
            config_for("pix2pix", demo_data, tmp_path / "b", device="cpu", amp=True), tmp_path / "b"
        )
    assert "train.amp is ignored" in caplog.text
    trainer.fit()
    assert_close_weights(final_weights(tmp_path / "a"), final_weights(tmp_path / "b"), atol=0)


@NATIVE_BF16
def test_the_gradient_penalty_under_amp_is_the_fp32_one():
    from translate.losses import gradient_penalty

    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.LeakyReLU(0.2), torch.nn.Conv2d(8, 1, 3))
    real, fake = torch.randn(2, 3, 12, 12), torch.randn(2, 3, 12, 12)
    torch.manual_seed(1)
    plain = gradient_penalty(critic, real, fake)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = gradient_penalty(critic, real, fake)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, plain, atol=1e-6, rtol=1e-6)
