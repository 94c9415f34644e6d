"""Training on several processes: two gloo processes on the CPU, each with batch B, train as one process
with batch 2B (within float tolerance), resume exactly after a stop requested on one of them, write
nothing but through rank 0, and resume on another number of processes as documented."""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from click.testing import CliRunner
from conftest import TINY_MODELS, EvaluatingTrainer, tiny_train
from safetensors.torch import load_file
from torch.utils.data import Dataset

from translate.cli import main
from translate.config import build_config
from translate.data.sampler import ResumableSampler, split_item
from translate.engine.checkpoint import checkpoint_dirs, load_training_state
from translate.engine.trainer import Trainer
from translate.errors import TrainingDiverged
from translate.registry import TASKS

SIZE = 16
BATCH = 2
"""Per-process batch of the two-process runs; the single-process reference trains with 2 * BATCH."""
MODEL = {  # deterministic: no dropout, batch norm, noise or image pool; no conv bias before a norm (its
    # gradient is zero up to rounding, which Adam would turn into full steps of either sign)
    "generator": {
        "name": "unet",
        "num_downs": 4,
        "base_channels": 4,
        "dropout": False,
        "norm": "instance_affine",
    },
    "discriminator": {"base_channels": 4, "num_layers": 2, "norm": "instance_affine"},
    "test_mode": "eval",
}
WRITES = {"open", "os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate", "shutil.rmtree"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class Pairs(Dataset):
    """Fixed random (input, target) pairs, indexed like the aligned dataset (``(index, sample_seed)``)."""

    def __init__(self, count: int = 10) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.rand(count, 2, 3, SIZE, SIZE, generator=generator) * 2 - 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item):
        index, _ = split_item(item)
        return {"input": self.images[index, 0], "target": self.images[index, 1], "path": f"{index}.png"}

    def task_kwargs(self) -> dict:
        return {}


class Unpaired(Pairs):
    """The same images as two domains, for CycleGAN."""

    def __getitem__(self, item):
        index, _ = split_item(item)
        return {"A": self.images[index, 0], "B": self.images[-1 - index, 1], "path_A": "a", "path_B": "b"}


def cyclegan_config(batch_size: int, steps: int):
    """CycleGAN with its image pool (random choices: each process's own RNG and pool)."""
    layers = {
        "model": TINY_MODELS["cyclegan"],
        "data": {"image_size": SIZE, "num_workers": 0},
        "train": tiny_train(steps, batch_size=batch_size, num_samples=2),
    }
    return build_config({"task": "cyclegan"}, TASKS.get("cyclegan").default_config, layers)


def pix2pix_config(batch_size: int, steps: int, **train: object):
    layers = {
        "model": MODEL,
        "data": {"image_size": SIZE, "num_workers": 0},
        "train": tiny_train(
            steps, batch_size=batch_size, num_samples=2, keep_checkpoints=0, schedule="constant", **train
        ),
    }
    return build_config({"task": "pix2pix"}, TASKS.get("pix2pix").default_config, layers)


class StopsOnRank1(EvaluatingTrainer):
    """Rank 1 alone asks to stop during step 2 (as if it alone got a SIGTERM): every process must stop
    after step 2, with one checkpoint."""

    def train_step(self, batches):
        logged = super().train_step(batches)
        if self.world.rank == 1 and self.step + 1 == 2:
            self.stop_requested = True
        return logged


class NanOnRank1(Trainer):
    """Rank 1's L1 loss becomes NaN during step 3, once: every process must see it at the log line."""

    injected = False

    def train_step(self, batches):
        logged = super().train_step(batches)
        if self.world.rank == 1 and self.step + 1 == 3 and not NanOnRank1.injected:
            NanOnRank1.injected = True
            logged["G/l1"] = logged["G/l1"] * float("nan")
        return logged


def join_process_group_env(rank: int, world_size: int, port: int) -> None:
    """The environment torchrun gives process ``rank`` of ``world_size`` on this machine, one thread each."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_RANK=str(rank),
        LOCAL_WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)


def _worker(rank: int, world_size: int, port: int, root: str) -> None:
    """One of two processes: a straight 4-step run, a run stopped after step 2 and resumed (pix2pix,
    then CycleGAN with its image pool), and runs whose loss becomes NaN on rank 1 alone (``on_nan:
    stop``, then ``rollback``)."""
    join_process_group_env(rank, world_size, port)
    import translate.api  # noqa: F401  (registers every component)
    from translate.engine import distributed

    root_path = Path(root)
    writes: list[str] = []

    def audit(event: str, args: tuple) -> None:
        if event not in WRITES or not args or not isinstance(args[0], str | bytes | os.PathLike):
            return
        path = os.fsdecode(args[0])
        if "runs" not in Path(path).parts:
            return
        if event == "open" and not (len(args) > 2 and isinstance(args[2], int) and args[2] & WRITE_FLAGS):
            return
        writes.append(f"{event} {path}")

    sys.addaudithook(audit)
    runs = root_path / "runs"
    Trainer(pix2pix_config(BATCH, 4), runs / "straight", dataset=Pairs()).fit()
    stopped = StopsOnRank1(pix2pix_config(BATCH, 4), runs / "stopped", dataset=Pairs())
    stopped.fit()
    assert stopped.interrupted and stopped.step == 2
    Trainer(pix2pix_config(BATCH, 4), runs / "stopped", resume=True, dataset=Pairs()).fit()
    Trainer(cyclegan_config(BATCH, 4), runs / "pool-straight", dataset=Unpaired()).fit()
    StopsOnRank1(cyclegan_config(BATCH, 4), runs / "pool-stopped", dataset=Unpaired()).fit()
    Trainer(cyclegan_config(BATCH, 4), runs / "pool-stopped", resume=True, dataset=Unpaired()).fit()
    with pytest.raises(TrainingDiverged, match="G/l1 became nan between steps 2 and 3"):
        NanOnRank1(pix2pix_config(BATCH, 4), runs / "nan-stop", dataset=Pairs()).fit()
    NanOnRank1.injected = False
    NanOnRank1(pix2pix_config(BATCH, 4, on_nan="rollback"), runs / "nan-rollback", dataset=Pairs()).fit()
    distributed.teardown()
    (root_path / f"writes-{rank}.json").write_text(json.dumps(writes))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def weights(run: Path, step: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    folder = next(p for p in checkpoint_dirs(run) if p.name == f"step_{step:07d}")
    return load_file(folder / "model.safetensors"), load_file(folder / "state.safetensors")


def assert_close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], what: str) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].double(), b[key].double(), rtol=1e-4, atol=1e-5), (
            f"{what}:{key} differs by {(a[key].double() - b[key].double()).abs().max().item():.3g}"
        )


def log_records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    """Both workers' runs, and a single-process reference with batch 2 * BATCH over 6 steps."""
    root = tmp_path_factory.mktemp("distributed")
    # fork: the workers inherit the imported modules (spawn would import torch and translate again, ~8 s)
    mp.start_processes(_worker, args=(2, free_port(), str(root)), nprocs=2, join=True, start_method="fork")
    Trainer(pix2pix_config(2 * BATCH, 6), root / "runs" / "reference", dataset=Pairs()).fit()
    return root


def test_two_processes_train_as_one_with_their_batches_together(two_process_runs):
    runs = two_process_runs / "runs"
    for step in (2, 4):
        model, state = weights(runs / "straight", step)
        ref_model, ref_state = weights(runs / "reference", step)
        assert_close(model, ref_model, f"weights at step {step}")
        optim = {k: v for k, v in state.items() if k.startswith("optim/")}
        assert_close(optim, {k: v for k, v in ref_state.items() if k.startswith("optim/")}, "optimizer")
    # each log line holds the mean of the processes' losses: the loss of the batch of 2 * BATCH
    straight, reference = log_records(runs / "straight"), log_records(runs / "reference")[:4]
    assert [r["step"] for r in straight] == [1, 2, 3, 4]
    for mine, ref in zip(straight, reference):
        for key in ("G/l1", "G/adv", "D/real", "D/fake"):
            if key in ref:
                assert mine[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-6), key
    assert sorted(p.name for p in (runs / "straight" / "samples").iterdir()) == [
        "step_0000002.png",
        "step_0000004.png",
    ]


def test_a_stop_on_one_process_stops_all_and_resuming_changes_nothing(two_process_runs):
    runs = two_process_runs / "runs"
    model, state = weights(runs / "straight", 4)
    resumed_model, resumed_state = weights(runs / "stopped", 4)
    assert state.keys() == resumed_state.keys()
    # each process's random state is in the checkpoint, and they differ
    assert not torch.equal(state["rng/torch"], state["rank1/rng/torch"])
    for name, a, b in (("model", model, resumed_model), ("state", state, resumed_state)):
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}:{key} differs after resuming"
    assert [r["step"] for r in log_records(runs / "stopped")] == [1, 2, 3, 4]


def test_each_process_keeps_its_image_pool_and_random_state_across_a_resume(two_process_runs):
    runs = two_process_runs / "runs"
    model, state = weights(runs / "pool-straight", 4)
    resumed_model, resumed_state = weights(runs / "pool-stopped", 4)
    assert {"task/pool_a/images", "rank1/task/pool_a/images", "rank1/rng/torch"} <= state.keys()
    assert not torch.equal(state["task/pool_a/images"], state["rank1/task/pool_a/images"])
    assert state.keys() == resumed_state.keys()
    for name, a, b in (("model", model, resumed_model), ("state", state, resumed_state)):
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}:{key} differs after resuming"


def test_only_rank_0_writes_the_run_folder(two_process_runs):
    assert json.loads((two_process_runs / "writes-1.json").read_text()) == []
    rank0 = json.loads((two_process_runs / "writes-0.json").read_text())
    assert any("log.jsonl" in w for w in rank0) and any("checkpoints" in w for w in rank0)


def test_a_run_resumes_on_another_number_of_processes_from_the_same_sample(two_process_runs, caplog):
    """Two processes with batch 2 for 4 steps, then one with batch 4: the data stream goes on where it
    stopped, so the weights match the single-process reference; a warning says the processes changed."""
    runs = two_process_runs / "runs"
    shutil.copytree(runs / "straight", runs / "resized")
    with caplog.at_level(logging.WARNING, logger="translate"):
        trainer = Trainer(pix2pix_config(2 * BATCH, 6), runs / "resized", resume=True, dataset=Pairs())
    assert "trained by 2 process(es) and resumes on 1" in caplog.text
    assert trainer.samples_seen == 4 * 2 * BATCH  # 4 steps of one global batch of 2 x BATCH
    trainer.fit()
    model, _ = weights(runs / "resized", 6)
    ref_model, _ = weights(runs / "reference", 6)
    assert_close(model, ref_model, "weights at step 6")


def test_a_nan_on_one_process_stops_or_rolls_back_every_process(two_process_runs):
    runs = two_process_runs / "runs"
    assert [p.name for p in checkpoint_dirs(runs / "nan-stop")] == ["step_0000002"]
    assert [r["step"] for r in log_records(runs / "nan-stop")] == [1, 2]
    rolled_back = checkpoint_dirs(runs / "nan-rollback")[-1]
    assert rolled_back.name == "step_0000004"
    assert load_training_state(rolled_back)[1]["lr_scale"] == 0.5
    assert [r["step"] for r in log_records(runs / "nan-rollback")] == [1, 2, 3, 4]


def test_sharded_samplers_put_together_are_the_single_process_stream():
    full = list(itertools.islice(ResumableSampler(7, seed=3, start=12), 36))
    shards = [
        list(itertools.islice(ResumableSampler(7, seed=3, start=12, rank=r, world_size=3, batch_size=2), 12))
        for r in range(3)
    ]
    together = [item for g in range(6) for shard in shards for item in shard[2 * g : 2 * g + 2]]
    assert together == full


# ----------------------------------------------------------------------------------- command line
def test_nproc_starts_the_same_command_in_that_many_processes(monkeypatch):
    from translate.engine import distributed

    calls = []
    monkeypatch.setattr(distributed, "launch", lambda nproc, argv: calls.append((nproc, argv)) or 143)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    args = ["-v", "train", "cyclegan", "--set", "train.lr=1e-4", "--domains", "a", "b", "--resume"]
    args += ["--nproc", "2", "--run-dir", "r", "--steps", "5", "--set", "model.pool_size=0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 143, result.output  # the processes' exit status
    assert calls == [
        (
            2,
            ["-v", "train", "cyclegan", "--domains", "a", "b", "--run-dir", "r", "--steps", "5"]
            + ["--resume", "--set", "train.lr=1e-4", "--set", "model.pool_size=0"],
        )
    ]
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = CliRunner().invoke(main, ["train", "pix2pix", "--nproc", "2"])
    assert result.exit_code == 2 and "leave it out under torchrun" in result.output


PIX2PIX_FLAGS = ["--image-size", "32", "--batch-size", "2", "--device", "cpu"]
PIX2PIX_FLAGS += ["--set", "data.load_size=36", "--set", "data.num_workers=0", "--set", "train.log_every=1"]
PIX2PIX_FLAGS += ["--set", "model.generator={name: unet, num_downs: 5, base_channels: 4}"]
PIX2PIX_FLAGS += ["--set", "model.discriminator={base_channels: 4, num_layers: 2}"]


@pytest.mark.slow
def test_nproc_2_stops_every_process_on_sigterm_with_a_checkpoint_and_resumes(tmp_path):
    """`translate train --nproc 2` gets SIGTERM (as from systemd or docker stop) after its first
    checkpoint: both processes finish the step, rank 0 saves, the command exits 143 and says how to
    resume; resuming with --nproc 2 logs every step once."""
    from translate.catalog.demo import make_demo_dataset
    from translate.engine.checkpoint import load_model_checkpoint

    data = make_demo_dataset(tmp_path / "data", layout="aligned", num_train=6, num_test=2, size=32)
    run = tmp_path / "run"
    base = [sys.executable, "-m", "translate", "train", "pix2pix", "--run-dir", str(run), "--nproc", "2"]
    command = [*base, "--data-root", str(data), "--steps", "100000", *PIX2PIX_FLAGS]
    command += ["--set", "train.checkpoint_every=3"]
    with open(tmp_path / "output.txt", "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=output, start_new_session=True)
        try:
            deadline = time.time() + 120
            while not (run / "checkpoints" / "step_0000003").is_dir() and process.poll() is None:
                assert time.time() < deadline, "no checkpoint within 120 s"
                time.sleep(0.05)
            os.killpg(process.pid, signal.SIGTERM)
            returncode = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    text = (tmp_path / "output.txt").read_text()
    assert returncode == 143, text
    assert "Traceback" not in text
    saved = load_model_checkpoint(run).step
    assert [r["step"] for r in log_records(run)][-1] == saved
    assert f"interrupted (SIGTERM) at step {saved}; checkpoint saved" in text
    assert f"--run-dir {run} --resume --nproc 2" in text

    resumed = subprocess.run([*base, "--resume", "--steps", str(saved + 2)], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("run folder:") == 1
    assert [r["step"] for r in log_records(run)] == list(range(1, saved + 3))
    folder = checkpoint_dirs(run)[-1]
    assert load_training_state(folder)[1]["world_size"] == 2
