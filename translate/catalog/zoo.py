"""The model zoo: published reference generators by name, downloaded once into a cache of run folders.

``translate/catalog/models.yaml`` (data, packaged with the code; ``$TRANSLATE_MODEL_CATALOG`` names another
file: a private mirror list, tests) lists the pix2pix/CycleGAN authors' generators, yunjey's StarGAN
models and the CUT authors' CUT/FastCUT generators: URL, file format, architecture, direction, licence,
approximate size. ``model_run("style_vangogh")`` returns the run folder of one, downloading and importing
it first when the cache lacks it:

- **cache**: ``$TRANSLATE_HOME/models/NAME`` when ``TRANSLATE_HOME`` is set, else
  ``$XDG_CACHE_HOME/translate/models/NAME`` (``~/.cache/translate/models/NAME``), or ``root/NAME``.
- **download**: ``translate.catalog.download.fetch``, as for datasets: a tqdm bar, resume of the
  ``root/.partial/NAME.pth.part`` file with an HTTP ``Range`` request, retries of a cut connection, the size
  the server announced and the catalog's size/md5/sha256 where known (the authors publish none), a
  mismatch deleted; offline, one line naming the URL and ``--url /path/to/NAME.pth`` to fetch it by hand.
  ``url=`` takes a mirror or a local copy (path or ``file://``) instead.
- **import**: ``importer(file, run_dir, **entry.import_options())``, which writes the run folder atomically:
  the importer of the entry's ``format`` (``FORMATS``): ``junyanz``, a junyanz/pytorch-CycleGAN-and-pix2pix
  generator file (``translate.inference.junyanz.import_junyanz``), or ``stargan``, a yunjey/stargan
  ``*-G.ckpt`` or the archive holding it and its critic
  (``translate.inference.stargan_import.import_stargan``), or ``cut``, a taesungp/contrastive-unpaired-
  translation ``latest_net_G.pth`` or the archive of several (``translate.inference.cut_import.import_cut``;
  ``upstream_name``, the authors' experiment name, picks the model). The catalog package does not import
  ``inference`` (docs/ARCHITECTURE.md), so the caller passes it; ``translate.cli.models.model_run`` picks
  it by format. The downloaded file is removed once imported (``keep_file`` keeps it in
  ``root/.partial``).
- **one download, several models**: the models of the catalog's other entries with the same URL (the CUT
  authors' ``pretrained_models.tar`` holds six) are imported from the same file at the same time, those
  the cache lacks, so the archive is fetched once (``bundled_with``).
"""

from __future__ import annotations

import difflib
import logging
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from translate.catalog.catalog import read_entries
from translate.catalog.download import CONNECT_TIMEOUT, obtain, remove_download
from translate.errors import CheckpointError, ConfigError, DataError

CATALOG_ENV = "TRANSLATE_MODEL_CATALOG"
DEFAULT_CATALOG = Path(__file__).resolve().parent / "models.yaml"
HOME_ENV = "TRANSLATE_HOME"
FAMILIES = ("cyclegan", "pix2pix", "stargan", "cut")
COMMON_FIELDS = ("description", "url", "arch", "norm", "direction")
"""What every entry must give (``arch``, ``norm``, ``direction``: shown by ``translate models list``)."""


@dataclass(frozen=True)
class FileFormat:
    """What an entry of one file format must give beyond ``COMMON_FIELDS``, and which of its fields the
    format's importer takes as keywords."""

    required: tuple[str, ...]
    options: tuple[str, ...]


FORMATS = {
    "junyanz": FileFormat((), ("arch", "norm", "dropout", "eval_mode", "direction", "image_size")),
    "stargan": FileFormat(("attributes", "image_size"), ("attributes", "image_size")),
    "cut": FileFormat(
        ("upstream_name", "domains"), ("experiment", "cut_mode", "direction", "domains", "image_size")
    ),
}

log = logging.getLogger("translate")

Importer = Callable[..., Any]
"""``importer(file, run_dir, **options)``: writes the run folder ``run_dir`` from a downloaded file."""


@dataclass(frozen=True)
class ModelEntry:
    """One published generator of the zoo."""

    name: str
    description: str
    url: str
    arch: str
    norm: str
    direction: str
    family: str = ""
    format: str = "junyanz"
    dropout: bool = False
    test_mode: str = "eval"
    image_size: int | None = None
    attributes: tuple[str, ...] | None = None  # StarGAN: the labels in training order
    domains: tuple[str, ...] | None = None  # CUT: the source and target domains
    cut_mode: str | None = None  # CUT: the authors' --CUT_mode, CUT or FastCUT
    size_mb: float | None = None  # approximate; display only
    size_bytes: int | None = None  # exact, verified after download when known
    md5: str | None = None
    sha256: str | None = None
    licence: str = ""
    dataset: str | None = None  # the dataset catalog's name of the training data
    upstream_name: str | None = None  # the authors' name where ours differs (pix2pix_edges2shoes; CUT: the
    # experiment, their --name, whose folder in their archive holds the model)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    archive = "pth"  # what ``fetch`` names the downloaded file with
    download_command = "translate models download"  # named by the by-hand hint of a failed download

    @property
    def filename(self) -> str:
        tail = urllib.parse.urlparse(self.url).path.rstrip("/").rsplit("/", 1)[-1]
        return tail or f"{self.upstream_name or self.name}.pth"

    @property
    def experiment(self) -> str | None:
        """The authors' experiment name (``upstream_name``): a CUT model's folder in their archive."""
        return self.upstream_name

    @property
    def eval_mode(self) -> bool:
        """Whether it translates in eval mode (the junyanz importer's ``eval_mode``)."""
        return self.test_mode == "eval"

    @property
    def size_text(self) -> str:
        if self.size_bytes is not None:
            return f"{self.size_bytes / 1e6:.1f} MB"
        if self.size_mb is not None:
            return f"~{self.size_mb:.0f} MB"
        return "?"

    @property
    def has_checksum(self) -> bool:
        return bool(self.md5 or self.sha256)

    def import_options(self) -> dict[str, Any]:
        """Keyword arguments of the importer of its format, with the provenance in ``source``."""
        options = {key: getattr(self, key) for key in FORMATS[self.format].options}
        options["source"] = {
            "zoo": self.name,
            "url": self.url,
            "licence": self.licence,
            "description": self.description,
        }
        return options


_FIELDS = {f for f in ModelEntry.__dataclass_fields__ if f not in ("name", "extra")}


def catalog_path() -> Path:
    """Where the zoo is read from (``$TRANSLATE_MODEL_CATALOG`` or the packaged ``models.yaml``)."""
    override = os.environ.get(CATALOG_ENV)
    return Path(override).expanduser() if override else DEFAULT_CATALOG


def _entry(name: str, raw: Any, source: Path) -> ModelEntry:
    if not isinstance(raw, dict):
        raise DataError(f"{source}: model {name!r} must be a mapping, got {type(raw).__name__}")
    file_format = raw.get("format", "junyanz")
    if file_format not in FORMATS:
        raise DataError(f"{source}: model {name!r} has format {file_format!r}; known: {', '.join(FORMATS)}")
    for key in (*COMMON_FIELDS, *FORMATS[file_format].required):
        if not raw.get(key):
            raise DataError(f"{source}: model {name!r} (format {file_format}) has no {key!r}")
    family = raw.get("family")
    if family and family not in FAMILIES:
        raise DataError(f"{source}: model {name!r} has family {family!r}; known: {', '.join(FAMILIES)}")
    if raw.get("test_mode", "eval") not in ("eval", "batch_statistics"):
        raise DataError(f"{source}: model {name!r} has test_mode {raw['test_mode']!r}; eval|batch_statistics")
    known = {k: v for k, v in raw.items() if k in _FIELDS}
    for key, example in (("attributes", "[Black_Hair, Blond_Hair]"), ("domains", "[horse, zebra]")):
        if key in known:
            known[key] = _names(known[key], f"{source}: {key} of model {name!r}", example)
    for key in ("md5", "sha256"):
        value = known.get(key)
        if value is not None and not isinstance(value, str):  # YAML reads 00ab.. as a number: refuse it
            raise DataError(f"{source}: {key} of model {name!r} must be a quoted string")
        known[key] = value.lower() if value else None
    known["description"] = " ".join(str(known["description"]).split())
    return ModelEntry(name=name, extra={k: v for k, v in raw.items() if k not in _FIELDS}, **known)


def _names(value: Any, what: str, example: str) -> tuple[str, ...] | None:
    """A YAML list of names as a tuple (entries are frozen, hashable); anything else is a DataError."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise DataError(f"{what} must be a list of names, e.g. {example}")
    return tuple(value)


@lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> dict[str, ModelEntry]:
    entries = read_entries(path, "models", "model catalog")
    return {str(name): _entry(str(name), raw, path) for name, raw in entries.items()}


def load_models(path: str | Path | None = None) -> dict[str, ModelEntry]:
    """Every model of the zoo, by name, in file order."""
    path = Path(path).expanduser() if path is not None else catalog_path()
    if not path.is_file():
        raise DataError(f"model catalog not found at {path} (set {CATALOG_ENV}=/path/to/models.yaml)")
    return dict(_load(path.resolve(), path.stat().st_mtime))


def get_model(name: str, catalog: dict[str, ModelEntry] | None = None) -> ModelEntry:
    """The model called ``name``; an unknown name is a DataError with the closest known names (the
    authors' names too: ``edges2shoes`` -> ``pix2pix_edges2shoes``)."""
    catalog = load_models() if catalog is None else catalog
    if name in catalog:
        return catalog[name]
    upstream = [e.name for e in catalog.values() if e.upstream_name == name]
    scores = {c: difflib.SequenceMatcher(None, name, c).ratio() for c in catalog if c not in upstream}
    best = max(scores.values(), default=0.0)  # the clear winner only: style_vangog is not style_monet
    close = sorted((c for c, r in scores.items() if r >= max(0.5, best - 0.1)), key=lambda c: -scores[c])[:3]
    hint = upstream + close
    did_you_mean = f"; did you mean {' or '.join(hint)}?" if hint else ""
    raise DataError(
        f"unknown model {name!r}{did_you_mean} (known: {', '.join(catalog)}; see `translate models list`)"
    )


def models_root(root: str | Path | None = None) -> Path:
    """The cache of zoo run folders: ``root``, else ``$TRANSLATE_HOME/models``, else
    ``$XDG_CACHE_HOME/translate/models`` (``~/.cache/translate/models``)."""
    if root is not None:
        return Path(root).expanduser()
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser() / "models"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return cache / "translate" / "models"


def is_imported(run: Path) -> bool:
    """Whether ``run`` holds a complete checkpoint (what an import leaves)."""
    return any(
        (folder / "model.safetensors").is_file()
        for folder in (Path(run) / "checkpoints").glob("step_*")
        if folder.is_dir()
    )


def download_file(
    entry: ModelEntry,
    root: Path,
    url: str | None = None,
    progress: bool = True,
    *,
    retries: int = 3,
    timeout: float = CONNECT_TIMEOUT,
    retry_wait: float = 1.0,
) -> tuple[Path, bool]:
    """The checkpoint file of ``entry``: ``(path, downloaded)``. A local ``url`` (path or ``file://``) is
    checked and used where it is (``downloaded`` False); otherwise the file is fetched into
    ``root/.partial/NAME.pth`` (``NAME.zip`` for a zip URL; resuming a ``.part`` file there) and verified."""
    return obtain(
        entry,
        url or entry.url,
        root,
        f"the model's file ({entry.filename}) or a URL",
        progress,
        retries=retries,
        timeout=timeout,
        retry_wait=retry_wait,
    )


def model_run(
    name: str | ModelEntry,
    root: str | Path | None = None,
    download: bool = True,
    *,
    importer: Importer | None = None,
    url: str | None = None,
    progress: bool = True,
    retries: int = 3,
    timeout: float = CONNECT_TIMEOUT,
    retry_wait: float = 1.0,
    keep_file: bool = False,
) -> Path:
    """The run folder of zoo model ``name`` (``models_root(root)/NAME``), downloaded and imported first
    when the cache lacks it (``download=False``: a DataError saying how to get it instead).

    ``importer`` writes the run from the downloaded file: the importer of ``entry.format``
    (``translate.cli.models.model_run`` passes it). ``url``: a mirror or a local copy of the file.
    Failures are one-line DataErrors; an interrupted download leaves its ``.part`` file to resume."""
    entry = name if isinstance(name, ModelEntry) else get_model(name)
    root = models_root(root)
    run = root / entry.name
    if is_imported(run):
        return run
    if not download:
        raise DataError(
            f"model {entry.name} is not in {root}; get it with `translate models download {entry.name}` "
            f"({entry.size_text} from {entry.url})"
        )
    if importer is None:
        raise ConfigError(
            f"model_run needs importer= (the importer of {entry.format} files) to import the download "
            "(translate.cli.models.model_run passes it)"
        )
    if run.exists() and not (run.is_dir() and not any(run.iterdir())):
        raise DataError(f"{run} exists but holds no imported model; move it away to download {entry.name}")
    root.mkdir(parents=True, exist_ok=True)
    file, downloaded = download_file(
        entry, root, url, progress, retries=retries, timeout=timeout, retry_wait=retry_wait
    )
    try:
        importer(file, run, **entry.import_options())
    except CheckpointError:
        if downloaded:  # a file that cannot be imported: fetch it again next time rather than reuse it
            remove_download(file)
        raise
    except OSError:
        if not is_imported(run):  # else another process imported it at the same time: use that
            raise
    if url is None or url == entry.url:  # another file (a mirror, a copy) may hold this model alone
        import_bundled(entry, file, root, importer)
    if downloaded and not keep_file:
        remove_download(file)
    return run


def bundled_with(entry: ModelEntry, catalog: dict[str, ModelEntry] | None = None) -> list[ModelEntry]:
    """The zoo's other models that come in the same download as ``entry`` (its URL, its format)."""
    catalog = load_models() if catalog is None else catalog
    return [
        other
        for other in catalog.values()
        if other.url == entry.url and other.format == entry.format and other.name != entry.name
    ]


def import_bundled(entry: ModelEntry, file: Path, root: Path, importer: Importer) -> list[str]:
    """Import the models of ``bundled_with(entry)`` that ``root`` lacks from ``file``, the download of
    ``entry``; one that fails to import is logged and left to be downloaded on its own. Returns the names
    imported."""
    imported = []
    for other in bundled_with(entry):
        run = root / other.name
        if run.exists():
            continue
        try:
            importer(file, run, **other.import_options())
        except (CheckpointError, ConfigError, OSError) as exc:
            log.warning("%s was not imported from %s: %s", other.name, file.name, exc)
            continue
        imported.append(other.name)
    return imported
