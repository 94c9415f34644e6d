"""Sampler: a noise -> image export of a trained model (unconditional or class-conditional GANs), and its
latent space: interpolation, one-dimension traversal and vector arithmetic (Radford et al., DCGAN).

>>> sampler = Sampler.from_run("runs/dcgan-fmnist")
>>> images = sampler.sample(16, seed=0, label="Sneaker")   # (16, C, H, W) in [-1, 1]; same seed, same images
>>> z = sampler.interpolate(sampler.codes([1])[0], sampler.codes([2])[0], steps=8)   # (8, latent_dim)
>>> row = sampler(z, sampler.labels(8, "Sneaker"))
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from translate.engine.device import resolve_device
from translate.engine.grid import save_grid
from translate.errors import ConfigError
from translate.exports import Export
from translate.kinds import kinds_with
from translate.labels import did_you_mean
from translate.layers import latent_noise


class Sampler:
    """Draws images from a generator that maps noise ``(N, latent_dim)`` (and class labels ``(N,)`` when
    the export has ``num_classes``) to images ``(N, C, H, W)`` in ``[-1, 1]``.

    The export's options say ``latent_dim``, ``num_classes``, ``latent_distribution`` (``normal`` or
    ``uniform`` on [-1, 1]) and ``classes`` (class names; default ``"0"``, ``"1"``, ...). The same ``seed``
    always gives the same noise, on every device; a seed's code is ``noise(1, seed)[0]`` (``codes``).
    """

    def __init__(self, generator: nn.Module, export: Export, device: str | torch.device = "cpu") -> None:
        self.device = resolve_device(device)
        self.generator = generator.to(self.device)
        self.export = export
        self.latent_dim = int(export.options["latent_dim"])
        self.num_classes = export.options.get("num_classes")
        self.distribution = export.options.get("latent_distribution", "normal")
        self.classes: list[str] | None = None
        if self.num_classes:
            self.classes = list(export.options.get("classes") or map(str, range(self.num_classes)))

    @classmethod
    def from_run(
        cls,
        path: str | Path,
        name: str | None = None,
        device: str | torch.device = "cpu",
        checkpoint: str | int | None = None,
    ) -> Sampler:
        """Load from a run folder, a checkpoint folder or a ``model.safetensors``; an image -> image model
        is a CheckpointError that says to use ``translate apply``. ``checkpoint``: which of a run folder's
        checkpoints, ``best``, ``latest`` (default) or a step number."""
        from translate.inference.model import load_export

        loaded = load_export(path, name, kinds_with("noise"), device, checkpoint)
        return cls(loaded.module, loaded.export, device)

    def noise(
        self, count: int, seed: int = 0, mean: float | torch.Tensor = 0.0, std: float = 1.0
    ) -> torch.Tensor:
        """``(count, latent_dim)`` codes from the export's distribution with ``seed``, scaled by ``std`` and
        shifted by ``mean`` (a number or a ``(latent_dim,)`` code): the same arguments, the same codes."""
        z = latent_noise(count, self.latent_dim, self.distribution, torch.Generator().manual_seed(seed))
        mean = torch.as_tensor(mean, dtype=z.dtype, device=z.device)
        return (z * std + mean).to(self.device)

    def codes(self, seeds: Sequence[int]) -> torch.Tensor:
        """``(len(seeds), latent_dim)``: each seed's code ``noise(1, seed)[0]`` (the image
        ``translate sample -n 1 --seed SEED`` draws)."""
        if not len(seeds):
            raise ConfigError("no seeds given: give at least one, e.g. 1,5,9")
        return torch.cat([self.noise(1, int(seed)) for seed in seeds])

    def class_index(self, label: int | str) -> int:
        """The index of class ``label``: an index (also as text, ``"3"``) or a name from ``classes``."""
        if not self.num_classes:
            raise ConfigError("this model is unconditional: it takes no class labels")
        if isinstance(label, str) and label in self.classes:
            return self.classes.index(label)
        try:
            index = int(label)
        except ValueError:
            known = ", ".join(self.classes[:20]) + (", ..." if len(self.classes) > 20 else "")
            raise ConfigError(
                f"unknown class {label!r}{did_you_mean(label, self.classes)}; classes: {known}"
            ) from None
        if not 0 <= index < self.num_classes:
            raise ConfigError(f"class label must be in 0..{self.num_classes - 1}; got {index}")
        return index

    def labels(self, count: int, label: int | str | None = None) -> torch.Tensor | None:
        """``(count,)`` class labels: all ``label`` (index or name), or cycling through every class when
        None; None for an unconditional model (where a ``label`` is an error)."""
        if label is not None:
            return torch.full((count,), self.class_index(label), dtype=torch.long)
        return torch.arange(count) % self.num_classes if self.num_classes else None

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images for latent vectors ``z`` (and class ``labels`` for a class-conditional model)."""
        if self.num_classes and labels is None:
            raise ConfigError(f"this model is class-conditional ({self.num_classes} classes): give labels")
        if not self.num_classes and labels is not None:
            raise ConfigError("this model is unconditional: it takes no class labels")
        args = (z.to(self.device),) if labels is None else (z.to(self.device), labels.to(self.device))
        return self.generator(*args)

    def sample(
        self, count: int, seed: int = 0, label: int | str | None = None, mean: float = 0.0, std: float = 1.0
    ) -> torch.Tensor:
        """``count`` images of the codes ``noise(count, seed, mean, std)``: the same seed gives the same
        images. A class-conditional model draws class ``label`` (index or name), or cycles through every
        class."""
        return self(self.noise(count, seed, mean, std), self.labels(count, label))

    def save(
        self,
        out: str | Path,
        count: int = 64,
        seed: int = 0,
        label: int | str | None = None,
        mean: float = 0.0,
        std: float = 1.0,
    ) -> list[Path]:
        """``sample(count, seed, label, mean, std)`` written to folder ``out`` (see ``save_images``), or
        only as one grid when ``out`` ends with ``.png``. Returns the paths written."""
        z, labels = self.noise(count, seed, mean, std), self.labels(count, label)
        images = self(z, labels)
        cycling = self.num_classes and label is None and self.num_classes <= count
        columns = self.num_classes if cycling else max(1, int(count**0.5))  # a row through every class
        if str(out).lower().endswith(".png"):
            return [save_grid(images, out, columns)]
        return save_images(out, images, z, labels, columns)

    @staticmethod
    def interpolate(z0: torch.Tensor, z1: torch.Tensor, steps: int, mode: str = "slerp") -> torch.Tensor:
        """``steps`` codes from ``z0`` to ``z1`` (both ends included): ``(D,)`` codes give ``(steps, D)``,
        ``(R, D)`` give ``(R, steps, D)``. ``slerp`` follows the great circle (White, 2016: it keeps codes
        at the norm the generator saw in training); (anti)parallel codes, where it is undefined, and
        ``linear`` go in a straight line."""
        if steps < 2:
            raise ConfigError(f"interpolation needs at least 2 steps (both ends); got {steps}")
        if mode not in ("slerp", "linear"):
            raise ConfigError(f"unknown interpolation mode {mode!r}; known: slerp, linear")
        if z0.shape != z1.shape:
            raise ConfigError(f"codes of different shapes: {tuple(z0.shape)} and {tuple(z1.shape)}")
        t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device)[:, None]
        a, b = z0.unsqueeze(-2), z1.unsqueeze(-2)
        linear = (1 - t) * a + t * b
        if mode == "linear":
            return linear
        norms = (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True)).clamp_min(1e-12)
        omega = torch.arccos(((a * b).sum(-1, keepdim=True) / norms).clamp(-1, 1))
        sin = torch.sin(omega)
        parallel = sin.abs() < 1e-6
        sin = torch.where(parallel, torch.ones_like(sin), sin)
        slerp = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin
        return torch.where(parallel, linear, slerp)

    @staticmethod
    def traverse(z: torch.Tensor, dim: int, values: Sequence[float]) -> torch.Tensor:
        """``z`` with dimension ``dim`` set to each of ``values``, the others fixed: a ``(D,)`` code gives
        ``(len(values), D)``, ``(R, D)`` codes give ``(R, len(values), D)``."""
        size = z.shape[-1]
        if not 0 <= dim < size:
            raise ConfigError(f"dimension must be in 0..{size - 1} (the latent has {size}); got {dim}")
        if not len(values):
            raise ConfigError("no values given to traverse: e.g. -3,-1.5,0,1.5,3")
        out = z.unsqueeze(-2).repeat_interleave(len(values), dim=-2)
        out[..., dim] = torch.as_tensor(values, dtype=z.dtype, device=z.device)
        return out

    @staticmethod
    def arithmetic(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``mean(a) - mean(b) + mean(c)`` of three groups of ``(N, D)`` codes: ``(D,)`` (DCGAN's vector
        arithmetic: "smiling woman" - "neutral woman" + "neutral man")."""
        if not (len(a) and len(b) and len(c)):
            raise ConfigError("vector arithmetic needs at least one code in each of a, b and c")
        return a.mean(0) - b.mean(0) + c.mean(0)


def save_images(
    folder: str | Path,
    images: torch.Tensor,
    codes: torch.Tensor,
    labels: torch.Tensor | None = None,
    columns: int = 8,
    names: Sequence[str] | None = None,
) -> list[Path]:
    """Write ``images (N, C, H, W)`` into ``folder``: each as ``NAME.png`` (``names``; default ``0000``,
    ``0001``, ...), all as ``grid.png`` (``columns`` to a row), and their codes beside them: ``codes.npy``
    ``(N, latent_dim)`` and, for a class-conditional model, ``labels.npy`` ``(N,)``, row ``i`` for image
    ``i``, so that ``sampler(torch.from_numpy(np.load("codes.npy")), ...)`` draws them again."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"{i:04d}" for i in range(len(images))]
    written = [save_grid(image[None], folder / f"{name}.png", 1) for image, name in zip(images, names)]
    written.append(save_grid(images, folder / "grid.png", columns))
    np.save(folder / "codes.npy", codes.reshape(len(images), -1).float().cpu().numpy())
    written.append(folder / "codes.npy")
    if labels is not None:
        np.save(folder / "labels.npy", labels.cpu().numpy())
        written.append(folder / "labels.npy")
    return written
