"""``translate datasets combine A_DIR B_DIR OUT_DIR``: two folders of matching images into pix2pix's
aligned format, one image per pair with A on the left and B on the right (what junyanz's
``datasets/combine_A_and_B.py`` does).

- Pairs are matched by file name without the extension (``A/1.jpg`` with ``B/1.png``), in ``A_DIR``
  itself and in each of its sub-folders (``train/``, ``val/``, ``test/``: one split each), against the
  folder of the same name in ``B_DIR``. Images of one side without a partner are left out and counted.
- Everything is checked before anything is written: A and B of each pair must have the same size (after
  EXIF rotation), else one line names the pairs that differ; no output may exist already (``overwrite``);
  ``OUT_DIR`` may not lie inside ``A_DIR`` or ``B_DIR``.
- Each pair is written whole (temporary name, then rename), as ``OUT_DIR/SPLIT/NAME`` with A's extension
  (``.png`` for formats that are not written: ``.bmp``, ``.tif`` ...); a full disk is a ``StorageError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from translate.catalog.disk import disk_full, is_disk_full
from translate.errors import DataError

EXIF_ORIENTATION = 0x0112
_ROTATED = (5, 6, 7, 8)  # EXIF orientations that swap width and height
_SHOWN = 3  # names listed in a one-line message before "and N more"


@dataclass(frozen=True)
class Pair:
    """One A image, its B partner and the A|B image they make."""

    a: Path
    b: Path
    out: Path


@dataclass
class Plan:
    """What ``plan_pairs`` found: the pairs, and the images of each side that have no partner."""

    pairs: list[Pair] = field(default_factory=list)
    only_a: list[Path] = field(default_factory=list)
    only_b: list[Path] = field(default_factory=list)
    sizes: set[tuple[int, int]] = field(default_factory=set)  # of one half, once ``check_pairs`` ran

    def counts(self, out_dir: Path) -> dict[str, int]:
        """Pairs per split folder of ``out_dir`` (``"."`` for ``out_dir`` itself), in order."""
        counts: dict[str, int] = {}
        for pair in self.pairs:
            split = pair.out.parent.relative_to(out_dir).as_posix()
            counts[split] = counts.get(split, 0) + 1
        return counts


def _listed(items: list[str]) -> str:
    """The first few ``items``, then how many more: ``a, b, c and 7 more``."""
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _names(paths: list[Path], root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in paths]


def _images_by_stem(folder: Path) -> dict[str, Path]:
    """The images directly in ``folder`` by name without extension; two with one stem are an error."""
    from translate.data.layout import is_image_name  # imports translate.data (torch)

    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not (is_image_name(path.name) and path.is_file()):
            continue
        if path.stem in found:
            raise DataError(
                f"{folder} holds {found[path.stem].name} and {path.name}: which one pairs with the other "
                f"side's {path.stem}? Rename or move one"
            )
        found[path.stem] = path
    return found


def _splits(a_dir: Path, b_dir: Path) -> list[str]:
    """``"."`` when either side holds images directly, then every sub-folder name of either side."""
    subfolders = {
        p.name for side in (a_dir, b_dir) for p in side.iterdir() if p.is_dir() and not p.name.startswith(".")
    }
    top = "." if _images_by_stem(a_dir) or _images_by_stem(b_dir) else None
    return ([top] if top else []) + sorted(subfolders)


def _output_name(a: Path) -> str:
    from translate.data.io import WRITE_FORMATS  # imports translate.data (torch)

    return a.name if a.suffix.lower() in WRITE_FORMATS else f"{a.stem}.png"


def _no_pairs(plan: Plan, a_dir: Path, b_dir: Path) -> str:
    if not (plan.only_a or plan.only_b):
        return f"no images in {a_dir} or {b_dir} (directly or in their sub-folders)"
    a_names, b_names = _listed(_names(plan.only_a, a_dir)), _listed(_names(plan.only_b, b_dir))
    return (
        f"no pairs: no image of {a_dir} has a partner of the same name in {b_dir} "
        f"(A: {a_names or 'none'}; B: {b_names or 'none'})"
    )


def plan_pairs(a_dir: Path, b_dir: Path, out_dir: Path) -> Plan:
    """Match the images of ``a_dir`` and ``b_dir`` by name, split by split (see the module docstring)."""
    plan = Plan()
    for split in _splits(a_dir, b_dir):
        a_images, b_images = _images_by_stem(a_dir / split), _images_by_stem(b_dir / split)
        for stem, a in a_images.items():
            if stem in b_images:
                plan.pairs.append(Pair(a, b_images[stem], out_dir / split / _output_name(a)))
            else:
                plan.only_a.append(a)
        plan.only_b += [b for stem, b in b_images.items() if stem not in a_images]
    if not plan.pairs:
        raise DataError(_no_pairs(plan, a_dir, b_dir))
    return plan


def oriented_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image as it is read (EXIF rotation applied), from its header alone.

    Raises:
        UnreadableImageError: not an image, or above the pixel limit.
    """
    from PIL import Image

    from translate.data.io import UnreadableImageError, pixel_limit_problem

    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except Exception as exc:  # Pillow raises many kinds for a file that is not an image
        raise UnreadableImageError(path, str(exc) or type(exc).__name__) from None
    problem = pixel_limit_problem(width, height)
    if problem is not None:
        raise UnreadableImageError(path, problem)
    return (height, width) if orientation in _ROTATED else (width, height)


def check_pairs(plan: Plan, a_dir: Path, overwrite: bool) -> None:
    """Raise a one-line DataError when a pair's sizes differ or (without ``overwrite``) an output exists."""
    differ = []
    for pair in plan.pairs:
        a_size, b_size = oriented_size(pair.a), oriented_size(pair.b)
        plan.sizes.add(a_size)
        if a_size != b_size:
            differ.append((pair, a_size, b_size))
    if differ:
        shown = [
            f"{p.a.relative_to(a_dir).as_posix()} (A {a[0]}x{a[1]}, B {b[0]}x{b[1]})" for p, a, b in differ
        ]
        raise DataError(
            f"{len(differ)} of {len(plan.pairs)} pairs differ in size: {_listed(shown)}; resize one side "
            "to the other's size first (nothing was written)"
        )
    existing = [str(p.out) for p in plan.pairs if p.out.exists()]
    if existing and not overwrite:
        raise DataError(
            f"{len(existing)} of the {len(plan.pairs)} outputs exist already ({_listed(existing)}); "
            "pass --overwrite to replace them (nothing was written)"
        )


def _check_places(a_dir: Path, b_dir: Path, out_dir: Path) -> None:
    for name, side in (("A_DIR", a_dir), ("B_DIR", b_dir)):
        if not side.is_dir():
            raise DataError(f"{name} {side} is not a folder")
        if out_dir.resolve().is_relative_to(side.resolve()):
            raise DataError(f"OUT_DIR {out_dir} lies inside {name} {side}: choose a folder outside both")


def _write_pair(pair: Pair, quality: int) -> None:
    import numpy as np

    from translate.data.io import read_image, write_image

    joined = np.concatenate([read_image(pair.a), read_image(pair.b)], axis=1)
    write_image(pair.out, joined, quality=quality)


def combine_folders(
    a_dir: str | Path,
    b_dir: str | Path,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    quality: int = 95,
    progress: bool = True,
) -> Plan:
    """Write the A|B pair of every image of ``a_dir`` and its namesake in ``b_dir`` to ``out_dir``.

    Args:
        a_dir, b_dir: the two sides, each with images directly or in split sub-folders (or both).
        out_dir: receives ``SPLIT/NAME`` per pair (created as needed).
        overwrite: replace outputs that exist already (otherwise they stop the run before it starts).
        quality: JPEG / WebP quality of the pairs written in those formats (PNG is lossless).
        progress: show a tqdm bar.

    Returns:
        The plan carried out: its pairs, and the images of either side that had no partner.

    Raises:
        DataError: no pairs, sizes that differ, outputs that exist, an unreadable image (one line).
        StorageError: the disk filled up; the pairs written so far are whole.
    """
    a_dir, b_dir, out_dir = Path(a_dir).expanduser(), Path(b_dir).expanduser(), Path(out_dir).expanduser()
    _check_places(a_dir, b_dir, out_dir)
    plan = plan_pairs(a_dir, b_dir, out_dir)
    check_pairs(plan, a_dir, overwrite)
    for pair in tqdm(plan.pairs, desc="combining", unit=" pairs", disable=not progress, leave=False):
        try:
            _write_pair(pair, quality)
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            then = "free some space and run again with --overwrite (the pairs written so far are whole)"
            raise disk_full(out_dir, f"writing {pair.out}", then) from None
    return plan


def summary(plan: Plan, a_dir: Path, b_dir: Path, out_dir: Path) -> list[str]:
    """What ``combine_folders`` did, for the user: the pairs per split, and what had no partner."""
    per_split = ", ".join(
        f"{count} in {split}/" if split != "." else f"{count} directly"
        for split, count in plan.counts(out_dir).items()
    )
    lines = [f"wrote {len(plan.pairs)} A|B pairs to {out_dir} ({per_split})"]
    for side, paths, other in ((a_dir, plan.only_a, "B"), (b_dir, plan.only_b, "A")):
        if paths:
            lines.append(
                f"left out {len(paths)} of {side} with no {other} partner: {_listed(_names(paths, side))}"
            )
    oblong = sorted(size for size in plan.sizes if size[0] != size[1])
    if oblong:
        lines.append(
            f"note: halves of {oblong[0][0]}x{oblong[0][1]} are not square; `translate train pix2pix` "
            "recognises an A|B folder by its 2:1 images: crop or resize the halves to squares to train on it"
        )
    return lines
