"""Options of the commands that read images or run a generator: ``--max-pixels`` (apply, serve, train) and
``--precision`` (apply, serve). Nothing here imports torch at import time."""

from __future__ import annotations

from typing import Any

import click

PRECISIONS = ("auto", "fp32", "bf16")
"""``translate.inference.fast.PRECISIONS``, written here so that ``--help`` needs no torch (a test keeps
the two equal)."""


def _set_max_pixels(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    """``--max-pixels N``: the pixel limit of every image read, for this process and those it starts."""
    if value is not None:
        from translate.data.io import set_max_pixels

        set_max_pixels(value)


def max_pixels_option(command: Any) -> Any:
    """``--max-pixels N``: sets ``TRANSLATE_MAX_PIXELS`` (``translate.data.io.set_max_pixels``) before the
    command runs; not handed to the command itself."""
    return click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        metavar="N",
        expose_value=False,
        callback=_set_max_pixels,
        help="Largest image read, in pixels (width x height), checked from the file's header before it is "
        "decoded; larger ones are skipped with one line. Default: TRANSLATE_MAX_PIXELS, else 178956970.",
    )(command)


def precision_option(command: Any) -> Any:
    """``--precision auto|fp32|bf16``: what the fast path computes in (``Translator(precision=...)``)."""
    return click.option(
        "--precision",
        type=click.Choice(PRECISIONS),
        default="auto",
        show_default=True,
        help="What the fast path computes in, where it runs: auto is bf16 where the CPU (AVX512-BF16, AMX) "
        "or GPU computes it natively, else fp32. bf16 is checked against fp32 on the first image of each "
        "size (PSNR >= 40 dB, else fp32 from then on, with one line).",
    )(command)
