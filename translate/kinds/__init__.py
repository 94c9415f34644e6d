"""The kinds of model, one object each (``translate.kinds.base.Kind``), found by an export's kind name.

Everything the toolkit knows about a kind lives in its file: ``image`` (image -> image), ``targets``
(image + target -> image), ``noise`` (noise -> image) and ``style`` (image + style -> image). A new method
with a new kind of model adds one file here and one entry below; everything else reaches it through
``kind_of``.
"""

from __future__ import annotations

from translate.errors import CheckpointError
from translate.exports import Export
from translate.kinds.base import HeldOut, Kind, Plan, Scoring
from translate.kinds.image import ImageToImage
from translate.kinds.noise import NoiseToImage
from translate.kinds.style import ImageAndStyleToImage
from translate.kinds.targets import ImageAndTargetToImage

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (ImageToImage(), ImageAndTargetToImage(), NoiseToImage(), ImageAndStyleToImage())
}
"""Every kind, by its name (``Export.kind``)."""


def kind_of(export: Export | str) -> Kind:
    """The ``Kind`` of an export (or of a kind's name); an unknown kind is a CheckpointError."""
    name = export if isinstance(export, str) else export.kind
    if name not in KINDS:
        raise CheckpointError(f"unknown kind of model {name!r}; this version knows {', '.join(KINDS)}")
    return KINDS[name]


def kinds_with(control: str) -> tuple[str, ...]:
    """The names of the kinds whose input includes ``control`` (``image``, ``target``, ``noise``, ...)."""
    return tuple(name for name, kind in KINDS.items() if control in kind.controls)


__all__ = ["KINDS", "HeldOut", "Kind", "Plan", "Scoring", "kind_of", "kinds_with"]
