"""The registry of public datasets, read from ``translate/catalog/datasets.yaml`` (data, not code).

``load_catalog()`` returns ``{name: DatasetEntry}``; ``get_entry(name)`` adds a did-you-mean error.
The file is found, in order, at ``$TRANSLATE_DATASET_CATALOG`` (a private mirror list, tests) or at
``datasets.yaml`` beside this module (shipped in the package; its fields: ``DATASETS.md``).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from translate.errors import DataError

CATALOG_ENV = "TRANSLATE_DATASET_CATALOG"
DEFAULT_CATALOG = Path(__file__).resolve().with_name("datasets.yaml")
LAYOUT_KINDS = ("aligned", "cyclegan", "domains", "attributes", "flat", "idx")


@dataclass(frozen=True)
class DatasetEntry:
    """One downloadable (or manual) dataset of the catalog."""

    name: str
    description: str
    layout: str
    family: str = ""
    url: str | None = None
    archive: str | None = None  # "tar.gz" | "zip" | ...; None: detected from the file
    size_mb: float | None = None  # approximate, as published; display only
    size_bytes: int | None = None  # exact, verified after download when known
    md5: str | None = None
    sha256: str | None = None
    manual: bool = False
    steps: tuple[str, ...] = ()
    licence: str = ""
    homepage: str | None = None
    splits: tuple[str, ...] = ()
    upstream_name: str | None = None  # the authors' name when ours differs (maps -> maps_cyclegan)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def size_text(self) -> str:
        """Human size: ``"~29 MB"``, ``"~2.0 GB"``, exact bytes when only those are known, or ``"?"``."""
        if self.size_mb is not None:
            mb = float(self.size_mb)
            return f"~{mb / 1000:.1f} GB" if mb >= 1000 else f"~{mb:.0f} MB"
        if self.size_bytes is not None:
            return f"{self.size_bytes / 1e6:.1f} MB"
        return "?"

    @property
    def filename(self) -> str:
        """File name of the archive (for messages and the partial-download file)."""
        if self.url:
            tail = self.url.rstrip("/").rsplit("/", 1)[-1]
            if tail:
                return tail
        return f"{self.upstream_name or self.name}.{self.archive or 'archive'}"

    def manual_steps_text(self) -> str:
        """The steps to obtain a manual dataset, one numbered line each."""
        lines = [f"{self.name} cannot be downloaded automatically ({self.licence or 'licence agreement'})."]
        lines += [f"  {i}. {step}" for i, step in enumerate(self.steps, 1)]
        return "\n".join(lines)


_FIELDS = {f for f in DatasetEntry.__dataclass_fields__ if f not in ("name", "extra")}


def catalog_path() -> Path:
    """Where the catalog is read from (``$TRANSLATE_DATASET_CATALOG`` or the package's ``datasets.yaml``)."""
    override = os.environ.get(CATALOG_ENV)
    return Path(override).expanduser() if override else DEFAULT_CATALOG


def _entry(name: str, raw: dict, source: Path) -> DatasetEntry:
    if not isinstance(raw, dict):
        raise DataError(f"{source}: entry {name!r} must be a mapping, got {type(raw).__name__}")
    for key in ("description", "layout"):
        if not raw.get(key):
            raise DataError(f"{source}: entry {name!r} has no {key!r}")
    if raw["layout"] not in LAYOUT_KINDS:
        raise DataError(
            f"{source}: entry {name!r} has layout {raw['layout']!r}; known: {', '.join(LAYOUT_KINDS)}"
        )
    if not raw.get("manual") and not raw.get("url"):
        raise DataError(f"{source}: entry {name!r} has no url and is not marked manual: true")
    known = {k: v for k, v in raw.items() if k in _FIELDS}
    for key in ("steps", "splits"):
        if known.get(key) is not None:
            known[key] = tuple(str(s) for s in known[key])
        else:
            known.pop(key, None)
    for key in ("md5", "sha256"):
        if known.get(key):
            known[key] = str(known[key]).lower()
    known["description"] = " ".join(str(known["description"]).split())
    return DatasetEntry(name=name, extra={k: v for k, v in raw.items() if k not in _FIELDS}, **known)


def read_entries(path: Path, key: str, what: str) -> dict:
    """The ``key:`` mapping of the YAML file ``path`` (a catalog), or a one-line DataError naming ``what``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DataError(f"{what} {path} is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict) or not isinstance(data.get(key), dict):
        raise DataError(f"{what} {path} has no '{key}:' mapping")
    return data[key]


@lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> dict[str, DatasetEntry]:
    entries = read_entries(path, "datasets", "dataset catalog")
    return {str(name): _entry(str(name), raw, path) for name, raw in entries.items()}


def load_catalog(path: str | Path | None = None) -> dict[str, DatasetEntry]:
    """Every dataset of the catalog, by name, in file order."""
    path = Path(path).expanduser() if path is not None else catalog_path()
    if not path.is_file():
        raise DataError(
            f"dataset catalog not found at {path}: it ships in the package "
            f"(translate/catalog/datasets.yaml); reinstall, or set {CATALOG_ENV}=/path/to/catalog.yaml"
        )
    return dict(_load(path.resolve(), path.stat().st_mtime))


def get_entry(name: str, catalog: dict[str, DatasetEntry] | None = None) -> DatasetEntry:
    """The entry called ``name``; an unknown name raises DataError with the closest known names."""
    catalog = load_catalog() if catalog is None else catalog
    if name in catalog:
        return catalog[name]
    by_upstream = [e for e in catalog.values() if e.upstream_name == name]
    close = difflib.get_close_matches(name, list(catalog), n=3, cutoff=0.5)
    hint = [e.name for e in by_upstream] + [c for c in close if c not in {e.name for e in by_upstream}]
    did_you_mean = f"; did you mean {' or '.join(hint)}?" if hint else ""
    raise DataError(
        f"unknown dataset {name!r}{did_you_mean} (known: {', '.join(catalog)}; see `translate datasets list`)"
    )
