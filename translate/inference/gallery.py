"""An HTML page of the inputs and outputs of ``translate apply --gallery``, as junyanz's ``test.py`` writes.

``write_gallery`` writes ``DST/index.html``: one row per input, the input and its output(s) side by side at
one display height, captioned by the input's place in the output tree and the outputs' names (a style
model's several outputs of one input in its row, captioned by their style suffix), then the failed inputs
with their reasons. Every image is linked by its path relative to the page (percent-quoted, names
HTML-escaped), so the page opens from disk; it has no external assets.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from translate.engine.run_folder import write_text_atomically
from translate.errors import StorageError

GALLERY_NAME = "index.html"
DISPLAY_HEIGHT = 256
"""Every image's height on the page in CSS px, so a folder of mixed sizes lines up."""

STYLE = f"""
body {{ font-family: sans-serif; margin: 1em; background: #fafafa; color: #222; }}
.row {{ display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 16px; align-items: flex-start; }}
figure {{ margin: 0; }}
img {{ height: {DISPLAY_HEIGHT}px; width: auto; display: block; background: #ddd; }}
figcaption {{ font-size: 12px; max-width: {DISPLAY_HEIGHT * 2}px; word-break: break-all; }}
.input figcaption {{ font-weight: bold; }}
li {{ font-family: monospace; }}
"""


def image_src(image: Path, page_dir: Path) -> str:
    """The ``src`` of ``image`` on a page in ``page_dir``: a quoted path relative to it (a ``file:`` URI
    where there is none, as across Windows drives), ``/``-separated."""
    try:
        relative = os.path.relpath(Path(image).absolute(), Path(page_dir).absolute())
    except ValueError:
        return Path(image).absolute().as_uri()
    return quote(Path(relative).as_posix())


def input_caption(source: Path, output: Path, dst: Path) -> str:
    """An input's caption: its place in the output tree (``photos/sub/x.jpg``: the folder of its output
    under ``dst``, then its name), or its name where its output is elsewhere."""
    try:
        folder = output.parent.absolute().relative_to(dst.absolute())
    except ValueError:
        return source.name
    return (folder / source.name).as_posix()


def output_caption(source: Path, output: Path, several: bool) -> str:
    """An output's caption: its style suffix (``seed0-style1``) in a row of several, else its name."""
    stem, source_stem = output.stem, source.stem
    if several and stem.startswith(source_stem) and len(stem) > len(source_stem):
        return stem[len(source_stem) :].lstrip("-")
    return output.name


def figure(image: Path, caption: str, dst: Path, kind: str) -> str:
    """One captioned image of a row; ``kind``: ``input`` or ``output``."""
    src, text = html.escape(image_src(image, dst)), html.escape(caption)
    return (
        f'<figure class="{kind}"><a href="{src}"><img src="{src}" alt="{text}" loading="lazy"></a>'
        f"<figcaption>{text}</figcaption></figure>"
    )


def rows(pairs: Sequence[tuple[Path, Path]], dst: Path) -> list[str]:
    """One ``<div class="row">`` per input (in first-seen order): the input, then each of its outputs."""
    outputs: dict[Path, list[Path]] = {}
    for source, output in pairs:
        outputs.setdefault(Path(source), []).append(Path(output))
    lines = []
    for source, written in outputs.items():
        several = len(written) > 1
        cells = [figure(source, input_caption(source, written[0], dst), dst, "input")]
        cells += [figure(out, output_caption(source, out, several), dst, "output") for out in written]
        lines.append(f'<div class="row">{"".join(cells)}</div>')
    return lines


def failures(failed: Sequence[tuple[Path, str]]) -> list[str]:
    """The list of inputs that could not be translated, each with its reason (nothing when none)."""
    if not failed:
        return []
    items = [f"<li>{html.escape(str(path))}: {html.escape(reason)}</li>" for path, reason in failed]
    return [f"<h2>Failed ({len(failed)})</h2>", "<ul>", *items, "</ul>"]


def page(
    pairs: Sequence[tuple[Path, Path]], dst: Path, title: str, failed: Sequence[tuple[Path, str]]
) -> str:
    """The whole HTML text of the gallery."""
    inputs = len({Path(source) for source, _ in pairs})
    summary = f"{inputs} inputs, {len(pairs)} outputs, {len(failed)} failed"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f"<p>{summary}</p>",
            *rows(pairs, dst),
            *failures(failed),
            "</body></html>",
            "",
        ]
    )


def write_gallery(
    pairs: Sequence[tuple[Path, Path]],
    dst: str | Path,
    title: str = "translate apply",
    failed: Sequence[tuple[Path, str]] = (),
) -> Path:
    """Write ``dst/index.html`` (whole: a temporary name, then renamed) showing each input beside its outputs.

    Args:
        pairs: ``(input, output)`` in input order (``ApplyReport.pairs``); an input's outputs share its row.
        dst: the output folder; the page goes there and links every image relative to it.
        title: the page's title and heading.
        failed: ``(input, reason)`` listed at the end (``ApplyReport.failed``).

    Returns:
        The page's path.

    Raises:
        StorageError: the page cannot be written.
    """
    dst = Path(dst)
    target = dst / GALLERY_NAME
    try:
        dst.mkdir(parents=True, exist_ok=True)
        write_text_atomically(target, page(pairs, dst, title, failed))
    except OSError as exc:
        raise StorageError(f"cannot write the gallery {target}: {exc.strerror or exc}") from exc
    return target
