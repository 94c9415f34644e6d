"""The unconditional family (GAN, cGAN, DCGAN, WGAN, WGAN-GP, LSGAN) on the shared trainer: published
network sizes, loss terms against hand-computed values, each recipe's schedule and constraints, samples."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_resuming_changes_nothing, tiny_train
from torch.utils.data import Dataset

from translate import Sampler
from translate.config import build_config
from translate.data.sampler import split_item
from translate.engine.trainer import Trainer
from translate.errors import ConfigError
from translate.losses import lsgan_loss, vanilla_gan_loss
from translate.registry import DISCRIMINATORS, GENERATORS, TASKS

RECIPES = ("gan", "cgan", "dcgan", "wgan", "wgangp", "lsgan")


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("kind", "spec", "kwargs", "count"),
    [
        # the tutorials' 28x28 MLPs: 100 -> 256 -> 512 -> 1024 -> 784 and 784 -> 1024 -> 512 -> 256 -> 1
        ("generator", "mlp", {"latent_dim": 100, "out_channels": 1, "image_size": 28}, 1_486_352),
        ("discriminator", "mlp", {"in_channels": 1, "image_size": 28}, 1_460_225),
        # cGAN: the 10-way one-hot joins the first layer's input
        ("generator", "mlp", {"out_channels": 1, "image_size": 28, "num_classes": 10}, 1_486_352 + 10 * 256),
        ("discriminator", "mlp", {"in_channels": 1, "condition_classes": 10}, 1_460_225 + 10 * 1024),
        # PyTorch's DCGAN example at 64 px (nz 100, ngf = ndf = 64)
        ("generator", "dcgan", {"latent_dim": 100, "out_channels": 3, "image_size": 64}, 3_576_704),
        ("discriminator", "dcgan", {"in_channels": 3, "image_size": 64}, 2_765_568),
        # the WGAN-GP critic: layer norm has batch norm's per-channel scale and shift
        ("discriminator", "dcgan", {"in_channels": 3, "image_size": 64, "norm": "layer"}, 2_765_568),
    ],
)
def test_published_network_sizes(kind, spec, kwargs, count):
    registry = GENERATORS if kind == "generator" else DISCRIMINATORS
    assert parameters(registry.build({"name": spec, **kwargs})) == count


@pytest.mark.parametrize("size", [32, 64, 128])
def test_dcgan_networks_take_any_power_of_two_from_32_to_128(size):
    generator = GENERATORS.build({"name": "dcgan", "image_size": size, "base_channels": 8, "num_classes": 3})
    critic = DISCRIMINATORS.build(
        {"name": "dcgan", "image_size": size, "base_channels": 8, "condition_classes": 3}
    )
    labels = torch.tensor([0, 2])
    images = generator(torch.randn(2, 100), labels)
    assert images.shape == (2, 3, size, size) and images.abs().max() <= 1
    assert critic(images, labels).shape == (2, 1, 1, 1)
    batch_norms = [m for m in critic.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    convs = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(batch_norms) == len(convs) - 2  # none on the input layer, none on the output
    with pytest.raises(ConfigError, match="32, 64, 128"):
        GENERATORS.build({"name": "dcgan", "image_size": 48})


def test_soft_targets_label_smoothing_and_minimax_against_hand_computed_values():
    logit = torch.full((4, 1), 2.0)
    sigmoid = 1 / (1 + math.exp(-2.0))
    # one-sided label smoothing: BCE against 0.9
    expected = -(0.9 * math.log(sigmoid) + 0.1 * math.log(1 - sigmoid))
    assert vanilla_gan_loss(logit, torch.full((4,), 0.9)).item() == pytest.approx(expected, rel=1e-6)
    assert lsgan_loss(logit, torch.full((4,), 0.9)).item() == pytest.approx((2.0 - 0.9) ** 2)
    # a bool target is the same as all-ones / all-zeros targets
    assert vanilla_gan_loss(logit, True).item() == pytest.approx(
        vanilla_gan_loss(logit, torch.ones(4)).item()
    )
    # per-sample targets: the mean of each sample's own loss
    mixed = lsgan_loss(logit, torch.tensor([1.0, 0.0, 1.0, 0.0])).item()
    assert mixed == pytest.approx(((2 - 1) ** 2 + 2**2) / 2)

    task = build("gan", minimax=True)
    prediction = torch.full((3, 1), 0.5)
    # the original G objective log(1 - D(G(z))), which G minimises
    original = math.log(1 - 1 / (1 + math.exp(-0.5)))
    assert -vanilla_gan_loss(prediction, False).item() == pytest.approx(original, rel=1e-6)
    task.discriminator.forward = lambda images, labels=None: prediction
    losses = task.generator_losses({"image": torch.zeros(3, 1, 8, 8)}, {"fake": torch.zeros(3, 1, 8, 8)})
    assert losses["adv"].item() == pytest.approx(original, rel=1e-6)


def test_label_noise_flips_the_asked_share_of_the_discriminators_targets():
    task = build("gan", label_noise=0.2, label_smoothing=0.1)
    torch.manual_seed(0)
    real, fake = task.discriminator_targets(20_000, torch.device("cpu"))
    assert real.unique().tolist() == pytest.approx([0.0, 0.9])
    assert (real == 0).float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert (fake > 0).float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert torch.equal(real == 0, fake > 0)  # a flipped pair swaps its targets


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"conditional": True, "classes": []}, "needs labelled data"),
        ({"adversarial_loss": "wgangp", "label_smoothing": 0.1}, "vanilla and lsgan"),
        ({"adversarial_loss": "lsgan", "minimax": True}, "needs the vanilla loss"),
        ({"latent_distribution": "cauchy"}, "normal, uniform"),
        ({"label_noise": 0.7}, r"\[0, 0.5\)"),
    ],
)
def test_settings_that_cannot_work_are_one_line_errors(model, message):
    with pytest.raises(ConfigError, match=message):
        build("gan", **model)


class ClassImages(Dataset):
    """Four classes of 1-channel 8x8 images (a bright quarter each), with ``(index, seed)`` items."""

    def __init__(self, count: int = 16, channels: int = 1, size: int = 8) -> None:
        self.labels = torch.arange(count) % 4
        self.images = -torch.ones(count, channels, size, size)
        half = size // 2
        for i, label in enumerate(self.labels.tolist()):
            row, col = divmod(label, 2)
            self.images[i, :, row * half : (row + 1) * half, col * half : (col + 1) * half] = 1
        self.channels, self.size = channels, size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item):
        index, _ = split_item(item)
        return {"image": self.images[index], "label": self.labels[index], "path": f"{index}.png"}

    def task_kwargs(self) -> dict:
        classes = ["top-left", "top-right", "bottom-left", "bottom-right"]
        return {
            "in_channels": self.channels,
            "out_channels": self.channels,
            "image_size": self.size,
            "classes": classes,
        }


TINY = {
    "mlp": {"generator": {"name": "mlp", "hidden": [16]}, "discriminator": {"name": "mlp", "hidden": [16]}},
    "dcgan": {"generator": {"base_channels": 4}, "discriminator": {"base_channels": 4}},
}


def tiny_config(task: str, steps: int = 4, **model):
    networks = TINY[
        "mlp" if TASKS.get(task).default_config["model"]["generator"]["name"] == "mlp" else "dcgan"
    ]
    size = 8 if networks is TINY["mlp"] else 32
    run = {
        "model": {**networks, "latent_dim": 8, **model},
        "data": {"image_size": size, "num_workers": 0},
        "train": tiny_train(steps, num_samples=4),
    }
    return build_config({"task": task}, TASKS.get(task).default_config, run)


def build(task: str, **model):
    config = tiny_config(task, **model)
    return TASKS.build({"name": task, **dataset_for(task).task_kwargs(), **config.model})


def dataset_for(task: str) -> ClassImages:
    return ClassImages() if tiny_config(task).data.image_size == 8 else ClassImages(channels=3, size=32)


@pytest.mark.parametrize("task", RECIPES)
def test_each_recipe_trains_on_the_shared_trainer_and_exports_a_sampler(task, tmp_path):
    trainer = Trainer(tiny_config(task, steps=2), tmp_path / task, dataset=dataset_for(task))
    n_critic = {"wgan": 5, "wgangp": 5}.get(task, 1)
    assert [(u.group, u.repeats) for u in trainer.schedule] == [("discriminator", n_critic), ("generator", 1)]
    trainer.fit()
    sampler = Sampler.from_run(tmp_path / task)
    images = sampler.sample(4, seed=1)
    assert images.shape[0] == 4 and torch.isfinite(images).all()
    assert torch.equal(images, sampler.sample(4, seed=1))
    assert (tmp_path / task / "samples").is_dir()


def test_wgan_clips_the_critic_and_uses_rmsprop(tmp_path):
    trainer = Trainer(tiny_config("wgan", steps=2), tmp_path / "run", dataset=dataset_for("wgan"))
    optimizers = {name: type(group.optimizer).__name__ for name, group in trainer.optimizers.items()}
    assert optimizers == {"generator": "RMSprop", "discriminator": "RMSprop"}
    assert trainer.optimizers["discriminator"].optimizer.param_groups[0]["lr"] == pytest.approx(5e-5)
    clipped_each_step = []
    original_step = trainer.optimizers["discriminator"].step

    def step_and_record():
        original_step()
        clipped_each_step.append(max(p.abs().max().item() for p in trainer.task.discriminator.parameters()))

    trainer.optimizers["discriminator"].step = step_and_record
    trainer.fit()
    assert len(clipped_each_step) == 10 and max(clipped_each_step) <= 0.01


def test_wgangp_penalises_the_critic_and_has_no_batch_norm():
    task = build("wgangp")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in task.discriminator.modules())
    data = dataset_for("wgangp")
    batch = {"image": data.images[:4], "label": data.labels[:4]}
    losses = task.discriminator_losses(batch, task(batch))
    assert set(losses) == {"adv", "gp"} and losses["gp"].item() >= 0
    assert task.loss_weights["gp"] == 10.0


def test_cgan_samples_follow_the_label(tmp_path):
    Trainer(tiny_config("cgan", steps=2), tmp_path / "run", dataset=ClassImages()).fit()
    sampler = Sampler.from_run(tmp_path / "run")
    assert sampler.num_classes == 4
    assert sampler.export.options["classes"] == ["top-left", "top-right", "bottom-left", "bottom-right"]
    first, second = sampler.sample(3, seed=0, label=0), sampler.sample(3, seed=0, label=1)
    assert not torch.allclose(first, second)
    with pytest.raises(ConfigError):
        sampler(sampler.noise(2))  # a conditional model needs its labels


@pytest.mark.parametrize("task", ["cgan", "wgangp"])
def test_resuming_gives_the_same_weights_as_training_straight_through(task, tmp_path):
    assert_resuming_changes_nothing(tiny_config(task, steps=4), tmp_path, dataset=dataset_for(task))
