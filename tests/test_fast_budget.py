"""The fast path compiles only where it pays (issue 23): a shape runs the plain network until the plain
network has spent as long on it as a compile costs, so a few images of mixed sizes never compile."""

from __future__ import annotations

import itertools
import logging

import pytest
import torch

import translate.inference.fast as fast_module
from translate.inference.fast import FastPath
from translate.registry import GENERATORS

COMPILING = "fast path: compiling the generator for"


@pytest.fixture
def one_second_per_run(monkeypatch):
    """The fast path's clock ticks one second per reading: every plain run and every build takes 1 s."""
    clock = itertools.count()
    monkeypatch.setattr(fast_module, "perf_counter", lambda: float(next(clock)))


@pytest.fixture
def no_real_compile(monkeypatch):
    """``fast_network`` builds the channels_last copy without compiling (seconds saved per test)."""
    build = fast_module.fast_network
    monkeypatch.setattr(fast_module, "fast_network", lambda net, compile, rewrite, dtype: build(net, False))


def generator() -> torch.nn.Module:
    torch.manual_seed(0)
    return GENERATORS.build({"name": "resnet_6blocks", "base_channels": 4}).eval()


def image(size: int) -> torch.Tensor:
    return torch.rand(1, 3, size, size) * 2 - 1


@pytest.mark.usefixtures("one_second_per_run", "no_real_compile")
def test_a_shape_is_built_once_the_plain_network_has_spent_the_budget_on_it():
    fast = FastPath(generator(), compile_after=3.0)
    x, other = image(32), image(36)
    for _ in range(3):
        fast(x)
    fast(other)
    assert fast.plain_seconds == {
        (((1, 3, 32, 32), torch.float32, "cpu"),): 3.0,
        (((1, 3, 36, 36), torch.float32, "cpu"),): 1.0,
    }
    assert not fast.build_seconds
    fast(x)  # 3 s spent: this call builds and checks
    assert list(fast.build_seconds) == [(((1, 3, 32, 32), torch.float32, "cpu"),)]


@pytest.mark.usefixtures("one_second_per_run", "no_real_compile")
def test_by_default_a_shape_waits_for_a_compiles_worth_and_then_the_measured_cost_stands_in(
    caplog, monkeypatch
):
    monkeypatch.setattr(fast_module, "COMPILE_SECONDS", 5.0)
    fast = FastPath(generator())
    with caplog.at_level(logging.INFO):
        for size in (32, 36, 40, 44, 48, 52, 56):  # a small folder of mixed sizes
            fast(image(size))
        assert fast._fast is None and COMPILING not in caplog.text
        for _ in range(6):  # 5 plain seconds on one size, then the build (measured: 1 s)
            fast(image(64))
        assert caplog.text.count(COMPILING) == 1
        assert "1x3x64x64 images (once per size; the plain network has spent 5.0 s" in caplog.text
        fast(image(32))  # the measured 1 s is the budget now: 32 px has had it, so this call builds
    assert caplog.text.count(COMPILING) == 2


def test_the_fast_copy_without_compiling_is_built_the_second_time_a_shape_comes():
    fast = FastPath(generator(), compile=False)
    assert fast.budget() == 0.0
    fast(image(32))
    assert not fast.build_seconds
    fast(image(32))
    assert fast.build_seconds


def test_outputs_are_the_plain_networks_while_waiting_and_after_the_build():
    network = generator()
    fast = FastPath(network, compile=False, compile_after=0.0)
    x = image(32)
    with torch.no_grad():
        expected = network(x)
    for _ in range(3):
        torch.testing.assert_close(fast(x), expected, atol=1e-4, rtol=0)
