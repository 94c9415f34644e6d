"""``translate datasets inspect``: what a dataset folder holds, and every file that is a problem.

``inspect_dataset(root)`` detects the layout, opens the header of every image (Pillow ``open`` +
``verify``, in a thread pool) and returns a ``DatasetReport``; ``render_report`` turns it into text.

Problems have a severity:

- ``error``: the loaders cannot use the file (zero bytes, not an image, corrupt or truncated, broken
  symlink, empty folder, an attribute line that does not parse, a listed image that is missing);
- ``warning``: the file is used, but converted or suspicious (16-bit, CMYK, EXIF rotation, smaller
  than ``min_size``, an A|B image that is not twice as wide as high, a symlink, a non-image file in an
  image folder, an image without attribute labels, an extension that does not match the content).

Grayscale, RGBA and palette images are not problems (the loaders convert them); they are counted in
the modes. Names with spaces or non-ASCII characters are counted in the notes.
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from translate.catalog.commands import suggested_command
from translate.catalog.image_check import ImageInfo, Problem, check_image
from translate.data.attributes import read_attribute_file
from translate.data.idx import IDX_PATTERN, open_idx, read_idx_header
from translate.data.io import walk_files
from translate.data.layout import ImageGroup, Layout, detect_layout, is_image_name
from translate.errors import DataError

# check_image, ImageInfo and Problem live in translate.catalog.image_check; still importable from here.
__all__ = [
    "DatasetReport",
    "GroupReport",
    "IdxReport",
    "ImageInfo",
    "Problem",
    "check_image",
    "inspect_dataset",
    "render_report",
]

MODE_CHANNELS = {
    "1": 1,
    "L": 1,
    "P": 3,
    "P+alpha": 4,
    "I": 1,
    "I;16": 1,
    "I;16B": 1,
    "I;16L": 1,
    "I;16N": 1,
    "F": 1,
    "LA": 2,
    "La": 2,
    "PA": 4,
    "RGB": 3,
    "YCbCr": 3,
    "LAB": 3,
    "HSV": 3,
    "RGBA": 4,
    "RGBa": 4,
    "RGBX": 4,
    "CMYK": 4,
}


@dataclass
class GroupReport:
    """One image folder of the layout: its images, the usable ones, their sizes, modes and formats."""

    label: str
    path: Path
    images: int = 0
    usable: int = 0
    other_files: int = 0
    sizes: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)
    formats: Counter = field(default_factory=Counter)


@dataclass
class IdxReport:
    """One IDX file: the type and shape of its header, and the label histogram of a labels file."""

    name: str
    path: Path
    dtype: str | None = None
    shape: tuple[int, ...] = ()
    classes: dict[int, int] | None = None  # label histogram (label files)


@dataclass
class DatasetReport:
    """What ``inspect_dataset`` found: per-folder counts, attributes or IDX files, every problem."""

    root: Path
    layout: Layout
    groups: list[GroupReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    attributes: dict[str, int] = field(default_factory=dict)  # positives per attribute
    attribute_rows: int = 0
    idx: list[IdxReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files_checked: int = 0
    seconds: float = 0.0

    @property
    def images(self) -> int:
        return sum(g.images for g in self.groups)

    @property
    def usable(self) -> int:
        """Usable samples: images the loaders can read, or IDX images."""
        if self.layout.kind == "idx":
            return sum(r.shape[0] for r in self.idx if r.classes is None and r.shape and r.dtype)
        return sum(g.usable for g in self.groups)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]


# --- files of a group --------------------------------------------------------------------------------


def _walk(group: ImageGroup) -> tuple[list[Path], list[Path]]:
    """(image files, other files) of a group, sorted."""
    files = walk_files(group.path, group.recursive, tuple(group.exclude))
    return [f for f in files if is_image_name(f.name)], [f for f in files if not is_image_name(f.name)]


def _name_notes(paths: list[Path], root: Path) -> list[str]:
    spaces = sum(1 for p in paths if " " in p.name)
    non_ascii = sum(1 for p in paths if not p.name.isascii())
    notes = []
    if spaces:
        notes.append(f"{spaces} file names contain spaces (read fine; quote them in shell commands)")
    if non_ascii:
        notes.append(f"{non_ascii} file names contain non-ASCII characters (read fine)")
    return notes


# --- IDX ---------------------------------------------------------------------------------------------


def _inspect_idx(name: str, path: Path) -> tuple[IdxReport, list[Problem]]:
    report = IdxReport(name, path)
    try:
        report.dtype, report.shape = read_idx_header(path)
    except DataError as exc:
        return report, [Problem(path, str(exc).replace(f"{path}: ", "").replace(f"{path} ", ""))]
    item = np.dtype(report.dtype).itemsize
    expected = math.prod(report.shape) * item
    is_labels = IDX_PATTERN.match(path.name).group("kind") == "labels" and len(report.shape) == 1
    counts: Counter = Counter()
    got = 0
    try:
        with open_idx(path) as f:
            f.read(4 + 4 * len(report.shape))
            while block := f.read(1 << 20):
                got += len(block)
                if is_labels and item == 1:
                    counts.update(block)
    except (OSError, EOFError) as exc:
        report.dtype = None
        return report, [Problem(path, f"corrupt or truncated ({exc}) after {got} data bytes")]
    if got != expected:
        report.dtype = None
        return report, [
            Problem(
                path,
                f"{'truncated' if got < expected else 'too long'}: {got} data bytes, "
                f"header says {'x'.join(map(str, report.shape))} = {expected}",
            )
        ]
    if is_labels:
        report.classes = dict(sorted(counts.items()))
    return report, []


# --- the whole dataset -------------------------------------------------------------------------------


def inspect_dataset(
    root: str | Path,
    min_size: int = 32,
    deep: bool = False,
    workers: int | None = None,
    layout: Layout | None = None,
) -> DatasetReport:
    """Detect the layout of ``root`` and check every file (see the module docstring).

    Args:
        root: the dataset folder.
        min_size: images whose smaller side is under this many pixels are reported as tiny.
        deep: decode every image fully (slower; finds damage inside the pixel data).
        workers: threads reading image headers (default: up to 4).
        layout: the layout to read ``root`` as (default: ``detect_layout(root)``).

    Returns:
        The report: counts per image folder, sizes, modes, attributes or IDX shapes, and every problem.

    Raises:
        DataError: ``root`` holds no dataset layout.
    """
    start = time.perf_counter()
    root = Path(root).expanduser()
    layout = layout or detect_layout(root)
    report = DatasetReport(root, layout)
    if layout.kind == "idx":
        _check_idx_files(report, layout)
    else:
        jobs = _list_groups(report, layout)
        _check_images(report, jobs, min_size, layout.kind == "aligned", deep, workers)
        if layout.kind == "attributes":
            _check_attributes(report, layout)
    report.seconds = time.perf_counter() - start
    return report


def _check_idx_files(report: DatasetReport, layout: Layout) -> None:
    """Check every IDX file of ``layout``, and that each split's images and labels agree in count."""
    counts: dict[str, int] = {}
    for name, path in layout.paths.items():
        idx, problems = _inspect_idx(name, path)
        report.idx.append(idx)
        report.problems += problems
        report.files_checked += 1
        if idx.dtype and idx.shape:
            split = IDX_PATTERN.match(path.name).group("split")
            counts.setdefault(split, idx.shape[0])
            if counts[split] != idx.shape[0]:
                report.problems.append(
                    Problem(path, f"{idx.shape[0]} items, but its images/labels partner has {counts[split]}")
                )


def _list_groups(report: DatasetReport, layout: Layout) -> list[tuple[GroupReport, list[Path]]]:
    """Add a ``GroupReport`` per image folder (empty folders and non-image files as problems) and the
    name notes; return each group's report with the images to check."""
    jobs: list[tuple[GroupReport, list[Path]]] = []
    all_images: list[Path] = []
    for group in layout.groups:
        images, others = _walk(group)
        greport = GroupReport(group.label, group.path, images=len(images), other_files=len(others))
        report.groups.append(greport)
        jobs.append((greport, images))
        all_images += images
        if not images:
            report.problems.append(Problem(group.path, "empty folder (no images)"))
        report.problems += [
            Problem(p, "not an image file (ignored by the loaders)", "warning") for p in others
        ]
    report.notes += _name_notes(all_images, report.root)
    return jobs


def _check_images(
    report: DatasetReport,
    jobs: list[tuple[GroupReport, list[Path]]],
    min_size: int,
    pair: bool,
    deep: bool,
    workers: int | None,
) -> None:
    """``check_image`` every image in a thread pool; count the usable ones, their sizes, modes, formats."""
    workers = workers or min(4, 2 * (os.cpu_count() or 1))  # header reads: I/O and GIL bound, 4 is plenty
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for greport, images in jobs:
            for info in pool.map(lambda p: check_image(p, min_size, pair, deep), images):
                report.files_checked += 1
                report.problems += info.problems
                if info.usable:
                    greport.usable += 1
                    greport.sizes[info.size] += 1
                    greport.modes[f"{info.mode}" + (" 16-bit" if info.bits == 16 else "")] += 1
                    greport.formats[info.format] += 1


def _check_attributes(report: DatasetReport, layout: Layout) -> None:
    attr_path = next(p for p in layout.paths.values() if p.is_file())
    table = read_attribute_file(attr_path)
    report.attributes = table.positives()
    report.attribute_rows = len(table.files)
    report.problems += [Problem(attr_path, f"line {line}: {reason}") for line, reason in table.issues]
    folder = layout.groups[0].path
    present = {p.relative_to(folder).as_posix() for p in _walk(layout.groups[0])[0]}
    listed = set(table.files)
    report.problems += [
        Problem(folder / name, f"listed in {attr_path.name} but missing")
        for name in table.files
        if name not in present
    ]
    report.problems += [
        Problem(folder / name, f"not in {attr_path.name} (no attribute labels)", "warning")
        for name in sorted(present - listed)
    ]


# --- text --------------------------------------------------------------------------------------------


def _size_text(sizes: Counter) -> str:
    if not sizes:
        return "-"
    (common, n), total = sizes.most_common(1)[0], sum(sizes.values())
    if len(sizes) == 1:
        return f"{common[0]}x{common[1]}"
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    return (
        f"{min(widths)}x{min(heights)} .. {max(widths)}x{max(heights)} "
        f"(most {common[0]}x{common[1]}, {100 * n // total}%)"
    )


def _counter_text(counter: Counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.most_common()) or "-"


def _channels(modes: Counter) -> str:
    channels = sorted({MODE_CHANNELS.get(m.split()[0], 0) for m in modes})
    return "/".join(str(c) for c in channels if c) or "-"


def render_report(report: DatasetReport, max_problems: int | None = None) -> str:
    """The report as text: layout, splits, domains, counts, sizes, modes, attributes, then every problem.

    Args:
        report: what ``inspect_dataset`` found.
        max_problems: list at most this many problems (default: all).

    Returns:
        Lines for the terminal, ending with the ``translate train`` command that reads the data, when one
        does and some of it is usable.
    """
    lines = [f"{report.root}", *_layout_lines(report.layout), *_idx_lines(report.idx)]
    lines += _group_lines(report) + _attribute_lines(report)
    lines += [f"  note:      {n}" for n in report.notes]
    lines += _problem_lines(report, max_problems)
    if report.usable == 0:
        lines.append("  nothing usable: training would stop before it starts")
    lines.append(f"  checked {report.files_checked} files in {report.seconds:.2f} s")
    command = suggested_command(report.layout)
    if command and report.usable:
        lines.append(f"  train:     {command}")
    return "\n".join(lines)


def _layout_lines(layout: Layout) -> list[str]:
    lines = [f"  layout:    {layout.kind} - {layout.description}"]
    if layout.alternatives:
        lines.append(f"  also fits: {', '.join(layout.alternatives)}")
    if layout.splits:
        lines.append(f"  splits:    {', '.join(layout.splits)}")
    if layout.domains:
        lines.append(f"  domains:   {', '.join(layout.domains)}")
    return lines


def _idx_lines(idx_reports: list[IdxReport]) -> list[str]:
    lines = []
    for idx in idx_reports:
        shape = "x".join(map(str, idx.shape)) if idx.shape else "?"
        line = f"  {idx.name:<30} {shape:<14} {idx.dtype or 'unreadable'}"
        if idx.classes is not None:
            line += f"  {len(idx.classes)} classes: " + " ".join(f"{k}:{v}" for k, v in idx.classes.items())
        lines.append(line)
    return lines


def _group_lines(report: DatasetReport) -> list[str]:
    if not report.groups:
        return []
    lines = []
    width = max(len(g.label) for g in report.groups)
    for g in report.groups:
        extra = f", {g.images - g.usable} unusable" if g.images != g.usable else ""
        lines.append(
            f"  {g.label:<{width}}  {g.images:>6} images{extra}  {_size_text(g.sizes)}  "
            f"{_counter_text(g.modes)}  [{_counter_text(g.formats)}]"
        )
    sizes: Counter = sum((g.sizes for g in report.groups), Counter())
    modes: Counter = sum((g.modes for g in report.groups), Counter())
    lines.append(
        f"  total:     {report.images} images, {report.usable} usable; sizes {_size_text(sizes)}; "
        f"channels {_channels(modes)} (modes {_counter_text(modes)})"
    )
    return lines


def _attribute_lines(report: DatasetReport) -> list[str]:
    if not report.attributes:
        return []
    count = f"{len(report.attributes)} for {report.attribute_rows} images"
    lines = [f"  attributes: {count} (images with the attribute):"]
    items = [f"{k} {v}" for k, v in report.attributes.items()]
    lines += ["    " + ", ".join(items[i : i + 5]) for i in range(0, len(items), 5)]
    return lines


def _problem_lines(report: DatasetReport, max_problems: int | None) -> list[str]:
    if not report.problems:
        return ["  problems:  none"]
    lines = [
        f"  problems:  {len(report.errors)} errors (skipped by the loaders), {len(report.warnings)} warnings "
        "(used, converted)"
    ]
    shown = report.problems if max_problems is None else report.problems[:max_problems]
    for p in sorted(shown, key=lambda p: (p.severity != "error", str(p.path))):
        try:
            where = p.path.relative_to(report.root).as_posix()
        except ValueError:
            where = str(p.path)
        lines.append(f"    {p.severity:<7}  {where}: {p.reason}")
    if len(shown) < len(report.problems):
        lines.append(f"    ... and {len(report.problems) - len(shown)} more")
    return lines
