"""What the commands share: option types (``ManyValues``), options (``--device``, ``--checkpoint``,
``--precision``, ``--max-pixels``), the group that turns errors into one line (``FriendlyGroup``), the
``--out`` check and the command line that ``--nproc`` hands on.

Every sub-command module imports from here, never from the package ``translate.cli``, which only
assembles the commands. Nothing here imports torch: ``translate --version`` and ``--help`` answer at once.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from translate.errors import StorageError, TrainingInterrupted, TranslateError

PRECISIONS = ("auto", "fp32", "bf16")
"""``translate.inference.fast.PRECISIONS``, written here so that ``--help`` needs no torch (a test keeps
the two equal)."""

BROKEN_PIPE_EXIT = 141
"""Exit status when the reader of the output went away (``translate list | head -1``): 128 + SIGPIPE,
what the shell reports for a program the closed pipe ended."""

_JOIN = "\0"  # no argument of a command line can hold a NUL byte: ManyValues joins its values with it


class ManyValues(click.Option):
    """An option that takes every following argument up to the next option: ``--domains a b c``.

    Its value is a tuple of strings (None when not given); given twice, the last one counts, as for any
    option. It needs a command of class ``ManyValuesCommand`` (``cls=ManyValuesCommand``; the default of
    ``@group.command()`` in a ``FriendlyGroup``), which gathers the values before click parses them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.pop("type", None)  # the value is always a tuple of strings
        kwargs.setdefault("metavar", "TUPLE")
        super().__init__(*args, type=click.STRING, **kwargs)

    def type_cast_value(self, ctx: click.Context, value: Any) -> Any:
        if value is None or isinstance(value, tuple):
            return value
        return tuple(str(value).split(_JOIN))


def gather_many_values(args: Sequence[str], names: set[str]) -> list[str]:
    """``args`` with each ManyValues option among ``names`` and its values as one option and one value:
    the argument after the option (or its ``--name=value``) and every following argument up to the next
    one that starts with ``-``. Nothing after ``--`` is touched; an option without a value is left for
    click to report."""
    out: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            return [*out, arg, *rest]
        name, has_value, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name not in names or not (has_value or rest):
            out.append(arg)
            continue
        values = [value] if has_value else [rest.pop(0)]
        while rest and not rest[0].startswith("-"):
            values.append(rest.pop(0))
        out += [name, _JOIN.join(values)]
    return out


class ManyValuesCommand(click.Command):
    """A command whose ``ManyValues`` options take every value up to the next option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names = {name for param in self.params if isinstance(param, ManyValues) for name in param.opts}
        return super().parse_args(ctx, gather_many_values(args, names) if names else args)


@contextmanager
def quiet_broken_pipe(ctx: click.Context) -> Iterator[None]:
    """A closed output pipe (``translate list | head -1``) ends the command quietly with exit status 141:
    no message, and nothing more is written (the rest of the output goes to the null device)."""
    try:
        yield
    except OSError as exc:
        if not isinstance(exc, BrokenPipeError) and exc.errno != errno.EPIPE:
            raise
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # the flush at exit must not fail again
        except (OSError, ValueError, AttributeError):
            pass  # not a real file (click's test runner): nothing is flushed at exit
        ctx.exit(BROKEN_PIPE_EXIT)


class FriendlyGroup(click.Group):
    """Turns every TranslateError (bad config, data, checkpoint) and every OSError (unwritable or full
    disk) into a one-line ``Error: ...`` and its exit status; an interrupted training run exits with
    130 (Ctrl-C) or 143 (SIGTERM), after the line that says how to resume; a closed output pipe exits
    with 141, quietly. Its commands take ``ManyValues`` options."""

    command_class = ManyValuesCommand

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with quiet_broken_pipe(ctx):  # --help, --version
            return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with quiet_broken_pipe(ctx):
                return super().invoke(ctx)
        except TrainingInterrupted as exc:
            ctx.exit(exc.exit_code)  # the trainer has logged where it stopped and how to resume
        except TranslateError as exc:
            raise one_line(exc) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise click.ClickException(f"{exc.strerror or exc}{where}") from None
        except KeyboardInterrupt:
            click.echo("Aborted.", err=True)
            ctx.exit(130)


class OneLineErrors(click.Group):
    """A group of its own (``translate datasets``, ``models``, ``import``) that turns every TranslateError
    into a one-line ``Error: ...`` with its exit status, also when the group is used without ``main``."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TranslateError as exc:
            raise one_line(exc) from None


def one_line(exc: TranslateError) -> click.ClickException:
    """The ``Error: ...`` line of a TranslateError, with its exit status. Errors raised in data-loader
    workers arrive wrapped in the worker's traceback: only the message is kept."""
    message = str(exc)
    if "Original Traceback" in message:  # last line: "translate.errors.DataError: <message>"
        message = message.strip().splitlines()[-1].split(": ", 1)[-1]
    error = click.ClickException(message)
    error.exit_code = exc.exit_code
    return error


def device_option(command: Any) -> Any:
    """``--device`` of the inference commands: ``auto`` is CUDA when available, else the CPU."""
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        help="auto (CUDA when available), cpu, cuda, cuda:1 ...",
    )(command)


def checkpoint_option(command: Any) -> Any:
    """``--checkpoint best|latest|STEP``: which of a run folder's checkpoints an inference command loads."""
    return click.option(
        "--checkpoint",
        metavar="best|latest|STEP",
        help="Which checkpoint of the run: latest (default), best (kept by train.best_metric) or a step.",
    )(command)


def _set_max_pixels(ctx: click.Context, param: click.Parameter, value: int | None) -> None:
    """``--max-pixels N``: the pixel limit of every image read, for this process and those it starts."""
    if value is not None:
        from translate.data.io import set_max_pixels

        set_max_pixels(value)


def max_pixels_option(command: Any) -> Any:
    """``--max-pixels N`` (apply, serve, train): sets ``TRANSLATE_MAX_PIXELS``
    (``translate.data.io.set_max_pixels``) before the command runs; not handed to the command itself."""
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
    """``--precision auto|fp32|bf16`` (apply, serve): what the fast path computes in
    (``Translator(precision=...)``)."""
    return click.option(
        "--precision",
        type=click.Choice(PRECISIONS),
        default="auto",
        show_default=True,
        help="What the fast path computes in, where it runs: auto is bf16 where the CPU (AVX512-BF16, AMX) "
        "or GPU computes it natively, else fp32. bf16 is checked against fp32 on the first image of each "
        "size (PSNR >= 40 dB, else fp32 from then on, with one line).",
    )(command)


def check_writable(folder: Path) -> None:
    """Fail before any work when files cannot be written in ``folder`` (``--out``); folders made for the
    check are removed again, so a later error leaves nothing behind."""
    import tempfile

    made = []
    try:
        for parent in [*reversed(folder.parents), folder]:
            if not parent.exists():
                parent.mkdir()
                made.append(parent)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise StorageError(f"cannot write to --out {folder}: {exc.strerror or exc}") from None
    finally:
        for parent in reversed(made):
            parent.rmdir()


def command_line(ctx: click.Context, leave_out: tuple[str, ...] = ()) -> list[str]:
    """The arguments that reach ``ctx``'s command again, as a list (with the group's ``-v``): what the
    processes that ``--nproc`` starts are given."""
    args = ["-v"] if ctx.parent is not None and ctx.parent.params.get("verbose") else []
    args.append(ctx.command.name or "")
    options = []
    for param in ctx.command.params:
        name = param.name or ""
        value = ctx.params.get(name)
        if name in leave_out or ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        if isinstance(param, click.Argument):
            args += [str(v) for v in (value if isinstance(value, tuple) else [value])]
        elif isinstance(param, click.Option) and param.is_flag:
            options.append(param.opts[0])
        elif isinstance(param, click.Option) and param.multiple:
            for item in value:
                options += [param.opts[0], str(item)]
        elif isinstance(value, tuple):  # ManyValues: --domains a b
            options += [param.opts[0], *map(str, value)]
        else:
            options += [param.opts[0], str(value)]
    return args + options
