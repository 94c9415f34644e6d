"""Evaluation during training (``train.eval_every``), the best checkpoint (``train.best_metric``) and
``--checkpoint best|latest|STEP`` of the inference commands."""

from __future__ import annotations

import json
import logging
import math

import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_SIZE, EvaluatingTrainer, tiny_overrides, tiny_train
from safetensors.torch import load_file
from toy_tasks import SIZE, ToyImages, registered

from translate import Sampler, Translator
from translate.api import resolve_config
from translate.catalog.demo import make_demo_dataset
from translate.cli import main
from translate.config import build_config
from translate.engine.checkpoint import checkpoint_dirs, load_model_checkpoint
from translate.errors import CheckpointError, ConfigError
from translate.metrics.domain_classifier import DomainClassifier, save_classifier
from translate.registry import TASKS


@pytest.fixture(autouse=True)
def toy_tasks():
    with registered():
        yield


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    unaligned = make_demo_dataset(
        root / "unaligned", layout="unaligned", num_train=6, num_test=3, size=TINY_SIZE
    )
    aligned = make_demo_dataset(root / "aligned", layout="aligned", num_train=6, num_test=3, size=TINY_SIZE)
    return {"pix2pix": aligned, "cyclegan": unaligned, "stargan": unaligned}


def config_of(task: str, demo_data, steps: int = 4, **train) -> object:
    layer = {"data": {"root": str(demo_data[task])}}
    if task != "pix2pix":
        layer["data"]["domains"] = ["photo", "anime"]
    return resolve_config(task, overrides=[layer, tiny_overrides(task, steps=steps, **train)])


def toy_config(steps: int = 4, **train) -> object:
    run = {"data": {"image_size": SIZE, "num_workers": 0}, "train": tiny_train(steps, num_samples=2, **train)}
    return build_config({"task": "toy_wgan"}, TASKS.get("toy_wgan").default_config, run)


def eval_records(run) -> list[dict]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if any(k.startswith("eval/") for k in r)]


# ----------------------------------------------------------------------------------------- metrics
def test_paired_data_logs_l1_psnr_ssim_to_the_log_and_the_console(demo_data, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="translate"):
        EvaluatingTrainer(config_of("pix2pix", demo_data, eval_every=2), tmp_path / "run").fit()
    records = eval_records(tmp_path / "run")
    assert [r["step"] for r in records] == [2, 4]
    assert all(set(r) == {"step", "eval/l1", "eval/psnr", "eval/ssim"} for r in records)
    assert all(0 < r["eval/l1"] < 2 and 0 < r["eval/psnr"] < 100 for r in records)
    assert "eval at step 2: l1" in caplog.text and "psnr" in caplog.text


def test_unpaired_data_logs_the_random_feature_proxy_per_export_and_their_mean(demo_data, tmp_path):
    EvaluatingTrainer(config_of("cyclegan", demo_data, steps=2, eval_every=2), tmp_path / "run").fit()
    (record,) = eval_records(tmp_path / "run")
    assert set(record) == {"step", "eval/fd_random", "eval/a2b/fd_random", "eval/b2a/fd_random"}
    mean = (record["eval/a2b/fd_random"] + record["eval/b2a/fd_random"]) / 2
    assert math.isclose(record["eval/fd_random"], mean, rel_tol=1e-6) and mean > 0


def test_a_classifier_file_gives_fd_and_kid_in_its_features(demo_data, tmp_path):
    classifier = tmp_path / "clf.pt"
    with torch.random.fork_rng():
        save_classifier(
            classifier, DomainClassifier(3, 2, 8), {"classes": ["photo", "anime"], "image_size": TINY_SIZE}
        )
    config = config_of(
        "stargan",
        demo_data,
        steps=2,
        eval_every=2,
        eval_metrics=["fd", "kid"],
        eval_classifier=str(classifier),
    )
    EvaluatingTrainer(config, tmp_path / "run").fit()
    (record,) = eval_records(tmp_path / "run")
    assert set(record) == {"step", "eval/fd", "eval/kid"}
    assert all(math.isfinite(v) for k, v in record.items())


def test_noise_models_score_fixed_codes_against_real_images(tmp_path):
    EvaluatingTrainer(
        toy_config(steps=2, eval_every=1, eval_images=8), tmp_path / "run", dataset=ToyImages()
    ).fit()
    records = eval_records(tmp_path / "run")
    assert [set(r) for r in records] == [{"step", "eval/fd_random"}] * 2
    assert records[0]["eval/fd_random"] != records[1]["eval/fd_random"]


def test_evaluating_changes_nothing_in_training(demo_data, tmp_path):
    EvaluatingTrainer(config_of("pix2pix", demo_data, steps=3), tmp_path / "plain").fit()
    EvaluatingTrainer(config_of("pix2pix", demo_data, steps=3, eval_every=1), tmp_path / "evaluated").fit()
    for name in ("model.safetensors", "state.safetensors"):
        a = load_file(checkpoint_dirs(tmp_path / "plain")[-1] / name)
        b = load_file(checkpoint_dirs(tmp_path / "evaluated")[-1] / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ({"best_metric": "eval/psnr"}, "needs train.eval_every"),
        ({"eval_every": 2, "best_metric": "G/l1"}, "must name an evaluation metric"),
        ({"eval_every": 2, "eval_metrics": ["fid"]}, "unknown metric 'fid'"),
        ({"eval_every": 2, "best_mode": "lowest"}, "train.best_mode must be min or max"),
        ({"eval_every": -1}, "train.eval_every"),
        ({"eval_every": 2, "eval_images": 1}, "train.eval_images"),
    ],
)
def test_bad_evaluation_settings_are_one_line_errors(train, message):
    with pytest.raises(ConfigError, match=message):
        build_config({"task": "pix2pix"}, {"train": train})


def test_a_best_metric_the_run_does_not_log_or_paired_metrics_on_unpaired_data_are_errors(
    demo_data, tmp_path
):
    with pytest.raises(ConfigError, match=r"eval/fd is not evaluated; this run logs eval/l1, eval/psnr"):
        EvaluatingTrainer(
            config_of("pix2pix", demo_data, eval_every=2, best_metric="eval/fd"), tmp_path / "a"
        )
    with pytest.raises(ConfigError, match="need ground truth"):
        EvaluatingTrainer(
            config_of("cyclegan", demo_data, eval_every=2, eval_metrics=["psnr"]), tmp_path / "b"
        )


# ----------------------------------------------------------------------------------------- best checkpoint
class FakeScores(EvaluatingTrainer):
    """Evaluation returns the next value of ``SEQUENCE`` for every metric (steps 1, 2, ...)."""

    SEQUENCE = [3.0, 1.0, 2.0, 1.5, math.nan, 0.5]

    def evaluate(self):
        value = self.SEQUENCE[self.step - 1]
        return {name: value for name in self.evaluator.names}


class StopsAtStep3(FakeScores):
    def train_step(self, batches):
        logged = super().train_step(batches)
        if self.step + 1 == 3:
            self.stop_requested = True
        return logged


def best_of(run) -> dict:
    return json.loads((run / "checkpoints" / "best" / "best.json").read_text())


@pytest.mark.parametrize(("mode", "best_step"), [("min", 2), ("max", 1)])
def test_the_best_checkpoint_follows_the_metric_and_is_never_rotated_out(
    demo_data, tmp_path, mode, best_step
):
    train = {"eval_every": 1, "eval_metrics": ["l1"], "best_metric": "eval/l1", "best_mode": mode}
    config = config_of("pix2pix", demo_data, steps=5, checkpoint_every=100, keep_checkpoints=1, **train)
    FakeScores(config, tmp_path / "run").fit()
    run = tmp_path / "run"
    best = best_of(run)
    value = FakeScores.SEQUENCE[best_step - 1]
    assert best == {"metric": "eval/l1", "value": value, "step": best_step, "mode": mode}
    assert load_model_checkpoint(run / "checkpoints" / "best").step == best_step
    assert [p.name for p in checkpoint_dirs(run)] == ["step_0000005"], "rotation leaves best alone"
    # a NaN is logged as null and never becomes the best
    assert [r["eval/l1"] for r in eval_records(run)][4] is None


def test_the_best_checkpoint_is_hard_linked_to_its_step_and_survives_a_resume(demo_data, tmp_path):
    train = {"eval_every": 1, "eval_metrics": ["l1"], "best_metric": "eval/l1"}
    config = config_of("pix2pix", demo_data, steps=6, checkpoint_every=100, keep_checkpoints=0, **train)
    run = tmp_path / "run"
    StopsAtStep3(config, run).fit()
    assert best_of(run)["step"] == 2
    best, step_2 = run / "checkpoints" / "best", run / "checkpoints" / "step_0000002"
    for name in ("model.safetensors", "state.safetensors", "SHA256SUMS"):
        assert (best / name).samefile(step_2 / name), "hard links, not copies"
    # resumed at step 3: the best so far (1.0 at step 2) comes back; 2.0 and 1.5 do not beat it, 0.5 does
    trainer = FakeScores(config, run, resume=True)
    assert trainer.best == {"metric": "eval/l1", "value": 1.0, "step": 2, "mode": "min"}
    trainer.fit()
    assert best_of(run)["step"] == 6
    assert not list((run / "checkpoints").glob(".tmp-*")) and not list((run / "checkpoints").glob(".old-*"))


# ----------------------------------------------------------------------------------------- --checkpoint
@pytest.fixture(scope="module")
def run_with_best(demo_data, tmp_path_factory):
    run = tmp_path_factory.mktemp("best") / "run"
    train = {"eval_every": 1, "eval_metrics": ["l1"], "best_metric": "eval/l1", "keep_checkpoints": 0}
    config = config_of("pix2pix", demo_data, steps=4, checkpoint_every=2, **train)
    FakeScores(config, run).fit()  # best: step 2
    return run


def test_translator_picks_best_latest_or_a_step(run_with_best):
    steps = {
        which: load_model_checkpoint(run_with_best, which).step
        for which in ("best", "latest", "4", 2, "step_2")
    }
    assert steps == {"best": 2, "latest": 4, "4": 4, 2: 2, "step_2": 2}
    best = Translator.from_run(run_with_best, checkpoint="best").generator.state_dict()
    saved = load_model_checkpoint(run_with_best / "checkpoints" / "step_0000002").weights
    assert all(torch.equal(v, saved[f"generator.{k}"]) for k, v in best.items())
    with pytest.raises(CheckpointError, match=r"no checkpoint of step 3; .* holds: best, latest, 1, 2, 4"):
        Translator.from_run(run_with_best, checkpoint=3)
    with pytest.raises(CheckpointError, match="takes best, latest or a step number"):
        load_model_checkpoint(run_with_best, "newest")
    with pytest.raises(CheckpointError, match="picks a checkpoint of a run folder"):
        load_model_checkpoint(run_with_best / "checkpoints" / "step_0000002", "best")


def test_cli_apply_info_and_sample_take_checkpoint(run_with_best, demo_data, tmp_path):
    runner = CliRunner()
    images = demo_data["pix2pix"] / "test"
    for which in ("best", "latest", "2"):
        out = tmp_path / which
        args = ["apply", str(images), "--run", str(run_with_best), "--out", str(out), "--checkpoint", which]
        result = runner.invoke(main, [*args, "--device", "cpu"])
        assert result.exit_code == 0, result.output
        assert len(list(out.rglob("*.png"))) == 3
    result = runner.invoke(main, ["apply", str(images), "--run", str(run_with_best), "--checkpoint", "7"])
    assert (
        result.exit_code == 1
        and "Error:" in result.output
        and "holds: best, latest, 1, 2, 4" in result.output
    )
    result = runner.invoke(main, ["info", str(run_with_best), "--checkpoint", "best"])
    assert result.exit_code == 0 and "steps:      2 of 4" in result.output
    assert "best:       step 2, eval/l1 1 (--checkpoint best)" in result.output

    # sample: a noise model with an EMA and a best checkpoint
    run = tmp_path / "gan"
    config = toy_config(steps=2, eval_every=1, eval_images=6, best_metric="eval/fd_random", ema_decay=0.9)
    EvaluatingTrainer(config, run, dataset=ToyImages()).fit()
    for which in ("best", "latest", "1"):
        result = runner.invoke(
            main,
            [
                "sample",
                "--run",
                str(run),
                "-n",
                "4",
                "--out",
                str(tmp_path / f"{which}.png"),
                "--checkpoint",
                which,
            ],
        )
        assert result.exit_code == 0, result.output
        assert (tmp_path / f"{which}.png").is_file()
    sampler = Sampler.from_run(run, checkpoint="latest")
    assert sampler.sample(2).shape == (2, 1, SIZE, SIZE)
    result = runner.invoke(main, ["info", str(run)])
    assert "weights:    EMA of the generator (decay 0.9, 2 updates)" in result.output


def test_a_run_without_a_best_checkpoint_says_how_to_keep_one(demo_data, tmp_path):
    EvaluatingTrainer(config_of("pix2pix", demo_data, steps=2), tmp_path / "run").fit()
    result = CliRunner().invoke(
        main, ["apply", str(tmp_path), "--run", str(tmp_path / "run"), "--checkpoint", "best"]
    )
    assert result.exit_code == 1
    assert (
        "has no best checkpoint (kept when training with train.eval_every and train.best_metric)"
        in result.output
    )
