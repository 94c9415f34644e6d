"""The folder pipeline of ``translate apply`` and ``Translator.apply_paths``: image files in, image files out.

1. **Plan** (``plan_outputs``): every input file, or every image of an input folder (recursively), becomes a
   ``Job`` ``(source, output)``; a folder's images keep their paths relative to it, an ``--out`` inside an
   input folder is not read back, and no two inputs ever share an output (``distinct_outputs``: ``x.png``,
   ``x.bmp`` and ``x.bmp.png`` give ``x.png``, ``x.bmp.png`` and ``x.bmp-2.png``). Outputs that exist are
   skipped unless ``overwrite``; an output that would replace an input is refused. A labels file
   (``--labels``) gives jobs their source image's own labels. A style model asked for several styles gives
   each image one job per style, named after it before outputs are made distinct (``style_variants``:
   ``x-seed0-style0.png``, ``x-seed0-style1.png`` ... for ``--styles``, ``x-style-REF.png`` for
   ``--style-from REF.jpg``); the jobs of one image are read once.
2. **Read ahead, translate, write**: chunks of up to ``batch_size`` images are decoded on a reader thread
   while the network runs the previous chunk, and written on a writer thread while it runs the next one
   (decoding, encoding and torch release the GIL); a chunk stops early past ``TILE_ABOVE_PIXELS`` pixels, so
   huge images stay one in memory at a time. Unreadable images, images above the pixel limit
   (``translate.data.io.max_pixels``), images the network cannot take (too small) and outputs whose name
   the file system refuses (too long) are reported and skipped, one line each (one per image, whatever
   its number of styles). With ``faces``, each face of each photo is translated and pasted back instead
   (``translate.inference.faces``).
3. **Report**: an ``ApplyReport`` of what was translated (the files actually written), skipped and failed.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm import tqdm

from translate.data.io import (
    WRITE_FORMATS,
    UnreadableImageError,
    list_images,
    read_image_and_alpha,
    write_image,
)
from translate.errors import ConfigError, DataError, TranslateError
from translate.inference.convert import ImageSizeError, image_to_tensor, tensor_to_array, with_alpha
from translate.inference.faces import Detector, mtcnn_detector, paste_faces
from translate.inference.tiles import TILE_ABOVE_PIXELS
from translate.labels import LabelSpace

if TYPE_CHECKING:
    from translate.inference.translator import Target, Translator

log = logging.getLogger("translate")

BAD_NAME_ERRORS = frozenset({errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL})
"""Errors of writing one output that are about its name: that image is skipped, the run goes on."""


# ---------------------------------------------------------------------------------------------- records
@dataclass
class ApplyReport:
    """What the last ``apply_paths`` did: written outputs, outputs that existed (skipped), failed inputs."""

    translated: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    """``(input, reason)``: unreadable, or too small for the network."""

    def summary(self) -> str:
        """One line: ``translated N, skipped N existing, failed N``."""
        done, skipped, failed = len(self.translated), len(self.skipped), len(self.failed)
        return f"translated {done}, skipped {skipped} existing, failed {failed}"


@dataclass(frozen=True)
class ApplyOptions:
    """How ``apply_paths`` translates files.

    Args:
        batch_size: images of one size translated together.
        progress: show a progress bar.
        target: conditional models: the labels to set, as in calling the Translator.
        labels_file: conditional models: a CelebA-style attribute file giving the inputs' own labels by
            file name (images it does not list are read by the classifier).
        faces: True (MTCNN) or a ``Detector``: translate each face of each photo, aligned and cropped as the
            training faces were (``face_size`` square), and paste it back; photos without a face are copied,
            with a warning.
        overwrite: redo outputs that exist (else they are skipped: an interrupted run resumes).
        quality: JPEG inputs give JPEG outputs at this quality (WebP: WebP, lossless at 100); all others
            lossless PNG.
        styles: style models: this many random styles per image, drawn from ``seed`` (a tensor of codes
            ``(K, style_dim[, 1, 1])`` also works), each written as its own output (``style_variants``).
        seed: the random styles' seed.
        style_from: style models: a reference image of the target domain (a path): every image in its
            style.
    """

    batch_size: int = 8
    progress: bool = True
    target: Target = None
    labels_file: str | Path | None = None
    faces: bool | Detector = False
    overwrite: bool = False
    quality: int = 95
    styles: int | torch.Tensor | None = None
    seed: int = 0
    style_from: str | Path | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.quality <= 100:
            raise ConfigError(f"quality must be between 1 and 100; got {self.quality}")


@dataclass(frozen=True)
class Job:
    """One input image and where its translation goes."""

    source: Path
    output: Path
    labels: torch.Tensor | None = None
    """The source image's own labels ``(num_labels,)`` from a labels file; None: read by the classifier."""
    style: torch.Tensor | None = None
    """The style code ``(style_dim, 1, 1)`` of a style model's translation; None: the model's default."""


@dataclass
class Decoded:
    """A job's image, read: the network's input and the alpha channel that goes back on its output."""

    job: Job
    image: torch.Tensor
    """``(C, H, W)`` in ``[-1, 1]``, the model's channels."""
    alpha: np.ndarray | None
    """``(H, W)`` uint8, or None."""


@dataclass
class Chunk:
    """The jobs read together: the images that decoded and the ones that did not, in job order."""

    images: list[Decoded] = field(default_factory=list)
    unreadable: list[tuple[Job, UnreadableImageError]] = field(default_factory=list)
    huge: bool = False
    """Whether reading stopped at the pixel budget (``TILE_ABOVE_PIXELS``) before ``batch_size`` jobs."""

    @property
    def size(self) -> int:
        """How many jobs the chunk covers."""
        return len(self.images) + len(self.unreadable)


# ---------------------------------------------------------------------------------------------- planning
def output_path(target: Path) -> Path:
    """Keep JPEG as JPEG and WebP as WebP (where Pillow writes it); everything else is lossless PNG."""
    return target if target.suffix.lower() in WRITE_FORMATS else target.with_suffix(".png")


def plan_outputs(
    inputs: Sequence[str | Path], dst: str | Path, variants: Sequence[tuple[str, torch.Tensor]] = ()
) -> list[Job]:
    """The jobs of translating ``inputs`` (files and folders, recursively) into ``dst``.

    Args:
        inputs: image files (each keeps its name) and folders (their images keep their paths relative to
            the folder, under the folder's name).
        dst: the output folder; images under it are not read as input.
        variants: ``(name suffix, style code)`` per translation of each image (``style_variants``): the
            suffix goes after the output's stem; none: one translation, the image's own name.

    Returns:
        One ``Job`` per image (per image and variant), outputs made distinct (``distinct_outputs``).

    Raises:
        DataError: an input that does not exist, or no image at all.
    """
    dst = Path(dst)
    out_root = dst.resolve()
    planned: list[Job] = []
    for item in map(Path, inputs):
        if item.is_dir():  # never re-read the outputs of an --out inside the input folder
            files = [f for f in list_images(item) if not f.resolve().is_relative_to(out_root)]
            planned += [Job(f, dst / item.name / f.relative_to(item)) for f in files]
        elif item.is_file():
            planned.append(Job(item, dst / item.name))
        else:
            raise DataError(f"no such file or folder: {item}")
    if not planned:
        raise DataError(f"no images found in {', '.join(map(str, inputs))}")
    return distinct_outputs(with_variants(planned, variants))


def style_variants(codes: torch.Tensor | None, options: ApplyOptions) -> list[tuple[str, torch.Tensor]]:
    """The name suffix of each style code a run asks for: ``-seed{seed}-style{i}`` for random styles (code
    ``i`` of that seed, the same for any number of styles above ``i``), ``-style{i}`` for codes given as a
    tensor, ``-style-{stem}`` for the reference ``stem.jpg``; none for no codes (the model's default)."""
    if codes is None:
        return []
    if options.style_from is not None:
        reference = options.style_from
        stem = Path(reference).stem if isinstance(reference, str | Path) else "reference"
        return [(f"-style-{stem}", codes[0])]
    prefix = "" if isinstance(options.styles, torch.Tensor) else f"-seed{options.seed}"
    return [(f"{prefix}-style{i}", code) for i, code in enumerate(codes)]


def with_variants(jobs: list[Job], variants: Sequence[tuple[str, torch.Tensor]]) -> list[Job]:
    """Each job once per ``(suffix, code)`` variant, the suffix after its output's stem, in job order."""
    if not variants:
        return jobs
    return [
        replace(job, output=job.output.with_name(job.output.stem + suffix + job.output.suffix), style=code)
        for job in jobs
        for suffix, code in variants
    ]


def distinct_outputs(jobs: list[Job]) -> list[Job]:
    """``jobs`` with outputs in their written format (``output_path``) where no two write the same file.

    ``x.png`` and ``x.bmp`` in one folder give ``x.png`` and ``x.bmp.png``: files whose output keeps their
    own name are placed first, so they keep it.

    Args:
        jobs: in order.

    Returns:
        The same jobs in the same order, each with its final ``output``.
    """
    keeps_name = [output_path(job.output) == job.output for job in jobs]
    outputs: dict[int, Path] = {}
    taken: set[Path] = set()
    for index in sorted(range(len(jobs)), key=lambda i: not keeps_name[i]):
        job = jobs[index]
        output = output_path(job.output)
        if output in taken:  # x.bmp after x.png: x.bmp.png, then x.bmp-2.png, x.bmp-3.png ...
            first = output_path(job.output.with_name(job.output.name + ".png"))
            output, number = first, 1
            while output in taken:
                number += 1
                output = first.with_name(f"{first.stem}-{number}{first.suffix}")
            log.info("%s and another image share an output name: writing %s", job.source, output.name)
        taken.add(output)
        outputs[index] = output
    return [replace(job, output=outputs[i]) for i, job in enumerate(jobs)]


def labels_from_file(labels: LabelSpace | None, path: str | Path) -> dict[str, torch.Tensor]:
    """Each image's own labels, from a CelebA-style attribute file with (at least) the model's labels.

    Args:
        labels: the model's label space (None: a model without targets, an error).
        path: the attribute file.

    Returns:
        ``{file name: (num_labels,) 0/1}`` in the order of ``labels``.

    Raises:
        ConfigError: the model takes no target; DataError: the file lacks one of the model's labels.
    """
    from translate.data.layout import read_attribute_file

    if labels is None:
        raise ConfigError("--labels is for models that translate to a target (--to); this one takes none")
    table = read_attribute_file(path)
    missing = [n for n in labels.names if n not in table.names]
    if missing:
        raise DataError(
            f"{path} has no column for {', '.join(missing)} (the model's labels: {labels.describe()})"
        )
    columns = [table.names.index(n) for n in labels.names]
    return {
        name: torch.tensor([float(row[c] > 0) for c in columns])
        for name, row in zip(table.files, table.values)
    }


# ---------------------------------------------------------------------------------------------- reading
def read_input(path: str | Path, channels: int) -> tuple[torch.Tensor, np.ndarray | None]:
    """An image file as the network's input and its alpha channel, as every image is read
    (``read_image_and_alpha``: within the pixel limit, EXIF orientation applied).

    Args:
        path: the file.
        channels: the model's input channels.

    Returns:
        ``(C, H, W)`` in ``[-1, 1]`` (transparency composited onto white), and the ``(H, W)`` uint8 alpha
        channel or None.

    Raises:
        UnreadableImageError: a missing, corrupt or not-an-image file, or one above the pixel limit.
    """
    colour, alpha = read_image_and_alpha(path, channels=channels)
    return image_to_tensor(colour, channels)[0], alpha


def read_chunk(jobs: list[Job], start: int, batch_size: int, channels: int) -> Chunk:
    """Read up to ``batch_size`` jobs from ``start``, stopping early past ``TILE_ABOVE_PIXELS`` pixels in all.

    Args:
        jobs: every job of the run.
        start: the first job to read.
        batch_size: at most this many jobs.
        channels: the model's input channels.

    Returns:
        The ``Chunk``: decoded images (``(C, H, W)`` in ``[-1, 1]``), unreadable jobs, whether it stopped at
        the pixel budget (huge images: one in memory at a time).
    """
    chunk = Chunk()
    pixels = 0
    last: tuple[Path, Any] | None = None  # the previous job's source and what reading it gave
    for job in jobs[start : start + batch_size]:
        if last is None or last[0] != job.source:  # the styles of one image: read once
            last = (job.source, _read_or_error(job.source, channels))
        read = last[1]
        if isinstance(read, UnreadableImageError):
            chunk.unreadable.append((job, read))
            continue
        image, alpha = read
        chunk.images.append(Decoded(job, image, alpha))
        pixels += image.shape[-2] * image.shape[-1]
        if pixels > TILE_ABOVE_PIXELS:
            chunk.huge = True
            break
    return chunk


def _read_or_error(
    path: Path, channels: int
) -> tuple[torch.Tensor, np.ndarray | None] | UnreadableImageError:
    try:
        return read_input(path, channels)
    except UnreadableImageError as exc:
        return exc


# ---------------------------------------------------------------------------------------------- faces
def translate_faces(
    translator: Translator,
    image: np.ndarray,
    detector: Detector,
    target: Target,
    source: Path,
    style: torch.Tensor | None = None,
) -> np.ndarray:
    """A photo with each face translated in place (see ``translate.inference.faces``).

    Args:
        translator: the face model (``face_size``: the side of its aligned crops).
        image: ``(H, W, 3)`` RGB uint8.
        detector: finds the faces (``mtcnn_detector``).
        target: the translation's target (conditional models).
        source: the photo's path, for the log.
        style: the style code of a style model (None: its default).

    Returns:
        ``(H, W, 3)`` uint8; the photo unchanged (with a warning) when it shows no face.
    """
    found = detector(image)
    if not found:
        log.warning("no face found in %s: copied unchanged", source)
        return image
    log.info("%s: %d face%s", source, len(found), "" if len(found) == 1 else "s")

    def translate(crop: np.ndarray) -> np.ndarray:
        return tensor_to_array(translator.translate_tensor(translator.to_tensor(crop), target, style=style))

    return paste_faces(image, found, translator.face_size, translate)


# ---------------------------------------------------------------------------------------------- the run
class FolderPipeline:
    """One ``apply_paths`` run: plan the jobs, then translate and write them, filling ``report``.

    Args:
        translator: translates the images (``translate_many``, ``target_labels``).
        options: batch size, target, labels file, faces, overwrite, quality, progress bar.
        report: filled as the run goes (``translated`` at its end).
    """

    def __init__(self, translator: Translator, options: ApplyOptions, report: ApplyReport) -> None:
        self.translator = translator
        self.options = options
        self.report = report
        self.inputs: set[Path] = set()
        """Every input file (resolved): never overwritten."""
        self.written: set[Path] = set()
        """Every output written by this run (resolved): none is written twice."""
        self.failed: set[Path] = set()
        """Every input reported as failed: once, whatever its number of styles."""

    def plan(self, inputs: Sequence[str | Path], dst: str | Path) -> list[Job]:
        """The jobs to run (``plan_outputs`` less existing outputs, with labels and styles); checks the
        target and the styles first.

        Raises:
            TranslateError: an output would overwrite an input; ConfigError / DataError: a bad labels file,
            target, style request or reference, before any work.
        """
        options = self.options
        codes = self.translator.style_codes(options.styles, options.seed, options.style_from)
        planned = plan_outputs(inputs, dst, style_variants(codes, options))
        self.inputs = {job.source.resolve() for job in planned}
        jobs = []
        for job in planned:
            if job.output.resolve() in self.inputs:
                raise TranslateError(f"refusing to overwrite input image {job.output}; choose another --out")
            if job.output.exists() and not self.options.overwrite:
                self.report.skipped.append(job.output)
            else:
                jobs.append(job)
        if self.report.skipped:
            log.info("%d outputs exist already: skipped (--overwrite to redo them)", len(self.report.skipped))
        translator, labels_file = self.translator, self.options.labels_file
        known = labels_from_file(translator.labels, labels_file) if labels_file is not None else {}
        no_images = torch.zeros(0, len(translator.labels)) if translator.labels is not None else None
        translator.target_labels(torch.zeros(0), self.options.target, no_images)  # fails before any work
        return [replace(job, labels=known.get(job.source.name)) for job in jobs]

    def run(self, jobs: list[Job]) -> list[Path]:
        """Translate and write ``jobs``; returns the outputs written (also ``report.translated``)."""
        written = self._faces(jobs) if self.options.faces else self._chunks(jobs)
        self.report.translated = [path for path in written if path is not None]
        return self.report.translated

    def _chunks(self, jobs: list[Job]) -> list[Path | None]:
        """Read ahead, translate and write behind; around huge images, one step at a time."""
        options, written = self.options, []
        with (
            tqdm(total=len(jobs), desc="translate", unit="img", disable=not options.progress) as bar,
            ThreadPoolExecutor(1, thread_name_prefix="read") as reader,
            ThreadPoolExecutor(1, thread_name_prefix="write") as writer,
        ):

            def read(start: int) -> Future[Chunk]:
                return reader.submit(read_chunk, jobs, start, options.batch_size, self.translator.in_channels)

            saved: list[Future[Path | None]] = []  # the last chunk's writes, collected after the next chunk
            done = 0
            next_chunk: Future[Chunk] | None = read(done)
            while done < len(jobs):
                if next_chunk is None:  # after a huge image: its output written, then the next read
                    written += [future.result() for future in saved]
                    saved = []
                    next_chunk = read(done)
                chunk = next_chunk.result()
                done += chunk.size
                next_chunk = read(done) if done < len(jobs) and not chunk.huge else None
                for job, exc in chunk.unreadable:
                    self._unreadable(job, exc)
                outputs = self._translate(chunk.images)
                written += [future.result() for future in saved]  # a failed write stops here
                saved = [
                    writer.submit(
                        self._save,
                        with_alpha(tensor_to_array(output), image.alpha),
                        image.job.output,
                        image.job.source,
                    )
                    for image, output in zip(chunk.images, outputs)
                    if output is not None
                ]
                bar.update(chunk.size)
            written += [future.result() for future in saved]
        return written

    def _translate(self, images: list[Decoded]) -> list[torch.Tensor | None]:
        """The chunk's outputs ``(C, H, W)``; None for an image the network cannot take (too small)."""
        options = self.options
        try:
            return self.translator.translate_many(
                [image.image for image in images],
                options.batch_size,
                options.target,
                [image.job.labels for image in images],
                [image.job.style for image in images],
            )
        except ImageSizeError:  # an image the network cannot take: find it
            return [self._translate_one(image) for image in images]

    def _translate_one(self, image: Decoded) -> torch.Tensor | None:
        """One image; None (reported as failed) when the network cannot take it."""
        job = image.job
        try:
            return self.translator.translate_many(
                [image.image], 1, self.options.target, [job.labels], [job.style]
            )[0]
        except ImageSizeError as exc:  # the Translator's size rule, the same for every backend, says why
            self._failed(job.source, str(exc))
            return None

    def _faces(self, jobs: list[Job]) -> list[Path | None]:
        """Each face of each photo translated and pasted back (photos without one copied)."""
        options, written = self.options, []
        faces = options.faces
        detector = faces if callable(faces) else mtcnn_detector(self.translator.device)
        with tqdm(total=len(jobs), desc="faces", unit="img", disable=not options.progress) as bar:
            for job in jobs:
                try:
                    image, alpha = read_image_and_alpha(job.source, channels=3)
                except UnreadableImageError as exc:
                    self._unreadable(job, exc)
                    continue
                result = translate_faces(
                    self.translator, image, detector, options.target, job.source, job.style
                )
                written.append(self._save(with_alpha(result, alpha), job.output, job.source))
                bar.update(1)
        return written

    def _unreadable(self, job: Job, exc: UnreadableImageError) -> None:
        self._failed(job.source, exc.reason, str(exc))

    def _failed(self, source: Path, reason: str, line: str | None = None) -> None:
        """Report ``source`` as failed (``line``, else ``source: reason``), once per input."""
        if source in self.failed:
            return
        self.failed.add(source)
        log.warning("skipping %s", line or f"{source}: {reason}")
        self.report.failed.append((source, reason))

    def _save(self, array: np.ndarray, destination: Path, source: Path) -> Path | None:
        """Write ``array`` (uint8 ``(H, W[, C])``) whole: a kill never leaves half an image. An output name
        the file system refuses (too long, not valid there) skips this image with one line (None); other
        failed writes (a full disk) stop the run."""
        destination = output_path(destination)
        resolved = destination.resolve()
        if resolved in self.inputs:
            raise TranslateError(f"refusing to overwrite input image {destination}; choose another --out")
        if resolved in self.written:  # never: distinct_outputs gives each job its own
            return self._write_failed(source, f"its output {destination} was written for another input")
        try:
            written = write_image(destination, array, self.options.quality)
        except DataError as exc:  # a name longer than the file system takes
            return self._write_failed(source, str(exc))
        except OSError as exc:
            if exc.errno not in BAD_NAME_ERRORS:
                raise
            return self._write_failed(source, f"cannot write {destination.name}: {exc.strerror or exc}")
        self.written.add(resolved)
        return written

    def _write_failed(self, source: Path, reason: str) -> None:
        self._failed(source, reason)


def apply_paths(
    translator: Translator,
    inputs: Sequence[str | Path],
    dst: str | Path,
    options: ApplyOptions,
    report: ApplyReport,
) -> list[Path]:
    """Translate image files and folders into ``dst`` (the steps: the module docstring).

    Args:
        translator: the model.
        inputs: files and folders (recursively).
        dst: the output folder.
        options: see ``ApplyOptions``.
        report: filled with what was translated, skipped and failed.

    Returns:
        The outputs written, in input order.
    """
    pipeline = FolderPipeline(translator, options, report)
    return pipeline.run(pipeline.plan(inputs, dst))
