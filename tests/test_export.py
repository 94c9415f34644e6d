"""Portable models: `translate export` to ONNX and TorchScript (dynamic batch and size, the contract in the
file's metadata), parity with PyTorch, `translate apply --backend onnxruntime`, and the one-line error
without the optional packages."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_SIZE, tiny_overrides
from PIL import Image
from test_core import toy_config
from test_stargan import write_attribute_data
from toy_tasks import ToyCGAN, ToyImages, registered

from translate import Translator
from translate.api import train
from translate.catalog.demo import make_demo_dataset
from translate.cli import main
from translate.engine.trainer import Trainer
from translate.errors import ConfigError
from translate.exports import IMAGE_TO_IMAGE, NOISE_TO_IMAGE
from translate.inference.model import load_export
from translate.inference.portable import FORMAT, export_model, read_contract
from translate.registry import TASKS

try:
    import onnx
    import onnxruntime
    import onnxscript  # noqa: F401  (the exporter's)
except ImportError:
    onnx = onnxruntime = None
ONNX_HINT = 'pip install "translate-gan[onnx]"'
needs_onnx = pytest.mark.skipif(onnxruntime is None, reason=f"needs {ONNX_HINT}")
TOLERANCE = 1e-4


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, message: str) -> None:
    assert result.exit_code not in (0, None) and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


def run_onnx(path, *inputs: torch.Tensor) -> torch.Tensor:
    """The file run by onnxruntime itself (not through the toolkit's wrapper)."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)}
    return torch.from_numpy(session.run(None, feeds)[0])


def images(batch: int, height: int, width: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def image_run(tmp_path_factory, task: str, model=None, layout: str = "unaligned", size: int = TINY_SIZE):
    """A tiny ``task`` trained one step on demo data of ``size`` px."""
    root = make_demo_dataset(
        tmp_path_factory.mktemp("data") / "demo", layout=layout, num_train=4, num_test=2, size=size
    )
    data = {"root": str(root), "image_size": size, "load_size": size + 4}
    if layout == "unaligned":
        data["domains"] = ["photo", "anime"]
    layers = [tiny_overrides(task, steps=1), {"data": data, "model": model or {}}]
    return train(task, overrides=layers, run_dir=tmp_path_factory.mktemp("runs") / task)


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    return image_run(tmp_path_factory, "cyclegan")


@pytest.fixture(scope="module")
def cyclegan_onnx(cyclegan_run, tmp_path_factory):
    """`translate export RUN --format onnx` (the a2b export)."""
    if onnxruntime is None:
        pytest.skip(f"needs {ONNX_HINT}")
    out = tmp_path_factory.mktemp("onnx") / "a2b.onnx"
    result = invoke("export", cyclegan_run, "--format", "onnx", "--out", out)
    assert result.exit_code == 0, result.output
    assert "max |difference| from PyTorch" in result.output
    return out


# ------------------------------------------------------------------------------------------- image -> image
@needs_onnx
def test_onnx_matches_pytorch_at_other_batch_and_image_sizes(cyclegan_run, cyclegan_onnx):
    network = load_export(cyclegan_run, "a2b", (IMAGE_TO_IMAGE,)).module
    for batch, height, width in [(1, 32, 32), (3, 48, 80), (2, 100, 36)]:  # multiples of 4
        x = images(batch, height, width, seed=height)
        with torch.no_grad():
            expected = network(x)
        got = run_onnx(cyclegan_onnx, x)
        assert got.shape == expected.shape
        assert (got - expected).abs().max() <= TOLERANCE, f"{batch} x {height}x{width}"
    graph_input = onnx.load(str(cyclegan_onnx)).graph.input[0]
    dims = graph_input.type.tensor_type.shape.dim
    assert [d.dim_param != "" for d in dims] == [True, False, True, True], "batch, height, width dynamic"


@needs_onnx
def test_the_onnx_file_carries_the_preprocessing_contract(cyclegan_run, cyclegan_onnx):
    props = {p.key: json.loads(p.value) for p in onnx.load(str(cyclegan_onnx)).metadata_props}
    assert props["format"] == FORMAT and props["kind"] == IMAGE_TO_IMAGE and props["export"] == "a2b"
    assert props["range"] == [-1.0, 1.0] and props["layout"] == "NCHW" and props["channels"] == "RGB"
    assert props["in_channels"] == 3 and props["size_multiple"] == 4 and props["image_size"] == TINY_SIZE
    assert props["inputs"] == ["image"] and props["options"]["target"] == "anime"
    assert props["per_image_norms"] is True  # instance norm: tiles need the PyTorch model
    assert read_contract(cyclegan_onnx) == props


@needs_onnx
def test_apply_with_onnxruntime_gives_what_torch_gives(cyclegan_run, cyclegan_onnx, tmp_path):
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (45, 61, 3), dtype=np.uint8)).save(photo)  # padded inside
    for name, options in [
        ("torch", ["--run", cyclegan_run]),
        ("file", ["--run", cyclegan_onnx]),
        ("backend", ["--run", cyclegan_run, "--backend", "onnxruntime"]),  # exported on the fly
    ]:
        result = invoke("apply", photo, *options, "--out", tmp_path / name)
        assert result.exit_code == 0, result.output
    torch_output = np.asarray(Image.open(tmp_path / "torch" / "photo.png")).astype(int)
    for name in ("file", "backend"):
        output = np.asarray(Image.open(tmp_path / name / "photo.png")).astype(int)
        assert output.shape == (45, 61, 3) and np.abs(output - torch_output).max() <= 1, name
    translator = Translator.from_onnx(cyclegan_onnx)
    assert translator.size_multiple == 4 and translator.in_channels == 3
    assert np.abs(np.asarray(translator(Image.open(photo))).astype(int) - torch_output).max() <= 1
    with pytest.raises(ConfigError, match="tiles need the PyTorch model"):
        Translator.from_onnx(cyclegan_onnx, tile=32, overlap=8)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
def test_torchscript_matches_pytorch_and_carries_the_contract(cyclegan_run, tmp_path):
    out = export_model(cyclegan_run, tmp_path / "b2a.pt", "torchscript", "b2a")
    network = load_export(cyclegan_run, "b2a", (IMAGE_TO_IMAGE,)).module
    extra = {"translate.json": ""}
    scripted = torch.jit.load(str(out), _extra_files=extra)
    contract = json.loads(extra["translate.json"])
    assert contract["export"] == "b2a" and contract["range"] == [-1.0, 1.0] and contract["size_multiple"] == 4
    for batch, height, width in [(2, 32, 32), (1, 52, 88)]:
        x = images(batch, height, width, seed=width)
        with torch.no_grad():
            assert (scripted(x) - network(x)).abs().max() <= TOLERANCE
    x = images(1, 40, 44)
    torch.testing.assert_close(Translator.from_exported(out)(x), Translator.from_run(cyclegan_run, "b2a")(x))


# ------------------------------------------------------------------------------------------ pix2pix
def test_dropout_at_test_time_is_refused_with_the_way_out(tmp_path_factory):
    # batch statistics (pix2pix's default) and dropout (on the U-Net's levels 4 to num_downs - 2)
    generator = {"name": "unet", "num_downs": 6, "base_channels": 4, "dropout": True}
    run = image_run(tmp_path_factory, "pix2pix", {"generator": generator}, layout="aligned", size=64)
    with pytest.raises(ConfigError, match="dropout on at test time.*--without-dropout"):
        export_model(run, tmp_path_factory.mktemp("out") / "g.pt", "torchscript")
    out = export_model(run, tmp_path_factory.mktemp("out") / "g.pt", "torchscript", without_dropout=True)
    assert read_contract(out)["dropout"].startswith("removed")


@needs_onnx
def test_batch_statistics_export_as_inference_runs_them(tmp_path_factory):
    """pix2pix's test mode (batch norm on each image's own statistics, no dropout here) exports as the
    per-image norm it is: a batch through the file gives what the Translator gives image by image."""
    run = image_run(tmp_path_factory, "pix2pix", {"generator": {"dropout": False}}, layout="aligned")
    translator = Translator.from_run(run)
    assert translator.batch_statistics
    out = export_model(run, tmp_path_factory.mktemp("out") / "pix2pix.onnx", "onnx")
    for batch, side in [(3, 32), (2, 64)]:  # the U-Net's size multiple is 32
        x = images(batch, side, side, seed=side)
        assert (run_onnx(out, x) - translator(x)).abs().max() <= TOLERANCE
    assert read_contract(out)["test_mode"] == "batch_statistics"


# ------------------------------------------------------------------------------------------ StarGAN
@needs_onnx
def test_image_and_target_models_export_both_inputs(tmp_path_factory):
    root = write_attribute_data(tmp_path_factory.mktemp("data") / "celeba")
    layer = tiny_overrides("stargan", 1, n_critic=1)
    layer["data"].update({"root": str(root), "attributes": ["Black_Hair", "Blond_Hair", "Male"]})
    run = train("stargan", overrides=[layer], run_dir=tmp_path_factory.mktemp("runs") / "stargan")
    out = export_model(run, tmp_path_factory.mktemp("out") / "stargan.onnx", "onnx")
    contract = read_contract(out)
    assert contract["inputs"] == ["image", "labels"]
    assert contract["options"]["labels"]["names"] == ["Black_Hair", "Blond_Hair", "Male"]
    network = Translator.from_run(run).generator
    for batch, side in [(2, 32), (3, 48)]:
        x, labels = images(batch, side, side, seed=side), (torch.rand(batch, 3) > 0.5).float()
        with torch.no_grad():
            assert (run_onnx(out, x, labels) - network(x, labels)).abs().max() <= TOLERANCE
    # the file holds no classifier: a target that sets every label needs none
    x = images(2, 32, 32)
    exported = Translator.from_onnx(out)
    torch.testing.assert_close(
        exported(x, target="Blond_Hair=1,Male=0"), Translator.from_run(run)(x, target="Blond_Hair=1,Male=0")
    )
    with pytest.raises(ConfigError, match="name every label"):
        exported(x, target="Male=0")


# ------------------------------------------------------------------------------------------ noise -> image
@needs_onnx
def test_noise_models_export_with_a_dynamic_batch(tmp_path):
    with registered():
        TASKS.register("toy_cgan")(ToyCGAN)
        try:
            Trainer(toy_config("toy_cgan", steps=1), tmp_path / "cgan", dataset=ToyImages()).fit()
            out = export_model(tmp_path / "cgan", tmp_path / "cgan.onnx", "onnx")
            network = load_export(tmp_path / "cgan", None, (NOISE_TO_IMAGE,)).module
        finally:
            TASKS._entries.pop("toy_cgan")
    contract = read_contract(out)
    assert contract["kind"] == NOISE_TO_IMAGE and contract["inputs"] == ["noise", "labels"]
    assert contract["options"]["classes"] and contract["options"]["latent_dim"] == 4
    for batch in (1, 2, 7):
        z, labels = torch.rand(batch, 4) * 2 - 1, torch.arange(batch) % 3
        with torch.no_grad():
            assert (run_onnx(out, z, labels) - network(z, labels)).abs().max() <= TOLERANCE
    with pytest.raises(Exception, match="translate sample"):
        Translator.from_onnx(out)


# ------------------------------------------------------------------------------------------ without the extra
def test_without_the_onnx_packages_one_line_names_the_extra(cyclegan_run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    result = invoke("export", cyclegan_run, "--format", "onnx", "--out", tmp_path / "g.onnx")
    assert_one_line_error(result, ONNX_HINT)
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    result = invoke("apply", tmp_path / "a.png", "--run", cyclegan_run, "--backend", "onnxruntime")
    assert_one_line_error(result, ONNX_HINT)
    assert not (tmp_path / "g.onnx").exists()
