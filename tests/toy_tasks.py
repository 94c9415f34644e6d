"""Two toy methods that only the widened core makes possible, registered for the tests that use them.

- ``toy_wgan``: noise -> image, critic first: 5 RMSprop critic updates with weight clipping, then one
  generator update (Arjovsky et al.'s schedule), exported as ``noise_to_image``.
- ``toy_shared``: two image -> image generators that share one middle module (UNIT's shared latent
  layers): the shared weights sit in one optimizer group once.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from translate.data.sampler import split_item
from translate.exports import IMAGE_TO_IMAGE, NOISE_TO_IMAGE, Export
from translate.registry import TASKS
from translate.tasks.base import Task, Update

SIZE = 8


class ToyImages(Dataset):
    """Deterministic 1-channel 8x8 "images" ``{"image": (1, 8, 8)}`` in [-1, 1]; training items come as
    ``(index, sample_seed)`` like the real datasets'."""

    def __init__(self, count: int = 12) -> None:
        generator = torch.Generator().manual_seed(0)
        self.images = torch.rand(count, 1, SIZE, SIZE, generator=generator) * 2 - 1

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, item):
        index, _ = split_item(item)
        return {"image": self.images[index]}

    def task_kwargs(self) -> dict:
        return {}


class ToyWGAN(Task):
    """MLP generator (latent 4 -> 64 pixels) and MLP critic; WGAN with weight clipping."""

    dataset = "toy"
    default_config = {
        "loss_weights": {"adv": 1.0},
        "optim": {
            "discriminator": {"name": "rmsprop", "lr": 5e-5, "constraints": [{"name": "clip_weights"}]},
            "generator": {"name": "rmsprop", "lr": 5e-5},
        },
        "train": {"n_critic": 5},
    }

    def __init__(self, latent_dim: int = 4) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = nn.Sequential(
            nn.Linear(latent_dim, 16),
            nn.ReLU(),
            nn.Linear(16, SIZE * SIZE),
            nn.Tanh(),
            nn.Unflatten(1, (1, SIZE, SIZE)),
        )
        self.critic = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 16), nn.ReLU(), nn.Linear(16, 1))

    def optimizer_groups(self):
        return {"generator": [self.generator], "discriminator": [self.critic]}

    def schedule(self, n_critic: int = 1):
        return [Update("discriminator", n_critic), Update("generator", through_generator=True)]

    def forward(self, batch):
        z = torch.randn(len(batch["image"]), self.latent_dim, device=batch["image"].device)
        return {"fake": self.generator(z)}

    def discriminator_losses(self, batch, outputs):
        return {"adv": self.critic(outputs["fake"].detach()).mean() - self.critic(batch["image"]).mean()}

    def generator_losses(self, batch, outputs):
        return {"adv": -self.critic(outputs["fake"]).mean()}

    @torch.no_grad()
    def visuals(self, batch):
        return {"real": batch["image"], "fake": self(batch)["fake"]}

    def exports(self):
        options = {"latent_dim": self.latent_dim, "latent_distribution": "normal"}
        return {"sample": Export(NOISE_TO_IMAGE, "generator", None, 1, options=options)}


class Encoder(nn.Module):
    def __init__(self, shared: nn.Module) -> None:
        super().__init__()
        self.inner = nn.Conv2d(1, 4, 3, padding=1)
        self.shared = shared
        self.outer = nn.Conv2d(4, 1, 3, padding=1)
        self.in_channels = self.out_channels = 1

    def forward(self, x):
        return torch.tanh(self.outer(F.relu(self.shared(F.relu(self.inner(x))))))


class ToyShared(Task):
    """Two generators A->B and B->A around one shared 1x1 conv, trained to reproduce their inputs."""

    dataset = "toy"
    default_config = {
        "loss_weights": {"rec": 1.0},
        "optim": {"generator": {"name": "adamw", "weight_decay": 1e-2}},
    }

    def __init__(self) -> None:
        super().__init__()
        shared = nn.Conv2d(4, 4, 1)
        self.g_ab, self.g_ba = Encoder(shared), Encoder(shared)
        self.d = nn.Conv2d(1, 1, 3)

    def optimizer_groups(self):
        return {"generator": [self.g_ab, self.g_ba], "discriminator": [self.d]}

    def forward(self, batch):
        return {"ab": self.g_ab(batch["image"]), "ba": self.g_ba(batch["image"])}

    def generator_losses(self, batch, outputs):
        x = batch["image"]
        return {"rec": F.l1_loss(outputs["ab"], x) + F.l1_loss(outputs["ba"], x)}

    def discriminator_losses(self, batch, outputs):
        return {"rec": (self.d(outputs["ab"].detach()) - self.d(batch["image"])).abs().mean()}

    @torch.no_grad()
    def visuals(self, batch):
        return {"input": batch["image"], **self(batch)}

    def exports(self):
        return {
            "a2b": Export(IMAGE_TO_IMAGE, "g_ab", 1, 1, options={"direction": "a2b"}),
            "b2a": Export(IMAGE_TO_IMAGE, "g_ba", 1, 1, options={"direction": "b2a"}),
        }


@contextlib.contextmanager
def registered():
    """``toy_wgan`` and ``toy_shared`` in TASKS while the block runs (the real registry stays clean)."""
    TASKS.register("toy_wgan")(ToyWGAN)
    TASKS.register("toy_shared")(ToyShared)
    try:
        yield
    finally:
        TASKS._entries.pop("toy_wgan")
        TASKS._entries.pop("toy_shared")


TOY_CLASSES = ["T-shirt", "Trouser", "Pullover"]


class ToyConditionalGenerator(nn.Module):
    """``(z (N, latent_dim), labels (N,)) -> (N, 1, 8, 8)``: the class embedding added to the code."""

    def __init__(self, latent_dim: int, num_classes: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, latent_dim)
        self.body = ToyWGAN(latent_dim).generator

    def forward(self, z, labels):
        return self.body(z + self.embed(labels))


class ToyCGAN(ToyWGAN):
    """ToyWGAN with a class-conditional generator over three named classes and uniform noise on [-1, 1];
    the critic stays unconditional (the toy images carry no labels). Register it as ``toy_cgan``."""

    def __init__(self, latent_dim: int = 4, num_classes: int = 3) -> None:
        super().__init__(latent_dim)
        self.num_classes = num_classes
        self.generator = ToyConditionalGenerator(latent_dim, num_classes)

    def forward(self, batch):
        n, device = len(batch["image"]), batch["image"].device
        z = torch.rand(n, self.latent_dim, device=device) * 2 - 1
        return {"fake": self.generator(z, torch.randint(self.num_classes, (n,), device=device))}

    def exports(self):
        options = {
            "latent_dim": self.latent_dim,
            "latent_distribution": "uniform",
            "num_classes": self.num_classes,
            "classes": TOY_CLASSES[: self.num_classes],
        }
        return {"sample": Export(NOISE_TO_IMAGE, "generator", None, 1, options=options)}
