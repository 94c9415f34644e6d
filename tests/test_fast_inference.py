"""The fast inference path: exact rewrites, the self-check against the plain generator, and the fallback."""

from __future__ import annotations

import logging

import pytest
import torch
from torch import nn

import translate.inference.fast as fast_module
from translate.errors import ConfigError
from translate.inference import Translator
from translate.inference.fast import (
    FastPath,
    ShuffledTransposedConv,
    psnr,
    resolve_precision,
    rewrite_transposed_convs,
)
from translate.registry import GENERATORS


@pytest.mark.parametrize(
    ("kernel", "padding", "output_padding"),
    [(4, 1, 0), (3, 1, 1)],  # U-Net's and the ResNet generator's upsampling
)
@pytest.mark.parametrize("bias", [True, False])
def test_a_stride_2_transposed_conv_equals_four_convs_and_a_pixel_shuffle(
    kernel, padding, output_padding, bias
):
    torch.manual_seed(0)
    transposed = nn.ConvTranspose2d(6, 5, kernel, 2, padding, output_padding=output_padding, bias=bias)
    x = torch.randn(2, 6, 7, 9)
    rewritten = ShuffledTransposedConv(transposed)
    expected = transposed(x)
    assert rewritten(x).shape == expected.shape == (2, 5, 14, 18)
    torch.testing.assert_close(rewritten(x), expected, atol=1e-5, rtol=1e-5)


def test_only_transposed_convs_the_rewrite_reproduces_are_rewritten():
    odd = nn.ConvTranspose2d(3, 3, 3, 2, 1)  # output 2H - 1, not 2H
    assert not ShuffledTransposedConv.fits(odd)
    assert not ShuffledTransposedConv.fits(nn.ConvTranspose2d(3, 3, 4, 2, 1, groups=3))
    assert ShuffledTransposedConv.fits(nn.ConvTranspose2d(3, 3, 4, 2, 1))


@pytest.mark.parametrize(
    ("name", "rewritten"),
    [("unet", 5), ("resnet_6blocks", 2)],
)
def test_the_rewritten_generator_translates_like_the_original(name, rewritten):
    torch.manual_seed(0)
    options = {"num_downs": 5} if name == "unet" else {}
    generator = GENERATORS.build({"name": name, "base_channels": 4, **options}).eval()
    copy, count = rewrite_transposed_convs(generator)
    assert count == rewritten
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in copy.modules())
    assert any(isinstance(m, nn.ConvTranspose2d) for m in generator.modules())  # the original is untouched
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(copy(x), generator(x), atol=1e-5, rtol=1e-5)


def tiny_generator() -> nn.Module:
    torch.manual_seed(0)
    return GENERATORS.build({"name": "resnet_6blocks", "base_channels": 4}).eval()


def test_the_fast_path_checks_each_shape_once_and_then_runs_compiled(caplog):
    generator = tiny_generator()
    fast = FastPath(generator, compile_after=0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad(), caplog.at_level(logging.INFO):
        first, second = fast(x), fast(x)
        expected = generator(x)
    assert "fast path: compiling the generator for 1x3x32x32 images" in caplog.text  # said in one line
    torch.testing.assert_close(first, expected, atol=1e-4, rtol=0)
    torch.testing.assert_close(second, expected, atol=1e-4, rtol=0)
    assert list(fast.build_seconds) == [(((1, 3, 32, 32), torch.float32, "cpu"),)]  # per image: any batch


def test_a_shape_seen_once_runs_plain_and_compiles_nothing():
    fast = FastPath(tiny_generator())
    fast(torch.rand(1, 3, 32, 32))
    assert fast._fast is None and not fast.build_seconds


def test_freezing_is_set_only_around_the_fast_path():
    import torch._inductor.config as inductor_config

    fast = FastPath(tiny_generator(), compile_after=0)
    for _ in range(2):
        fast(torch.rand(1, 3, 32, 32))
    assert fast.build_seconds
    assert inductor_config.freezing is False  # a model training in this process keeps live weights


def test_a_fast_copy_that_cannot_be_built_is_given_up_for_every_shape(caplog, monkeypatch):

    calls = []

    def fails(*args):
        calls.append(args)
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(fast_module, "fast_network", fails)
    generator = tiny_generator()
    fast = FastPath(generator, compile_after=0)
    with caplog.at_level(logging.INFO):
        for size in (32, 36, 40):
            x = torch.rand(1, 3, size, size)
            for _ in range(2):  # the second time a shape comes, the fast path is built
                torch.testing.assert_close(fast(x), generator(x))
    assert len(calls) == 1 and "fast path unavailable (RuntimeError: no C++ compiler)" in caplog.text


class Drifts(nn.Module):
    """A network whose rewritten copy cannot be exact: its output depends on being the original."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.original = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + (0 if self.original else 0.01)


def test_a_fast_path_that_is_not_exact_falls_back_to_the_plain_network_with_a_note(caplog, monkeypatch):
    network = Drifts().eval()

    def drifting_copy(net, compile, rewrite, dtype):
        copy, _ = rewrite_transposed_convs(net)
        copy.original = False
        return copy

    monkeypatch.setattr(fast_module, "fast_network", drifting_copy)
    fast = FastPath(network, compile_after=0)
    x = torch.rand(1, 3, 8, 8)
    with caplog.at_level(logging.INFO):
        out = [fast(x) for _ in range(3)]
    assert "differs from the plain network by 0.01" in caplog.text
    for y in out:
        assert torch.equal(y, network(x))


def test_translator_uses_the_fast_path_by_default_and_not_with_fast_false(monkeypatch):
    monkeypatch.delenv("TRANSLATE_FAST")
    monkeypatch.setattr(fast_module, "COMPILE_SECONDS", 0.0)  # compile the second time a shape comes
    generator = tiny_generator()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    fast = Translator(generator, 3, 3)
    plain = Translator(generator, 3, 3, fast=False)
    torch.testing.assert_close(fast.translate_tensor(x), plain.translate_tensor(x), atol=1e-4, rtol=0)
    fast.translate_tensor(x)
    assert fast._fast is not None and fast._fast.build_seconds
    assert plain._fast is None
    monkeypatch.setenv("TRANSLATE_FAST", "0")
    assert Translator(generator, 3, 3)._fast is None


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_device_has_it_natively(native, monkeypatch):
    monkeypatch.setattr(fast_module, "native_bf16", lambda device: native)
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16; got 'fp16'"):
        resolve_precision("fp16", torch.device("cpu"))


def test_the_bf16_fast_path_is_checked_by_psnr_and_returns_the_callers_dtype(caplog):
    generator = tiny_generator()
    fast = FastPath(generator, compile=False, precision="bf16")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad(), caplog.at_level(logging.INFO):
        outputs = [fast(x) for _ in range(3)]
        expected = generator(x)
    assert fast.precision == "bf16" and "fails" not in caplog.text
    assert all(y.dtype == torch.float32 and y.shape == expected.shape for y in outputs)
    assert torch.equal(outputs[0], expected) and torch.equal(outputs[1], expected), "checked calls run plain"
    assert not torch.equal(outputs[2], expected), "then bf16 runs"
    assert psnr(outputs[2], expected) >= fast_module.MIN_PSNR


def test_a_bf16_fast_path_that_fails_its_check_turns_to_fp32_with_one_line(caplog, monkeypatch):
    monkeypatch.setattr(fast_module, "MIN_PSNR", 1000.0)
    generator = tiny_generator()
    fast = FastPath(generator, compile=False, precision="bf16")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad(), caplog.at_level(logging.INFO):
        outputs = [fast(x) for _ in range(4)]
        expected = generator(x)
    assert fast.precision == "fp32"
    assert (
        caplog.text.count("fast path in bf16 on 1x3x32x32: PSNR") == 1 and "fp32 from now on" in caplog.text
    )
    for y in outputs:
        torch.testing.assert_close(y, expected, atol=1e-4, rtol=0)
