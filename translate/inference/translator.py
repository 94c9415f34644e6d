"""Translator: an image -> image export of a trained model, called on tensors, PIL images and arrays.

Calling a ``Translator`` is the one way in for images in memory (and single files: a path is read as
``apply`` reads it), ``apply_paths`` the one for files and folders written to disk (the folder pipeline,
``translate.inference.pipeline``). The call applies the model's policy: images above
``TILE_ABOVE_PIXELS`` (or every image, with ``tile=N``) in overlapping tiles with whole-image statistics
(``translate.inference.tiles``), the fast path, batch statistics (pix2pix's test mode), padding to the
network's size multiple. A model exported by ``translate export`` (ONNX, TorchScript) runs through the same
pre- and post-processing (``from_exported``).

Conditional models (StarGAN: image + target -> image) take a ``target``: ``{"Blond_Hair": 1}`` or
``"Blond_Hair=1,Male=0"`` (``"happy"`` for folder domains). Labels the target does not name keep the input's
own values: given per image (``source_labels``, ``--labels FILE``), else estimated by the classifier stored
with the model (StarGAN's discriminator head).

Models that take a style code beside the image (MUNIT) translate with the zero code unless asked:
``styles=K`` gives K translations of each input with random styles drawn from ``seed`` (or with the codes
given as a tensor), ``style_from=reference`` one translation in the style of a reference image of the
target domain (read by the style encoder stored with the model; an exported file holds none).
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
from translate.errors import CheckpointError, ConfigError, DataError
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
from translate.inference.pipeline import ApplyOptions, ApplyReport, apply_paths, read_input
from translate.inference.sizes import SmallestSide
from translate.inference.tiles import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    TILE_ABOVE_PIXELS,
    TilePolicy,
    per_image_norms,
    translate_tiled,
)
from translate.kinds import kind_of, kinds_with
from translate.kinds.style import Styles
from translate.kinds.targets import read_labels
from translate.labels import LabelSpace
from translate.layers import per_image

Target = dict[str, float] | str | None
StyleRequest = int | torch.Tensor | None
"""``styles`` of a call: a number of random styles, or the codes ``(K, style_dim[, 1, 1])``."""

TRANSLATOR_KINDS = kinds_with("image")
"""The export kinds a Translator runs: those whose input is an image."""


def kind_arguments(
    kind: str, options: dict[str, Any], path: str | Path, task: nn.Module | None = None
) -> dict[str, Any]:
    """Check that a Translator runs exports of ``kind``, and what the kind adds to its arguments.

    Args:
        kind, options: the export's (an exported file's: its stored contract's).
        path: the model, named in the error.
        task: the trained task, holding the classifier; None for an exported file (which holds none).

    Returns:
        ``Translator`` keyword arguments (``Kind.translator_arguments`` and ``kind``); a kind whose input is
        no image is a CheckpointError naming the command for it.
    """
    found = kind_of(kind)
    if kind not in TRANSLATOR_KINDS:
        raise CheckpointError(f"{path} holds a {kind} model: use `{found.command}` for it")
    return {**found.translator_arguments(options, task), "kind": kind}


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
        self.labels = labels
        self.classifier = classifier.to(self.device).eval() if classifier is not None else None
        self.classifier_size = classifier_size
        self.styles = styles
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
        loaded = load_export(path, direction, TRANSLATOR_KINDS, device)
        export = loaded.export
        conditional = kind_arguments(export.kind, export.options, path, loaded.task)
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
        from translate.inference.portable import load_exported

        network, contract = load_exported(path, device, backend)
        conditional = kind_arguments(contract["kind"], contract["options"], path)
        return cls(
            network,
            contract["in_channels"],
            contract["out_channels"],
            network.device,
            face_size=contract.get("image_size") or 128,
            **conditional,
            **options,
        )

    from_onnx = from_exported
    """An older name of ``from_exported``."""

    # ------------------------------------------------------------------------------------ labels
    def target_labels(
        self, images: torch.Tensor, target: Target, source: torch.Tensor | None = None
    ) -> torch.Tensor | None:
        """The labels that translate ``images`` to ``target``.

        Args:
            images: ``(N, C, H, W)`` in ``[-1, 1]``.
            target: the labels to set (see the module docstring); None for unconditional models.
            source: the images' own labels ``(N, num_labels)``; None: estimated (``estimate_labels``) where
                the target does not set every label.

        Returns:
            ``(N, num_labels)``: ``source`` with the target's values set; None for unconditional models.
        """
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
        """The labels of ``images`` as the stored classifier reads them.

        Args:
            images: ``(N, C, H, W)`` in ``[-1, 1]`` (their center square, resized to ``classifier_size``).

        Returns:
            ``(N, num_labels)`` 0/1.
        """
        if self.classifier is None or self.labels is None:
            raise ConfigError(
                "this model stores no classifier to read the input's labels: give them (--labels FILE) "
                "or name every label in the target"
            )
        return self.labels.from_logits(read_labels(self.classifier, images, self.classifier_size))

    # ------------------------------------------------------------------------------------ styles
    def style_codes(
        self, styles: StyleRequest = None, seed: int = 0, style_from: Any = None
    ) -> torch.Tensor | None:
        """The style codes a call asks for.

        Args:
            styles: K random styles of the prior drawn from ``seed`` (the first K of a larger number are the
                same), or the codes ``(K, style_dim[, 1, 1])``.
            seed: the random styles' seed.
            style_from: a reference image of the target domain, as the call takes images (a tensor
                ``(C, H, W)`` in ``[-1, 1]``, a PIL image, a uint8 array or a path): its style code.

        Returns:
            ``(K, style_dim, 1, 1)`` (``(1, ...)`` for a reference), or None where neither is given (the
            model's default, the zero code).

        Raises:
            ConfigError: both given, or a model that takes no style code (naming its kind).
        """
        if styles is None and style_from is None:
            return None
        if self.styles is None:
            raise ConfigError(self._takes_no_style())
        if styles is not None and style_from is not None:
            raise ConfigError("give random styles (--styles) or a reference (--style-from), not both")
        if style_from is None:
            return self.styles.codes(styles, seed)
        channels = self.styles.channels
        if _is_path(style_from):
            reference = read_input(style_from, channels)[0]
        else:
            reference = to_network_inputs([style_from], channels)[0][0]
        return self.styles.of_reference(reference, self.face_size)

    def _takes_no_style(self) -> str:
        model = f"this {self.kind} model" if self.kind else "this model"
        return (
            f"{model} takes no style code: --styles and --style-from (styles=, style_from=) are for "
            f"{' and '.join(kinds_with('style'))} models"
        )

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
        tensors, alphas = zip(*(self._network_input(item) for item in items))
        per_style = [None] if codes is None else list(codes)
        count = len(per_style)  # every image in each style in turn: one call, batched by size
        outputs = self.translate_many(
            list(tensors) * count,
            batch_size,
            target,
            None if sources is None else list(sources) * count,
            [code for code in per_style for _ in items],
        )
        outputs = like_inputs(outputs, items * count, list(alphas) * count)
        outputs = [
            Image.fromarray(out) if _is_path(item) else out for out, item in zip(outputs, items * count)
        ]
        if several:
            outputs = [outputs[i :: len(items)] for i in range(len(items))]
        return outputs if many else outputs[0]

    def _network_input(self, item: Any) -> tuple[torch.Tensor, np.ndarray | None]:
        """One image of the call as ``(C, H, W)`` in ``[-1, 1]`` and its alpha channel; a path is read as
        ``apply`` reads files."""
        if _is_path(item):
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
                style = None if styles is None else self._stacked_styles([styles[i] for i in chunk])
                result = self._translate_batch(images, target, self._source_labels(images, given), style)
                for i, out in zip(chunk, result):
                    outputs[i] = out
        return outputs  # type: ignore[return-value]

    def _source_labels(
        self, images: torch.Tensor, given: list[torch.Tensor | None] | None
    ) -> torch.Tensor | None:
        """The batch's own labels ``(N, num_labels)``: those given, the classifier's for the rest; None when
        none is given (``target_labels`` then reads them only if the target needs them)."""
        if given is None or all(g is None for g in given):
            return None
        estimated = self.estimate_labels(images) if any(g is None for g in given) else None
        return torch.stack(
            [g.to(self.device) if g is not None else estimated[k] for k, g in enumerate(given)]
        )

    def _stacked_styles(self, given: list[torch.Tensor | None]) -> torch.Tensor | None:
        """The batch's codes ``(N, style_dim, 1, 1)``, the zero code where None is given; None for none."""
        if all(g is None for g in given):
            return None
        if self.styles is None:
            raise ConfigError(self._takes_no_style())
        default = self.styles.default()[0]
        return torch.stack([default if g is None else g.reshape(default.shape) for g in given])

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
        condition = self._condition(batch, target, source_labels, style)
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

    def _condition(
        self,
        batch: torch.Tensor,
        target: Target,
        source_labels: torch.Tensor | None,
        style: torch.Tensor | None,
    ) -> torch.Tensor | None:
        """The network's input beside the images ``(N, C, H, W)``: the target labels ``(N, num_labels)`` of
        a conditional model, the codes ``(N, style_dim, 1, 1)`` of a style model (the zero code where none
        is given), else None."""
        labels = self.target_labels(batch, target, source_labels)
        if self.styles is None:
            if style is not None:
                raise ConfigError(self._takes_no_style())
            return labels
        dim = self.styles.style_dim
        code = (self.styles.default() if style is None else style).reshape(-1, dim, 1, 1)
        if len(code) not in (1, len(batch)):
            raise ConfigError(f"{len(code)} style codes for {len(batch)} images: give one, or one per image")
        return code.to(self.device, torch.float32).expand(len(batch), -1, -1, -1).contiguous()

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
        condition = None
        if self.labels is not None:
            condition = torch.zeros(1, len(self.labels), device=self.device)
        elif self.styles is not None:
            condition = self.styles.default().to(self.device)
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


def _is_path(item: Any) -> bool:
    return isinstance(item, str | os.PathLike)


def _generate(
    network: nn.Module | FastPath, images: torch.Tensor, condition: torch.Tensor | None
) -> torch.Tensor:
    """``network(images)``, or ``network(images, condition)`` for one that takes labels or a style."""
    return network(images) if condition is None else network(images, condition)
