"""The command line starts at once: importing it and answering --version, --help (of every command) and the
listings (`list`, `datasets list`, `models list`) import no torch, from the console script's own
``import translate.cli`` (issue 23: every command used to spend seconds importing it).

Each check runs in a fresh Python, since this test process has imported torch long ago."""

from __future__ import annotations

import json
import subprocess
import sys

RUN_COMMANDS = """
import json, sys
from click.testing import CliRunner
import translate.cli

runner = CliRunner()
asked = [["--version"], ["--help"], ["list"], ["list", "losses"], ["datasets", "list"], ["models", "list"]]
asked += [[*name.split(), "--help"] for name in NAMES]
failed = {}
for args in asked:
    result = runner.invoke(translate.cli.main, args)
    if result.exit_code != 0:
        failed[" ".join(args)] = result.output
heavy = [m for m in ("torch", "torchvision", "numpy", "safetensors", "PIL.Image") if m in sys.modules]
print(json.dumps({"failed": failed, "heavy": heavy}))
"""


def command_names() -> list[str]:
    """Every command and group of `translate`, as the words after `translate` (``datasets list``)."""
    import click

    from translate.cli import main

    def walk(group: click.Group, prefix: str) -> list[str]:
        names = []
        for name, command in group.commands.items():
            names.append(f"{prefix}{name}")
            if isinstance(command, click.Group):
                names += walk(command, f"{prefix}{name} ")
        return names

    return walk(main, "")


def run_fresh(code: str) -> dict:
    program = f"NAMES = {command_names()!r}\n{code}"
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_console_script_imports_no_torch_for_version_help_and_listings():
    report = run_fresh(RUN_COMMANDS)
    assert report["failed"] == {}
    assert report["heavy"] == [], "imported at start: " + ", ".join(report["heavy"])


def test_the_listing_of_components_is_what_the_registries_hold():
    import translate.components  # noqa: F401
    from translate.registry import describe_all, read_index

    assert read_index() == describe_all(), (
        "translate/components.json is out of date: run `python tools/component_index.py`"
    )
