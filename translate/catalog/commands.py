"""Command lines for the user: the ``translate train`` line that reads a detected dataset layout.

Printed by ``translate datasets inspect`` and ``download`` and named in errors about a data root that
holds data for another method.
"""

from __future__ import annotations

from translate.data.layout import Layout

TRAINING_METHODS = {
    "aligned": "pix2pix",
    "cyclegan": "cyclegan",
    "domains": "cyclegan",  # the first two domains
    "flat": "dcgan",
    "idx": "gan",  # 28 x 28 digits or clothes: the MLP GAN
}
"""The method that trains on each layout kind; ``attributes`` has none (StarGAN needs chosen attributes)."""


def suggested_command(layout: Layout) -> str | None:
    """A ``translate train`` command line that reads ``layout``.

    Args:
        layout: what ``translate.data.layout.detect_layout`` found.

    Returns:
        E.g. ``translate train cyclegan --data-root data/emoji --domains apple windows`` (the data root
        quoted when it holds a space), or None for a layout no single command trains on (attribute files,
        which need ``translate train stargan`` with chosen attributes, or fewer than two domains).
    """
    root = f'"{layout.root}"' if " " in str(layout.root) else str(layout.root)
    method = TRAINING_METHODS.get(layout.kind)
    if method is None:
        return None
    if layout.kind == "domains":
        if len(layout.domains) < 2:
            return None
        first, second = layout.domains[:2]
        return f"translate train {method} --data-root {root} --domains {first} {second}"
    return f"translate train {method} --data-root {root}"
