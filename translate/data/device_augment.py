"""Training augmentation on the training device (``data.augment_on: device``): kornia, batched.

The datasets then only resize (``build_transform(..., on_device=True)``); ``DeviceAugment`` does what
the loader pipeline would have done per image, with the same config keys and meanings: a random
``image_size`` crop (the ``*crop`` preprocess modes), a horizontal flip with p=0.5 (``flip``) and colour
jitter of strength ``color_jitter`` (brightness, contrast, saturation ``[1 - s, 1 + s]``, hue ``s / 4``;
one-channel images brightness and contrast only). One difference: kornia draws the order of the four
jitter steps once per batch, albumentations once per image.
"""

from __future__ import annotations

import contextlib

import kornia.augmentation as K
import torch
from torch import nn

from translate.config import DataConfig
from translate.data.sampler import mix_seed
from translate.data.transforms import RANDOM_CROP_MODES

_DEVICE_AUGMENT = 2  # stream tag: the sampler uses 0 (permutations) and 1 (sample seeds)

Batch = dict[str, object]


class DeviceAugment:
    """Crop, flip and colour-jitter a collated training batch where it lies: ``augment(batch, samples_seen)``.

    Aligned batches (``input`` and ``target``): one crop and flip per pair, the same for both halves (they
    are stacked on the channel axis for it), jitter on ``input`` only. Every other 4-D floating tensor
    (``A`` and ``B`` of unaligned batches) is augmented on its own. Images are ``(N, C, H, W)`` in
    ``[-1, 1]`` in and out; other entries pass through.

    Randomness: kornia draws from the global torch RNG, so each call forks it (it is restored afterwards,
    leaving dropout and the rest of training untouched) and seeds it with ``(seed, samples_seen)``. A
    batch's augmentation is a pure function of the run's seed and the samples seen before it, so a
    resumed run augments exactly as an uninterrupted one.
    """

    def __init__(self, data: DataConfig, seed: int) -> None:
        self.seed = seed
        size = data.image_size
        self.geometric: list[nn.Module] = []
        if data.preprocess in RANDOM_CROP_MODES:
            self.geometric.append(K.RandomCrop((size, size), p=1.0, cropping_mode="slice"))
        if data.flip:
            self.geometric.append(K.RandomHorizontalFlip(p=0.5))
        s = data.color_jitter
        self.jitter: dict[int, nn.Module] = {}  # by channel count
        if s > 0:
            self.jitter[3] = K.ColorJitter(brightness=s, contrast=s, saturation=s, hue=s / 4, p=1.0)
            self.jitter[1] = K.ColorJitter(brightness=s, contrast=s, saturation=0.0, hue=0.0, p=1.0)

    @torch.no_grad()
    def __call__(self, batch: Batch, samples_seen: int) -> Batch:
        """``batch`` augmented with the randomness of the batch that follows ``samples_seen`` samples."""
        images = [
            k
            for k, v in batch.items()
            if isinstance(v, torch.Tensor) and v.ndim == 4 and v.is_floating_point()
        ]
        if not images or not (self.geometric or self.jitter):
            return batch
        out = dict(batch)
        with _seeded(mix_seed(self.seed, _DEVICE_AUGMENT, samples_seen), out[images[0]].device):
            if "input" in images and "target" in images:
                source, target = out["input"], out["target"]
                both = self._geometric(torch.cat([source, target], dim=1))
                out["input"] = self._jitter(both[:, : source.shape[1]].contiguous())
                out["target"] = both[:, source.shape[1] :].contiguous()
                images = [k for k in images if k not in ("input", "target")]
            for key in images:
                out[key] = self._jitter(self._geometric(out[key]))
        return out

    def _geometric(self, x: torch.Tensor) -> torch.Tensor:
        for augmentation in self.geometric:
            x = augmentation(x)
        return x

    def _jitter(self, x: torch.Tensor) -> torch.Tensor:
        jitter = self.jitter.get(x.shape[1])
        if jitter is None:
            return x
        return jitter((x + 1) / 2).mul_(2).sub_(1).clamp_(-1, 1)


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device):
    """The global torch RNG (CPU, and ``device`` if CUDA) seeded with ``seed``, restored on exit."""
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=[device] if cuda else []):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield
