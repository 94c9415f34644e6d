"""The trainer end to end on small generated data: logs, samples, checkpoints and exact resuming."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_MODELS, TINY_SIZE, assert_resuming_changes_nothing, tiny_overrides

from translate.api import resolve_config, train
from translate.catalog.demo import make_demo_dataset
from translate.engine.checkpoint import checkpoint_dirs, load_model_checkpoint
from translate.errors import CheckpointError, ConfigError

GAN_FAMILY = ("gan", "cgan", "dcgan", "wgan", "wgangp", "lsgan")


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    unaligned = make_demo_dataset(
        root / "unaligned", layout="unaligned", num_train=6, num_test=2, size=TINY_SIZE
    )
    return {
        "pix2pix": make_demo_dataset(
            root / "aligned", layout="aligned", num_train=6, num_test=2, size=TINY_SIZE
        ),
        "cyclegan": unaligned,
        "unit": unaligned,
        "munit": unaligned,
        "cut": unaligned,
        "fastcut": unaligned,
        "stargan": unaligned,  # two domain folders: one-of-2 labels
        **dict.fromkeys(GAN_FAMILY, unaligned),  # two class folders
    }


def data_layer(task: str, demo_data) -> dict:
    layer = {"data": {"root": str(demo_data[task])}}
    if task in ("cyclegan", "unit", "munit", "cut", "fastcut", "stargan", *GAN_FAMILY):
        layer["data"]["domains"] = ["photo", "anime"]
    if task in ("unit", "munit"):
        layer["train"] = {"step_size": 2}  # their step schedules halve the LR every step_size steps
    return layer


@pytest.mark.parametrize("task", sorted(TINY_MODELS))
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(task, demo_data, tmp_path):
    # Linear decay over the full 4 steps, dropout, random crops/flips, image pool: all must resume exactly.
    layers = [data_layer(task, demo_data), tiny_overrides(task, steps=4, checkpoint_every=100)]
    assert_resuming_changes_nothing(resolve_config(task, overrides=layers), tmp_path)


@pytest.mark.parametrize("task", sorted(TINY_MODELS))
def test_a_run_folder_holds_config_log_samples_and_checkpoints(task, demo_data, tmp_path):
    run = train(
        task, overrides=[data_layer(task, demo_data), tiny_overrides(task, steps=4)], run_dir=tmp_path / "run"
    )
    assert (run / "config.yaml").is_file()
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all("G/adv" in r and "D/adv" in r and r["lr"] >= 0 for r in records)
    if task not in GAN_FAMILY:  # the GAN recipes train at a constant LR, as their papers
        assert records[-1]["lr"] < records[0]["lr"], "the LR schedule lowers the learning rate"
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_0000002.png", "step_0000004.png"]
    assert [p.name for p in checkpoint_dirs(run)] == ["step_0000002", "step_0000004"]
    checkpoint = load_model_checkpoint(run)
    assert checkpoint.task == task and checkpoint.step == 4
    assert checkpoint.config["train"]["steps"] == 4


def test_an_existing_run_is_never_overwritten(demo_data, tmp_path):
    layers = [data_layer("pix2pix", demo_data), tiny_overrides("pix2pix", steps=2)]
    train("pix2pix", overrides=layers, run_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match="already holds a run"):
        train("pix2pix", overrides=layers, run_dir=tmp_path / "run")


def test_resuming_another_models_run_is_refused(demo_data, tmp_path):
    train(
        "pix2pix",
        overrides=[data_layer("pix2pix", demo_data), tiny_overrides("pix2pix", steps=2)],
        run_dir=tmp_path / "run",
    )
    with pytest.raises(CheckpointError, match="holds a pix2pix run, not cyclegan"):
        train(
            "cyclegan", overrides=[data_layer("cyclegan", demo_data)], run_dir=tmp_path / "run", resume=True
        )


def test_resuming_extends_a_finished_run(demo_data, tmp_path):
    layers = [data_layer("pix2pix", demo_data), tiny_overrides("pix2pix", steps=2)]
    run = train("pix2pix", overrides=layers, run_dir=tmp_path / "run")
    train("pix2pix", overrides=[{"train": {"steps": 4}}], run_dir=run, resume=True)
    assert load_model_checkpoint(run).step == 4


def test_unknown_loss_weight_is_a_config_error(demo_data, tmp_path):
    layers = [data_layer("pix2pix", demo_data), tiny_overrides("pix2pix"), {"loss_weights": {"l2": 1.0}}]
    with pytest.raises(ConfigError, match="unknown loss weight.*l2.*Known: adv, l1"):
        train("pix2pix", overrides=layers, run_dir=tmp_path / "run")


def test_unknown_model_option_lists_the_accepted_ones(demo_data, tmp_path):
    layers = [data_layer("cyclegan", demo_data), tiny_overrides("cyclegan"), {"model": {"pool": 3}}]
    with pytest.raises(ConfigError, match="unknown option.*'pool'.*pool_size"):
        train("cyclegan", overrides=layers, run_dir=tmp_path / "run")


def test_a_run_whose_config_yaml_was_deleted_resumes_from_the_checkpoint_metadata(demo_data, tmp_path):
    layers = [data_layer("cyclegan", demo_data), tiny_overrides("cyclegan", steps=2)]
    run = train("cyclegan", overrides=layers, run_dir=tmp_path / "run")
    (run / "config.yaml").unlink()
    train("cyclegan", overrides=[{"train": {"steps": 3}}], run_dir=run, resume=True)
    assert load_model_checkpoint(run).step == 3
    assert (run / "config.yaml").is_file()


def test_loss_weights_in_the_resolved_config_are_the_ones_used(demo_data, tmp_path):
    from translate.engine.trainer import Trainer

    layers = [
        data_layer("cyclegan", demo_data),
        tiny_overrides("cyclegan"),
        {"loss_weights": {"identity": 0}},
    ]
    config = resolve_config("cyclegan", overrides=layers)
    assert config.loss_weights == {"adv": 1.0, "cycle": 10.0, "identity": 0, "gp": 10.0}
    trainer = Trainer(config, tmp_path / "run")
    assert trainer.task.loss_weights["identity"] == 0.0
    assert "G/identity" not in trainer.train_step(trainer._batches())


def test_without_the_adversarial_term_the_discriminator_is_neither_run_nor_updated(demo_data, tmp_path):
    from translate.engine.trainer import Trainer

    layers = [data_layer("pix2pix", demo_data), tiny_overrides("pix2pix"), {"loss_weights": {"adv": 0}}]
    trainer = Trainer(resolve_config("pix2pix", overrides=layers), tmp_path / "run")
    assert [u.group for u in trainer.schedule] == ["generator"]
    before = {k: v.clone() for k, v in trainer.task.discriminator.state_dict().items()}
    logged = trainer.train_step(trainer._batches())
    assert set(logged) == {"G/l1"}
    after = trainer.task.discriminator.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
