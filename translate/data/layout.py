"""Recognise how a dataset folder is laid out, so that users rarely have to name a format.

``detect_layout(root)`` returns a ``Layout`` of one of these kinds:

- ``idx``: MNIST / Fashion-MNIST IDX files (``train-images-idx3-ubyte[.gz]``...), in ``root`` or ``root/raw``;
- ``cyclegan``: ``trainA/ trainB/`` (``testA/ testB/``, ``valA/ valB/`` when present);
- ``aligned``: pix2pix ``train/ val/ test/`` of A|B side-by-side images (width = 2 x height), or such
  images directly in ``root``;
- ``attributes``: a CelebA-style attribute file (line 1 the count, line 2 the attribute names, then a
  file name and +1/-1 values per line) next to an image folder;
- ``domains``: two or more named domain folders (``photo/ anime/``), each holding images directly or
  in ``train/ test/`` sub-folders (``emoji/apple/{train,test}``), or split-first (``test/photo``);
- ``flat``: images directly in ``root`` (or in its only sub-folder, or in split folders that are not
  A|B pairs): unconditional training.

Anything else raises a DataError that says what was looked for and what was found.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from translate.data.attributes import AttributeTable, read_attribute_file, read_attribute_head
from translate.data.idx import IDX_PATTERN, IDX_TYPES, find_idx_files, idx_split, read_idx, read_idx_header
from translate.data.io import IMAGE_EXTENSIONS
from translate.errors import DataError

# Names that moved to translate.data.idx and translate.data.attributes, still importable from here.
__all__ = [
    "IDX_PATTERN",
    "IDX_TYPES",
    "KINDS",
    "SPLITS",
    "AttributeTable",
    "ImageGroup",
    "Layout",
    "detect_layout",
    "idx_split",
    "is_image_name",
    "read_attribute_file",
    "read_idx",
    "read_idx_header",
]

SPLITS = ("train", "val", "test")
KINDS = ("aligned", "cyclegan", "domains", "attributes", "flat", "idx")
CYCLEGAN_PATTERN = re.compile(r"^(train|val|test)([A-Z])$")
ATTRIBUTE_IMAGE_FOLDERS = ("images", "img_align_celeba", "img", "Img/img_align_celeba", "Img")
_ALIGNED_SAMPLE = 8


@dataclass
class ImageGroup:
    """One folder of images of a layout: ``split`` and/or ``domain`` say what it holds."""

    path: Path
    split: str | None = None
    domain: str | None = None
    exclude: tuple[str, ...] = ()  # top-level sub-folders that are not part of this group (held-out splits)
    recursive: bool = True

    @property
    def label(self) -> str:
        parts = [p for p in (self.domain, self.split) if p]
        return "/".join(parts) if parts else "images"


@dataclass
class Layout:
    """What ``detect_layout`` found under ``root``.

    ``paths`` maps a name (a path relative to ``root``: ``"train"``, ``"trainA"``, ``"apple/test"``,
    ``"list_attr_celeba.txt"``, ``"train-images-idx3-ubyte.gz"``) to the absolute folder or file;
    ``groups`` are the image folders with their split and domain (empty for ``idx``).
    """

    kind: str
    root: Path
    description: str
    splits: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    paths: dict[str, Path] = field(default_factory=dict)
    groups: list[ImageGroup] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    alternatives: list[str] = field(default_factory=list)  # other kinds the same folder also fits


def is_image_name(name: str) -> bool:
    """Whether a file name is one the loaders read as an image.

    Args:
        name: a file name (not a path).

    Returns:
        True for a name with an image extension (``IMAGE_EXTENSIONS``, any case) that is not hidden.
    """
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(folder) if not e.name.startswith(".") and _is_dir(e))
    except OSError:
        return []


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _direct_images(folder: Path, limit: int | None = None) -> list[str]:
    """Names of the image files directly in ``folder`` (by extension), at most ``limit``; unsorted."""
    found: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_image_name(entry.name):
                    found.append(entry.name)
                    if limit is not None and len(found) >= limit:
                        break
    except OSError:
        return []
    return found


def _has_images(folder: Path, depth: int = 2) -> bool:
    """Whether ``folder`` holds an image directly or in sub-folders up to ``depth`` levels down."""
    if _direct_images(folder, limit=1):
        return True
    return depth > 0 and any(_has_images(sub, depth - 1) for sub in _subdirs(folder))


def _evenly(items: list[str], count: int) -> list[str]:
    items = sorted(items)
    if len(items) <= count:
        return items
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def _is_pair_folder(folder: Path) -> bool:
    """Whether most sampled images of ``folder`` are A|B pairs (width == 2 x height)."""
    sizes = []
    for name in _evenly(_direct_images(folder), _ALIGNED_SAMPLE):
        try:
            with Image.open(folder / name) as image:
                sizes.append(image.size)
        except Exception:  # unreadable files are for `inspect` to report, not for detection to trip on
            continue
    pairs = sum(1 for w, h in sizes if w == 2 * h)
    return bool(sizes) and pairs * 2 >= len(sizes)


# --- IDX ---------------------------------------------------------------------------------------------


def _detect_idx(root: Path) -> Layout | None:
    files = find_idx_files(root)
    if not files:
        return None
    order = {s: i for i, s in enumerate(SPLITS)}
    splits = sorted({idx_split(n) for n in files}, key=lambda s: (order.get(s, len(order)), s))
    parts = []
    for name, path in files.items():
        try:
            dtype, shape = read_idx_header(path)
            parts.append(f"{name} {'x'.join(map(str, shape))} {dtype}")
        except DataError:
            parts.append(f"{name} (unreadable header)")
    return Layout("idx", root, "IDX files (MNIST format): " + "; ".join(parts), splits=splits, paths=files)


# --- CycleGAN / aligned ---------------------------------------------------------------------------


def _detect_cyclegan(root: Path, subdirs: list[Path]) -> Layout | None:
    found = {d.name: d for d in subdirs if CYCLEGAN_PATTERN.match(d.name)}  # empty ones too: inspect says so
    if not all(n in found and _has_images(found[n], depth=1) for n in ("trainA", "trainB")):
        return None
    domains = sorted({CYCLEGAN_PATTERN.match(n).group(2) for n in found})
    splits = [s for s in SPLITS if any(n.startswith(s) for n in found)]
    groups = [
        ImageGroup(found[f"{s}{d}"], split=s, domain=d) for s in splits for d in domains if f"{s}{d}" in found
    ]
    return Layout(
        "cyclegan",
        root,
        f"CycleGAN unpaired domains {' / '.join(domains)}: {', '.join(sorted(found))}",
        splits=splits,
        domains=domains,
        paths={n: p for n, p in sorted(found.items())},
        groups=groups,
    )


def _is_empty(folder: Path) -> bool:
    try:
        return not any(True for e in os.scandir(folder) if not e.name.startswith("."))
    except OSError:
        return False


def _detect_aligned(root: Path, subdirs: list[Path]) -> Layout | None:
    split_dirs = [d for d in subdirs if d.name in SPLITS and _direct_images(d, limit=1)]
    if split_dirs:
        if not any(_is_pair_folder(d) for d in split_dirs):
            return None
        split_dirs += [d for d in subdirs if d.name in SPLITS and d not in split_dirs and _is_empty(d)]
        splits = [s for s in SPLITS if any(d.name == s for d in split_dirs)]
        return Layout(
            "aligned",
            root,
            f"pix2pix A|B pairs (left half A, right half B) in {', '.join(f'{s}/' for s in splits)}",
            splits=splits,
            paths={d.name: d for d in split_dirs},
            groups=[ImageGroup(root / s, split=s) for s in splits],
        )
    if _direct_images(root, limit=1) and _is_pair_folder(root):
        return Layout(
            "aligned",
            root,
            "pix2pix A|B pairs (left half A, right half B) directly in the folder",
            paths={".": root},
            groups=[ImageGroup(root, exclude=SPLITS, recursive=False)],
            alternatives=["flat"],
        )
    return None


# --- attributes -----------------------------------------------------------------------------------


def _detect_attributes(root: Path, subdirs: list[Path]) -> Layout | None:
    candidates = sorted(
        p for folder in (root, root / "Anno") if folder.is_dir() for p in folder.glob("*.txt") if p.is_file()
    )
    for attr_file in candidates:
        head = read_attribute_head(attr_file)
        if head is None or not is_image_name(head.first_file):
            continue
        count, names = head.declared_count, head.names
        folders = [
            root / n for n in ATTRIBUTE_IMAGE_FOLDERS if (root / n).is_dir() and _direct_images(root / n, 1)
        ]
        folders += [d for d in subdirs if d not in folders and _direct_images(d, 1)]
        if _direct_images(root, 1):
            folders.append(root)
        if not folders:
            continue
        images = folders[0]
        rel_attr = attr_file.relative_to(root).as_posix()
        rel_images = images.relative_to(root).as_posix()
        return Layout(
            "attributes",
            root,
            f"attribute file {rel_attr} ({count} images x {len(names)} attributes) "
            f"for images in {rel_images}/",
            paths={rel_attr: attr_file, rel_images: images},
            attributes=names,
            groups=[ImageGroup(images, exclude=SPLITS if images == root else (), recursive=images != root)],
        )
    return None


# --- domains / flat -------------------------------------------------------------------------------


def _detect_domains(root: Path, subdirs: list[Path]) -> Layout | None:
    groups: list[ImageGroup] = []
    split_containers = [d for d in subdirs if d.name in SPLITS and not _direct_images(d, 1)]
    for folder in subdirs:
        if folder.name in SPLITS:
            continue
        inner = {d.name: d for d in _subdirs(folder) if d.name in SPLITS and _has_images(d, depth=1)}
        if inner:
            groups += [ImageGroup(inner[s], split=s, domain=folder.name) for s in SPLITS if s in inner]
            if _direct_images(folder, 1):  # images beside the split folders: part of training
                groups.append(
                    ImageGroup(folder, split=None, domain=folder.name, exclude=SPLITS, recursive=False)
                )
        elif _has_images(folder, depth=2):
            groups.append(ImageGroup(folder, split="train" if split_containers else None, domain=folder.name))
    for container in split_containers:  # split-first: test/photo, test/anime
        for folder in _subdirs(container):
            if _has_images(folder, depth=1):
                groups.append(ImageGroup(folder, split=container.name, domain=folder.name))
    domains = sorted({g.domain for g in groups})
    if len(domains) < 2:
        return None
    splits = [s for s in SPLITS if any(g.split == s for g in groups)]
    paths = {g.path.relative_to(root).as_posix(): g.path for g in groups}
    where = ", ".join(f"{k}/" for k in paths)
    return Layout(
        "domains",
        root,
        f"{len(domains)} domain folders ({', '.join(domains)}): {where}",
        splits=splits,
        domains=domains,
        paths=paths,
        groups=groups,
    )


def _detect_flat(root: Path, subdirs: list[Path]) -> Layout | None:
    if _direct_images(root, limit=1):
        return Layout(
            "flat",
            root,
            "a flat folder of images (unconditional)",
            paths={".": root},
            groups=[ImageGroup(root, exclude=SPLITS)],
        )
    split_dirs = [d for d in subdirs if d.name in SPLITS and _direct_images(d, limit=1)]
    if split_dirs:
        splits = [s for s in SPLITS if any(d.name == s for d in split_dirs)]
        return Layout(
            "flat",
            root,
            f"split folders of single images (not A|B pairs): {', '.join(f'{s}/' for s in splits)}",
            splits=splits,
            paths={s: root / s for s in splits},
            groups=[ImageGroup(root / s, split=s) for s in splits],
        )
    with_images = [d for d in subdirs if _has_images(d, depth=3)]
    if len(with_images) == 1:
        only = with_images[0]
        return Layout(
            "flat",
            root,
            f"a flat folder of images in {only.name}/ (unconditional)",
            paths={only.name: only},
            groups=[ImageGroup(only)],
        )
    return None


def _summary(root: Path, subdirs: list[Path]) -> str:
    try:
        files = [e.name for e in os.scandir(root) if not e.name.startswith(".") and not _is_dir(e)]
    except OSError:
        files = []
    parts = []
    if subdirs:
        names = [d.name + "/" for d in subdirs[:8]]
        parts.append("folders " + " ".join(names) + (" ..." if len(subdirs) > 8 else ""))
    if files:
        parts.append(
            f"{len(files)} other files ("
            + " ".join(sorted(files)[:5])
            + (" ..." if len(files) > 5 else "")
            + ")"
        )
    return "; ".join(parts) or "nothing"


def detect_layout(root: str | Path, prefer: str | None = None) -> Layout:
    """Recognise the dataset layout under ``root`` (see the module docstring).

    Args:
        root: the dataset folder.
        prefer: the kind to read the folder as when it fits several (one of ``KINDS``). Otherwise the first
            of idx, cyclegan, aligned, attributes, domains, flat wins (a Cityscapes folder prepared with
            both ``train/`` pairs and ``trainA/ trainB/`` is cyclegan).

    Returns:
        The layout, with the other kinds the folder fits in ``alternatives``.

    Raises:
        DataError: ``root`` is missing or a file, ``prefer`` is unknown, or no layout fits (saying what was
            looked for and what was found).
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is a file; give the folder that holds the dataset")
    if prefer is not None and prefer not in KINDS:
        raise DataError(f"unknown layout {prefer!r}; known: {', '.join(KINDS)}")
    subdirs = _subdirs(root)
    found: list[Layout] = []
    for detector in (
        _detect_idx,
        _detect_cyclegan,
        _detect_aligned,
        _detect_attributes,
        _detect_domains,
        _detect_flat,
    ):
        layout = detector(root) if detector is _detect_idx else detector(root, subdirs)
        if layout is not None and all(f.kind != layout.kind for f in found):
            found.append(layout)
            if prefer is None and layout.kind in ("idx", "attributes"):
                break  # unambiguous: the files say what they are
    if found:
        return _choose(found, prefer)
    empty = not subdirs and not any(True for _ in root.iterdir())
    found_text = "empty folder" if empty else "found " + _summary(root, subdirs)
    raise DataError(
        f"no dataset found in {root} ({found_text}); looked for: "
        "IDX files (*-idx3-ubyte[.gz]), CycleGAN trainA/ trainB/, pix2pix train/ val/ test/ of A|B images, "
        "an attribute file (line 1 count, line 2 names, then file +1/-1 ...) next to an image folder, "
        "two or more domain folders of images (photo/ anime/), or images directly in the folder"
    )


def _choose(found: list[Layout], prefer: str | None) -> Layout:
    """The ``prefer`` kind among ``found`` (else the first), with the others it really competes with as
    ``alternatives`` (trainA/ trainB/ also look like domain folders; any images also look flat)."""
    chosen = next((f for f in found if f.kind == prefer), found[0])
    others = [f.kind for f in found if f is not chosen and f.kind not in chosen.alternatives]
    if chosen.kind == "cyclegan":
        others = [k for k in others if k not in ("domains", "flat")]
    elif chosen.kind in ("aligned", "domains"):
        others = [k for k in others if k != "flat"]
    chosen.alternatives = chosen.alternatives + others
    return chosen
