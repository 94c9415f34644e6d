"""Config files: YAML (with ``_base_`` files merged underneath), the packaged recipes found by name, and
``key=value`` overrides, each read into the dict layers that ``translate.config.build_config`` merges."""

from __future__ import annotations

import difflib
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from translate.config import SECTIONS, check_sections, deep_merge
from translate.errors import ConfigError


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-4`` as a string; configs mean a float."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


RECIPES = Path(__file__).resolve().parent / "recipes"
"""The packaged recipes, one YAML file each (``configs/`` in a checkout is a link to this folder)."""


def recipe_names() -> list[str]:
    """The packaged recipes' names (``pix2pix_facades_cpu``): their files' names without ``.yaml``."""
    return sorted(path.stem for path in RECIPES.glob("*.yaml"))


def recipe_description(name: str) -> str:
    """A recipe's one-line description: the first line of its leading comment ("" without one)."""
    first_line = find_recipe(name).read_text(encoding="utf-8").partition("\n")[0]
    return first_line.lstrip("#").strip() if first_line.startswith("#") else ""


def packaged_recipe(name: str | Path) -> Path | None:
    """The packaged recipe file that ``name`` names, with or without ``.yaml`` (``pix2pix_facades_cpu``,
    ``_base_/cpu_64px.yaml``), or None."""
    relative = PurePosixPath(Path(name).as_posix())
    if relative.is_absolute() or ".." in relative.parts or not relative.name:
        return None
    if relative.suffix not in (".yaml", ".yml"):
        relative = relative.with_name(f"{relative.name}.yaml")
    path = RECIPES / relative
    return path if path.is_file() else None


def find_recipe(name: str) -> Path:
    """The packaged recipe ``name``; a name that matches none is a ConfigError listing close ones."""
    path = packaged_recipe(name)
    if path is None:
        raise ConfigError(f"no packaged recipe {name!r}{_recipes_like(name)}")
    return path


def find_config(config: str | Path) -> Path:
    """The file that ``--config`` names: a path to a YAML file, else a packaged recipe by name."""
    path = Path(config)
    if path.is_file():
        return path
    recipe = packaged_recipe(config)
    if recipe is None:
        raise ConfigError(f"config file not found: {config}{_recipes_like(config)}")
    return recipe


def _recipes_like(name: str | Path) -> str:
    """The end of a not-found message: the packaged recipe of that name, or the close ones."""
    stem = PurePosixPath(Path(name).as_posix()).stem
    names = recipe_names()
    if stem in names:
        return f"; a packaged recipe is called {stem}: give its name instead"
    close = difflib.get_close_matches(stem, names, n=3, cutoff=0.6)
    if close:
        return f"; close packaged recipes: {', '.join(close)}"
    return " (translate recipes list shows the packaged recipes)"


def load_yaml(config: str | Path) -> dict[str, Any]:
    """Read a YAML config (a file, or a packaged recipe by name) with the files its ``_base_`` lists
    merged underneath; each base is a path relative to the file, else a packaged recipe's name."""
    return _load_with_bases(find_config(config), ())


def _load_with_bases(path: Path, children: tuple[Path, ...]) -> dict[str, Any]:
    """``path``'s config over its bases; ``children`` are the files that reached it through ``_base_``."""
    seen = [child.resolve() for child in children]
    if path.resolve() in seen:
        cycle = [*children[seen.index(path.resolve()) :], path]
        raise ConfigError(f"{children[0]}: _base_ cycle: {' -> '.join(map(str, cycle))}")
    raw = _read_config_file(path)
    merged: dict[str, Any] = {}
    for base in _base_names(raw.pop("_base_", None), path):
        merged = deep_merge(merged, _load_with_bases(_find_base(base, path), (*children, path)))
    return deep_merge(merged, raw)


def _read_config_file(path: Path) -> dict[str, Any]:
    """One config file's mapping (``{}`` for an empty file), without the sections it leaves empty
    (``train:`` and nothing under it)."""
    try:
        data = path.read_bytes()
        text = data.decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}): save it as UTF-8"
        ) from None
    try:
        raw = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping at the top level; got {type(raw).__name__}")
    raw = {key: value for key, value in raw.items() if not (key in SECTIONS and value is None)}
    check_sections(raw, f"{path}: ")
    return raw


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where and what a YAML error is: ``line 3, column 5: expected ... (while parsing ... from line 1)``."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if mark is None or problem is None:
        return str(exc).splitlines()[0]
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    started = f" ({context} from line {context_mark.line + 1})" if context and context_mark else ""
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}{started}"


def _base_names(bases: Any, path: Path) -> list[str]:
    """The entries of a ``_base_`` key: one file name or a list of them (none when it is absent or null)."""
    names = [] if bases is None else [bases] if isinstance(bases, str) else bases
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        raise ConfigError(
            f"{path}: _base_ must be a file name or a list of file names (relative to it, or packaged "
            f"recipes); got {bases!r}"
        )
    return names


def _find_base(base: str, path: Path) -> Path:
    """The file a ``_base_`` entry of ``path`` names: relative to ``path``, else a packaged recipe."""
    beside = path.parent / base
    if beside.is_file():
        return beside
    recipe = packaged_recipe(base)
    if recipe is None:
        raise ConfigError(f"{path}: _base_ {base} is neither in {path.parent} nor a packaged recipe")
    return recipe


def parse_override(item: str) -> dict[str, Any]:
    """``train.lr=1e-4`` -> ``{"train": {"lr": 0.0001}}``; the value is read as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key, value = item.split("=", 1)
    try:
        parsed = parse_yaml(value)
    except yaml.YAMLError:
        parsed = value
    nested: dict[str, Any] = parsed
    for part in reversed(key.strip().split(".")):
        nested = {part: nested}
    return nested
