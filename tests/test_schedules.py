import pytest

from translate.config import LR_SCHEDULES, build_config
from translate.engine.schedules import SCHEDULES, lr_factor, steps_per_epoch
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


# ------------------------------------------------------------------------ per-epoch decay (junyanz)
def junyanz_factors(n_epochs: int, n_epochs_decay: int, iterations_per_epoch: int) -> list[float]:
    """The LR factor of every iteration of junyanz's train.py with ``--lr_policy linear``: networks.py's
    ``lambda_rule`` in a ``LambdaLR``, ``model.update_learning_rate()`` at the end of each epoch."""
    import torch

    epoch_count = 1  # --epoch_count, a fresh run

    def lambda_rule(epoch):
        return 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda_rule)
    factors = []
    for _epoch in range(epoch_count, n_epochs + n_epochs_decay + 1):
        for _ in range(iterations_per_epoch):
            factors.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
        scheduler.step()
    return factors


@pytest.mark.parametrize(
    ("n_epochs", "n_epochs_decay", "per_epoch"), [(100, 100, 3), (5, 5, 4), (3, 7, 1), (4, 0, 2), (0, 6, 2)]
)
def test_per_epoch_decay_is_junyanz_lambda_rule(n_epochs, n_epochs_decay, per_epoch):
    expected = junyanz_factors(n_epochs, n_epochs_decay, per_epoch)
    total = (n_epochs + n_epochs_decay) * per_epoch
    decay = n_epochs_decay * per_epoch
    ours = [
        lr_factor(s, total, "linear", decay, decay_every="epoch", steps_per_epoch=per_epoch)
        for s in range(total)
    ]
    assert ours == pytest.approx(expected, abs=1e-12)
    assert min(ours) > 0, "never 0: the last epoch trains at 1 / (n_epochs_decay + 1)"


def test_per_epoch_decay_defaults_to_half_and_holds_the_last_factor_past_the_end():
    # 200 epochs of 400 steps (facades at batch 1): 100 at 1, then 100/101 ... 1/101
    assert lr_factor(0, 80_000, "linear", decay_every="epoch", steps_per_epoch=400) == 1.0
    assert lr_factor(39_999, 80_000, "linear", decay_every="epoch", steps_per_epoch=400) == 1.0
    assert lr_factor(40_000, 80_000, "linear", decay_every="epoch", steps_per_epoch=400) == pytest.approx(
        100 / 101
    )
    assert lr_factor(40_399, 80_000, "linear", decay_every="epoch", steps_per_epoch=400) == pytest.approx(
        100 / 101
    )
    assert lr_factor(79_999, 80_000, "linear", decay_every="epoch", steps_per_epoch=400) == pytest.approx(
        1 / 101
    )
    assert lr_factor(90_000, 80_000, "linear", decay_every="epoch", steps_per_epoch=400) == pytest.approx(
        1 / 101
    )
    # per step (the default) reaches 0 at the last step
    assert lr_factor(79_999, 80_000, "linear") == pytest.approx(1 / 40_000)
    assert lr_factor(80_000, 80_000, "linear") == 0.0


def test_constant_is_constant_per_epoch_too_and_other_schedules_decay_per_step_only():
    assert lr_factor(7, 10, "constant", decay_every="epoch", steps_per_epoch=3) == 1.0
    for schedule in ("cosine", "step"):
        with pytest.raises(ConfigError, match="decays per step"):
            lr_factor(0, 10, schedule, decay_every="epoch", steps_per_epoch=3)
        with pytest.raises(ConfigError, match="decays per step"):
            build_config({"train": {"schedule": schedule, "decay_every": "epoch"}})
    with pytest.raises(ConfigError, match="train.decay_every must be one of step, epoch"):
        build_config({"train": {"decay_every": "iteration"}})


@pytest.mark.parametrize(
    ("size", "batch", "repeats", "expected"),
    [
        (400, 1, [1], 400),  # pix2pix facades: junyanz's 400 iterations per epoch
        (1334, 1, [1, 1], 1334),  # horse2zebra: max(1067, 1334), a generator and a discriminator update
        (400, 4, [1, 1], 100),
        (401, 4, [1], 101),  # the last, smaller batch is an iteration too (no drop_last)
        (1000, 16, [5, 1], 13),  # StarGAN: 5 critic batches per step, the generator reuses the last
        (3, 8, [1], 1),
    ],
)
def test_steps_per_epoch(size, batch, repeats, expected):
    assert steps_per_epoch(size, batch, repeats) == expected


def test_the_trainer_decays_once_per_epoch(tmp_path):
    from toy_tasks import SIZE, ToyImages, registered

    from translate.engine.trainer import Trainer
    from translate.registry import TASKS

    with registered():
        layers = {
            "data": {"image_size": SIZE, "num_workers": 0},
            "train": {"steps": 12, "batch_size": 2, "log_every": 1, "sample_every": 100, "n_critic": 1},
        }
        config = build_config({"task": "toy_wgan"}, TASKS.get("toy_wgan").default_config, layers)
        config.train.decay_every = "epoch"
        trainer = Trainer(config, tmp_path / "run", dataset=ToyImages(count=6))  # 3 steps per epoch
        seen = []
        for step in range(12):
            trainer.step = step
            seen.append(trainer._set_learning_rate() / config.train.lr)
    # 4 epochs, the last 2 decaying: 1, 1, 2/3, 1/3 for 3 steps each
    assert seen == pytest.approx([1.0] * 6 + [2 / 3] * 3 + [1 / 3] * 3)
