"""Translator: an image -> image export of a trained model, on tensors, PIL images, arrays and folders.

Conditional models (StarGAN: ``image_and_target_to_image``) take a ``target``: ``{"Blond_Hair": 1}`` or
``"Blond_Hair=1,Male=0"`` (``"happy"`` for folder domains). Labels the target does not name keep the input's
own values: given per image (``source_labels``, ``--labels FILE``), else estimated by the classifier stored
with the model (StarGAN's discriminator head).

Images above ``TILE_ABOVE_PIXELS`` (or every image, with ``tile=N``) are translated in overlapping tiles with
whole-image statistics (``translate.inference.tiles``): bounded memory. A model exported by ``translate
export`` (ONNX, TorchScript) runs through the same pre- and post-processing (``from_exported``).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn
from tqdm import tqdm

from translate.data.io import WRITE_FORMATS, pil_to_array, split_alpha, write_image
from translate.data.transforms import center_square
from translate.engine.device import resolve_device
from translate.errors import CheckpointError, ConfigError, DataError, TranslateError
from translate.exports import IMAGE_AND_TARGET_TO_IMAGE, IMAGE_TO_IMAGE
from translate.inference.faces import Detector, mtcnn_detector, paste_faces
from translate.inference.fast import FAST_ENV, FastPath
from translate.inference.tiles import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    TILE_ABOVE_PIXELS,
    per_image_norms,
    translate_tiled,
)
from translate.labels import LabelSpace
from translate.layers import batch_statistics

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

    ``tile``: None translates images above ``TILE_ABOVE_PIXELS`` in tiles of ``DEFAULT_TILE`` px (with a
    one-line note), 0 never tiles, N tiles every image larger than N px; tiles overlap by ``overlap`` px.

    ``fast`` (default: on for the CPU, unless ``TRANSLATE_FAST=0``): eval-mode translation runs a compiled
    copy of the generator (``translate.inference.fast``), compiled when an image shape comes a second time
    (seconds, logged)
    and used only where its first output matches the plain generator to 1e-4; else the plain generator,
    with a note. The copy is taken at the first translation: make a new Translator for new weights.
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
        tile: int | None = None,
        overlap: int = DEFAULT_OVERLAP,
        fast: bool | None = None,
    ) -> None:
        if (tile is not None and tile < 0) or overlap < 0:
            raise ConfigError(
                f"tile and overlap are sizes in pixels (tile 0: never tile); got {tile}, {overlap}"
            )
        if tile != 0 and 2 * overlap > (tile or DEFAULT_TILE):
            raise ConfigError(
                f"the overlap ({overlap} px) must be at most half a tile ({tile or DEFAULT_TILE} px)"
            )
        if tile and getattr(generator, "per_image_norms", False):  # an exported file: no layers to reach
            raise ConfigError(
                "tiles need the PyTorch model (whole-image statistics of its instance norms): "
                "translate with the run, not an exported file"
            )
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
        self.tile, self.overlap = tile, overlap
        self._noted_tiles = False
        self._per_image: nn.Module | None = None  # batch norm as per-image norm, for tiles
        if fast is None:  # measured on the CPU only (a GPU's TF32 convolutions would miss the 1e-4 check)
            fast = os.environ.get(FAST_ENV, "1") != "0" and self.device.type == "cpu"
        exported = getattr(generator, "per_image_norms", None) is not None
        self._fast = FastPath(self.generator) if fast and not batch_statistics and not exported else None
        """The compiled, self-checked path of eval-mode translation (``translate.inference.fast``)."""
        self.report = ApplyReport()
        """What the last ``apply_paths`` did."""

    @classmethod
    def from_run(
        cls,
        path: str | Path,
        direction: str | None = None,
        device: str | torch.device = "cpu",
        backend: str | None = None,
        checkpoint: str | int | None = None,
        **options: Any,
    ) -> Translator:
        """Load from a run folder (its latest checkpoint), a checkpoint folder or a ``model.safetensors``.
        ``checkpoint``: which of a run folder's checkpoints, ``best``, ``latest`` (default) or a step number.

        ``direction`` picks the image-to-image export (``a2b`` / ``b2a``); None takes the only one, or
        ``a2b``. A model of another kind (noise -> image...) is a CheckpointError naming the right command.
        ``backend``: ``"torch"``, or ``"onnxruntime"`` (the export in a temporary ONNX file); None: torch,
        or what an exported file (``.onnx``, TorchScript ``.pt``) needs. ``options``: ``tile``, ``overlap``.
        """
        from translate.inference.model import load_export
        from translate.inference.portable import BACKENDS, export_model, is_exported

        if backend not in (None, *BACKENDS):
            raise ConfigError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
        if checkpoint is not None:  # that checkpoint's weights file
            from translate.engine.checkpoint import resolve_model_file

            path = resolve_model_file(path, checkpoint)
        if is_exported(path):
            return cls.from_exported(path, device, backend, **options)
        if backend == "onnxruntime":
            import tempfile

            with tempfile.TemporaryDirectory() as folder:
                onnx = export_model(path, Path(folder) / "model.onnx", "onnx", direction)
                return cls.from_exported(onnx, device, backend, **options)
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
            **options,
        )

    from_checkpoint = from_run

    @classmethod
    def from_exported(
        cls, path: str | Path, device: str | torch.device = "cpu", backend: str | None = None, **options: Any
    ) -> Translator:
        """Load a file written by ``translate export`` (ONNX: onnxruntime; TorchScript: torch), with the
        pre- and post-processing its stored contract names. Conditional models have no classifier in the
        file: give the inputs' labels (``--labels``) or a target that names every label."""
        from translate.inference.model import COMMANDS
        from translate.inference.portable import load_exported

        network, contract = load_exported(path, device, backend)
        kind = contract["kind"]
        if kind not in (IMAGE_TO_IMAGE, IMAGE_AND_TARGET_TO_IMAGE):
            raise CheckpointError(f"{path} holds a {kind} model: use `{COMMANDS.get(kind, kind)}` for it")
        labels = contract["options"].get("labels")
        return cls(
            network,
            contract["in_channels"],
            contract["out_channels"],
            network.device,
            labels=LabelSpace.from_dict(labels) if labels else None,
            face_size=contract.get("image_size") or 128,
            **options,
        )

    from_onnx = from_exported

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
            zeros = torch.zeros(len(images), len(self.labels), device=self.device)
            fixed = torch.equal(self.labels.apply(zeros, parsed), self.labels.apply(zeros + 1, parsed))
            source = zeros if fixed else self.estimate_labels(images)  # no need to read what --to sets
        return self.labels.apply(source.to(self.device), parsed)

    @torch.no_grad()
    def estimate_labels(self, images: torch.Tensor) -> torch.Tensor:
        """The labels of ``images`` ``(N, C, H, W)`` read by the stored classifier, ``(N, num_labels)``."""
        if self.classifier is None or self.labels is None:
            raise ConfigError(
                "this model stores no classifier to read the input's labels: give them (--labels FILE) "
                "or name every label in the target"
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
        tile = self._tile_size(*padded.shape[-2:])
        if tile:
            output = torch.cat(
                [
                    self._tiled(padded[i : i + 1], None if labels is None else labels[i : i + 1], tile)
                    for i in range(len(padded))
                ]
            )
        elif self.batch_statistics:
            output = torch.cat(
                [
                    self._seeded(padded[i : i + 1], None if labels is None else labels[i : i + 1])
                    for i in range(len(padded))
                ]
            )
        else:
            output = self._generate(padded, labels, self._fast)
        output = output[..., :height, :width].to(images.device)
        return output[0] if single else output

    def _generate(
        self,
        images: torch.Tensor,
        labels: torch.Tensor | None,
        network: nn.Module | FastPath | None = None,
    ) -> torch.Tensor:
        network = network or self.generator
        return network(images) if labels is None else network(images, labels)

    def _seeded(
        self, image: torch.Tensor, labels: torch.Tensor | None, network: nn.Module | None = None
    ) -> torch.Tensor:
        """One image through the generator in training mode, with dropout drawn from ``seed``."""
        network = network or self.generator
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), batch_statistics(network):
            torch.manual_seed(self.seed)
            return self._generate(image, labels, network)

    # ------------------------------------------------------------------------------------ tiles
    def _tile_size(self, height: int, width: int) -> int:
        """The tile size for a (padded) ``height`` x ``width`` image; 0: translate it whole."""
        if self.tile == 0 or (self.tile is None and height * width <= TILE_ABOVE_PIXELS):
            return 0
        tile = self.tile or DEFAULT_TILE
        if max(height, width) <= tile:
            return 0
        if getattr(self.generator, "per_image_norms", False):  # an exported file (checked in __init__)
            if not self._noted_tiles:
                log.warning(
                    "images above %.0f MP are translated whole with an exported model",
                    1e-6 * TILE_ABOVE_PIXELS,
                )
                self._noted_tiles = True
            return 0
        if self.tile is None and not self._noted_tiles:
            log.info(
                "%dx%d px is above %.0f MP: translating in %d px tiles with whole-image statistics "
                "(bounded memory; a pass per norm layer; --tile 0 to translate whole)",
                width,
                height,
                1e-6 * TILE_ABOVE_PIXELS,
                tile,
            )
            self._noted_tiles = True
        return tile

    def _tiled(self, image: torch.Tensor, labels: torch.Tensor | None, tile: int) -> torch.Tensor:
        """One padded image ``(1, C, H, W)`` in overlapping tiles (see ``translate.inference.tiles``)."""
        if self.batch_statistics:  # batch norm on each tile's statistics -> instance norm on the image's
            if self._per_image is None:
                self._per_image = per_image_norms(self.generator)
            network = self._per_image

            def run(x: torch.Tensor) -> torch.Tensor:
                return self._seeded(x, labels, network)
        else:
            network = self.generator

            def run(x: torch.Tensor) -> torch.Tensor:
                return self._generate(x, labels)

        return translate_tiled(network, image, run, tile, self.overlap, self.size_multiple, progress=True)

    # ------------------------------------------------------------------------------------ images
    def to_tensor(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        """PIL image (EXIF orientation applied) or ``(H, W[, C])`` uint8 array -> ``(C, H, W)`` in
        ``[-1, 1]``, the model's channels; transparency composited onto white, as training reads images
        (``__call__`` and ``apply_paths`` carry the alpha channel through to the output)."""
        return self.tensor_and_alpha(image)[0]

    def tensor_and_alpha(self, image: Image.Image | np.ndarray) -> tuple[torch.Tensor, np.ndarray | None]:
        """``to_tensor`` and the image's ``(H, W)`` uint8 alpha channel, or None: the one conversion of the
        Python API and the command line (``read_image_and_alpha`` ends in the same ``split_alpha``)."""
        if isinstance(image, Image.Image):
            array = pil_to_array(ImageOps.exif_transpose(image))
        else:
            array = np.asarray(image)
            if array.dtype != np.uint8:
                raise DataError(
                    f"numpy images must be uint8 (H, W[, C]) with values 0-255; got {array.dtype} "
                    "(from [0, 1] floats: (x * 255).round().astype(np.uint8))"
                )
            if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
                hint = ""
                if array.ndim == 3 and array.shape[0] in (1, 3, 4):
                    hint = ": looks like (C, H, W): pass array.transpose(1, 2, 0)"
                raise DataError(f"numpy images are (H, W) or (H, W, C); got shape {array.shape}{hint}")
        colour, alpha = split_alpha(array, self.in_channels)
        return torch.from_numpy(colour.copy()).permute(2, 0, 1).float() / 127.5 - 1.0, alpha

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
        tensors, alphas = zip(*(self.tensor_and_alpha(image) for image in images))
        outputs = self.translate_many(list(tensors), batch_size, target)
        results = []
        for image, out, alpha in zip(images, outputs, alphas):
            array = with_alpha(self.to_array(out), alpha)
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
        quality: int = 95,
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
            quality=quality,
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
        quality: int = 95,
    ) -> list[Path]:
        """Translate files and folders (recursively) into ``dst``; never overwrites an input.

        A file keeps its name; a folder's images keep their paths relative to it. An unreadable image
        is skipped with a warning. JPEG inputs give JPEG outputs at ``quality`` (WebP: WebP at ``quality``,
        lossless at 100), all others lossless PNG; EXIF orientation is applied and an alpha channel kept,
        as in ``__call__``. Conditional models: ``target``
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
        from translate.data.io import UnreadableImageError, list_images, read_image_and_alpha

        if not 1 <= quality <= 100:
            raise ConfigError(f"quality must be between 1 and 100; got {quality}")
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
                        image, alpha = read_image_and_alpha(src, channels=3)
                    except UnreadableImageError as exc:
                        log.warning("skipping %s", exc)
                        self.report.failed.append((src, exc.reason))
                        continue
                    result = with_alpha(self._translate_faces(image, detector, target, src), alpha)
                    written.append(self._save(result, destination, input_files, quality))
                    bar.update(1)
            self.report.translated = written
            return written
        # Reading the next chunk and writing the last one overlap the network (threads: decoding,
        # encoding and torch release the GIL); not around huge images, which stay one in memory at a time.
        with (
            tqdm(total=len(jobs), desc="translate", unit="img", disable=not progress) as bar,
            ThreadPoolExecutor(1, thread_name_prefix="read") as reader,
            ThreadPoolExecutor(1, thread_name_prefix="write") as writer,
        ):
            saved: list[Future[Path]] = []  # the last chunk's writes, collected after the next chunk
            done = 0
            next_chunk: Future | None = reader.submit(self._read_chunk, jobs, done, batch_size)
            while done < len(jobs):
                if next_chunk is None:  # after a huge image: its output written, then the next read
                    written += [future.result() for future in saved]
                    saved = []
                    next_chunk = reader.submit(self._read_chunk, jobs, done, batch_size)
                items, huge = next_chunk.result()
                done += len(items)
                next_chunk = None
                if done < len(jobs) and not huge:
                    next_chunk = reader.submit(self._read_chunk, jobs, done, batch_size)
                readable = [item for item in items if not isinstance(item[2], UnreadableImageError)]
                for src, _, exc, _ in items:
                    if isinstance(exc, UnreadableImageError):
                        log.warning("skipping %s", exc)
                        self.report.failed.append((src, exc.reason))
                tensors = [tensor for _, _, tensor, _ in readable]
                sources = [known_labels.get(src.name) for src, *_ in readable]
                try:
                    outputs = self.translate_many(
                        tensors, batch_size, target, sources if known_labels else None
                    )
                except (RuntimeError, ValueError):  # an image the network cannot take (too small): find it
                    outputs = [
                        self._translate_or_none(t, target, source, src)
                        for t, source, (src, *_) in zip(tensors, sources, readable)
                    ]
                written += [future.result() for future in saved]  # a failed write stops here
                saved = [
                    writer.submit(
                        self._save,
                        with_alpha(self.to_array(tensor), alpha),
                        destination,
                        input_files,
                        quality,
                    )
                    for tensor, (_, destination, _, alpha) in zip(outputs, readable)
                    if tensor is not None
                ]
                bar.update(len(items))
            written += [future.result() for future in saved]
        self.report.translated = written
        return written

    def _read_chunk(
        self, jobs: list[tuple[Path, Path]], start: int, batch_size: int
    ) -> tuple[list[tuple[Path, Path, Any, np.ndarray | None]], bool]:
        """Up to ``batch_size`` jobs from ``start`` read as ``(src, destination, tensor or
        UnreadableImageError, alpha)``, stopping early past ``TILE_ABOVE_PIXELS`` in all (huge images: one
        in memory at a time); returns them and whether it stopped there."""
        from translate.data.io import UnreadableImageError, read_image_and_alpha

        items: list[tuple[Path, Path, Any, np.ndarray | None]] = []
        pixels = 0
        for src, destination in jobs[start : start + batch_size]:
            try:
                colour, alpha = read_image_and_alpha(src, channels=self.in_channels)
            except UnreadableImageError as exc:
                items.append((src, destination, exc, None))
                continue
            items.append((src, destination, self.to_tensor(colour), alpha))
            pixels += colour.shape[0] * colour.shape[1]
            if pixels > TILE_ABOVE_PIXELS:
                return items, True
        return items, False

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
    def _save(array: np.ndarray, destination: Path, input_files: set[Path], quality: int) -> Path:
        destination = output_path(destination)
        if destination.resolve() in input_files:
            raise TranslateError(f"refusing to overwrite input image {destination}; choose another --out")
        return write_image(destination, array, quality)  # whole: a kill never leaves half an image

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


def with_alpha(array: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """A translated ``(H, W[, C])`` uint8 image with the input's ``(H, W)`` alpha channel appended."""
    if alpha is None:
        return array
    return np.dstack([array, alpha])


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
    """Keep JPEG as JPEG and WebP as WebP (where Pillow writes it); everything else is lossless PNG."""
    return target if target.suffix.lower() in WRITE_FORMATS else target.with_suffix(".png")


def pad_to_multiple(images: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad ``(N, C, H, W)`` bottom/right to multiples of ``multiple``; reflect if it can, else replicate."""
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h == 0 and pad_w == 0:
        return images
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(images, (0, pad_w, 0, pad_h), mode=mode)
