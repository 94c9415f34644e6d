"""The widened core: update schedules declared by the task, optimizers and constraints by name per
group, shared modules, typed exports, and runs that describe themselves."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from conftest import assert_resuming_changes_nothing, tiny_train
from toy_tasks import SIZE, ToyImages, registered

from translate import Sampler, Translator
from translate.cli import main
from translate.config import build_config
from translate.engine.checkpoint import load_model_checkpoint
from translate.engine.trainer import Trainer
from translate.errors import CheckpointError, ConfigError
from translate.registry import TASKS


@pytest.fixture(autouse=True)
def toy_tasks():
    with registered():
        yield


def toy_config(task: str, steps: int = 4, **layers) -> object:
    run = {"data": {"image_size": SIZE, "num_workers": 0}, "train": tiny_train(steps, num_samples=2)}
    return build_config({"task": task}, TASKS.get(task).default_config, run, layers)


def test_critic_five_times_with_rmsprop_and_weight_clipping_then_generator_once(tmp_path):
    trainer = Trainer(toy_config("toy_wgan"), tmp_path / "run", dataset=ToyImages())
    assert isinstance(trainer.optimizers["discriminator"].optimizer, torch.optim.RMSprop)
    assert [(u.group, u.repeats) for u in trainer.schedule] == [("discriminator", 5), ("generator", 1)]
    critic_before = [p.detach().clone() for p in trainer.task.critic.parameters()]
    generator_before = [p.detach().clone() for p in trainer.task.generator.parameters()]
    trainer.fit()

    # every critic weight was clipped after its updates; both networks moved
    assert all(p.abs().max() <= 0.01 for p in trainer.task.critic.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, trainer.task.critic.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(generator_before, trainer.task.generator.parameters()))
    # one step = 5 critic updates on 5 new batches; the generator update reuses the last batch
    assert trainer.samples_seen == 4 * 5 * 2
    assert trainer.optimizers["discriminator"].optimizer.state_dict()["state"][0]["step"] == 20
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all({"D/adv", "G/adv"} <= set(r) for r in records)


def test_every_critic_loss_is_logged_not_only_the_last(tmp_path):
    seen = []

    class Recording(Trainer):
        def _update(self, group, losses):
            if group.name == "discriminator":
                seen.append(losses["adv"].item())
            super()._update(group, losses)

    Recording(toy_config("toy_wgan", steps=1), tmp_path / "run", dataset=ToyImages()).fit()
    (record,) = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(seen) == 5
    assert record["D/adv"] == pytest.approx(sum(seen) / 5, rel=1e-5)


def test_critic_first_schedule_resumes_bit_exactly(tmp_path):
    assert_resuming_changes_nothing(toy_config("toy_wgan"), tmp_path, dataset=ToyImages())


def test_a_module_shared_by_two_generators_is_optimised_once_and_resumes_bit_exactly(tmp_path):
    trainer = Trainer(toy_config("toy_shared"), tmp_path / "run", dataset=ToyImages())
    group = trainer.optimizers["generator"]
    assert isinstance(group.optimizer, torch.optim.AdamW) and group.optimizer.defaults["weight_decay"] == 1e-2
    unique = {id(p) for m in (trainer.task.g_ab, trainer.task.g_ba) for p in m.parameters()}
    assert len(group.parameters) == len(unique) < 2 * len(list(trainer.task.g_ab.parameters()))
    trainer.fit()
    assert trainer.task.g_ab.shared is trainer.task.g_ba.shared
    assert_resuming_changes_nothing(toy_config("toy_shared"), tmp_path / "resume", dataset=ToyImages())
    # the shared weights load back into both generators from the checkpoint
    translator = Translator.from_run(tmp_path / "run", direction="b2a")
    assert translator(torch.zeros(1, 1, SIZE, SIZE)).shape == (1, 1, SIZE, SIZE)


def test_optimizer_and_clipping_are_configurable_per_group(tmp_path):
    config = toy_config(
        "toy_shared",
        optim={"generator": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "clip_grad_norm": 1e-3}},
    )
    trainer = Trainer(config, tmp_path / "run", dataset=ToyImages())
    sgd = trainer.optimizers["generator"]
    assert isinstance(sgd.optimizer, torch.optim.SGD) and sgd.clip_grad_norm == 1e-3
    adam = trainer.optimizers["discriminator"].optimizer
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.5, 0.999)
    before = [p.detach().clone() for p in sgd.parameters]
    trainer.fit()
    # 4 steps of lr 0.1 with the gradient norm clipped to 1e-3 move the weights by at most ~4e-4 (+ momentum)
    moved = torch.cat([(p - b).flatten() for p, b in zip(sgd.parameters, before)]).norm()
    assert 0 < moved < 4 * 0.1 * 1e-3 * 10


@pytest.mark.parametrize(
    ("optim", "message"),
    [
        ({"critic": {"name": "adam"}}, "unknown parameter group.*critic.*generator, discriminator"),
        ({"generator": {"name": "adagrad"}}, "unknown optimizer 'adagrad'"),
        ({"generator": {"name": "rmsprop", "betas": [0.5, 0.9]}}, "unknown option.*betas.*rmsprop"),
        ({"generator": {"lr": -1}}, "optim.generator.lr must be a number >= 0"),
        ({"discriminator": {"constraints": ["clip"]}}, "unknown parameter constraint 'clip'"),
        ({"discriminator": 3}, "optim.discriminator must be a mapping"),
    ],
)
def test_bad_optimizer_specs_are_one_line_config_errors(tmp_path, optim, message):
    with pytest.raises(ConfigError, match=message):
        Trainer(toy_config("toy_shared", optim=optim), tmp_path / "run", dataset=ToyImages())


def test_a_bare_optimizer_name_is_a_spec(tmp_path):
    trainer = Trainer(
        toy_config("toy_shared", optim={"discriminator": "rmsprop"}), tmp_path / "run", dataset=ToyImages()
    )
    assert isinstance(trainer.optimizers["discriminator"].optimizer, torch.optim.RMSprop)


def test_switching_the_optimizer_by_name_drops_the_old_options():
    base = TASKS.get("toy_wgan").default_config
    config = build_config({"task": "toy_wgan"}, base, {"optim": {"discriminator": {"name": "adam"}}})
    assert config.optim["discriminator"] == {"name": "adam"}


def test_noise_models_are_sampled_and_image_models_applied_each_pointing_to_the_other(tmp_path):
    Trainer(toy_config("toy_wgan", steps=2), tmp_path / "wgan", dataset=ToyImages()).fit()
    Trainer(toy_config("toy_shared", steps=2), tmp_path / "shared", dataset=ToyImages()).fit()
    checkpoint = load_model_checkpoint(tmp_path / "wgan")
    assert checkpoint.exports["sample"]["kind"] == "noise_to_image"

    sampler = Sampler.from_run(tmp_path / "wgan")
    images = sampler.sample(6, seed=3)
    assert images.shape == (6, 1, SIZE, SIZE) and torch.equal(images, sampler.sample(6, seed=3))
    with pytest.raises(CheckpointError, match="noise_to_image: use `translate sample`"):
        Translator.from_run(tmp_path / "wgan")
    with pytest.raises(CheckpointError, match="image_to_image: use `translate apply`"):
        Sampler.from_run(tmp_path / "shared")

    runner = CliRunner()
    result = runner.invoke(main, ["apply", str(tmp_path), "--run", str(tmp_path / "wgan")])
    assert result.exit_code == 1 and "use `translate sample`" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(
        main, ["sample", "--run", str(tmp_path / "wgan"), "--out", str(tmp_path / "g.png")]
    )
    assert result.exit_code == 0 and (tmp_path / "g.png").is_file()
    result = runner.invoke(main, ["sample", "--run", str(tmp_path / "shared")])
    assert result.exit_code == 1 and "use `translate apply`" in result.output


def test_info_describes_a_run_from_its_checkpoint_metadata_alone(tmp_path):
    run = Trainer(toy_config("toy_shared", steps=2), tmp_path / "run", dataset=ToyImages()).fit()
    (run / "config.yaml").unlink()
    result = CliRunner().invoke(main, ["info", str(run), "--config"])
    assert result.exit_code == 0, result.output
    assert "method:     toy_shared" in result.output
    assert "steps:      2 of 2" in result.output
    assert "a2b      image_to_image (g_ab: 1 -> 1 channels)" in result.output
    assert "optim:" in result.output and "weight_decay: 0.01" in result.output


def test_resuming_with_another_optimizer_is_a_clear_error(tmp_path):
    Trainer(toy_config("toy_shared", steps=2), tmp_path / "run", dataset=ToyImages()).fit()
    changed = toy_config("toy_shared", steps=4, optim={"generator": {"name": "sgd", "momentum": 0.9}})
    with pytest.raises(CheckpointError, match="saved generator optimizer state does not fit"):
        Trainer(changed, tmp_path / "run", resume=True, dataset=ToyImages())
