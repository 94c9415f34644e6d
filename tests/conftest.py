"""Shared test helpers: tiny architectures per task and synthetic batches in each task's format."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import translate.api  # noqa: F401  (registers every component)
from translate.engine.trainer import Trainer
from translate.evaluation import Evaluator

# Translators run the plain generator in tests (compiling each tiny model would cost seconds), also in the
# commands tests start; tests/test_fast_inference.py asks for the fast path explicitly.
os.environ["TRANSLATE_FAST"] = "0"

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"

# Small enough that a training step takes milliseconds on a CPU; same structure as the full models.
TINY_MODELS = {
    "pix2pix": {
        "generator": {"name": "unet", "num_downs": 5, "base_channels": 4, "dropout": True},
        "discriminator": {"base_channels": 4, "num_layers": 2},
    },
    "cyclegan": {
        "generator": {"name": "resnet_6blocks", "base_channels": 4},
        "discriminator": {"base_channels": 4, "num_layers": 2},
        "pool_size": 4,
    },
    "stargan": {
        "generator": {"base_channels": 4, "num_blocks": 1},
        "discriminator": {"base_channels": 4, "num_layers": 3},
    },
    "unit": {"base_channels": 4, "discriminator": {"discriminator": {"base_channels": 4, "num_layers": 1}}},
    "munit": {
        "generator": {"base_channels": 4, "mlp_dim": 16, "num_res": 2},
        "discriminator": {"discriminator": {"base_channels": 4, "num_layers": 2}},
    },
    **{
        name: {
            "generator": {"name": "antialiased_resnet", "num_blocks": 5, "base_channels": 4},
            "discriminator": {"base_channels": 4, "num_layers": 2},
            "num_patches": 16,
            "patch_width": 32,  # narrower heads can give an all-zero row: NaN in the L2 normalisation
        }
        for name in ("cut", "fastcut")
    },
    **{
        name: {"generator": {"hidden": [16]}, "discriminator": {"hidden": [16]}, "latent_dim": 8}
        for name in ("gan", "cgan")
    },
    **{
        name: {"generator": {"base_channels": 4}, "discriminator": {"base_channels": 4}, "latent_dim": 8}
        for name in ("dcgan", "wgan", "wgangp", "lsgan")
    },
}
TINY_SIZE = 32
TINY_LABELS = {
    "names": ["Black_Hair", "Blond_Hair", "Male"],
    "kind": "attributes",
    "groups": [["Black_Hair", "Blond_Hair"]],
}
GAN_DATA = {"image_size": TINY_SIZE, "classes": ["a", "b", "c"]}
DATA_KWARGS = {
    "stargan": {"labels": TINY_LABELS, "image_size": TINY_SIZE},
    **{name: GAN_DATA for name in ("gan", "cgan", "dcgan", "wgan", "wgangp", "lsgan")},
}
"""What the dataset gives the task besides channels (``dataset.task_kwargs()``) in tests without data."""


def tiny_train(steps: int = 4, **train: object) -> dict:
    """Train settings of the tiny runs: batch 2, a log line per step, samples and checkpoints every 2."""
    return {
        "steps": steps,
        "batch_size": 2,
        "log_every": 1,
        "sample_every": 2,
        "checkpoint_every": 2,
        **train,
    }


def tiny_overrides(task: str, steps: int = 4, **train: object) -> dict:
    """A config layer that makes ``task`` tiny and fast (a few ms per step)."""
    return {
        "model": TINY_MODELS[task],
        "data": {"image_size": TINY_SIZE, "load_size": TINY_SIZE + 4, "num_workers": 0},
        "train": tiny_train(steps, **train),
    }


def random_batch(task: str, n: int = 2, size: int = TINY_SIZE, channels: int = 3) -> dict:
    images = [torch.rand(n, channels, size, size) * 2 - 1 for _ in range(2)]
    if task == "pix2pix":
        return {"input": images[0], "target": images[1], "path": ["x"] * n}
    if task == "stargan":
        labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).repeat(n, 1)[:n]
        return {"image": images[0], "label": labels, "path": ["x"] * n}
    if task in DATA_KWARGS and "classes" in DATA_KWARGS[task]:  # the GAN family: images and class labels
        return {"image": images[0], "label": torch.arange(n) % 3, "path": ["x"] * n}
    return {"A": images[0], "B": images[1], "path_A": ["a"] * n, "path_B": ["b"] * n}


def build_task(task: str, **model: object):
    from translate.config import build_config
    from translate.registry import TASKS

    config = build_config(TASKS.get(task).default_config, {"model": TINY_MODELS[task]}, {"model": model})
    return TASKS.build({"name": task, **DATA_KWARGS.get(task, {}), **config.model})


def tiny_cyclegan_run(tmp_path_factory, steps: int = 1):
    """A tiny CycleGAN trained ``steps`` steps on the demo photo/anime data: the run folder (for module
    fixtures of the inference tests)."""
    from translate.api import train
    from translate.catalog.demo import make_demo_dataset

    root = make_demo_dataset(
        tmp_path_factory.mktemp("data") / "demo", layout="unaligned", num_train=4, num_test=2, size=TINY_SIZE
    )
    layers = [
        {"data": {"root": str(root), "domains": ["photo", "anime"]}},
        tiny_overrides("cyclegan", steps=steps),
    ]
    return train("cyclegan", overrides=layers, run_dir=tmp_path_factory.mktemp("runs") / "cyclegan")


class EvaluatingTrainer(Trainer):
    """The engine's Trainer with the toolkit's evaluation (``train.eval_every``), as translate.api.train
    builds it."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("evaluation", Evaluator.for_training)
        super().__init__(*args, **kwargs)


def assert_resuming_changes_nothing(config, tmp_path, dataset=None) -> None:
    """Train ``config`` straight through, and again with a Ctrl-C after step 2 and ``--resume``: every
    weight, optimizer moment, random state and pool must come out bit-identical. ``dataset``: an
    in-memory dataset instead of the config's."""
    from safetensors.torch import load_file

    from translate.engine.checkpoint import checkpoint_dirs, load_model_checkpoint

    class StopsAtStep2(EvaluatingTrainer):
        """A trainer whose user presses Ctrl-C during step 2 (the real interrupt path)."""

        def train_step(self, batches):
            logged = super().train_step(batches)
            if self.step + 1 == 2:
                self.stop_requested = True
            return logged

    EvaluatingTrainer(config, tmp_path / "straight", dataset=dataset).fit()
    StopsAtStep2(config, tmp_path / "resumed", dataset=dataset).fit()
    assert load_model_checkpoint(tmp_path / "resumed").step == 2
    EvaluatingTrainer(config, tmp_path / "resumed", resume=True, dataset=dataset).fit()

    straight = checkpoint_dirs(tmp_path / "straight")[-1]
    resumed = checkpoint_dirs(tmp_path / "resumed")[-1]
    for name in ("model.safetensors", "state.safetensors"):
        a, b = load_file(straight / name), load_file(resumed / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}:{key} differs after resuming"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Demo data goes to a per-session temporary cache, never to the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def server():
    """A local HTTP file server (``tests/file_server.py``), stopped after the test."""
    from file_server import FileServer

    srv = FileServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
