"""The command line's shared parts (translate/cli/options.py) and its exit statuses: options that take many
values, a closed output pipe, `translate apply` with inputs that failed, install hints."""

from __future__ import annotations

import errno
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from PIL import Image

from translate.cli import main
from translate.cli.apply import INPUTS_FAILED_EXIT
from translate.cli.options import (
    BROKEN_PIPE_EXIT,
    FriendlyGroup,
    ManyValues,
    ManyValuesCommand,
    command_line,
)
from translate.cli.train import train

ROOT = Path(__file__).resolve().parents[1]


@click.command(cls=ManyValuesCommand)
@click.argument("method")
@click.option("--domains", cls=ManyValues)
@click.option("--steps", type=int)
def probe(method: str, domains: tuple[str, ...] | None, steps: int | None) -> None:
    click.echo(repr((method, domains, steps)))


@pytest.mark.parametrize(
    "args, parsed",
    [
        (["m", "--domains", "a", "b", "c", "--steps", "2"], ("m", ("a", "b", "c"), 2)),
        (["--domains", "a", "b", "--steps", "2", "m"], ("m", ("a", "b"), 2)),
        (["m", "--domains=a", "b"], ("m", ("a", "b"), None)),
        (["m", "--domains", "a"], ("m", ("a",), None)),
        (["m", "--domains", "a", "b", "--domains", "c"], ("m", ("c",), None)),  # the last one counts
        (["m", "--domains", "-x", "y"], ("m", ("-x", "y"), None)),  # the first value is taken as given
        (["m"], ("m", None, None)),
    ],
)
def test_many_values_take_every_argument_up_to_the_next_option(args, parsed):
    result = CliRunner().invoke(probe, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output == f"{parsed!r}\n"


def test_many_values_without_a_value_is_clicks_usage_error():
    result = CliRunner().invoke(probe, ["m", "--domains"])
    assert result.exit_code == 2 and "Option '--domains' requires an argument" in result.output
    result = CliRunner().invoke(probe, ["m", "--", "--domains", "a"])  # after --: arguments, not options
    assert result.exit_code == 2 and "unexpected extra arguments" in result.output


def test_many_values_reach_the_processes_of_nproc_as_given():
    args = ["cyclegan", "--domains", "day", "night", "--steps", "3", "--nproc", "2"]
    ctx = train.make_context("train", list(args))
    assert ctx.params["domains"] == ("day", "night")
    again = command_line(ctx, leave_out=("nproc",))
    assert again == ["train", "cyclegan", "--domains", "day", "night", "--steps", "3"]
    assert train.make_context("train", again[1:]).params["domains"] == ("day", "night")


def commands(group: click.Group, prefix: str = "translate"):
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")


def test_every_many_values_option_is_on_a_command_that_gathers_them():
    found = []
    for name, command in commands(main):
        if any(isinstance(p, ManyValues) for p in command.params):
            found.append(name)
            assert isinstance(command, ManyValuesCommand), name
    assert sorted(found) == ["translate classifier train", "translate import stargan", "translate train"]


def test_a_closed_pipe_ends_the_command_quietly():
    group = FriendlyGroup("g")

    @group.command()
    def pipe() -> None:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    @group.command()
    def full() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "out/x.png")

    result = CliRunner().invoke(group, ["pipe"])
    assert (result.exit_code, result.output) == (BROKEN_PIPE_EXIT, "")
    result = CliRunner().invoke(group, ["full"])  # every other OSError stays a one-line error
    assert (result.exit_code, result.output) == (1, "Error: No space left on device: out/x.png\n")


@pytest.mark.parametrize("args", [["list"], ["--version"]])
def test_translate_list_into_a_closed_pipe_prints_nothing_and_exits_141(args):
    """As `translate list | head -1` once head has gone: the read end is closed before the first line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "translate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == BROKEN_PIPE_EXIT, stderr
    assert stderr == ""


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    from conftest import tiny_cyclegan_run

    return tiny_cyclegan_run(tmp_path_factory, steps=1)


def test_apply_exits_3_when_an_input_failed_and_keeps_its_summary(cyclegan_run, tmp_path):
    Image.new("RGB", (40, 30), "red").save(tmp_path / "a.png")
    Image.new("RGB", (1, 1), "red").save(tmp_path / "tiny.png")
    common = ["apply", "--run", str(cyclegan_run), "--device", "cpu", "--no-fast"]
    result = CliRunner().invoke(main, [*common, str(tmp_path / "a.png"), "--out", str(tmp_path / "ok")])
    assert result.exit_code == 0, result.output
    args = [*common, str(tmp_path / "a.png"), str(tmp_path / "tiny.png"), "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == INPUTS_FAILED_EXIT == 3, result.output
    assert "failed: " in result.output and "tiny.png" in result.output
    assert "translated 1, skipped 0 existing, failed 1; wrote 1 images to" in result.output
    assert (tmp_path / "out" / "a.png").is_file(), "the inputs that work are written"
    help_text = CliRunner().invoke(main, ["apply", "-h"]).output
    assert "Exit status: 0 when every input was translated" in help_text
    assert CliRunner().invoke(main, ["apply", "a.png"]).exit_code == 2, "a usage error stays 2"


# Hints that still name the other package, in files this change does not own (to be fixed there).
def test_install_hints_name_the_real_package():
    """`translate` on PyPI is another project: every hint names translate-gan[extra]."""
    wrong = re.compile(r"\btranslate" + r"\[")  # written in two parts, so this file does not match itself
    found = []
    for folder in ("translate", "tests"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in {".py", ".md", ".yaml", ".txt", ".html"} or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(ROOT).as_posix()
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if wrong.search(line):
                    found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, "install hints naming the wrong package:\n" + "\n".join(found)
    hints = main.commands["apply"].params
    backend = next(p for p in hints if p.name == "backend")
    assert 'pip install "translate-gan[onnx]"' in (backend.help or "")
