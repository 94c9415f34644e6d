"""Translator: an image -> image export of a trained model, on tensors, PIL images, arrays and folders."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from translate.errors import DataError, TranslateError
from translate.layers import batch_statistics
from translate.tasks.base import IMAGE_TO_IMAGE

log = logging.getLogger("translate")


class Translator:
    """Wraps one trained generator: ``(N, in_channels, H, W)`` in ``[-1, 1]`` -> ``(N, out_channels, H, W)``.

    Any image size is accepted: inputs are padded to what the network needs and the output is cropped back.
    ``batch_statistics``: the generator runs as it trained (pix2pix's default test mode: batch norm on each
    image's own statistics, dropout on, seeded so outputs repeat), one image at a time, so that an image's
    translation never depends on the others in its batch. Otherwise it runs in eval mode.
    """

    def __init__(
        self,
        generator: nn.Module,
        in_channels: int,
        out_channels: int,
        device: str | torch.device = "cpu",
        batch_statistics: bool = False,
        seed: int = 0,
    ) -> None:
        self.device = torch.device(device)
        self.batch_statistics = batch_statistics
        self.seed = seed
        self.generator = generator.to(self.device).eval()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = int(getattr(generator, "size_multiple", 1))

    @classmethod
    def from_run(
        cls, path: str | Path, direction: str | None = None, device: str | torch.device = "cpu"
    ) -> Translator:
        """Load from a run folder (its latest checkpoint), a checkpoint folder or a ``model.safetensors``.

        ``direction`` picks the image-to-image export (``a2b`` / ``b2a``); None takes the only one, or
        ``a2b``. A model of another kind (noise -> image...) is a CheckpointError naming the right command.
        """
        from translate.inference.model import load_export

        loaded = load_export(path, direction, (IMAGE_TO_IMAGE,), device)
        export = loaded.export
        return cls(loaded.module, export.in_channels, export.out_channels, device, export.batch_statistics)

    from_checkpoint = from_run

    # ------------------------------------------------------------------------------------ tensors
    @torch.no_grad()
    def translate_tensor(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` or ``(C, H, W)`` in ``[-1, 1]`` -> the same, translated, on the input's device."""
        single = images.dim() == 3
        batch = images.unsqueeze(0) if single else images
        if batch.shape[1] != self.in_channels:
            raise DataError(
                f"the model takes {self.in_channels}-channel images; got {batch.shape[1]} channels"
            )
        height, width = batch.shape[-2:]
        padded = pad_to_multiple(batch.to(self.device, torch.float32), self.size_multiple)
        if self.batch_statistics:
            output = torch.cat([self._seeded(image[None]) for image in padded])
        else:
            output = self.generator(padded)
        output = output[..., :height, :width].to(images.device)
        return output[0] if single else output

    def _seeded(self, image: torch.Tensor) -> torch.Tensor:
        """One image through the generator in training mode, with dropout drawn from ``seed``."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), batch_statistics(self.generator):
            torch.manual_seed(self.seed)
            return self.generator(image)

    # ------------------------------------------------------------------------------------ images
    def to_tensor(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        """PIL image or ``(H, W[, C])`` uint8 array -> ``(C, H, W)`` in ``[-1, 1]``, the model's channels."""
        if isinstance(image, Image.Image):
            image = np.asarray(image.convert("L" if self.in_channels == 1 else "RGB"))
        array = np.asarray(image)
        if array.dtype != np.uint8:
            raise DataError(f"numpy images must be uint8 (H, W[, C]); got {array.dtype}")
        if array.ndim == 2:
            array = array[:, :, None]
        if array.shape[2] == 4:
            array = array[:, :, :3]
        if array.shape[2] != self.in_channels:
            array = (
                array.mean(axis=2, keepdims=True).astype(np.uint8)
                if self.in_channels == 1
                else np.repeat(array[:, :, :1], 3, axis=2)
            )
        return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 127.5 - 1.0

    @staticmethod
    def to_array(tensor: torch.Tensor) -> np.ndarray:
        """``(C, H, W)`` in ``[-1, 1]`` -> ``(H, W, C)`` uint8 (``(H, W)`` for one channel)."""
        array = ((tensor.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        return array[:, :, 0] if array.shape[2] == 1 else array

    def __call__(self, images: Any, batch_size: int = 8) -> Any:
        """Translate a tensor batch, a PIL image, a numpy array, or a list of them; returns the same kind."""
        if isinstance(images, torch.Tensor):
            return self.translate_tensor(images)
        if isinstance(images, Sequence) and not isinstance(images, str | bytes):
            return self._translate_list(list(images), batch_size)
        return self._translate_list([images], batch_size)[0]

    def _translate_list(self, images: list[Any], batch_size: int) -> list[Any]:
        tensors = [self.to_tensor(img) for img in images]
        outputs = self.translate_many(tensors, batch_size)
        return [
            Image.fromarray(self.to_array(out)) if isinstance(img, Image.Image) else self.to_array(out)
            for img, out in zip(images, outputs)
        ]

    def translate_many(self, tensors: list[torch.Tensor], batch_size: int = 8) -> list[torch.Tensor]:
        """Translate ``(C, H, W)`` tensors of any sizes, batching equal sizes together; keeps the order."""
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, tensor in enumerate(tensors):
            by_size[tuple(tensor.shape[-2:])].append(index)
        outputs: list[torch.Tensor | None] = [None] * len(tensors)
        for indices in by_size.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                result = self.translate_tensor(torch.stack([tensors[i] for i in chunk]))
                for i, out in zip(chunk, result):
                    outputs[i] = out
        return outputs  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------ files
    def apply_folder(
        self, src: str | Path, dst: str | Path, batch_size: int = 8, progress: bool = True
    ) -> list[Path]:
        """Translate every image under ``src`` into ``dst``, mirroring sub-folders and file names."""
        return self.apply_paths([Path(src)], Path(dst), batch_size=batch_size, progress=progress)

    def apply_paths(
        self, inputs: Sequence[str | Path], dst: str | Path, batch_size: int = 8, progress: bool = True
    ) -> list[Path]:
        """Translate files and folders (recursively) into ``dst``; never overwrites an input.

        A file keeps its name; a folder's images keep their paths relative to it. An unreadable image
        is skipped with a warning. Outputs are PNG unless the input was JPEG.
        """
        from translate.data.io import UnreadableImageError, list_images, read_image

        dst = Path(dst)
        jobs: list[tuple[Path, Path]] = []
        for item in map(Path, inputs):
            if item.is_dir():
                jobs += [(f, dst / item.name / f.relative_to(item)) for f in list_images(item)]
            elif item.is_file():
                jobs.append((item, dst / item.name))
            else:
                raise DataError(f"no such file or folder: {item}")
        if not jobs:
            raise DataError(f"no images found in {', '.join(map(str, inputs))}")
        input_files = {src.resolve() for src, _ in jobs}
        written: list[Path] = []
        with tqdm(total=len(jobs), desc="translate", unit="img", disable=not progress) as bar:
            for start in range(0, len(jobs), batch_size):
                chunk = jobs[start : start + batch_size]
                tensors, targets = [], []
                for src, target in chunk:
                    try:
                        tensors.append(self.to_tensor(read_image(src, channels=self.in_channels)))
                        targets.append(output_path(target))
                    except UnreadableImageError as exc:
                        log.warning("skipping %s", exc)
                for tensor, target in zip(self.translate_many(tensors, batch_size), targets):
                    if target.resolve() in input_files:
                        raise TranslateError(
                            f"refusing to overwrite input image {target}; choose another --out"
                        )
                    target.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(self.to_array(tensor)).save(target)
                    written.append(target)
                bar.update(len(chunk))
        return written


def output_path(target: Path) -> Path:
    """Keep JPEG as JPEG; everything else is written as lossless PNG."""
    return target if target.suffix.lower() in (".jpg", ".jpeg", ".png") else target.with_suffix(".png")


def pad_to_multiple(images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad ``(N, C, H, W)`` bottom/right to multiples of ``multiple``; reflect if it can, else replicate."""
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return images
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(images, (0, pad_w, 0, pad_h), mode=mode)
