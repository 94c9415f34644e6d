"""Translator: load a run, translate tensors / PIL / numpy / lists / folders at any size."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from conftest import TINY_SIZE, tiny_cyclegan_run, tiny_overrides
from PIL import Image

from translate import Translator
from translate.api import train
from translate.catalog.demo import make_demo_dataset
from translate.errors import CheckpointError, DataError, TranslateError


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    return tiny_cyclegan_run(tmp_path_factory, steps=2)


def test_tensor_batches_of_any_size_keep_their_size(cyclegan_run):
    translator = Translator.from_run(cyclegan_run, direction="a2b")
    for shape in [(2, 3, 32, 32), (1, 3, 37, 53), (3, 5, 7)]:
        out = translator(torch.rand(shape) * 2 - 1)
        assert out.shape == shape and out.abs().max() <= 1


def test_pil_numpy_and_lists_come_back_as_the_same_kind(cyclegan_run):
    translator = Translator.from_run(cyclegan_run)
    pil = Image.new("RGB", (45, 30), (200, 10, 10))
    array = np.zeros((20, 24, 3), dtype=np.uint8)
    out_pil = translator(pil)
    assert isinstance(out_pil, Image.Image) and out_pil.size == (45, 30)
    out_array = translator(array)
    assert out_array.dtype == np.uint8 and out_array.shape == (20, 24, 3)
    outs = translator([pil, array, pil], batch_size=2)
    assert [type(o) for o in outs] == [Image.Image, np.ndarray, Image.Image]
    # Batched convolutions round differently in the last float bits: at most 1 grey level apart.
    assert np.abs(np.asarray(outs[0]).astype(int) - np.asarray(out_pil)).max() <= 1


def test_the_two_directions_are_different_generators(cyclegan_run):
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    a2b = Translator.from_run(cyclegan_run, direction="a2b")(x)
    b2a = Translator.from_run(cyclegan_run, direction="b2a")(x)
    assert not torch.equal(a2b, b2a)


def test_apply_folder_mirrors_the_tree_and_skips_unreadable_files(cyclegan_run, tmp_path, caplog):
    src = tmp_path / "in"
    (src / "sub dir").mkdir(parents=True)
    Image.new("RGB", (40, 28)).save(src / "a.png")
    Image.new("RGB", (33, 33)).save(src / "sub dir" / "b é.jpg")
    (src / "broken.png").write_bytes(b"not an image")
    written = Translator.from_run(cyclegan_run).apply_folder(
        src, tmp_path / "out", batch_size=2, progress=False
    )
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [
        "in/a.png",
        "in/sub dir/b é.jpg",
    ]
    assert Image.open(tmp_path / "out" / "in" / "a.png").size == (40, 28)
    assert "broken.png" in caplog.text


def test_apply_never_overwrites_its_inputs(cyclegan_run, tmp_path):
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    before = (tmp_path / "a.png").read_bytes()
    with pytest.raises(TranslateError, match="refusing to overwrite"):
        Translator.from_run(cyclegan_run).apply_paths([tmp_path / "a.png"], tmp_path, progress=False)
    assert (tmp_path / "a.png").read_bytes() == before


def test_bad_checkpoints_get_clear_errors(cyclegan_run, tmp_path):
    with pytest.raises(CheckpointError, match="no run folder or checkpoint"):
        Translator.from_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        Translator.from_run(tmp_path / "empty")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="not a readable safetensors checkpoint"):
        Translator.from_run(tmp_path / "junk.safetensors")
    with pytest.raises(DataError, match="no such file"):
        Translator.from_run(cyclegan_run).apply_paths([tmp_path / "nope"], tmp_path / "out")


def test_weights_from_another_architecture_are_refused(cyclegan_run, tmp_path):
    from safetensors.torch import save_file

    from translate.engine.checkpoint import load_model_checkpoint, resolve_model_file

    checkpoint = load_model_checkpoint(cyclegan_run)
    meta = {
        "format": "translate-checkpoint-1",
        "task": "cyclegan",
        "step": "0",
        "config": "{}",
        "task_kwargs": __import__("json").dumps(
            {**checkpoint.task_kwargs, "generator": {"name": "resnet_9blocks", "base_channels": 4}}
        ),
    }
    save_file(load_model_checkpoint(cyclegan_run).weights, tmp_path / "other.safetensors", metadata=meta)
    assert resolve_model_file(tmp_path / "other.safetensors").name == "other.safetensors"
    with pytest.raises(CheckpointError, match="does not fit"):
        Translator.from_run(tmp_path / "other.safetensors")


@pytest.fixture(scope="module")
def pix2pix_run(tmp_path_factory):
    root = make_demo_dataset(
        tmp_path_factory.mktemp("data") / "pairs", layout="aligned", num_train=4, num_test=2, size=TINY_SIZE
    )
    layers = [{"data": {"root": str(root)}}, tiny_overrides("pix2pix", steps=2)]
    return train("pix2pix", overrides=layers, run_dir=tmp_path_factory.mktemp("runs") / "pix2pix")


def test_pix2pix_translates_with_batch_statistics_by_default_as_the_paper(pix2pix_run):
    translator = Translator.from_run(pix2pix_run)
    assert translator.batch_statistics
    running = {k: v.clone() for k, v in translator.generator.state_dict().items() if "running" in k}
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    batch = translator(x)
    # each image on its own statistics: the batch gives what the images give one by one, every time
    torch.testing.assert_close(batch, torch.cat([translator(image[None]) for image in x]))
    assert torch.equal(batch, translator(x))
    after = translator.generator.state_dict()
    assert all(torch.equal(after[k], v) for k, v in running.items()), "inference never updates running stats"


def test_pix2pix_eval_mode_is_a_choice_stored_with_the_run(pix2pix_run, tmp_path):
    from translate.engine.checkpoint import load_model_checkpoint

    assert load_model_checkpoint(pix2pix_run).task_kwargs["test_mode"] == "batch_statistics"
    root = load_model_checkpoint(pix2pix_run).config["data"]["root"]
    layers = [{"data": {"root": root}, "model": {"test_mode": "eval"}}, tiny_overrides("pix2pix", steps=1)]
    translator = Translator.from_run(train("pix2pix", overrides=layers, run_dir=tmp_path / "run"))
    assert not translator.batch_statistics
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    # eval mode: running statistics, so a batch gives what its images give one by one
    torch.testing.assert_close(translator(x), torch.cat([translator(image[None]) for image in x]))


def test_apply_survives_tiny_images_name_clashes_and_an_out_inside_the_input(cyclegan_run, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (40, 30), "red").save(photos / "x.png")
    Image.new("RGB", (40, 30), "blue").save(photos / "x.bmp")
    Image.new("RGB", (1, 1), "green").save(photos / "tiny.png")
    translator = Translator.from_run(cyclegan_run)
    written = translator.apply_folder(photos, photos / "out", progress=False)  # --out inside the input
    names = sorted(p.name for p in written)
    assert names == ["x.bmp.png", "x.png"], "both clashing names kept, the 1 x 1 image skipped"
    assert [(p.name, "too small" in reason) for p, reason in translator.report.failed] == [("tiny.png", True)]
    again = translator.apply_folder(photos, photos / "out", progress=False)
    assert again == [] and len(translator.report.skipped) == 2, "outputs are neither re-read nor redone"
    assert not list((photos / "out").rglob("*.partial")), "outputs are written whole"
    assert len(translator.apply_folder(photos, photos / "out", progress=False, overwrite=True)) == 2


def test_cli_apply_resumes_and_prints_a_summary(cyclegan_run, tmp_path):
    from click.testing import CliRunner

    from translate.cli import main

    Image.new("RGB", (40, 30), "red").save(tmp_path / "a.png")
    Image.new("RGB", (1, 1), "red").save(tmp_path / "b.png")
    args = ["apply", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--run", str(cyclegan_run)]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 3, "an input failed: the documented status, not 0"
    assert "translated 1, skipped 0 existing, failed 1" in result.output and "failed: " in result.output
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert "translated 0, skipped 1 existing, failed 1" in result.output and result.exit_code == 3


def test_python_api_honours_exif_keeps_alpha_and_rejects_misread_inputs(cyclegan_run):
    translator = Translator.from_run(cyclegan_run)
    rotated = Image.new("RGB", (40, 24), "red")
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    with_exif = Image.open(_saved(rotated, exif))
    assert translator(with_exif).size == (24, 40), "EXIF orientation applied, as the CLI does"
    rgba = Image.new("RGBA", (32, 20), (10, 200, 10, 0))
    rgba.putpixel((3, 3), (10, 200, 10, 255))
    out = translator(rgba)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out)[:, :, 3], np.asarray(rgba)[:, :, 3])
    assert translator(np.zeros((20, 24, 4), dtype=np.uint8)).shape == (20, 24, 4)
    with pytest.raises(DataError, match=r"looks like \(C, H, W\)"):
        translator(np.zeros((3, 20, 24), dtype=np.uint8))
    with pytest.raises(DataError, match="must be uint8"):
        translator(np.zeros((20, 24, 3), dtype=np.float32))
    with pytest.raises(DataError, match="must be float in"):
        translator(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(DataError, match=r"must lie in \[-1, 1\]"):
        translator(torch.full((1, 3, 8, 8), 200.0))


def _saved(image: Image.Image, exif) -> io.BytesIO:
    """``image`` as an in-memory JPEG carrying ``exif``."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    buffer.seek(0)
    return buffer
