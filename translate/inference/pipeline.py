"""The folder pipeline of ``translate apply`` and ``Translator.apply_paths``: image files in, image files out.

1. **Plan** (``translate.inference.jobs``): one ``Job`` ``(source, output)`` per input image (per image and
   style), outputs that exist skipped unless ``overwrite``, an output that would replace an input refused.
2. **Read ahead, translate, write**: chunks of up to ``batch_size`` images are decoded on a reader thread
   while the network runs the previous chunk, and written on a writer thread while it runs the next one
   (decoding, encoding and torch release the GIL); a chunk stops early past ``TILE_ABOVE_PIXELS`` pixels, so
   huge images stay one in memory at a time; the jobs of one image are read once. Unreadable images, images
   above the pixel limit (``translate.data.io.max_pixels``), images the network cannot take (too small) and
   outputs whose name the file system refuses (too long) are reported and skipped, one line each (one per
   image, whatever its number of styles). With ``faces``, each face of each photo is translated and pasted
   back instead (``translate.inference.faces``).
3. **Report**: an ``ApplyReport`` of what was translated (the files actually written), skipped and failed,
   and each input with its outputs on disk, in input order (``pairs``: the ``--gallery`` page).
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
    UnreadableImageError,
    read_image_and_alpha,
    write_image,
)
from translate.errors import DataError, TranslateError
from translate.inference.convert import ImageSizeError, image_to_tensor, tensor_to_array, with_alpha
from translate.inference.faces import Detector, mtcnn_detector, paste_faces
from translate.inference.jobs import (
    ApplyOptions,
    ApplyReport,
    Job,
    labels_from_file,
    output_path,
    plan_outputs,
    style_variants,
)
from translate.inference.tiles import TILE_ABOVE_PIXELS

if TYPE_CHECKING:
    from translate.inference.translator import Target, Translator

log = logging.getLogger("translate")

BAD_NAME_ERRORS = frozenset({errno.ENAMETOOLONG, errno.EILSEQ, errno.EINVAL})
"""Errors of writing one output that are about its name: that image is skipped, the run goes on."""


# ---------------------------------------------------------------------------------------------- records


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
        self.planned: list[Job] = []
        """Every job of the inputs in input order, skipped ones included (``plan``)."""

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
        self.planned = planned
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
        on_disk = {*self.report.translated, *self.report.skipped}
        self.report.pairs = [(job.source, job.output) for job in self.planned if job.output in on_disk]
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
