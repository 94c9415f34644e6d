"""Which folders a dataset reads, and the errors that say what was expected when they are absent.

Aligned (pix2pix) under ``root``: training reads ``root/train``, else ``root`` itself; evaluation reads
``root/test``, else ``root/val``, else the training folder (with a warning).

Unaligned (CycleGAN) under ``root``:

- ``domains=[a, b]`` (each a name or a sub-path such as ``apple/train``): training reads ``root/a``, or
  ``root/a/train`` when that exists; evaluation reads the first of ``root/test/a``, ``root/a/test``,
  ``root/val/a``, ``root/a/val`` (for a domain named by its training split, ``apple/train``: also
  ``root/apple/test`` and ``root/apple/val``), else the training folder (with a warning). The demo data uses
  ``root/test/a``; per-domain ``train/`` and ``test/`` folders (``emoji/apple/{train,test}``) work as is.
- ``domains=None``: ``root/trainA`` and ``root/trainB``; evaluation ``testA``/``testB``, else
  ``valA``/``valB``, else the training folders (with a warning).

When a folder is read as a whole because it has no ``train/``, its top-level ``test/`` and ``val/``
sub-folders are left out, so held-out images never leak into training.
"""

from __future__ import annotations

import logging
from pathlib import Path

from translate.data.io import IMAGE_EXTENSIONS, list_images
from translate.errors import DataError

log = logging.getLogger("translate")

HELD_OUT = ("test", "val")


def data_root(root: str | Path | None) -> Path:
    """The data root (None means the current folder); it must be an existing folder."""
    path = Path(root if root is not None else ".").expanduser()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise DataError(f"data root {path} {what} (set it with --data-root or data.root)")
    return path


def aligned_folder(root: Path, train: bool) -> tuple[Path, tuple[str, ...]]:
    """The folder of A|B images and the top-level sub-folders to leave out of it."""
    if train:
        return (root / "train", ()) if (root / "train").is_dir() else (root, HELD_OUT)
    for name in HELD_OUT:
        if (root / name).is_dir():
            return root / name, ()
    fallback, exclude = aligned_folder(root, train=True)
    log.warning("no test/ or val/ folder in %s: evaluating on the training images in %s", root, fallback)
    return fallback, exclude


def domain_folders(
    root: Path, domains: list[str] | tuple[str, ...] | None, train: bool
) -> tuple[tuple[Path, tuple[str, ...]], tuple[Path, tuple[str, ...]]]:
    """The two domain folders (A, B), each with the top-level sub-folders to leave out of it."""
    if domains is None:
        names = ("trainA", "trainB") if train else _eval_ab_names(root)
        return (root / names[0], ()), (root / names[1], ())
    if len(domains) != 2:
        raise DataError(
            f"this method translates between two domains (--domains A B); got {len(domains)}: "
            f"{' '.join(domains)}"
        )
    return domain_folder(root, domains[0], train), domain_folder(root, domains[1], train)


def _eval_ab_names(root: Path) -> tuple[str, str]:
    for split in HELD_OUT:
        if (root / f"{split}A").is_dir() and (root / f"{split}B").is_dir():
            return f"{split}A", f"{split}B"
    log.warning("no testA/testB or valA/valB folders in %s: evaluating on trainA/trainB", root)
    return "trainA", "trainB"


def domain_folder(root: Path, domain: str, train: bool) -> tuple[Path, tuple[str, ...]]:
    """The folder of one named domain (see the module docstring) and the sub-folders to leave out of it."""
    folder = root / domain
    if not train:
        candidates = [root / "test" / domain, folder / "test", root / "val" / domain, folder / "val"]
        if folder.name == "train":  # a domain named by its training split (apple/train): its sibling split
            candidates += [folder.parent / "test", folder.parent / "val"]
        for candidate in candidates:
            if candidate.is_dir():
                return candidate, ()
    if (folder / "train").is_dir():
        chosen, exclude = folder / "train", ()
    else:
        chosen, exclude = folder, HELD_OUT
    if not train:
        log.warning(
            "no held-out folder for domain %r (tried %s/test/%s and %s/test): evaluating on %s",
            domain,
            root,
            domain,
            folder,
            chosen,
        )
    return chosen, exclude


def image_files(
    folder: Path, expected: str, exclude: tuple[str, ...] = (), max_images: int | None = None
) -> list[Path]:
    """The sorted images of ``folder`` (first ``max_images``); a DataError saying ``expected`` when none."""
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "not found"
        raise DataError(f"data folder {folder} {what} ({expected})")
    files = list_images(folder)
    if exclude:
        files = [f for f in files if f.relative_to(folder).parts[0] not in exclude]
    if not files:
        types = " ".join(sorted(IMAGE_EXTENSIONS))
        raise DataError(f"no images in {folder} ({expected}; image types: {types})")
    if max_images is not None:
        if max_images < 1:
            raise DataError(f"data.max_images must be a positive number or null, got {max_images}")
        files = files[:max_images]
    return files


def aligned_expectation(root: Path) -> str:
    return f"expected A|B side-by-side images in {root}/train/ (or in {root} itself) and {root}/test/"


def unaligned_expectation(root: Path, domains: list[str] | tuple[str, ...] | None) -> str:
    if domains is None:
        return (
            f"expected {root}/trainA/ and {root}/trainB/, or one folder per domain under {root} "
            f"named with --domains, e.g. --domains photo anime"
        )
    return f"expected one folder per domain under {root}: --domains {' '.join(domains)}"
