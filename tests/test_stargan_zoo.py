"""yunjey/stargan's published CelebA models: ``translate import stargan FILE`` and the zoo entries
``stargan-celeba-128`` / ``stargan-celeba-256``, downloaded from the local file server of
``tests/file_server.py`` (nothing is fetched from the network).

The files are made here as ``download.sh``'s archives are laid out (``200000-G.ckpt`` and
``200000-D.ckpt`` in a zip), from the reference networks re-expressed in ``tests/test_stargan_import.py``,
at a tiny width and 32 px."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image
from test_stargan_import import (
    CELEBA,
    Discriminator,
    Generator,
    his_test_mode,
    randomised,
    save,
    worst,
)
from test_stargan_import import faces as random_faces

from translate.catalog.zoo import get_model, load_models
from translate.cli import main
from translate.cli.models import model_run
from translate.errors import CheckpointError, DataError
from translate.inference import Translator
from translate.inference.faces import FACE_TEMPLATE, Face

SIZE = 32
ZIP_PATH = "/s/0123abc/celeba-32x32-5attrs.zip?dl=1"  # Dropbox's form: the file name, then ?dl=1


@pytest.fixture
def reference() -> tuple[Generator, Discriminator]:
    return (
        randomised(Generator(conv_dim=8, c_dim=5, repeat_num=1)),
        randomised(Discriminator(image_size=SIZE, conv_dim=4, c_dim=5, repeat_num=3), seed=1),
    )


def archive(folder: Path, generator: torch.nn.Module, critic: torch.nn.Module | None = None) -> Path:
    """A zip laid out as download.sh's ``celeba-128x128-5attrs.zip``: the checkpoints of step 200000."""
    path = folder / "celeba-32x32-5attrs.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.write(save(generator.state_dict(), folder / "200000-G.ckpt", legacy=True), "200000-G.ckpt")
        if critic is not None:
            zipped.write(save(critic.state_dict(), folder / "200000-D.ckpt", legacy=True), "200000-D.ckpt")
    return path


def catalog_entry(url: str, **fields: object) -> dict:
    return {
        "family": "stargan",
        "format": "stargan",
        "description": "CelebA faces, 32 px (a test model)",
        "url": url,
        "arch": "stargan",
        "norm": "instance",
        "direction": "translate",
        "attributes": CELEBA,
        "image_size": SIZE,
        "licence": "test licence",
        **fields,
    }


def write_catalog(path: Path, **models: dict) -> Path:
    path.write_text(yaml.safe_dump({"models": models}, sort_keys=False))
    return path


@pytest.fixture
def zoo(tmp_path, server, reference, monkeypatch) -> Path:
    """A one-model catalog (``stargan-celeba-32``) whose archive the server holds; returns the cache root."""
    server.files[ZIP_PATH] = archive(tmp_path, *reference).read_bytes()
    catalog = write_catalog(
        tmp_path / "models.yaml", **{"stargan-celeba-32": catalog_entry(server.url(ZIP_PATH))}
    )
    monkeypatch.setenv("TRANSLATE_MODEL_CATALOG", str(catalog))
    return tmp_path / "cache"


def blond_like_the_reference(run: Path, reference: tuple[Generator, Discriminator]) -> None:
    """``--to Blond_Hair=1`` in the run equals the reference: its critic reads each face's labels, the hair
    group becomes blond, its generator translates in the mode its test() runs."""
    generator, critic = reference
    x = random_faces(size=SIZE)
    translator = Translator.from_run(run)
    with torch.no_grad():
        target = translator.labels.from_logits(critic(x)[1])
    target[:, :3] = torch.tensor([0.0, 1.0, 0.0])
    assert (
        worst(translator.translate_tensor(x, target="Blond_Hair=1"), his_test_mode(generator, x, target))
        <= 1e-5
    )


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


# --- translate import stargan ------------------------------------------------------------------------
def test_import_stargan_reads_the_published_archive_with_its_critic(tmp_path, reference):
    result = invoke("import", "stargan", str(archive(tmp_path, *reference)), "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert "5 labels: Black_Hair, Blond_Hair, Brown_Hair, Male, Young" in result.output
    assert f"{SIZE} px, critic from celeba-32x32-5attrs.zip:200000-D.ckpt" in result.output
    assert f"translate apply IMAGES --run {tmp_path / 'run'} --to Black_Hair=1" in result.output
    blond_like_the_reference(tmp_path / "run", reference)


def test_import_stargan_options_attrs_domains_size_and_critic(tmp_path, monkeypatch, reference):
    monkeypatch.chdir(tmp_path)
    generator, critic = reference
    g_file = save(generator.state_dict(), tmp_path / "200000-G.ckpt")
    d_file = save(critic.state_dict(), tmp_path / "elsewhere-D.ckpt")
    order = ["Male", "Young", "Black_Hair", "Blond_Hair", "Brown_Hair"]
    ok = invoke("import", "stargan", str(g_file), "--attrs", *order, "--critic", str(d_file), "--out", "a")
    assert ok.exit_code == 0, ok.output
    assert Translator.from_run("a").labels.names == order and "critic from elsewhere-D.ckpt" in ok.output
    alone = invoke("import", "stargan", str(g_file), "--out", "b", "--no-critic", "--image-size", "256")
    assert alone.exit_code == 0, alone.output
    assert "256 px, no classifier" in alone.output and Translator.from_run("b").classifier is None
    moods = ["happy", "sad", "angry", "calm", "fear"]
    by_domain = invoke("import", "stargan", str(g_file), "--no-critic", "--domains", *moods, "--out", "c")
    assert by_domain.exit_code == 0, by_domain.output
    assert Translator.from_run("c").labels.kind == "domains" and "--to happy\n" in by_domain.output


@pytest.mark.parametrize(
    "case, status, message",
    [
        ("missing", 1, r"no checkpoint file at .*200000-G.ckpt"),
        ("pickled module", 1, r"needs code to load \(it pickles .*Generator\)"),
        ("junyanz file", 1, r"not a yunjey/stargan generator: .*its tensors are model.1.weight"),
        ("three labels", 1, r"takes 3 labels: name them in the order it was trained with \(--attrs NAME"),
        ("critic of another size", 1, r"the critic file is for 32 px images, not --image-size 128"),
        ("attrs and domains", 2, r"--attrs or with --domains, not both"),
        ("critic and no critic", 2, r"--critic FILE or --no-critic, not both"),
    ],
)
def test_import_stargan_refusals_are_one_line(tmp_path, monkeypatch, reference, case, status, message):
    monkeypatch.chdir(tmp_path)
    generator, critic = reference
    file = Path("200000-G.ckpt")
    extra: list[str] = []
    if case == "pickled module":
        torch.save(generator, file)
    elif case == "junyanz file":
        save({"model.1.weight": torch.zeros(8, 3, 7, 7)}, file)
    elif case == "three labels":
        save(Generator(conv_dim=4, c_dim=3, repeat_num=1).state_dict(), file)
    elif case != "missing":
        save(generator.state_dict(), file)
        save(critic.state_dict(), "200000-D.ckpt")
        extra = {
            "critic of another size": ["--image-size", "128"],
            "attrs and domains": ["--attrs", *CELEBA, "--domains", *CELEBA],
            "critic and no critic": ["--critic", "200000-D.ckpt", "--no-critic"],
        }[case]
    result = invoke("import", "stargan", str(file), *extra, "--out", "run")
    assert result.exit_code == status, result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: ") and re.search(message, error), result.output
    if status == 1:  # a usage error (2) comes after click's usage lines
        assert result.output.strip() == error
    assert not Path("run").exists()


# --- the zoo entries ---------------------------------------------------------------------------------
def test_the_catalog_lists_yunjeys_two_celeba_models():
    catalog = load_models()
    for size, url in [
        (128, "https://www.dropbox.com/s/7e966qq0nlxwte4/celeba-128x128-5attrs.zip?dl=1"),
        (256, "https://www.dropbox.com/s/zdq6roqf63m0v5f/celeba-256x256-5attrs.zip?dl=1"),
    ]:
        entry = catalog[f"stargan-celeba-{size}"]
        assert (entry.url, entry.format, entry.family, entry.image_size) == (url, "stargan", "stargan", size)
        assert entry.attributes == tuple(CELEBA) and round(entry.size_mb) == 213
        assert entry.filename == f"celeba-{size}x{size}-5attrs.zip"
        assert entry.import_options()["attributes"] == tuple(CELEBA)
    listed = CliRunner().invoke(main, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    assert re.search(r"stargan-celeba-128 +stargan +stargan\+instance +~213 MB +translate ", listed.output)


def test_get_model_knows_download_shs_names():
    with pytest.raises(DataError, match=r"did you mean stargan-celeba-128 or stargan-celeba-256\?"):
        get_model("pretrained-celeba-128x128")


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"attributes": None}, r"model 'x' \(format stargan\) has no 'attributes'"),
        ({"image_size": None}, r"model 'x' \(format stargan\) has no 'image_size'"),
        ({"attributes": "Blond_Hair Male"}, r"attributes of model 'x' must be a list of names"),
        ({"family": "stargam"}, r"model 'x' has family 'stargam'; known: cyclegan, pix2pix, stargan"),
    ],
)
def test_a_stargan_entry_without_what_its_importer_needs_is_refused(tmp_path, fields, message):
    catalog = write_catalog(tmp_path / "models.yaml", x=catalog_entry("http://x/y.zip", **fields))
    with pytest.raises(DataError, match=message):
        load_models(catalog)


def test_download_imports_the_archive_once(zoo, server, reference):
    result = invoke("models", "download", "stargan-celeba-32", "--root", str(zoo), "--no-progress")
    assert result.exit_code == 0, result.output
    run = zoo / "stargan-celeba-32"
    assert f"stargan-celeba-32 ready: {run} (stargan, instance norm; export translate; labels Black_Hair" in (
        result.output
    )
    assert f"translate apply IMAGES --run {run} --to Black_Hair=1" in result.output
    assert sorted(p.name for p in zoo.iterdir()) == ["stargan-celeba-32"]  # the zip is not kept
    blond_like_the_reference(run, reference)
    assert model_run("stargan-celeba-32", zoo) == run
    assert server.ranges() == [None]  # one request in all


def test_a_download_that_is_no_archive_is_refused_and_not_kept(zoo, server):
    server.files[ZIP_PATH] = b"<!DOCTYPE html><html><body>Dropbox - preview</body></html>"
    with pytest.raises(CheckpointError, match="is not a PyTorch checkpoint") as info:
        model_run("stargan-celeba-32", zoo, progress=False)
    assert "\n" not in str(info.value)
    assert not (zoo / "stargan-celeba-32").exists() and not list(zoo.rglob("*.zip*"))


def test_apply_model_faces_to_blond_downloads_once_and_pastes_the_faces_back(
    zoo, server, tmp_path, monkeypatch
):
    """The issue's command: ``translate apply --model stargan-celeba-128 photos/ --faces --to Blond_Hair=1``
    (the detector stands in for MTCNN, an optional install: one face at a known place)."""
    monkeypatch.setenv("TRANSLATE_HOME", str(zoo.parent / "home"))
    side, corner = 40.0, np.array([30.0, 20.0], dtype=np.float32)
    face = Face(np.array([30, 20, 70, 60], dtype=np.float32), FACE_TEMPLATE * side + corner, 0.99)
    monkeypatch.setattr("translate.inference.pipeline.mtcnn_detector", lambda *a, **k: lambda image: [face])
    photos = tmp_path / "photos"
    photos.mkdir()
    photo = np.random.default_rng(0).integers(0, 255, (100, 120, 3), dtype=np.uint8)
    Image.fromarray(photo).save(photos / "group.png")
    for _ in range(2):
        args = ["apply", "--model", "stargan-celeba-32", str(photos), "--faces", "--to", "Blond_Hair=1"]
        result = invoke(*args, "--out", str(tmp_path / "out"), "--overwrite")
        assert result.exit_code == 0, result.output
    out = np.asarray(Image.open(tmp_path / "out" / "photos" / "group.png"))
    assert out.shape == photo.shape
    assert np.abs(out[35:45, 45:55].astype(int) - photo[35:45, 45:55]).mean() > 10, "the face is translated"
    assert np.array_equal(out[80:, :], photo[80:, :]) and np.array_equal(out[:, 90:], photo[:, 90:])
    assert server.ranges() == [None]  # downloaded by the first apply, reused by the second
