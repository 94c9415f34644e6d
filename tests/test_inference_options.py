"""The inference commands' options and the Translator's inputs: ``--precision`` (apply, serve and the
Python API) reaching the fast path, ``--max-pixels`` (apply, serve, train) and ``serve --max-pending``,
help text for every option, one size rule for every backend (torch, TorchScript, ONNX), serve's answer on
an image too small for the network, and paths given to the Translator."""

from __future__ import annotations

import io
import re
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import translate.inference.translator as translator_module
from translate.cli import main
from translate.cli.options import PRECISIONS as CLI_PRECISIONS
from translate.cli.serve import DEFAULT_MAX_PENDING as CLI_MAX_PENDING
from translate.data.io import MAX_PIXELS_ENV, max_pixels, set_max_pixels
from translate.errors import ConfigError, DataError
from translate.inference import Translator
from translate.inference.convert import ImageSizeError
from translate.inference.fast import PRECISIONS, FastPath
from translate.inference.serve import DEFAULT_MAX_PENDING, ServeApp, make_server
from translate.inference.sizes import SmallestSide


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


# ------------------------------------------------------------------------------------------- the size rule
TINY_LINE = (
    "the model cannot translate this 3x3 px image: it is too small "
    "(this network takes at least 5 px on each side)"
)
"""What every backend says of a 3x3 image for the tiny CycleGAN (ResNet, size multiple 4: 8 px padded)."""


def test_the_size_rule_finds_the_smallest_side_in_a_few_runs():
    runs = []

    def run(side: int) -> None:
        runs.append(side)
        if side < 12:
            raise RuntimeError("Padding size should be less than the corresponding input dimension")

    rule = SmallestSide(4, run)
    with pytest.raises(
        ImageSizeError, match=r"^the model cannot translate this 8x30 px image: it is too small "
    ):
        rule.check(8, 30)
    assert "at least 9 px on each side" in rule.problem(8, 30), "9 px pads to 12"
    rule.check(9, 9)
    rule.check(300, 200)
    assert runs == [4, 8, 16, 12], "doubling, then the gap halved; once known, no more runs"


def test_a_network_that_runs_on_nothing_says_what_it_raised():
    def run(side: int) -> None:
        raise ValueError(f"broken at {side}\nsecond line")

    with pytest.raises(ImageSizeError) as caught:
        SmallestSide(4, run).check(10, 10)
    assert str(caught.value) == (
        "the model cannot translate this 10x10 px image: the network runs on no image up to 16x16 px "
        "(broken at 16)"
    )


@pytest.fixture(scope="module", params=["torch", "torchscript", "onnx"])
def model_file(request, cyclegan_run, tmp_path_factory):
    """The tiny CycleGAN as each backend runs it: the run folder, or a file of `translate export`."""
    if request.param == "torch":
        return cyclegan_run
    if request.param == "onnx":
        pytest.importorskip("onnxruntime", reason='the onnx extra: pip install "translate-gan[onnx]"')
    out = tmp_path_factory.mktemp(request.param) / ("a2b.onnx" if request.param == "onnx" else "a2b.pt")
    result = invoke("export", cyclegan_run, "--format", request.param, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_every_backend_skips_a_tiny_image_with_the_same_line(model_file, tmp_path):
    Image.new("RGB", (3, 3), "red").save(tmp_path / "tiny.png")
    Image.new("RGB", (40, 30), "blue").save(tmp_path / "ok.png")
    result = invoke("apply", tmp_path, "--run", model_file, "--out", tmp_path / "out", "--device", "cpu")
    assert result.exit_code == 3 and "Traceback" not in result.output, result.output
    assert f"failed: {tmp_path / 'tiny.png'}: {TINY_LINE}" in result.output.splitlines()
    assert (tmp_path / "out" / tmp_path.name / "ok.png").is_file(), "the rest of the folder is translated"
    with pytest.raises(ImageSizeError, match=re.escape(TINY_LINE)):
        Translator.from_run(model_file)(torch.zeros(1, 3, 3, 3))


def test_serve_answers_a_tiny_image_as_apply_does(model_file):
    buffer = io.BytesIO()
    Image.new("RGB", (3, 3), "red").save(buffer, format="PNG")
    server = make_server(ServeApp(model_file), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        request = urllib.request.Request(
            server.url + "api/translate", buffer.getvalue(), {"Content-Type": "image/png"}
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert caught.value.code == 400
    assert caught.value.read().decode() == TINY_LINE + "\n"


# ------------------------------------------------------------------------------------------- paths
def test_a_path_is_read_as_apply_reads_it_and_gives_a_pil_image(cyclegan_run, tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    rgba = np.dstack([pixels, np.full((30, 40), 128, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    translator = Translator.from_run(cyclegan_run)
    expected = translator(pixels)
    for given in (str(tmp_path / "photo.png"), tmp_path / "photo.png"):
        result = translator(given)
        assert isinstance(result, Image.Image) and result.size == (40, 30)
        assert np.array_equal(np.asarray(result), expected)
    as_file, as_array = translator([tmp_path / "clear.png", pixels])
    assert as_file.mode == "RGBA" and np.all(np.asarray(as_file)[..., 3] == 128), "alpha carried through"
    assert np.array_equal(as_array, expected)
    assert translator.apply_paths([tmp_path / "photo.png"], tmp_path / "out", progress=False)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "photo.png")), expected), "as apply"


def test_a_bad_path_is_a_one_line_data_error(cyclegan_run, tmp_path, pixel_limit):
    translator = Translator.from_run(cyclegan_run)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("RGB", (40, 30)).save(tmp_path / "big.png")
    with pytest.raises(DataError, match=r"^cannot read image .*missing\.jpg: No such file") as caught:
        translator(str(tmp_path / "missing.jpg"))
    assert "\n" not in str(caught.value)
    with pytest.raises(DataError, match=r"^cannot read image .*broken\.jpg"):
        translator(tmp_path / "broken.jpg")
    set_max_pixels(1000)
    with pytest.raises(DataError, match="above the limit of 0.001 MP"):
        translator(tmp_path / "big.png")
