"""The labels of a conditional model: attribute vectors or one-of-N domains, and what a target means.

A ``LabelSpace`` is stored with a trained model (task kwargs and export options), so ``translate info``
lists the labels and ``translate apply --to`` needs no other file. Label vectors are ``(N, len(names))``
floats in {0, 1}:

- ``kind="attributes"`` (CelebA): each name is a binary attribute, except that the names of one
  ``groups`` entry are mutually exclusive (hair colours): at most one of them is 1.
- ``kind="domains"`` (one folder per domain): exactly one name is 1.

A target names labels and their new values (``Blond_Hair=1,Male=0`` or ``happy``); labels it does not name
keep the input's own values, and setting one member of an exclusive group to 1 sets the others to 0.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from translate.errors import ConfigError

if TYPE_CHECKING:  # torch is imported where labels meet tensors: the CLI reads label names without it
    import torch

HAIR_COLOURS = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"]
"""CelebA's hair-colour attributes: mutually exclusive, one-hot in StarGAN."""
LABEL_KINDS = ("attributes", "domains")


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


@dataclass(frozen=True)
class LabelSpace:
    names: list[str]
    kind: str = "attributes"
    groups: list[list[str]] = field(default_factory=list)
    """Attributes: the mutually exclusive groups among ``names`` (each of two or more names)."""

    def __post_init__(self) -> None:
        if self.kind not in LABEL_KINDS:
            raise ConfigError(f"unknown label kind {self.kind!r}. Known: {', '.join(LABEL_KINDS)}")
        if not self.names:
            raise ConfigError("a conditional model needs at least one label")
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"labels listed twice in {', '.join(self.names)}")

    @classmethod
    def with_groups(cls, names: list[str], exclusive: list[list[str]]) -> LabelSpace:
        """Attributes ``names`` with the parts of the ``exclusive`` groups that are among them."""
        groups = [[n for n in names if n in group] for group in exclusive]
        return cls(list(names), "attributes", [g for g in groups if len(g) > 1])

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "kind": self.kind, "groups": [list(g) for g in self.groups]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LabelSpace:
        return cls(
            list(values["names"]),
            values.get("kind", "attributes"),
            [list(g) for g in values.get("groups", [])],
        )

    def __len__(self) -> int:
        return len(self.names)

    def describe(self) -> str:
        if self.kind == "domains":
            return f"domains {', '.join(self.names)}"
        groups = "; ".join(f"one of {'/'.join(g)}" for g in self.groups)
        return f"attributes {', '.join(self.names)}" + (f" ({groups})" if groups else "")

    def group_of(self, name: str) -> list[str]:
        """The names that exclude each other with ``name`` (itself included)."""
        if self.kind == "domains":
            return list(self.names)
        return next((g for g in self.groups if name in g), [name])

    def index(self, name: str) -> int:
        if name not in self.names:
            what = "domain" if self.kind == "domains" else "attribute"
            raise ConfigError(
                f"this model was not trained on the {what} {name!r}{did_you_mean(name, self.names)}; "
                f"it knows: {', '.join(self.names)}"
            )
        return self.names.index(name)

    # ------------------------------------------------------------------------------------ targets
    def parse_target(self, text: str) -> dict[str, float]:
        """``"Blond_Hair=1,Male=0"`` -> ``{name: value}``; a bare name means ``=1`` (``happy``: a domain)."""
        target: dict[str, float] = {}
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            name, _, value = part.partition("=")
            value = value.strip() or "1"
            if value not in ("0", "1", "-1", "+1"):
                raise ConfigError(f"--to {text}: {name.strip()} must be 1 or 0, got {value!r}")
            target[name.strip()] = 1.0 if value in ("1", "+1") else 0.0
        return self.check_target(target)

    def check_target(self, target: dict[str, float]) -> dict[str, float]:
        """Validate ``{name: 0 or 1}``: known names, and for domains exactly one domain set to 1."""
        if not target:
            raise ConfigError(f"give a target: {self.describe()}")
        for name, value in target.items():
            self.index(name)
            if float(value) not in (0.0, 1.0):
                raise ConfigError(f"target {name}={value}: values are 1 or 0")
        if self.kind == "domains" and sum(float(v) == 1 for v in target.values()) != 1:
            raise ConfigError(
                f"name one target domain (e.g. --to {self.names[-1]}); domains: {', '.join(self.names)}"
            )
        for group in self.groups:
            if sum(target.get(n, 0) == 1 for n in group) > 1:
                raise ConfigError(
                    f"{' and '.join(n for n in group if target.get(n) == 1)} exclude each other"
                )
        return {name: float(value) for name, value in target.items()}

    def apply(self, source: torch.Tensor, target: dict[str, float]) -> torch.Tensor:
        """Source labels ``(N, len)`` with ``target`` set (group partners of a name set to 1 cleared)."""
        labels = source.clone().float()
        for name, value in self.check_target(target).items():
            if value == 1:
                for partner in self.group_of(name):
                    labels[:, self.index(partner)] = 0
            labels[:, self.index(name)] = value
        return labels

    def flips(self, source: torch.Tensor) -> dict[str, torch.Tensor]:
        """One target per label for sample grids (the StarGAN figure): each domain; each attribute
        flipped, a member of an exclusive group switched on instead."""
        out = {}
        for name in self.names:
            on = self.kind == "domains" or len(self.group_of(name)) > 1
            column = source[:, self.index(name)]
            if on:
                out[f"to {name}"] = self.apply(source, {name: 1.0})
            else:
                labels = source.clone().float()
                labels[:, self.index(name)] = 1 - column
                out[f"flip {name}"] = labels
        return out

    def from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """A classifier's ``(N, len)`` logits -> label vectors: domains the argmax; attributes above 0,
        and in an exclusive group only its most likely member (if any is above 0)."""
        import torch

        if self.kind == "domains":
            return torch.nn.functional.one_hot(logits.argmax(1), len(self.names)).float()
        labels = (logits > 0).float()
        for group in self.groups:
            columns = [self.index(n) for n in group]
            best = logits[:, columns].argmax(1)
            any_on = labels[:, columns].amax(1)
            labels[:, columns] = torch.nn.functional.one_hot(best, len(columns)).float() * any_on[:, None]
        return labels
