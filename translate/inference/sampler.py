"""Sampler: a noise -> image export of a trained model (unconditional or class-conditional GANs)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.utils import save_image

from translate.engine.device import resolve_device
from translate.errors import ConfigError
from translate.tasks.base import NOISE_TO_IMAGE, Export


class Sampler:
    """Draws images from a generator that maps noise ``(N, latent_dim)`` (and class labels ``(N,)`` when
    the export has ``num_classes``) to images ``(N, C, H, W)`` in ``[-1, 1]``.

    The export's options say ``latent_dim``, ``num_classes`` and ``latent_distribution`` (``normal`` or
    ``uniform`` on [-1, 1]); the same ``seed`` always gives the same noise.
    """

    def __init__(self, generator: nn.Module, export: Export, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(device)
        self.generator = generator.to(self.device)
        self.export = export
        self.latent_dim = int(export.options["latent_dim"])
        self.num_classes = export.options.get("num_classes")
        self.distribution = export.options.get("latent_distribution", "normal")

    @classmethod
    def from_run(
        cls, path: str | Path, name: str | None = None, device: str | torch.device = "cpu"
    ) -> Sampler:
        """Load from a run folder, a checkpoint folder or a ``model.safetensors``; an image -> image model
        is a CheckpointError that says to use ``translate apply``."""
        from translate.inference.model import load_export

        loaded = load_export(path, name, (NOISE_TO_IMAGE,), device)
        return cls(loaded.module, loaded.export, device)

    def noise(self, count: int, seed: int = 0) -> torch.Tensor:
        """``(count, latent_dim)`` latent vectors drawn from the export's distribution with ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        if self.distribution == "uniform":
            z = torch.rand(count, self.latent_dim, generator=generator) * 2 - 1
        else:
            z = torch.randn(count, self.latent_dim, generator=generator)
        return z.to(self.device)

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images for latent vectors ``z`` (and class ``labels`` for a class-conditional model)."""
        if self.num_classes and labels is None:
            raise ConfigError(f"this model is class-conditional ({self.num_classes} classes): give labels")
        if not self.num_classes and labels is not None:
            raise ConfigError("this model is unconditional: it takes no class labels")
        args = (z.to(self.device),) if labels is None else (z.to(self.device), labels.to(self.device))
        return self.generator(*args)

    def sample(self, count: int, seed: int = 0, label: int | None = None) -> torch.Tensor:
        """``count`` images; a class-conditional model draws ``label``, or cycles through every class."""
        labels = None
        if self.num_classes:
            if label is not None and not 0 <= label < self.num_classes:
                raise ConfigError(f"class label must be in 0..{self.num_classes - 1}; got {label}")
            labels = (
                torch.full((count,), label) if label is not None else torch.arange(count) % self.num_classes
            )
        return self(self.noise(count, seed), labels)

    def save_grid(self, path: str | Path, count: int = 64, seed: int = 0, label: int | None = None) -> Path:
        """Write ``count`` samples as one PNG grid."""
        images = self.sample(count, seed, label).float().cpu()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_image(images * 0.5 + 0.5, path, nrow=max(1, int(count**0.5)), padding=2, pad_value=1.0)
        return path
