"""Translator: an image -> image export of a trained model, called on tensors, PIL images and arrays.

Calling a ``Translator`` is the one way in for images in memory (and single files: a path is read as
``apply`` reads it), ``apply_paths`` the one for files and folders written to disk (the folder pipeline,
``translate.inference.pipeline``). The call applies the model's policy: images above
``TILE_ABOVE_PIXELS`` (or every image, with ``tile=N``) in overlapping tiles with whole-image statistics
(``translate.inference.tiles``), the fast path, batch statistics (pix2pix's test mode), padding to the
network's size multiple. A model exported by ``translate export`` (ONNX, TorchScript) runs through the same
pre- and post-processing (``from_exported``).

Conditional models (StarGAN) take a ``target`` (``"Blond_Hair=1,Male=0"``), style models (MUNIT) ``styles=K``
random styles or ``style_from=reference``: ``translate.inference.conditions``; the classmethods' loading is
``translate.inference.loading``.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from translate.engine.device import resolve_device
from translate.errors import ConfigError, DataError
from translate.inference.conditions import Conditions, StyleRequest, Target, is_path
from translate.inference.convert import (
    ImageSizeError,
    check_tensor_images,
    image_to_tensor,
    like_inputs,
    pad_to_multiple,
    tensor_to_array,
    to_network_inputs,
)
from translate.inference.faces import Detector
from translate.inference.fast import FAST_ENV, FastPath, resolve_precision
from translate.inference.jobs import ApplyOptions, ApplyReport
from translate.inference.loading import exported_arguments, run_arguments
from translate.inference.pipeline import apply_paths, read_input
from translate.inference.sizes import SmallestSide
from translate.inference.tiles import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    TILE_ABOVE_PIXELS,
    TilePolicy,
    per_image_norms,
    translate_tiled,
)
from translate.kinds.style import Styles
from translate.labels import LabelSpace
from translate.layers import per_image


class Translator:
    """Wraps one trained generator: ``(N, in_channels, H, W)`` in ``[-1, 1]`` -> ``(N, out_channels, H, W)``.

    Any image size is accepted: inputs are padded to what the network needs and the output is cropped back.

    Args:
        generator: the network, ``G(images)`` or (conditional) ``G(images, labels)``; or an exported file's
            network (``from_exported``).
        in_channels, out_channels: its image channels.
        device: where it runs.
        batch_statistics: run it as it trained (pix2pix's default test mode: batch norm on each image's own
            statistics, dropout on, seeded by ``seed`` so outputs repeat), one image at a time, so that an
            image's translation never depends on the others in its batch. Otherwise eval mode.
        seed: the dropout seed of ``batch_statistics``.
        labels: a conditional generator's label space, which its targets name.
        classifier: a network whose output's second element holds ``(N, num_labels)`` logits of an image's
            labels, on ``classifier_size`` square images (center square, resized).
        styles: the style codes of a model that takes one beside the image (``translate.kinds.style.Styles``:
            the default code, random codes, a reference's code); None for other models.
        face_size: the training image size: the side of the aligned face crops of ``apply_paths(faces=True)``
            and of the shorter side a style reference is read at.
        tile, overlap: None translates images above ``TILE_ABOVE_PIXELS`` in tiles of ``DEFAULT_TILE`` px
            (with a one-line note), 0 never tiles, N tiles every image larger than N px; ``overlap`` px.
        fast: (default: on for the CPU, unless ``TRANSLATE_FAST=0``) eval-mode translation runs a compiled
            copy of the generator (``translate.inference.fast``), compiled when an image shape comes a second
            time (seconds, logged) and used only where its first output matches the plain generator to 1e-4;
            else the plain generator, with a note. The copy is taken at the first translation: make a new
            Translator for new weights.
        precision: what the fast path computes in (``translate.inference.fast.PRECISIONS``): ``auto`` (bf16
            where the device computes it natively, else fp32), ``fp32`` or ``bf16``; bf16 is checked by its
            PSNR against the fp32 output on each image shape's first fast call (fp32 from then on, with a
            note, where it falls short). Without the fast path the network runs in fp32.
        kind: the export's kind (``translate.kinds``), named in errors; ``from_run`` and ``from_exported``
            set it.
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
        precision: str = "auto",
        styles: Styles | None = None,
        kind: str | None = None,
    ) -> None:
        unreachable_norms = bool(getattr(generator, "per_image_norms", False))  # an exported file's
        self.tiles = TilePolicy(tile, overlap, unreachable_norms, TILE_ABOVE_PIXELS, DEFAULT_TILE)
        self.device = resolve_device(device)
        resolve_precision(precision, self.device)  # a bad value is an error with the fast path off too
        self.batch_statistics = batch_statistics
        self.seed = seed
        self.generator = generator.to(self.device).eval()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.size_multiple = int(getattr(generator, "size_multiple", 1))
        self.sizes = SmallestSide(self.size_multiple, self._run_blank)
        """The size rule of every backend: images too small for the network are refused before they run."""
        self.conditions = Conditions(
            self.device, labels, classifier, classifier_size, styles, kind, face_size
        )
        """Target labels and style codes (``translate.inference.conditions``)."""
        self.kind = kind
        self.face_size = face_size
        self.tile, self.overlap = tile, overlap
        self._per_image: nn.Module | None = None  # batch norm as per-image norm, for tiles
        if fast is None:  # measured on the CPU only (a GPU's TF32 convolutions would miss the 1e-4 check)
            fast = os.environ.get(FAST_ENV, "1") != "0" and self.device.type == "cpu"
        exported = getattr(generator, "per_image_norms", None) is not None
        runs_fast = fast and not batch_statistics and not exported
        self._fast = FastPath(self.generator, precision=precision) if runs_fast else None
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

        Args:
            path: the run, checkpoint folder or weights file; an exported file goes to ``from_exported``.
            direction: the image-to-image export (``a2b`` / ``b2a``); None takes the only one, or ``a2b``.
            device: where it runs.
            backend: ``"torch"``, or ``"onnxruntime"`` (the export in a temporary ONNX file); None: torch, or
                what an exported file (``.onnx``, TorchScript ``.pt``) needs.
            checkpoint: which of a run folder's checkpoints: ``best``, ``latest`` (default) or a step number.
            options: more ``Translator`` arguments (``tile``, ``overlap``, ``fast``, ``precision``).

        Returns:
            The Translator; a model of another kind (noise -> image...) is a CheckpointError naming the
            command for it.
        """
        return cls(**run_arguments(path, direction, device, backend, checkpoint), **options)

    from_checkpoint = from_run
    """An older name of ``from_run``."""

    @classmethod
    def from_exported(
        cls, path: str | Path, device: str | torch.device = "cpu", backend: str | None = None, **options: Any
    ) -> Translator:
        """Load a file written by ``translate export``, with the pre- and post-processing its contract names.

        Args:
            path: an ONNX file (run by onnxruntime) or a TorchScript ``.pt`` (torch). Conditional models have
                no classifier in the file: give the inputs' labels (``--labels``) or a full target.
            device, backend: where it runs; None: what the file needs.
            options: more ``Translator`` arguments (``fast``; tiles need the PyTorch model).

        Returns:
            The Translator.
        """
        return cls(**exported_arguments(path, device, backend), **options)

    from_onnx = from_exported
    """An older name of ``from_exported``."""

    # ------------------------------------------------------------------------------------ conditions
    labels = property(lambda self: self.conditions.labels, doc="A conditional model's label space, or None.")
    styles = property(lambda self: self.conditions.styles, doc="A style model's ``Styles``, or None.")
    classifier = property(
        lambda self: self.conditions.classifier, doc="The stored label classifier, or None."
    )

    def target_labels(
        self, images: torch.Tensor, target: Target, source: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """The labels ``(N, num_labels)`` that set ``target`` on ``images`` (``Conditions.target_labels``)."""
        return self.conditions.target_labels(images, target, source)

    def estimate_labels(self, images: torch.Tensor) -> torch.Tensor:
        """The labels ``(N, num_labels)`` of ``images`` as the stored classifier reads them."""
        return self.conditions.estimate_labels(images)

    def style_codes(
        self, styles: StyleRequest = None, seed: int = 0, style_from: Any = None
    ) -> torch.Tensor | None:
        """The codes ``(K, style_dim, 1, 1)`` a call asks for (``Conditions.style_codes``)."""
        return self.conditions.style_codes(styles, seed, style_from)

    # ------------------------------------------------------------------------------------ the call
    def __call__(
        self,
        images: Any,
        batch_size: int = 8,
        target: Target = None,
        source_labels: torch.Tensor | Sequence[torch.Tensor | None] | None = None,
        styles: StyleRequest = None,
        seed: int = 0,
        style_from: Any = None,
    ) -> Any:
        """Translate images: a tensor batch, a PIL image, a numpy array, an image file, or a list of them.

        Args:
            images: a tensor ``(N, C, H, W)`` or ``(C, H, W)`` float in ``[-1, 1]`` (checked,
                ``check_tensor_images``); a PIL image (EXIF orientation applied); a uint8 array ``(H, W)``
                or ``(H, W, C)``; an image file's path (``str`` or ``Path``, read as ``apply`` reads files:
                within the pixel limit, a DataError for a missing or damaged file); or a list of these
                (tensors ``(C, H, W)``), of any sizes. An alpha channel is carried through to the output;
                colours are translated composited onto white.
            batch_size: how many images of one size of a list run together (a tensor runs as one batch).
            target: conditional models: the labels to set, ``{"Blond_Hair": 1, "Male": 0}`` or
                ``"Blond_Hair=1,Male=0"``.
            source_labels: conditional models: the inputs' own labels, ``(N, num_labels)`` for a tensor,
                one ``(num_labels,)`` (or None) per image for a list; None: read by the stored classifier.
            styles: style models: K random styles drawn from ``seed``, or the codes ``(K, style_dim[, 1,
                1])``; each input then has K translations (see Returns).
            seed: the random styles' seed: the same seed gives the same styles.
            style_from: style models: a reference image of the target domain (as ``images`` takes one):
                every input is translated in its style, read by the stored style encoder.

        Returns:
            The same kind and sizes: a tensor ``(N, out_channels, H, W)`` in ``[-1, 1]`` on the input's
            device, a PIL image (also for a path), a uint8 array, or a list of them in order. With
            ``styles``, each input gives its K translations in style order: a tensor ``(N, K, C, H, W)``
            (``(K, C, H, W)`` for one ``(C, H, W)`` image), a list of K for one image, a list of such lists
            for a list.
        """
        codes = self.style_codes(styles, seed, style_from)
        several = styles is not None
        if isinstance(images, torch.Tensor):
            check_tensor_images(images)
            if not several:
                return self.translate_tensor(images, target, source_labels, codes)
            each = [self.translate_tensor(images, target, source_labels, code) for code in codes]
            return torch.stack(each, dim=images.dim() - 3)
        many = isinstance(images, Sequence) and not isinstance(images, str | bytes)
        items = list(images) if many else [images]
        if not items:
            raise DataError("no images to translate (an empty list)")
        sources = source_labels if many or source_labels is None else [source_labels]
        outputs = self._translate_items(items, batch_size, target, sources, codes)
        if several:
            outputs = [outputs[i :: len(items)] for i in range(len(items))]
        return outputs if many else outputs[0]

    def _translate_items(
        self,
        items: list[Any],
        batch_size: int,
        target: Target,
        sources: Sequence[torch.Tensor | None] | None,
        codes: torch.Tensor | None,
    ) -> list[Any]:
        """Each of a call's images (not tensor batches) in each style in turn, in one size-batched run;
        outputs like their inputs (PIL for a path)."""
        tensors, alphas = zip(*(self._network_input(item) for item in items))
        per_style = [None] if codes is None else list(codes)
        count = len(per_style)
        outputs = self.translate_many(
            list(tensors) * count,
            batch_size,
            target,
            None if sources is None else list(sources) * count,
            [code for code in per_style for _ in items],
        )
        outputs = like_inputs(outputs, items * count, list(alphas) * count)
        return [Image.fromarray(out) if is_path(item) else out for out, item in zip(outputs, items * count)]

    def _network_input(self, item: Any) -> tuple[torch.Tensor, np.ndarray | None]:
        """One image of the call as ``(C, H, W)`` in ``[-1, 1]`` and its alpha channel; a path is read as
        ``apply`` reads files."""
        if is_path(item):
            return read_input(item, self.in_channels)
        return to_network_inputs([item], self.in_channels)[0]

    def translate_tensor(
        self,
        images: torch.Tensor,
        target: Target = None,
        source_labels: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Calling the Translator on one tensor batch, without the range check (tensors known to be images).

        Args:
            images: ``(N, C, H, W)`` or ``(C, H, W)`` in ``[-1, 1]``, run as one batch.
            target, source_labels: as in the call (``(N, num_labels)`` or ``(num_labels,)``).
            style: style models: one code for every image (``(1, style_dim, 1, 1)`` or ``(style_dim, 1, 1)``)
                or one per image ``(N, style_dim, 1, 1)``; None: the zero code.

        Returns:
            The same shape with ``out_channels``, translated, on the input's device.
        """
        return self._translate_batch(images, target, source_labels, style)

    def translate_many(
        self,
        tensors: Sequence[torch.Tensor],
        batch_size: int = 8,
        target: Target = None,
        source_labels: Sequence[torch.Tensor | None] | None = None,
        styles: Sequence[torch.Tensor | None] | None = None,
    ) -> list[torch.Tensor]:
        """Calling the Translator on a list of tensors, without the range check.

        Args:
            tensors: ``(C, H, W)`` in ``[-1, 1]``, of any sizes; equal sizes are batched together.
            batch_size, target: as in the call.
            source_labels: each image's own labels ``(num_labels,)``, or None where the classifier reads them.
            styles: style models: each image's code ``(style_dim, 1, 1)``, or None for the zero code.

        Returns:
            ``(out_channels, H, W)`` per input, in order.
        """
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
                given = None if source_labels is None else [source_labels[i] for i in chunk]
                style = None if styles is None else self.conditions.stacked_styles([styles[i] for i in chunk])
                result = self._translate_batch(
                    images, target, self.conditions.source_labels(images, given), style
                )
                for i, out in zip(chunk, result):
                    outputs[i] = out
        return outputs  # type: ignore[return-value]

    # ------------------------------------------------------------------------------------ the policy
    @torch.no_grad()
    def _translate_batch(
        self,
        images: torch.Tensor,
        target: Target,
        source_labels: torch.Tensor | None,
        style: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One batch ``(N, C, H, W)`` or ``(C, H, W)``: labels or style, padding, the network, cropping
        back."""
        single = images.dim() == 3
        batch = images.unsqueeze(0) if single else images
        if batch.shape[1] != self.in_channels:
            raise DataError(
                f"the model takes {self.in_channels}-channel images; got {batch.shape[1]} channels"
            )
        if source_labels is not None and source_labels.dim() == 1:
            source_labels = source_labels[None]
        if batch.dim() != 4:
            raise DataError(f"image tensors are (N, C, H, W) or (C, H, W); got shape {tuple(images.shape)}")
        height, width = batch.shape[-2:]
        if len(batch) == 0 or height == 0 or width == 0:
            raise ImageSizeError(f"no pixels to translate: an empty batch of shape {tuple(batch.shape)}")
        self.sizes.check(width, height)
        batch = batch.to(self.device, torch.float32)
        condition = self.conditions.of_batch(batch, target, source_labels, style)
        try:
            output = self._run_network(pad_to_multiple(batch, self.size_multiple), condition)
        except torch.OutOfMemoryError:
            raise
        except (RuntimeError, ValueError) as exc:  # what the network's layers cannot take (too small ...)
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            message = f"the model cannot translate this {width}x{height} px image: {reason}"
            raise ImageSizeError(message, reason) from None
        output = output[..., :height, :width].to(images.device)
        return output[0] if single else output

    def _run_network(self, padded: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        """``(N, C, H, W)`` padded to the size multiple: in tiles (huge images), one image at a time under
        batch statistics (pix2pix's test mode), or as a batch through the fast path (or the plain network)."""
        tile = self.tiles.size(*padded.shape[-2:])
        if tile:
            each = [None if condition is None else condition[i : i + 1] for i in range(len(padded))]
            return torch.cat([self._tiled(padded[i : i + 1], each[i], tile) for i in range(len(padded))])
        if self.batch_statistics:
            return per_image(self.generator, padded, condition, seed=self.seed)
        return _generate(self._fast or self.generator, padded, condition)

    @torch.no_grad()
    def _run_blank(self, side: int) -> None:
        """The plain network, as it translates, on one blank ``side`` x ``side`` image (``self.sizes``)."""
        image = torch.zeros(1, self.in_channels, side, side, device=self.device)
        condition = self.conditions.of_blank()
        if self.batch_statistics:
            per_image(self.generator, image, condition, seed=self.seed)
        else:
            _generate(self.generator, image, condition)

    def _tiled(self, image: torch.Tensor, condition: torch.Tensor | None, tile: int) -> torch.Tensor:
        """One padded image ``(1, C, H, W)`` in overlapping tiles (see ``translate.inference.tiles``)."""
        if self.batch_statistics and self._per_image is None:  # batch norm on each tile's statistics ->
            self._per_image = per_image_norms(self.generator)  # instance norm on the image's
        network = self._per_image if self.batch_statistics else self.generator

        def run(x: torch.Tensor) -> torch.Tensor:
            if self.batch_statistics:
                return per_image(network, x, condition, seed=self.seed)
            return _generate(network, x, condition)

        return translate_tiled(network, image, run, tile, self.overlap, self.size_multiple, progress=True)

    # ------------------------------------------------------------------------------------ images
    def to_tensor(self, image: Image.Image | np.ndarray) -> torch.Tensor:
        """A PIL image or uint8 ``(H, W[, C])`` array as ``(C, H, W)`` in ``[-1, 1]``, the model's channels,
        transparency composited onto white as training reads images (``convert.image_to_tensor``)."""
        return image_to_tensor(image, self.in_channels)[0]

    to_array = staticmethod(tensor_to_array)
    """``tensor_to_array``: ``(C, H, W)`` in ``[-1, 1]`` -> ``(H, W, C)`` uint8 (``(H, W)``: one channel)."""

    # ------------------------------------------------------------------------------------ files
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
        styles: StyleRequest = None,
        seed: int = 0,
        style_from: str | Path | None = None,
    ) -> list[Path]:
        """Translate image files and folders (recursively) into ``dst``; never overwrites an input.

        The one way in for files (``translate.inference.pipeline``). A file keeps its name; a folder's images
        keep their paths relative to it. Resumable: outputs that exist are skipped unless ``overwrite``; each
        output is written to a temporary name and renamed, so an interrupted run never leaves half an image.
        A ``dst`` inside an input folder is not read as input; two inputs with one output name (``x.png``,
        ``x.bmp``) both survive (``x.bmp.png``). Unreadable images, and images the network cannot take (too
        small), are skipped with a warning. EXIF orientation is applied and an alpha channel kept, as in the
        call. ``self.report`` (an ``ApplyReport``) then says what was translated, skipped and failed.
        A style model asked for ``styles`` writes each image once per style (``x-seed0-style0.png``,
        ``x-seed0-style1.png`` ...), asked for ``style_from`` once in the reference's style
        (``x-style-REF.png``).

        Args:
            inputs: image files and folders.
            dst: the output folder.
            batch_size, progress, target, labels_file, faces, overwrite, quality, styles, seed,
                style_from: see ``ApplyOptions``.

        Returns:
            The outputs written, in input order.
        """
        options = ApplyOptions(
            batch_size, progress, target, labels_file, faces, overwrite, quality, styles, seed, style_from
        )
        self.report = ApplyReport()
        return apply_paths(self, inputs, dst, options, self.report)

    def apply_folder(self, src: str | Path, dst: str | Path, **options: Any) -> list[Path]:
        """``apply_paths([src], dst, **options)``: every image under ``src`` into ``dst / src.name``,
        mirroring sub-folders and file names.

        Args:
            src: the input folder.
            dst: the output folder.
            options: ``batch_size``, ``progress``, ``target``, ... as ``apply_paths`` takes them.

        Returns:
            The outputs written.
        """
        return self.apply_paths([Path(src)], Path(dst), **options)


def _generate(
    network: nn.Module | FastPath, images: torch.Tensor, condition: torch.Tensor | None
) -> torch.Tensor:
    """``network(images)``, or ``network(images, condition)`` for one that takes labels or a style."""
    return network(images) if condition is None else network(images, condition)
