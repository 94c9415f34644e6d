"""Faults injected into training and the command line: signals sent to a real `translate train`, a poisoned
loss, truncated and damaged checkpoints, a full disk, log lines after resuming, a changed `--steps`, and bad
input that must be a one-line error. Each test is named after the promise in docs/RELIABILITY.md it shows."""

from __future__ import annotations

import errno
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_SIZE, tiny_overrides
from PIL import Image

from translate.api import resolve_config, train
from translate.catalog.demo import make_demo_dataset
from translate.cli import main
from translate.engine import checkpoint
from translate.engine.checkpoint import checkpoint_dirs, load_model_checkpoint, load_training_state
from translate.engine.device import resolve_device
from translate.engine.trainer import Trainer
from translate.errors import CorruptCheckpointError, TrainingDiverged, TrainingInterrupted
from translate.tasks.pix2pix import Pix2Pix

PIX2PIX_FLAGS = [
    "--image-size",
    str(TINY_SIZE),
    "--batch-size",
    "2",
    "--set",
    f"data.load_size={TINY_SIZE + 4}",
    "--set",
    "model.generator={name: unet, num_downs: 5, base_channels: 4}",
    "--set",
    "model.discriminator={base_channels: 4, num_layers: 2}",
    "--set",
    "train.log_every=1",
    "--set",
    "train.sample_every=1000",
]
"""`translate train pix2pix` flags for a network that steps in milliseconds."""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    return {
        "aligned": make_demo_dataset(
            root / "aligned", layout="aligned", num_train=6, num_test=1, size=TINY_SIZE
        ),
        "unaligned": make_demo_dataset(
            root / "unaligned", layout="unaligned", num_train=4, num_test=1, size=TINY_SIZE
        ),
    }


def pix2pix_layers(data: dict[str, Path], steps: int = 4, **train_options: object) -> list[dict]:
    return [{"data": {"root": str(data["aligned"])}}, tiny_overrides("pix2pix", steps=steps, **train_options)]


def log_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]


def log_records(run: Path) -> dict[int, dict]:
    return {
        record["step"]: record for record in map(json.loads, (run / "log.jsonl").read_text().splitlines())
    }


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, message: str) -> None:
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output and result.exc_info[0] is SystemExit, result.output
    assert message in result.output, result.output


def stop_at(monkeypatch, step: int, action) -> None:
    """Run ``action(trainer)`` at the end of step ``step`` (1-based): a Ctrl-C or SIGTERM mid-run."""
    original = Trainer.train_step

    def train_step(self, batches):
        logged = original(self, batches)
        if self.step + 1 == step:
            action(self)
        return logged

    monkeypatch.setattr(Trainer, "train_step", train_step)


# ------------------------------------------------------------------------------------------ signals
def translate_command() -> list[str]:
    if (Path(__file__).resolve().parents[1] / "translate" / "__main__.py").is_file():
        return [sys.executable, "-m", "translate"]
    script = Path(sys.executable).parent / "translate"
    return [str(script)] if script.is_file() else [shutil.which("translate") or "translate"]


@pytest.mark.parametrize(
    "signum, exit_code",
    [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 128 + signal.SIGINT), (signal.SIGKILL, None)],
    ids=["sigterm", "sigint", "kill-9"],
)
def test_a_signalled_run_exits_non_zero_and_resumes_with_each_step_logged_once(
    signum, exit_code, data, tmp_path
):
    """A real `translate train` process group (data-loader worker included) gets the signal after its
    first checkpoint: SIGTERM and Ctrl-C finish the step, checkpoint it and exit 143 / 130; kill -9 loses
    only the steps since the last checkpoint. `--resume` continues and every step is logged once."""
    run = tmp_path / "run"
    command = [*translate_command(), "train", "pix2pix", "--data-root", data["aligned"], "--run-dir", run]
    command += ["--steps", "100000", *PIX2PIX_FLAGS, "--set", "data.num_workers=1"]
    command += ["--set", "train.checkpoint_every=3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "output.txt", "w") as output:
        process = subprocess.Popen(
            list(map(str, command)), stdout=output, stderr=output, env=env, start_new_session=True
        )
        try:
            deadline = time.time() + 90
            while not (run / "checkpoints" / "step_0000003").is_dir() and process.poll() is None:
                assert time.time() < deadline, "no checkpoint within 90 s"
                time.sleep(0.05)
            os.killpg(process.pid, signum)  # the whole group, as a terminal's Ctrl-C or systemd do
            returncode = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    text = (tmp_path / "output.txt").read_text()
    assert "Traceback" not in text
    saved = load_model_checkpoint(run).step
    if exit_code is None:
        assert returncode == -signal.SIGKILL and saved >= 3
    else:
        assert returncode == exit_code, text
        assert saved == log_steps(run)[-1], "the checkpoint is at the step it stopped"
        assert f"interrupted ({signal.Signals(signum).name}) at step {saved}; checkpoint saved" in text

    result = invoke("train", "pix2pix", "--run-dir", run, "--resume", "--steps", saved + 2)
    assert result.exit_code == 0, result.output
    assert load_model_checkpoint(run).step == saved + 2
    assert log_steps(run) == list(range(1, saved + 3))


def test_ctrl_c_in_the_cli_exits_130_and_the_python_api_raises_training_interrupted(
    data, tmp_path, monkeypatch, caplog
):
    args = ["--data-root", data["aligned"], "--run-dir", tmp_path / "cli", "--steps", "4", *PIX2PIX_FLAGS]
    with monkeypatch.context() as patch:
        stop_at(patch, 2, lambda trainer: os.kill(os.getpid(), signal.SIGINT))
        result = invoke("train", "pix2pix", *args)
    assert result.exit_code == 130, result.output
    assert load_model_checkpoint(tmp_path / "cli").step == 2
    assert "interrupted (SIGINT) at step 2; checkpoint saved" in caplog.text

    stop_at(monkeypatch, 3, lambda trainer: setattr(trainer, "stop_requested", True))
    with pytest.raises(TrainingInterrupted, match="at step 3 of 4; checkpoint saved.*--resume") as stopped:
        train("pix2pix", overrides=pix2pix_layers(data), run_dir=tmp_path / "api")
    assert stopped.value.exit_code == 130


# ------------------------------------------------------------------------------------------ NaN
def poison_generator_loss(monkeypatch, from_step: int, once: bool = False) -> None:
    """pix2pix's L1 loss becomes NaN at its ``from_step``-th call (one call per step), and after it."""
    calls = itertools.count(1)
    original = Pix2Pix.generator_losses

    def generator_losses(self, batch, outputs):
        losses = original(self, batch, outputs)
        call = next(calls)
        if call == from_step or (call > from_step and not once):
            losses["l1"] = losses["l1"] * float("nan")
        return losses

    monkeypatch.setattr(Pix2Pix, "generator_losses", generator_losses)


@pytest.mark.parametrize("log_every", [5, 100], ids=["found-at-a-log-line", "found-before-a-checkpoint"])
def test_a_nan_loss_stops_the_run_and_never_replaces_a_good_checkpoint(
    log_every, data, tmp_path, monkeypatch
):
    poison_generator_loss(monkeypatch, from_step=7)
    layers = pix2pix_layers(data, steps=20, log_every=log_every, checkpoint_every=5, keep_checkpoints=1)
    with pytest.raises(TrainingDiverged) as diverged:
        train("pix2pix", overrides=layers, run_dir=tmp_path / "run")
    message = str(diverged.value)
    assert "G/l1 became nan" in message and "between steps 5 and 10" in message, message
    assert "the last good checkpoint is step 5: translate train pix2pix --run-dir" in message
    assert "--resume --on-nan rollback" in message and "\n" not in message
    assert [p.name for p in checkpoint_dirs(tmp_path / "run")] == ["step_0000005"]
    assert load_model_checkpoint(tmp_path / "run").step == 5  # hashes and finite weights checked


def test_non_finite_weights_are_never_saved(data, tmp_path, monkeypatch):
    """Losses logged before the last update are finite; the weights it wrote are checked before saving."""
    stop_at(
        monkeypatch,
        2,
        lambda trainer: next(trainer.task.generator.parameters()).data.fill_(float("inf")),
    )
    config = resolve_config("pix2pix", overrides=pix2pix_layers(data, steps=4, log_every=1))
    with pytest.raises(
        TrainingDiverged,
        match=r"weight generator\.\S+ became inf between steps 0 and 2; no checkpoint was saved",
    ):
        Trainer(config, tmp_path / "run").fit()
    assert checkpoint_dirs(tmp_path / "run") == []


def test_on_nan_rollback_reloads_the_last_good_checkpoint_with_half_the_learning_rate(
    data, tmp_path, monkeypatch, caplog
):
    poison_generator_loss(monkeypatch, from_step=7, once=True)
    layers = pix2pix_layers(data, steps=9, checkpoint_every=5, schedule="constant", on_nan="rollback")
    run = train("pix2pix", overrides=layers, run_dir=tmp_path / "run")
    assert (
        "G/l1 became nan between steps 6 and 7: rolled back to step 5 with the learning rate x0.5"
        in caplog.text
    )
    records = log_records(run)
    assert sorted(records) == list(range(1, 10))
    assert [records[s]["lr"] for s in (5, 6, 9)] == [2e-4, 1e-4, 1e-4]
    assert load_training_state(checkpoint_dirs(run)[-1])[1]["lr_scale"] == 0.5


def test_on_nan_rollback_gives_up_after_three_rollbacks_to_one_checkpoint(
    data, tmp_path, monkeypatch, caplog
):
    poison_generator_loss(monkeypatch, from_step=7)
    layers = pix2pix_layers(data, steps=9, checkpoint_every=5, on_nan="rollback")
    with pytest.raises(
        TrainingDiverged, match="again after 3 rollbacks to step 5; the last good checkpoint is step 5"
    ):
        train("pix2pix", overrides=layers, run_dir=tmp_path / "run")
    assert "learning rate x0.125" in caplog.text
    assert [p.name for p in checkpoint_dirs(tmp_path / "run")] == ["step_0000005"]


# ------------------------------------------------------------------------------------------ checkpoints
def test_a_truncated_latest_checkpoint_is_an_error_for_apply_and_info_and_resume_falls_back(
    data, tmp_path, caplog
):
    run = train("pix2pix", overrides=pix2pix_layers(data, steps=4), run_dir=tmp_path / "run")
    damaged = run / "checkpoints" / "step_0000004" / "model.safetensors"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    for args in (["info", run], ["apply", tmp_path / "x.png", "--run", run, "--out", tmp_path / "out"]):
        result = invoke(*args)
        assert_one_line_error(result, f"Error: {damaged} is corrupt: its content does not match the sha256")
        assert f"older checkpoints: {run / 'checkpoints' / 'step_0000002'}" in result.output
        assert len(result.output.strip().splitlines()) == 1

    train("pix2pix", overrides=[{"train": {"steps": 6}}], run_dir=run, resume=True)
    assert "step_0000004/model.safetensors is corrupt" in caplog.text
    assert (run / "checkpoints" / "corrupt-step_0000004").is_dir()
    assert load_model_checkpoint(run).step == 6
    assert log_steps(run) == [1, 2, 3, 4, 5, 6]

    state = checkpoint_dirs(run)[-1] / "state.safetensors"
    content = bytearray(state.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one flipped byte: the same size, parses, but wrong
    state.write_bytes(bytes(content))
    with pytest.raises(CorruptCheckpointError, match="state.safetensors is corrupt"):
        load_training_state(state.parent)


def test_a_full_disk_while_saving_is_one_error_that_leaves_the_earlier_checkpoints_whole(
    data, tmp_path, monkeypatch
):
    real_save_file = checkpoint.save_file
    calls = itertools.count(1)

    def full_disk(tensors, filename, metadata=None):
        if next(calls) >= 3:  # the second checkpoint's first file: half written, then the disk is full
            Path(filename).write_bytes(b"\0" * 64)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(filename))
        return real_save_file(tensors, filename, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    run = tmp_path / "run"
    args = [
        "train",
        "pix2pix",
        "--data-root",
        data["aligned"],
        "--run-dir",
        run,
        "--steps",
        "4",
        *PIX2PIX_FLAGS,
    ]
    result = invoke(*args, "--set", "train.checkpoint_every=2")
    assert_one_line_error(
        result,
        f"Error: could not write checkpoint {run / 'checkpoints' / 'step_0000004'}: No space left on device; "
        f"the earlier checkpoints are intact; then resume with: translate train pix2pix --run-dir {run} "
        "--resume",
    )
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_0000002"]
    assert load_model_checkpoint(run).step == 2

    monkeypatch.setattr(checkpoint, "save_file", real_save_file)
    assert invoke("train", "pix2pix", "--run-dir", run, "--resume").exit_code == 0
    assert load_model_checkpoint(run).step == 4 and log_steps(run) == [1, 2, 3, 4]


def test_resuming_drops_the_log_lines_after_the_checkpoint(data, tmp_path):
    """As after a kill between a log line and the next checkpoint (and mid-way through a log line)."""
    run = train("pix2pix", overrides=pix2pix_layers(data, steps=4), run_dir=tmp_path / "run")
    shutil.rmtree(run / "checkpoints" / "step_0000004")
    with open(run / "log.jsonl", "a") as log_file:
        log_file.write('{"step": 5, "lr": 0.0')
    train("pix2pix", overrides=[{"train": {"steps": 5}}], run_dir=run, resume=True)
    assert log_steps(run) == [1, 2, 3, 4, 5]


# ------------------------------------------------------------------------------------------ schedule
@pytest.mark.parametrize("keep", [False, True], ids=["re-stretched", "kept"])
def test_extending_steps_on_resume_says_it_moves_the_decay_or_keeps_it(
    keep, data, tmp_path, monkeypatch, caplog
):
    # Linear over 4 steps: LR x1 for steps 1-3 and x0.5 for step 4; over 8 steps, x1 until step 5.
    with monkeypatch.context() as patch:
        stop_at(patch, 2, lambda trainer: setattr(trainer, "stop_requested", True))
        with pytest.raises(TrainingInterrupted):
            train("pix2pix", overrides=pix2pix_layers(data, steps=4), run_dir=tmp_path / "run")
    caplog.clear()
    run = train(
        "pix2pix",
        overrides=[{"train": {"steps": 8}}],
        run_dir=tmp_path / "run",
        resume=True,
        keep_schedule=keep,
    )
    lrs = {step: record["lr"] for step, record in log_records(run).items()}
    if keep:
        assert [lrs[s] for s in (3, 4, 5, 8)] == pytest.approx([2e-4, 1e-4, 0.0, 0.0])
        assert "moves this run's" not in caplog.text
        assert load_model_checkpoint(run).config["train"]["schedule_steps"] == 4
    else:
        assert [lrs[s] for s in (3, 4, 5, 6)] == pytest.approx([2e-4, 2e-4, 2e-4, 1.5e-4])
        assert (
            "--steps 8 moves this run's linear LR decay to steps 4-8 (it was planned for steps 2-4); "
            "--keep-schedule keeps it where it was" in caplog.text
        )


# ------------------------------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def trained_run(data, tmp_path_factory) -> Path:
    return train(
        "pix2pix", overrides=pix2pix_layers(data, steps=2), run_dir=tmp_path_factory.mktemp("r") / "run"
    )


NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "train.lr=-1"], "train.lr must be a number >= 0; got -1.0"),
        (["--set", "train.lr=.inf"], "train.lr must be a finite number >= 0"),
        (["--set", "train.log_every=0"], "train.log_every must be a positive integer; got 0"),
        (["--seed", "-1"], "train.seed must be an integer between 0 and 4294967295; got -1"),
        (["--set", "train.betas=[2, 0.999]"], "train.betas must be two numbers in [0, 1)"),
        (["--set", "optim.generator.eps=-1"], "optim: Invalid epsilon value: -1"),
        (["--image-size", "37"], "data.image_size 37 does not fit the generator network"),
        (["--device", "gpu"], "train.device 'gpu' is not a device (PyTorch calls GPUs cuda)"),
        pytest.param(["--device", "cuda"], "train.device is 'cuda' but CUDA is not available", marks=NO_CUDA),
        (["--keep-schedule"], "--keep-schedule goes with --resume"),
    ],
)
def test_bad_training_input_is_a_one_line_error(args, message, data, tmp_path):
    base = ["train", "pix2pix", "--data-root", data["aligned"], "--run-dir", tmp_path / "run", *PIX2PIX_FLAGS]
    assert_one_line_error(invoke(*base, *args), message)


def test_images_too_small_for_the_networks_are_a_one_line_error(data, tmp_path):
    args = ["train", "cyclegan", "--data-root", data["unaligned"], "--domains", "photo", "anime"]
    args += ["--run-dir", tmp_path / "run", "--image-size", "8", "--set", "data.num_workers=0"]
    args += ["--set", "model.generator={name: resnet_6blocks, base_channels: 4}"]
    assert_one_line_error(invoke(*args), "data.image_size 8 is too small for these networks")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch-size", "0"], "0 is not in the range x>=1"),
        (["--run", "{tmp}/x.png"], "x.png is a file, not a run folder"),
        (["--run", "{tmp}"], "holds no checkpoint"),
        (["--out", "{tmp}/x.png/out"], "cannot write to --out"),
        pytest.param(["--device", "cuda"], "--device is 'cuda' but CUDA is not available", marks=NO_CUDA),
        (["--device", "gpu"], "--device 'gpu' is not a device"),
    ],
)
def test_bad_apply_input_is_a_one_line_error(args, message, trained_run, tmp_path):
    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    args = [a.format(tmp=tmp_path) for a in args]
    result = invoke("apply", tmp_path / "x.png", "--run", trained_run, "--out", tmp_path / "out", *args)
    assert_one_line_error(result, message)


def test_the_training_state_given_as_the_model_is_a_one_line_error_naming_the_model_file(
    trained_run, tmp_path
):
    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    step = checkpoint_dirs(trained_run)[-1]
    result = invoke(
        "apply", tmp_path / "x.png", "--run", step / "state.safetensors", "--out", tmp_path / "out"
    )
    assert_one_line_error(
        result, f"is the training state (optimizers, random state), not the model: give {step}"
    )
    assert str(step / "model.safetensors") in result.output


def test_auto_is_the_inference_device_and_means_cuda_when_there_is_one(trained_run, tmp_path):
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for command in ("apply", "sample"):
        assert next(p for p in main.commands[command].params if p.name == "device").default == "auto"
    Image.new("RGB", (32, 32)).save(tmp_path / "x.png")
    result = invoke("apply", tmp_path / "x.png", "--run", trained_run, "--out", tmp_path / "out")
    assert result.exit_code == 0 and (tmp_path / "out" / "x.png").is_file(), result.output
