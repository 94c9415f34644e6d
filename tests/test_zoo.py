"""The model zoo: catalog, `translate models list | download`, ``model_run``; a local HTTP server on
127.0.0.1 serves a generator checkpoint made in the test (resume, checksums, offline, bad files)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import translate.components  # noqa: F401
from translate.catalog.zoo import get_model, load_models, model_run, models_root
from translate.cli.models import model_run as cli_model_run
from translate.cli.models import models
from translate.errors import CheckpointError, ConfigError, DataError
from translate.inference import Translator
from translate.registry import GENERATORS

CYCLEGAN = [
    *("apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra"),
    *("zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh"),
    *("sat2map", "map2sat", "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label"),
    *("facades_label2photo", "iphone2dslr_flower"),
]
PIX2PIX = ["edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night"]


@pytest.fixture
def generator() -> torch.nn.Module:
    """A small CycleGAN generator; its state dict has the reference's keys and order (the ResNet
    generator's keys are the reference's, see tests/test_junyanz_import.py)."""
    torch.manual_seed(0)
    return GENERATORS.build({"name": "resnet_6blocks", "norm": "instance", "base_channels": 4}).eval()


def checkpoint_bytes(module: torch.nn.Module, path: Path) -> bytes:
    torch.save(module.state_dict(), path)
    return path.read_bytes()


def write_catalog(path: Path, url: str, **fields: object) -> Path:
    entry = {
        "family": "cyclegan",
        "description": "photos -> tiny paintings (a test model)",
        "url": url,
        "arch": "resnet_6blocks",
        "norm": "instance",
        "direction": "photo2tiny",
        "image_size": 32,
        "licence": "test licence",
        **fields,
    }
    lines = ["models:", "  tiny_style:"] + [
        f"    {k}: {v if v is not None else 'null'}" for k, v in entry.items()
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def zoo(tmp_path, server, generator, monkeypatch):
    """A one-model catalog whose file the server holds; returns (root, file bytes)."""
    data = checkpoint_bytes(generator, tmp_path / "made.pth")
    server.files["/tiny_style.pth"] = data
    monkeypatch.setenv(
        "TRANSLATE_MODEL_CATALOG", str(write_catalog(tmp_path / "models.yaml", server.url("/tiny_style.pth")))
    )
    return tmp_path / "cache", data


def assert_translates_like(run: Path, generator: torch.nn.Module) -> None:
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    translator = Translator.from_run(run)
    with torch.no_grad():
        assert float((translator.translate_tensor(x) - generator(x)).abs().max()) <= 1e-5


# --- catalog ------------------------------------------------------------------------------------------


def test_catalog_lists_the_published_generators():
    catalog = load_models()
    for name in CYCLEGAN:
        entry = catalog[name]
        assert entry.url == f"http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{name}.pth"
        assert (entry.arch, entry.norm, entry.dropout, entry.test_mode) == (
            "resnet_9blocks",
            "instance",
            False,
            "eval",
        )
    for upstream in PIX2PIX:
        entry = catalog[f"pix2pix_{upstream}"]
        assert entry.url == f"http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{upstream}.pth"
        assert (entry.arch, entry.norm, entry.dropout) == ("unet_256", "batch", True)
        assert entry.test_mode == "batch_statistics" and entry.upstream_name == upstream
    assert len(catalog) == len(CYCLEGAN) + len(PIX2PIX) + 2 + 6  # and yunjey's two StarGAN, CUT's six
    for entry in catalog.values():
        assert entry.licence and entry.description and entry.direction and entry.size_mb
        assert entry.md5 is None and entry.sha256 is None and entry.size_bytes is None  # none published


def test_unknown_name_suggests_the_closest():
    with pytest.raises(DataError, match=r"unknown model 'horse2zebr'; did you mean horse2zebra\?"):
        get_model("horse2zebr")
    with pytest.raises(DataError, match=r"did you mean pix2pix_edges2shoes\?"):
        get_model("edges2shoes")  # the authors' name of a pix2pix model
    result = CliRunner().invoke(models, ["download", "style_vangog"])
    assert result.exit_code == 1 and "did you mean style_vangogh?" in result.output
    assert result.output.count("\n") == 1


def test_cli_list_shows_every_model_with_size_and_checksum_note():
    result = CliRunner().invoke(models, ["list"])
    assert result.exit_code == 0, result.output
    for name in [*CYCLEGAN, *(f"pix2pix_{n}" for n in PIX2PIX)]:
        assert name in result.output
    assert "~46 MB" in result.output and "~218 MB" in result.output
    assert "checksums: none published for any model" in result.output
    verbose = CliRunner().invoke(models, ["list", "-v"])
    assert "checksum: none published" in verbose.output and "licence: no licence stated" in verbose.output


def test_default_cache_root(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSLATE_HOME", str(tmp_path / "home"))
    assert models_root() == tmp_path / "home" / "models"
    monkeypatch.delenv("TRANSLATE_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models_root() == tmp_path / "xdg" / "translate" / "models"
    assert models_root(tmp_path / "given") == tmp_path / "given"


# --- download and import ------------------------------------------------------------------------------


def test_download_imports_a_run_that_translates(zoo, server, generator):
    root, _ = zoo
    with pytest.raises(DataError, match="model tiny_style is not in .*translate models download tiny_style"):
        cli_model_run("tiny_style", root, download=False)
    result = CliRunner().invoke(models, ["download", "tiny_style", "--root", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    run = root / "tiny_style"
    assert f"tiny_style ready: {run}" in result.output and "licence: test licence" in result.output
    assert sorted(p.name for p in root.iterdir()) == ["tiny_style"]  # no .partial, no download left
    assert_translates_like(run, generator)
    assert Translator.from_run(run, direction="photo2tiny")

    listed = CliRunner().invoke(models, ["list", "--root", str(root)])
    assert "(downloaded)" in listed.output
    again = CliRunner().invoke(models, ["download", "tiny_style", "--root", str(root)])
    assert again.exit_code == 0 and "already downloaded" in again.output
    assert cli_model_run("tiny_style", root) == run
    assert server.ranges() == [None]  # one request in all


def test_default_root_and_the_zoo_function_without_importer(zoo, monkeypatch, tmp_path, generator):
    monkeypatch.setenv("TRANSLATE_HOME", str(tmp_path / "home"))
    with pytest.raises(ConfigError, match="needs importer="):
        model_run("tiny_style")
    run = cli_model_run("tiny_style", progress=False)
    assert run == tmp_path / "home" / "models" / "tiny_style"
    assert model_run("tiny_style") == run  # present: no importer needed
    assert_translates_like(run, generator)


def test_resume_after_a_cut_connection(zoo, server, generator):
    root, data = zoo
    server.cuts = 1
    run = cli_model_run("tiny_style", root, progress=False, retry_wait=0)
    assert server.ranges() == [None, f"bytes={len(data) // 2}-"]  # the second request resumed halfway
    assert_translates_like(run, generator)


def test_interrupted_download_keeps_the_part_file_and_the_next_run_resumes(zoo, server, generator):
    root, data = zoo
    server.cuts = 1
    with pytest.raises(DataError, match="interrupted.*run the same command again to resume") as info:
        cli_model_run("tiny_style", root, progress=False, retries=0)
    assert "\n" not in str(info.value)
    part = root / ".partial" / "tiny_style.pth.part"
    assert part.stat().st_size == len(data) // 2 and not (root / "tiny_style").exists()
    result = CliRunner().invoke(models, ["download", "tiny_style", "--root", str(root), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert server.ranges()[-1] == f"bytes={len(data) // 2}-" and not part.exists()
    assert_translates_like(root / "tiny_style", generator)


@pytest.mark.parametrize("field", ["sha256", "md5", "size_bytes"])
def test_checksum_mismatch_deletes_and_names_both_values(tmp_path, server, generator, monkeypatch, field):
    data = checkpoint_bytes(generator, tmp_path / "made.pth")
    server.files["/tiny_style.pth"] = data
    wrong = {"sha256": "0" * 64, "md5": "0" * 32, "size_bytes": len(data) + 1}[field]
    actual = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
        "size_bytes": str(len(data)),
    }[field]
    value = f"'{wrong}'" if field != "size_bytes" else wrong  # quoted: YAML would read 000... as 0
    catalog = write_catalog(tmp_path / "models.yaml", server.url("/tiny_style.pth"), **{field: value})
    monkeypatch.setenv("TRANSLATE_MODEL_CATALOG", str(catalog))
    root = tmp_path / "cache"
    result = CliRunner().invoke(models, ["download", "tiny_style", "--root", str(root), "--no-progress"])
    error = result.output.splitlines()[-1]  # after the line (stderr) that names what is downloaded
    assert result.exit_code == 1 and error.startswith("Error: tiny_style") and "failed verification" in error
    assert str(wrong) in error and actual in error
    assert not (root / "tiny_style").exists() and not list(root.rglob("*.part"))


def test_offline_names_the_url_and_how_to_fetch_it_by_hand(tmp_path, monkeypatch, generator):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/tiny_style.pth"
    monkeypatch.setenv("TRANSLATE_MODEL_CATALOG", str(write_catalog(tmp_path / "models.yaml", url)))
    root = tmp_path / "cache"
    result = CliRunner().invoke(models, ["download", "tiny_style", "--root", str(root), "--no-progress"])
    error = result.output.splitlines()[-1]
    assert result.exit_code == 1 and error.startswith(f"Error: cannot reach {url}")
    assert "translate models download tiny_style --url /path/to/tiny_style.pth" in error
    assert not root.exists() or not any(root.iterdir())

    by_hand = tmp_path / "downloads" / "tiny_style.pth"  # fetched by hand: --url takes the file
    by_hand.parent.mkdir()
    checkpoint_bytes(generator, by_hand)
    for source in (str(by_hand), by_hand.as_uri()):
        run = cli_model_run("tiny_style", tmp_path / source[:4], url=source)
        assert_translates_like(run, generator)
    assert by_hand.is_file()  # a local file is used where it is, never deleted


def test_a_download_that_is_no_checkpoint_is_refused_and_not_kept(zoo, server):
    root, _ = zoo
    server.files["/tiny_style.pth"] = b"<html><body>Service unavailable</body></html>"
    with pytest.raises(CheckpointError, match="is not a PyTorch checkpoint") as info:
        cli_model_run("tiny_style", root, progress=False)
    assert "\n" not in str(info.value)
    assert not (root / "tiny_style").exists() and not list(root.rglob("*.pth*"))


def test_apply_with_a_zoo_model_downloads_it_once_and_translates(
    zoo, server, generator, tmp_path, monkeypatch
):
    from PIL import Image

    from translate.cli import main

    monkeypatch.setenv("TRANSLATE_HOME", str(tmp_path / "home"))
    Image.new("RGB", (32, 32), (200, 40, 10)).save(tmp_path / "photo.png")
    for _ in range(2):
        args = ["apply", str(tmp_path / "photo.png"), "--model", "tiny_style", "--out", str(tmp_path / "out")]
        result = CliRunner().invoke(main, [*args, "--overwrite"])
        assert result.exit_code == 0, result.output
        assert (tmp_path / "out" / "photo.png").is_file()
    assert server.ranges() == [None]  # downloaded by the first apply, reused by the second
    both = CliRunner().invoke(main, ["apply", str(tmp_path / "photo.png"), "--model", "x", "--run", "y"])
    assert both.exit_code == 2 and "one of the two" in both.output
