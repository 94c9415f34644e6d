"""One small Registry class and the registries of every component kind.

A component is a class or a function that returns an ``nn.Module``; a *variant* is a tiny registered
function that fixes the arguments of one class (``resnet_9blocks`` -> ``ResnetGenerator(num_blocks=9)``).
"""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from translate.config import check_arguments
from translate.errors import ConfigError


class Registry:
    """Maps snake_case names to component constructors and builds them from config dicts."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@GENERATORS.register()`` uses the function/class name, or give one explicitly."""

        def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
            key = name or obj.__name__
            if key in self._entries:
                raise ValueError(f"{self.kind} {key!r} is registered twice")
            self._entries[key] = obj
            return obj

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str) -> Callable[..., Any]:
        """The constructor registered as ``name``; an unknown name lists the known ones."""
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(self.names())}")
        return self._entries[name]

    def build(self, spec: str | Mapping[str, Any], **extra: Any) -> Any:
        """Build from ``"name"`` or ``{"name": ..., **kwargs}``; ``extra`` kwargs are added (spec wins).

        Keyword arguments the constructor does not accept, or of another type than it annotates, are a
        ConfigError naming the accepted ones or the type.
        """
        if isinstance(spec, str):
            spec = {"name": spec}
        if "name" not in spec:
            raise ConfigError(f"a {self.kind} spec needs a 'name' (one of: {', '.join(self.names())})")
        kwargs = {**extra, **{k: v for k, v in spec.items() if k != "name"}}
        constructor = self.get(spec["name"])
        what = f"{self.kind} {spec['name']!r}"
        check_kwargs(constructor, kwargs, what)
        check_arguments(constructor, kwargs, what)
        return constructor(**kwargs)

    def describe(self, name: str) -> str:
        """First line of the docstring, for ``translate list``."""
        doc = inspect.getdoc(self.get(name)) or ""
        return doc.splitlines()[0] if doc else ""


def accepted_kwargs(constructor: Callable[..., Any]) -> list[str] | None:
    """Keyword names a constructor accepts, or None when it takes ``**kwargs``."""
    params = inspect.signature(constructor).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_kwargs(constructor: Callable[..., Any], kwargs: Mapping[str, Any], what: str) -> None:
    accepted = accepted_kwargs(constructor)
    if accepted is None:
        return
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for {what}. Accepted: {', '.join(accepted)}"
        )


GENERATORS = Registry("generator")
DISCRIMINATORS = Registry("discriminator")
LOSSES = Registry("adversarial loss")
TASKS = Registry("task")
DATASETS = Registry("dataset")
OPTIMIZERS = Registry("optimizer")
CONSTRAINTS = Registry("parameter constraint")

ALL = {
    "tasks": TASKS,
    "generators": GENERATORS,
    "discriminators": DISCRIMINATORS,
    "losses": LOSSES,
    "optimizers": OPTIMIZERS,
    "constraints": CONSTRAINTS,
    "datasets": DATASETS,
}
"""Every registry by the plural name ``translate list`` uses."""


INDEX = Path(__file__).with_name("components.json")
"""Every built-in component's name and one-line description by registry, for ``translate list`` to answer
without importing torch; ``tools/component_index.py`` writes it, a test keeps it equal to the registries."""


def describe_all() -> dict[str, dict[str, str]]:
    """``{registry: {name: first docstring line}}`` of every registered component (import
    ``translate.components`` first for the built-in ones)."""
    return {
        plural: {name: registry.describe(name) for name in registry.names()}
        for plural, registry in ALL.items()
    }


def read_index() -> dict[str, dict[str, str]]:
    """The built-in components as ``describe_all`` gives them, read from ``INDEX``."""
    return json.loads(INDEX.read_text(encoding="utf-8"))
