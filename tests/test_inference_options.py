"""The inference commands' options and the Translator's inputs: ``--precision`` (apply, serve and the
Python API) reaching the fast path, ``--max-pixels`` (apply, serve, train) and ``serve --max-pending``,
help text for every option, one size rule for every backend (torch, TorchScript, ONNX), serve's answer on
an image too small for the network, and paths given to the Translator."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from PIL import Image

import translate.inference.translator as translator_module
from translate.cli import main
from translate.cli.image_options import PRECISIONS as CLI_PRECISIONS
from translate.cli.serve import DEFAULT_MAX_PENDING as CLI_MAX_PENDING
from translate.data.io import MAX_PIXELS_ENV, max_pixels
from translate.errors import ConfigError
from translate.inference import Translator
from translate.inference.fast import PRECISIONS, FastPath
from translate.inference.serve import DEFAULT_MAX_PENDING


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    from conftest import tiny_cyclegan_run

    return tiny_cyclegan_run(tmp_path_factory, steps=1)


@pytest.fixture
def pixel_limit(monkeypatch):
    """The pixel limit of this process as it was, restored after the test (``--max-pixels`` sets it)."""
    monkeypatch.setenv(MAX_PIXELS_ENV, str(max_pixels()))


@pytest.fixture
def fast_paths(monkeypatch):
    """The precision of every FastPath a Translator builds, in order."""
    made: list[str] = []

    class Recorded(FastPath):
        def __init__(self, network, **options) -> None:
            super().__init__(network, **options)
            made.append(self.precision)

    monkeypatch.setattr(translator_module, "FastPath", Recorded)
    return made


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_usage_error(result, *words: str) -> bool:
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    return (
        result.exit_code == 2
        and "Traceback" not in result.output
        and len(errors) == 1
        and all(w in errors[0] for w in words)
    )


# ------------------------------------------------------------------------------------------- precision
def test_the_choices_written_for_help_are_the_libraries():
    assert CLI_PRECISIONS == PRECISIONS
    assert CLI_MAX_PENDING == DEFAULT_MAX_PENDING


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_translators_precision_reaches_its_fast_path(cyclegan_run, fast_paths, precision):
    Translator.from_run(cyclegan_run, fast=True, precision=precision)
    assert fast_paths == [precision]


def test_a_bad_precision_is_a_one_line_error_in_python_and_a_usage_error_on_the_command_line(
    cyclegan_run, tmp_path
):
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16; got 'fp16'"):
        Translator.from_run(cyclegan_run, fast=False, precision="fp16")  # also without the fast path
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    result = invoke("apply", tmp_path / "a.png", "--run", cyclegan_run, "--precision", "fp16")
    assert one_line_usage_error(result, "--precision", "fp16", "auto", "bf16"), result.output
    result = invoke("serve", cyclegan_run, "--precision", "fp16")
    assert one_line_usage_error(result, "--precision", "fp16"), result.output


def test_apply_hands_its_precision_to_the_fast_path(cyclegan_run, fast_paths, tmp_path):
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    args = ["apply", tmp_path / "a.png", "--run", cyclegan_run, "--out", tmp_path / "out", "--device", "cpu"]
    assert invoke(*args, "--fast", "--precision", "bf16").exit_code == 0
    assert invoke(*args, "--fast").exit_code == 0
    assert fast_paths[0] == "bf16" and fast_paths[1] in ("fp32", "bf16"), "auto: what the CPU computes fast"


@pytest.fixture
def served(monkeypatch):
    """What ``translate serve`` would serve: the app and the server's settings (nothing is bound)."""
    import translate.inference.serve as serve_module

    calls: list[dict] = []

    def record(app, host, port, ready=None, max_pending=DEFAULT_MAX_PENDING):
        calls.append({"app": app, "max_pending": max_pending, "max_pixels": max_pixels()})

    monkeypatch.setattr(serve_module, "serve", record)
    return calls


def test_serve_takes_precision_fast_max_pending_and_max_pixels(cyclegan_run, served, fast_paths, pixel_limit):
    args = ["serve", cyclegan_run, "--device", "cpu"]
    assert invoke(*args).exit_code == 0
    assert served[0]["max_pending"] == DEFAULT_MAX_PENDING and fast_paths == [], "plain by default"
    result = invoke(*args, "--fast", "--precision", "bf16", "--max-pending", 3, "--max-pixels", 5000)
    assert result.exit_code == 0, result.output
    assert served[1]["max_pending"] == 3 and served[1]["max_pixels"] == 5000
    assert fast_paths == ["bf16", "bf16"], "each image export of the model (a2b, b2a)"
    assert one_line_usage_error(invoke(*args, "--max-pending", 0), "--max-pending")


# ------------------------------------------------------------------------------------------- --max-pixels
def test_apply_skips_an_image_above_max_pixels_with_one_line_and_a_higher_limit_lets_it_through(
    cyclegan_run, tmp_path, pixel_limit
):
    Image.new("RGB", (40, 30), "red").save(tmp_path / "big.png")  # 1200 px
    Image.new("RGB", (20, 20), "blue").save(tmp_path / "small.png")  # 400 px
    common = ["apply", tmp_path / "big.png", tmp_path / "small.png", "--run", cyclegan_run, "--device", "cpu"]
    result = invoke(*common, "--out", tmp_path / "low", "--max-pixels", 1000)
    assert result.exit_code == 3, result.output
    failed = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert len(failed) == 1 and "big.png" in failed[0] and "above the limit of 0.001 MP" in failed[0]
    assert "Traceback" not in result.output
    assert sorted(p.name for p in (tmp_path / "low").iterdir()) == ["small.png"]
    result = invoke(*common, "--out", tmp_path / "high", "--max-pixels", 2000)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "high").iterdir()) == ["big.png", "small.png"]
    assert one_line_usage_error(invoke(*common, "--max-pixels", 0), "--max-pixels")


def test_train_reads_its_data_under_max_pixels(monkeypatch, pixel_limit):
    import translate.api

    seen = []
    monkeypatch.setattr(translate.api, "train", lambda *args, **kwargs: seen.append(max_pixels()) or "run")
    result = invoke("train", "cyclegan", "--max-pixels", 4096, "--steps", 1)
    assert result.exit_code == 0, result.output
    assert seen == [4096]


# ------------------------------------------------------------------------------------------- help
@pytest.mark.parametrize("command", ["train", "apply", "serve"])
def test_every_option_of_the_command_says_what_it_does(command):
    options = [p for p in main.commands[command].params if p.param_type_name == "option"]
    assert [p.name for p in options if not (p.help or "").strip()] == []
    text = invoke(command, "--help").output
    for flag in {"train": ["--batch-size", "--seed", "--max-pixels"], "apply": ["--precision"]}.get(
        command, []
    ):
        assert flag in text
