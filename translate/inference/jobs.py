"""What a folder run of ``translate apply`` is asked and plans: options, jobs, output names, the report.

Every input file, or every image of an input folder (recursively), becomes a ``Job`` ``(source, output)``
(``plan_outputs``); a folder's images keep their paths relative to it, an ``--out`` inside an input folder
is not read back, and no two inputs ever share an output (``distinct_outputs``: ``x.png``, ``x.bmp`` and
``x.bmp.png`` give ``x.png``, ``x.bmp.png`` and ``x.bmp-2.png``). A labels file (``--labels``) gives jobs
their source image's own labels (``labels_from_file``). A style model asked for several styles gives each
image one job per style, named after it before outputs are made distinct (``style_variants``:
``x-seed0-style0.png``, ``x-seed0-style1.png`` ... for ``--styles``, ``x-style-REF.png`` for
``--style-from REF.jpg``). ``translate.inference.pipeline`` runs the jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from translate.data.io import WRITE_FORMATS, list_images
from translate.errors import ConfigError, DataError
from translate.inference.faces import Detector
from translate.labels import LabelSpace

if TYPE_CHECKING:
    from translate.inference.translator import Target

log = logging.getLogger("translate")


# ---------------------------------------------------------------------------------------------- records
@dataclass
class ApplyReport:
    """What the last ``apply_paths`` did: written outputs, outputs that existed (skipped), failed inputs, and
    each input beside its outputs."""

    translated: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    """``(input, reason)``: unreadable, or too small for the network."""
    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    """``(input, output)`` of every output on disk after the run, written or skipped as existing, in input
    order (an input's styles in a row): what ``translate.inference.gallery`` shows."""

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
