"""Translator: an image -> image export of a trained model, on tensors, PIL images, arrays and folders.

Conditional models (StarGAN: ``image_and_target_to_image``) take a ``target``: ``{"Blond_Hair": 1}`` or
``"Blond_Hair=1,Male=0"`` (``"happy"`` for folder domains). Labels the target does not name keep the input's
own values: given per image (``source_labels``, ``--labels FILE``), else estimated by the classifier stored
with the model (StarGAN's discriminator head).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn
from tqdm import tqdm

from translate.data.transforms import center_square
from translate.engine.device import resolve_device
from translate.errors import ConfigError, DataError, TranslateError
from translate.inference.faces import Detector, mtcnn_detector, paste_faces
from translate.labels import LabelSpace
from translate.layers import batch_statistics
from translate.tasks.base import IMAGE_AND_TARGET_TO_IMAGE, IMAGE_TO_IMAGE

Target = dict[str, float] | str | None

log = logging.getLogger("translate")


class Translator:
    """Wraps one trained generator: ``(N, in_channels, H, W)`` in ``[-1, 1]`` -> ``(N, out_channels, H, W)``.

    Any image size is accepted: inputs are padded to what the network needs and the output is cropped back.
    ``batch_statistics``: the generator runs as it trained (pix2pix's default test mode: batch norm on each
    image's own statistics, dropout on, seeded so outputs repeat), one image at a time, so that an image's
    translation never depends on the others in its batch. Otherwise it runs in eval mode.

    ``labels`` (a conditional generator ``G(images, labels)``): the label space its targets name;
    ``classifier``: a network whose output's second element holds ``(N, num_labels)`` logits of an
    image's labels, on ``classifier_size`` square images (center square, resized). ``face_size``: the side
    of the aligned face crops of ``apply_paths(faces=True)`` (the image size the model trained at).
    """

    def __init__(
        self,
        generator: nn.Module,
        in_channels: int,
        out_channels: int,
        device: str | torch.device = "cpu",
        batch_statistics: bool = False,
        seed: int = 0,
        labels: LabelSpace | None = None,
        classifier: nn.Module | None = None,
        classifier_size: int | None = None,
        face_size: int = 128,
    ) -> None:
        self.device = resolve_device(device)
        self.batch_statistics = batch_statistics
        self.seed = seed
        self.generator = generator.to(self.device).eval()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = int(getattr(generator, "size_multiple", 1))
        self.labels = labels
        self.classifier = classifier.to(self.device).eval() if classifier is not None else None
        self.classifier_size = classifier_size
        self.face_size = face_size
        self.report = ApplyReport()
        """What the last ``apply_paths`` did."""

    @classmethod
    def from_run(
        cls, path: str | Path, direction: str | None = None, device: str | torch.device = "cpu"
    ) -> Translator:
        """Load from a run folder (its latest checkpoint), a checkpoint folder or a ``model.safetensors``.

        ``direction`` picks the image-to-image export (``a2b`` / ``b2a``); None takes the only one, or
        ``a2b``. A model of another kind (noise -> image...) is a CheckpointError naming the right command.
        """
        from translate.inference.model import load_export

        loaded = load_export(path, direction, (IMAGE_TO_IMAGE, IMAGE_AND_TARGET_TO_IMAGE), device)
        export = loaded.export
        conditional: dict[str, Any] = {}
        if export.kind == IMAGE_AND_TARGET_TO_IMAGE:
            classifier = export.options.get("classifier")
            conditional = {
                "labels": LabelSpace.from_dict(export.options["labels"]),
                "classifier": loaded.task.get_submodule(classifier) if classifier else None,
                "classifier_size": export.options.get("image_size"),
            }
        trained_size = loaded.checkpoint.config.get("data", {}).get("image_size", 128)
        return cls(
            loaded.module,
            export.in_channels,
            export.out_channels,
            device,
            export.batch_statistics,
            face_size=trained_size,
            **conditional,
        )

    from_checkpoint = from_run

    # ------------------------------------------------------------------------------------ labels
    def target_labels(
        self, images: torch.Tensor, target: Target, source: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """The labels ``(N, num_labels)`` that translate ``images`` ``(N, C, H, W)`` to ``target``: the
        ``source`` labels (default: estimated) with the target's values set. None without labels."""
        if self.labels is None:
            if target is not None:
                raise ConfigError("this model translates to one fixed domain: it takes no target (--to)")
            return None
        if target is None:
            raise ConfigError(
                f"this model needs a target (--to NAME=1,...); it knows {self.labels.describe()}"
            )
        parsed = self.labels.parse_target(target) if isinstance(target, str) else dict(target)
        if source is None:
            source = self.estimate_labels(images)
        return self.labels.apply(source.to(self.device), parsed)

    @torch.no_grad()
    def estimate_labels(self, images: torch.Tensor) -> torch.Tensor:
        """The labels of ``images`` ``(N, C, H, W)`` read by the stored classifier, ``(N, num_labels)``."""
        if self.classifier is None or self.labels is None:
            raise ConfigError(
                "this model stores no classifier to read the input's labels: give them (--labels FILE)"
            )
        x = images.to(self.device, torch.float32)
        x = x[(..., *center_square(*x.shape[-2:]))]  # as the training faces were cropped
        side, size = x.shape[-1], self.classifier_size or x.shape[-1]
        if side != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        _, logits = self.classifier(x)
        return self.labels.from_logits(logits)

    # ------------------------------------------------------------------------------------ tensors
    @torch.no_grad()
    def translate_tensor(
        self, images: torch.Tensor, target: Target = None, source_labels: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``(N, C, H, W)`` or ``(C, H, W)`` in ``[-1, 1]`` -> the same, translated, on the input's device.

        Conditional models: ``target`` (required) and optionally the inputs' own ``source_labels``."""
        single = images.dim() == 3
        batch = images.unsqueeze(0) if single else images
        if batch.shape[1] != self.in_channels:
            raise DataError(
                f"the model takes {self.in_channels}-channel images; got {batch.shape[1]} channels"
            )
        if source_labels is not None and source_labels.dim() == 1:
            source_labels = source_labels[None]
        height, width = batch.shape[-2:]
        batch = batch.to(self.device, torch.float32)
        labels = self.target_labels(batch, target, source_labels)
        padded = pad_to_multiple(batch, self.size_multiple)
        if self.batch_statistics:
            output = torch.cat(
                [
                    self._seeded(padded[i : i + 1], None if labels is None else labels[i : i + 1])
                    for i in range(len(padded))
                ]
            )
        else:
            output = self._generate(padded, labels)
        output = output[..., :height, :width].to(images.device)
        return output[0] if single else output

    def _generate(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.generator(images) if labels is None else self.generator(images, labels)

    def _seeded(self, image: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """One image through the generator in training mode, with dropout drawn from ``seed``."""
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), batch_statistics(self.generator):
            torch.manual_seed(self.seed)
            return self._generate(image, labels)

    # ------------------------------------------------------------------------------------ images
    def to_tensor(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        """PIL image (EXIF orientation applied) or ``(H, W[, C])`` uint8 array -> ``(C, H, W)`` in
        ``[-1, 1]``, the model's channels (alpha is left out: ``__call__`` carries it through)."""
        if isinstance(image, Image.Image):
            image = np.asarray(
                ImageOps.exif_transpose(image).convert("L" if self.in_channels == 1 else "RGB")
            )
        array = np.asarray(image)
        if array.dtype != np.uint8:
            raise DataError(
                f"numpy images must be uint8 (H, W[, C]) with values 0-255; got {array.dtype} "
                "(from [0, 1] floats: (x * 255).round().astype(np.uint8))"
            )
        if array.ndim not in (2, 3):
            raise DataError(f"numpy images are (H, W) or (H, W, C); got shape {array.shape}")
        if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[2] not in (1, 3, 4):
            raise DataError(
                f"numpy images are (H, W, C); shape {array.shape} looks like (C, H, W): "
                "pass array.transpose(1, 2, 0)"
            )
        if array.ndim == 2:
            array = array[:, :, None]
        if array.shape[2] in (2, 4):  # gray + alpha, RGB + alpha
            array = array[:, :, :-1]
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

    def __call__(self, images: Any, batch_size: int = 8, target: Target = None) -> Any:
        """Translate a tensor batch, a PIL image, a numpy array, or a list of them; returns the same kind.

        Conditional models need ``target``: ``{"Blond_Hair": 1, "Male": 0}``, ``"Blond_Hair=1,Male=0"``."""
        if isinstance(images, torch.Tensor):
            check_tensor_images(images)
            return self.translate_tensor(images, target)
        if isinstance(images, Sequence) and not isinstance(images, str | bytes):
            return self._translate_list(list(images), batch_size, target)
        return self._translate_list([images], batch_size, target)[0]

    def _translate_list(self, images: list[Any], batch_size: int, target: Target) -> list[Any]:
        tensors = [self.to_tensor(img) for img in images]
        outputs = self.translate_many(tensors, batch_size, target)
        results = []
        for image, out in zip(images, outputs):
            array = self.to_array(out)
            alpha = alpha_channel(image)
            if alpha is not None:  # translate the colours, keep the transparency
                array = np.dstack([array, alpha])
            results.append(Image.fromarray(array) if isinstance(image, Image.Image) else array)
        return results

    def translate_many(
        self,
        tensors: list[torch.Tensor],
        batch_size: int = 8,
        target: Target = None,
        source_labels: list[torch.Tensor | None] | None = None,
    ) -> list[torch.Tensor]:
        """Translate ``(C, H, W)`` tensors of any sizes, batching equal sizes together; keeps the order.

        ``source_labels``: each image's own labels, or None where the classifier should read them."""
        if batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer; got {batch_size}")
        by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, tensor in enumerate(tensors):
            by_size[tuple(tensor.shape[-2:])].append(index)
        outputs: list[torch.Tensor | None] = [None] * len(tensors)
        for indices in by_size.values():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                images = torch.stack([tensors[i] for i in chunk])
                sources = None
                if source_labels is not None and any(source_labels[i] is not None for i in chunk):
                    given = [source_labels[i] for i in chunk]
                    estimated = self.estimate_labels(images) if any(g is None for g in given) else None
                    sources = torch.stack(
                        [g.to(self.device) if g is not None else estimated[k] for k, g in enumerate(given)]
                    )
                result = self.translate_tensor(images, target, sources)
                for i, out in zip(chunk, result):
                    outputs[i] = out
        return outputs  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------ files
    def apply_folder(
        self,
        src: str | Path,
        dst: str | Path,
        batch_size: int = 8,
        progress: bool = True,
        target: Target = None,
        labels_file: str | Path | None = None,
        faces: bool | Detector = False,
        overwrite: bool = False,
    ) -> list[Path]:
        """Translate every image under ``src`` into ``dst``, mirroring sub-folders and file names."""
        return self.apply_paths(
            [Path(src)],
            Path(dst),
            batch_size=batch_size,
            progress=progress,
            target=target,
            labels_file=labels_file,
            faces=faces,
            overwrite=overwrite,
        )

    def apply_paths(
        self,
        inputs: Sequence[str | Path],
        dst: str | Path,
        batch_size: int = 8,
        progress: bool = True,
        target: Target = None,
        labels_file: str | Path | None = None,
        faces: bool | Detector = False,
        overwrite: bool = False,
    ) -> list[Path]:
        """Translate files and folders (recursively) into ``dst``; never overwrites an input.

        A file keeps its name; a folder's images keep their paths relative to it. An unreadable image
        is skipped with a warning. Outputs are PNG unless the input was JPEG. Conditional models: ``target``
        as in ``__call__``; ``labels_file``: a CelebA-style attribute file giving the inputs' own labels by
        file name (images it does not list are read by the classifier). ``faces`` (True: MTCNN, or a
        ``Detector``): translate each face of each photo, aligned and cropped as the training faces were
        (``image_size`` square), and paste it back; photos without a face are copied, with a warning.

        Resumable: outputs that exist are skipped unless ``overwrite``; each output is written to a
        temporary name and renamed, so an interrupted run never leaves half an image. An ``--out`` inside an
        input folder is not read as input; two inputs with one output name (``x.png``, ``x.bmp``) both
        survive (``x.bmp.png``). Images the network cannot take (too small) are skipped like unreadable
        ones. ``self.report`` (an ``ApplyReport``) then says what was translated, skipped and failed.
        """
        from translate.data.io import UnreadableImageError, list_images, read_image

        dst = Path(dst)
        out_root = dst.resolve()
        planned: list[tuple[Path, Path]] = []
        for item in map(Path, inputs):
            if item.is_dir():  # never re-read the outputs of an --out inside the input folder
                files = [f for f in list_images(item) if not f.resolve().is_relative_to(out_root)]
                planned += [(f, dst / item.name / f.relative_to(item)) for f in files]
            elif item.is_file():
                planned.append((item, dst / item.name))
            else:
                raise DataError(f"no such file or folder: {item}")
        if not planned:
            raise DataError(f"no images found in {', '.join(map(str, inputs))}")
        input_files = {src.resolve() for src, _ in planned}
        self.report = ApplyReport()
        jobs = []
        for src, destination in distinct_outputs(planned):
            if destination.resolve() in input_files:
                raise TranslateError(f"refusing to overwrite input image {destination}; choose another --out")
            if destination.exists() and not overwrite:
                self.report.skipped.append(destination)
            else:
                jobs.append((src, destination))
        if self.report.skipped:
            log.info("%d outputs exist already: skipped (--overwrite to redo them)", len(self.report.skipped))
        known_labels = self.labels_from_file(labels_file) if labels_file is not None else {}
        no_images = torch.zeros(0, len(self.labels)) if self.labels is not None else None
        self.target_labels(torch.zeros(0), target, no_images)  # a missing or bad target fails before any work
        written: list[Path] = []
        if faces:
            detector = faces if callable(faces) else mtcnn_detector(self.device)
            with tqdm(total=len(jobs), desc="faces", unit="img", disable=not progress) as bar:
                for src, destination in jobs:
                    try:
                        image = read_image(src, channels=3)
                    except UnreadableImageError as exc:
                        log.warning("skipping %s", exc)
                        self.report.failed.append((src, exc.reason))
                        continue
                    written.append(
                        self._save(
                            self._translate_faces(image, detector, target, src), destination, input_files
                        )
                    )
                    bar.update(1)
            self.report.translated = written
            return written
        with tqdm(total=len(jobs), desc="translate", unit="img", disable=not progress) as bar:
            for start in range(0, len(jobs), batch_size):
                chunk = jobs[start : start + batch_size]
                tensors, readable, sources = [], [], []
                for src, destination in chunk:
                    try:
                        tensors.append(self.to_tensor(read_image(src, channels=self.in_channels)))
                        readable.append((src, destination))
                        sources.append(known_labels.get(src.name))
                    except UnreadableImageError as exc:
                        log.warning("skipping %s", exc)
                        self.report.failed.append((src, exc.reason))
                try:
                    outputs = self.translate_many(
                        tensors, batch_size, target, sources if known_labels else None
                    )
                except (RuntimeError, ValueError):  # an image the network cannot take (too small): find it
                    outputs = [
                        self._translate_or_none(t, target, source, src)
                        for t, source, (src, _) in zip(tensors, sources, readable)
                    ]
                for tensor, (_, destination) in zip(outputs, readable):
                    if tensor is not None:
                        written.append(self._save(self.to_array(tensor), destination, input_files))
                bar.update(len(chunk))
        self.report.translated = written
        return written

    def _translate_or_none(
        self, tensor: torch.Tensor, target: Target, source: torch.Tensor | None, path: Path
    ) -> torch.Tensor | None:
        """One image; None (reported as failed) when the network cannot take it."""
        try:
            return self.translate_many([tensor], 1, target, [source] if source is not None else None)[0]
        except (RuntimeError, ValueError):
            reason = f"{tensor.shape[-1]}x{tensor.shape[-2]} px is too small for this network"
            log.warning("skipping %s: %s", path, reason)
            self.report.failed.append((path, reason))
            return None

    @staticmethod
    def _save(array: np.ndarray, destination: Path, input_files: set[Path]) -> Path:
        destination = output_path(destination)
        if destination.resolve() in input_files:
            raise TranslateError(f"refusing to overwrite input image {destination}; choose another --out")
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.partial")  # a kill never leaves half an image
        Image.fromarray(array).save(
            partial, format="JPEG" if destination.suffix.lower() in (".jpg", ".jpeg") else "PNG"
        )
        os.replace(partial, destination)
        return destination

    def _translate_faces(
        self, image: np.ndarray, detector: Detector, target: Target, source: Path
    ) -> np.ndarray:
        """``image`` (RGB uint8) with each face translated in place (see ``translate.inference.faces``)."""
        found = detector(image)
        if not found:
            log.warning("no face found in %s: copied unchanged", source)
            return image
        log.info("%s: %d face%s", source, len(found), "" if len(found) == 1 else "s")

        def translate(crop: np.ndarray) -> np.ndarray:
            return self.to_array(self.translate_tensor(self.to_tensor(crop), target))

        return paste_faces(image, found, self.face_size, translate)

    def labels_from_file(self, path: str | Path) -> dict[str, torch.Tensor]:
        """``{file name: (num_labels,) 0/1}`` from a CelebA-style attribute file with the model's labels."""
        from translate.data.layout import read_attribute_file

        if self.labels is None:
            raise ConfigError("--labels is for models that translate to a target (--to); this one takes none")
        table = read_attribute_file(path)
        missing = [n for n in self.labels.names if n not in table.names]
        if missing:
            raise DataError(
                f"{path} has no column for {', '.join(missing)} "
                f"(the model's labels: {self.labels.describe()})"
            )
        columns = [table.names.index(n) for n in self.labels.names]
        return {
            name: torch.tensor([float(row[c] > 0) for c in columns])
            for name, row in zip(table.files, table.values)
        }


def alpha_channel(image: Image.Image | np.ndarray) -> np.ndarray | None:
    """The ``(H, W)`` alpha of a PIL image (EXIF orientation applied) or an ``(H, W, 2|4)`` array, or None."""
    if isinstance(image, Image.Image):
        if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
            return None
        return np.asarray(ImageOps.exif_transpose(image).convert("RGBA"))[:, :, 3]
    array = np.asarray(image)
    return array[:, :, -1] if array.ndim == 3 and array.shape[2] in (2, 4) else None


def check_tensor_images(images: torch.Tensor) -> None:
    """Tensors given to a Translator are float images in ``[-1, 1]``: a one-line DataError otherwise, and a
    warning for values that all lie in ``[0, 1]`` (probably not rescaled)."""
    if not images.is_floating_point():
        raise DataError(
            f"image tensors must be float in [-1, 1]; got {images.dtype} (from uint8: x.float() / 127.5 - 1)"
        )
    if images.numel() and (images.min() < -1.001 or images.max() > 1.001):
        low, high = images.min().item(), images.max().item()
        raise DataError(f"image tensors must lie in [-1, 1]; got values from {low:.3g} to {high:.3g}")
    if images.numel() > 1 and images.min() >= 0:
        log.warning("all tensor values are in [0, 1]: the model expects [-1, 1] (x * 2 - 1)")


@dataclass
class ApplyReport:
    """What the last ``apply_paths`` did: written outputs, outputs that existed (skipped), failed inputs."""

    translated: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def summary(self) -> str:
        done, skipped, failed = len(self.translated), len(self.skipped), len(self.failed)
        return f"translated {done}, skipped {skipped} existing, failed {failed}"


def distinct_outputs(jobs: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """``(source, output path)`` pairs where no two sources write the same file: ``x.png`` and ``x.bmp`` in
    one folder give ``x.png`` and ``x.bmp.png``."""
    # Files whose output keeps their own name (x.png) are placed first, so they keep it.
    keeps_name = [output_path(destination) == destination for _, destination in jobs]
    outputs: dict[int, Path] = {}
    taken: set[Path] = set()
    for index in sorted(range(len(jobs)), key=lambda i: not keeps_name[i]):
        src, destination = jobs[index]
        output = output_path(destination)
        if output in taken:
            output = output_path(destination.with_name(destination.name + ".png"))
            log.info("%s and another image share an output name: writing %s", src, output.name)
        taken.add(output)
        outputs[index] = output
    return [(src, outputs[i]) for i, (src, _) in enumerate(jobs)]


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
