import pytest

from translate.config import LR_SCHEDULES, build_config
from translate.engine.schedules import SCHEDULES, lr_factor
from translate.errors import ConfigError


def test_every_schedule_the_config_accepts_exists():
    assert set(SCHEDULES) == set(LR_SCHEDULES)
    with pytest.raises(ConfigError, match="train.schedule must be one of constant, linear, step, cosine"):
        build_config({"train": {"schedule": "exponential"}})


@pytest.mark.parametrize("step", [0, 50, 99, 100])
def test_constant(step):
    assert lr_factor(step, 100, "constant") == 1.0


@pytest.mark.parametrize(
    ("step", "expected"), [(0, 1.0), (50, 1.0), (75, 0.5), (99, 0.02), (100, 0.0), (120, 0.0)]
)
def test_linear_decays_over_the_second_half_by_default(step, expected):
    assert lr_factor(step, 100, "linear") == pytest.approx(expected)


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (80, 1.0), (90, 0.5), (100, 0.0)])
def test_linear_with_decay_steps(step, expected):
    assert lr_factor(step, 100, "linear", decay_steps=20) == pytest.approx(expected)


def test_linear_without_decay_stays_at_one():
    assert lr_factor(99, 100, "linear", decay_steps=0) == 1.0


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (9, 1.0), (10, 0.5), (25, 0.25)])
def test_step(step, expected):
    assert lr_factor(step, 100, "step", step_size=10, gamma=0.5) == pytest.approx(expected)


@pytest.mark.parametrize(("step", "expected"), [(0, 1.0), (25, 0.5 * (1 + 2**-0.5)), (50, 0.5), (100, 0.0)])
def test_cosine(step, expected):
    assert lr_factor(step, 100, "cosine") == pytest.approx(expected)


@pytest.mark.parametrize("schedule", ["constant", "linear", "step", "cosine"])
def test_never_increases(schedule):
    factors = [lr_factor(step, 100, schedule, step_size=30) for step in range(101)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))


def test_unknown_schedule_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        lr_factor(0, 100, "exponential")
    assert all(name in str(info.value) for name in ("constant", "linear", "step", "cosine"))
