"""The CUT authors' published generators: ``translate import cut FILE`` and the zoo's six CUT / FastCUT
entries (taesungp/contrastive-unpaired-translation's ``pretrained_models.tar``, which holds
``checkpoints/NAME/latest_net_G.pth`` for horse2zebra, cat2dog and Cityscapes, CUT and FastCUT).

The files are made here as the authors' code saves them, from their ``ResnetGenerator`` (default
anti-aliasing, instance norm) re-expressed in ``tests/test_cut.py``; the archive is served by the local
file server of ``tests/file_server.py`` (nothing is fetched from the network)."""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from test_cut import AuthorsResnetGenerator
from test_junyanz_import import assert_informative, reference_generator, worst
from test_stargan_zoo import write_catalog
from torch import nn

from translate.catalog.zoo import bundled_with, get_model, load_models
from translate.cli import main
from translate.cli.models import model_run
from translate.errors import DataError
from translate.inference import Translator, load_export
from translate.inference.cut_import import CUTArch, import_cut

URL = "http://efrosgans.eecs.berkeley.edu/CUT/pretrained_models.tar"
PUBLISHED = {
    "horse2zebra_cut": ("horse2zebra_cut_pretrained", "CUT", "horse2zebra", ("horse", "zebra")),
    "horse2zebra_fastcut": ("horse2zebra_fastcut_pretrained", "FastCUT", "horse2zebra", ("horse", "zebra")),
    "cat2dog_cut": ("cat2dog_cut_pretrained", "CUT", "cat2dog", ("cat", "dog")),
    "cat2dog_fastcut": ("cat2dog_fastcut_pretrained", "FastCUT", "cat2dog", ("cat", "dog")),
    "cityscapes_label2photo_cut": ("cityscapes_cut_pretrained", "CUT", "label2photo", ("label", "photo")),
    "cityscapes_label2photo_fastcut": (
        "cityscapes_fastcut_pretrained",
        "FastCUT",
        "label2photo",
        ("label", "photo"),
    ),
}
"""Our name: the authors' experiment (their --name), --CUT_mode, our export and domains."""
TAR_PATH = "/CUT/pretrained_models.tar"
SIZE = 32


def authors_generator(ngf: int = 8, n_blocks: int = 1, channels: int = 3, seed: int = 0) -> nn.Module:
    """The authors' ``ResnetGenerator`` as ``define_G`` makes it for CUT, seeded."""
    torch.manual_seed(seed)
    return AuthorsResnetGenerator(channels, channels, ngf, n_blocks).eval()


def save(state: dict, path: Path, legacy: bool = False) -> Path:
    """``torch.save`` as the authors' PyTorch 1.4 wrote it (``legacy``: before the zip format)."""
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


def archive(folder: Path, models: dict[str, nn.Module], legacy: bool = False) -> Path:
    """A tar laid out as ``pretrained_models.tar``: ``checkpoints/NAME/latest_net_G.pth`` per model."""
    path = folder / "pretrained_models.tar"
    with tarfile.open(path, "w") as tar:
        for name, generator in models.items():
            file = save(generator.state_dict(), folder / f"{name}.pth", legacy)
            tar.add(file, f"checkpoints/{name}/latest_net_G.pth")
    return path


def images(size: int = SIZE, channels: int = 3) -> torch.Tensor:
    return torch.rand(2, channels, size, size, generator=torch.Generator().manual_seed(7)) * 2 - 1


def translates_like(run: Path, generator: nn.Module, size: int = SIZE) -> float:
    x = images(size, generator.model[1].in_channels)
    with torch.no_grad():
        expected = generator(x)
    assert_informative(expected)
    return worst(Translator.from_run(run).translate_tensor(x), expected)


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


# --- exact outputs -----------------------------------------------------------------------------------
def test_the_full_size_generator_from_the_authors_archive_translates_exactly(tmp_path):
    """ResNet-9, ngf 64, as published: picked by its --name from an archive of two, saved in the legacy
    format of the authors' PyTorch."""
    full = authors_generator(ngf=64, n_blocks=9)
    models = {"horse2zebra_cut_pretrained": full, "cat2dog_cut_pretrained": authors_generator(seed=1)}
    tar = archive(tmp_path, models, legacy=True)
    options = {"experiment": "horse2zebra_cut_pretrained", "direction": "horse2zebra"}
    result = import_cut(tar, tmp_path / "run", domains=["horse", "zebra"], **options)
    assert result.arch == CUTArch(input_nc=3, output_nc=3, ngf=64, n_blocks=9)
    assert result.tensors == len(full.state_dict()) and result.mode == "cut"
    assert translates_like(tmp_path / "run", full, size=64) <= 1e-5
    loaded = load_export(tmp_path / "run", None, ("image_to_image",))
    assert (loaded.name, loaded.checkpoint.task) == ("horse2zebra", "cut")
    assert (loaded.export.options["source"], loaded.export.options["target"]) == ("horse", "zebra")
    assert sum(p.numel() for p in loaded.module.parameters()) == 11_378_179


@pytest.mark.parametrize(
    ("ngf", "n_blocks", "channels", "data_parallel"), [(4, 0, 1, False), (8, 3, 3, True)]
)
def test_every_width_depth_and_channel_count_is_read_from_the_shapes(
    tmp_path, ngf, n_blocks, channels, data_parallel
):
    generator = authors_generator(ngf, n_blocks, channels)
    state = generator.state_dict()
    if data_parallel:
        state = {f"module.{k}": v for k, v in state.items()}
    result = import_cut(save(state, tmp_path / "latest_net_G.pth"), tmp_path / "run")
    assert result.arch == CUTArch(channels, channels, ngf, n_blocks)
    assert translates_like(tmp_path / "run", generator) <= 1e-5


# --- the CLI -----------------------------------------------------------------------------------------
def test_cli_import_from_the_archive_then_info_and_apply(tmp_path):
    generator = authors_generator()
    tar = archive(tmp_path, {"cat2dog_fastcut_pretrained": generator, "cat2dog_cut_pretrained": generator})
    run = tmp_path / "cat2dog"
    args = ["--name", "cat2dog_fastcut_pretrained", "--direction", "cat2dog", "--domains", "cat", "dog"]
    result = invoke("import", "cut", str(tar), *args, "--out", str(run))
    assert result.exit_code == 0, result.output
    assert (
        "FastCUT generator from pretrained_models.tar:checkpoints/cat2dog_fastcut_pretrained/"
        "latest_net_G.pth (anti-aliased ResNet, 1 residual block, instance norm, 3 -> 3 channels, ngf 8)"
    ) in result.output
    assert "export 'cat2dog' (cat -> dog), eval mode" in result.output
    assert f"translate apply IMAGES --run {run}" in result.output

    info = invoke("info", str(run))
    assert info.exit_code == 0, info.output
    assert "method:     fastcut" in info.output and "domains ['cat', 'dog']  256 px" in info.output
    assert re.search(r"cat2dog +image_to_image .* source=cat, target=dog", info.output)

    photo = (np.random.default_rng(0).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "cat.png")
    applied = invoke("apply", str(tmp_path / "cat.png"), "--run", str(run), "--out", str(tmp_path / "out"))
    assert applied.exit_code == 0, applied.output
    assert_written_like(tmp_path / "out" / "cat.png", photo, generator)


def assert_written_like(written: Path, photo: np.ndarray, generator: nn.Module) -> None:
    """The written image is the generator's output on ``photo`` (8-bit rounding of equal outputs)."""
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        expected = ((generator(x)[0].clamp(-1, 1) + 1) * 127.5).round().permute(1, 2, 0).numpy()
    assert np.abs(np.asarray(Image.open(written)).astype(int) - expected).max() <= 1


class Pickled(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)


def refused_file(case: str, folder: Path) -> tuple[Path, list[str]]:
    """The file (and options) of one refusal case."""
    file = folder / "latest_net_G.pth"
    if case == "pickled module":
        torch.save(Pickled(), file)
    elif case == "CycleGAN generator":
        save(reference_generator("resnet_6blocks", "instance", ngf=4).state_dict(), file)
    elif case == "batch norm":
        save(reference_generator("resnet_6blocks", "batch", ngf=4).state_dict(), file)
    elif case == "StarGAN generator":
        save({"main.0.weight": torch.zeros(8, 8, 7, 7)}, file)
    elif case == "unknown mode":
        save(authors_generator().state_dict(), file)
        return file, ["--cut-mode", "SinCUT"]
    elif case == "archive, bad member":
        file = folder / "pretrained_models.tar"
        (folder / "junk").write_bytes(b"<html>not found</html>")
        with tarfile.open(file, "w") as tar:
            tar.add(folder / "junk", "checkpoints/x_cut_pretrained/latest_net_G.pth")
    elif case == "archive, cut short":
        file = archive(folder, {"a_cut_pretrained": authors_generator()})
        file.write_bytes(file.read_bytes()[:20_000])
    elif case.startswith("archive"):
        tiny = authors_generator()
        models = {"a_cut_pretrained": tiny, "b_cut_pretrained": tiny} if case != "archive, nothing" else {}
        file = archive(folder, models)
        return file, ["--name", "c_cut_pretrained"] if case == "archive, unknown name" else []
    return file, []


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("missing", 1, r"no checkpoint file at latest_net_G.pth"),
        ("pickled module", 1, r"needs code to load \(it pickles .*Pickled\)"),
        (
            "CycleGAN generator",
            1,
            r"does not fit a CUT generator with 6 residual blocks \(3 -> 3 channels, ngf 4, instance norm, "
            r"anti-aliased\): 40 tensors, the file 36; the file has no model.7.filt .*; it is a "
            r"pix2pix/CycleGAN generator \(resnet_6blocks --norm instance\): use `translate import junyanz`",
        ),
        ("batch norm", 1, r"norm weights and statistics \(--normG batch\): only the authors' default"),
        ("StarGAN generator", 1, r"not a taesungp/.* ResnetGenerator .*its tensors are main.0.weight"),
        ("archive, two models", 1, r"holds several models \(a_cut_pretrained, b_cut_pretrained\): name one"),
        ("archive, unknown name", 1, r"holds no c_cut_pretrained/latest_net_G.pth; its models: a_cut_pre"),
        ("archive, nothing", 1, r"pretrained_models.tar is a tar archive with no NAME/latest_net_G.pth"),
        (
            "archive, bad member",
            1,
            r"^Error: pretrained_models.tar:checkpoints/x_cut_pretrained/latest_net_G.pth is not a PyTorch",
        ),
        ("archive, cut short", 1, r"^Error: pretrained_models.tar is a damaged tar archive \("),
        ("unknown mode", 2, r"Invalid value for '--cut-mode': 'SinCUT' is not one of 'cut', 'fastcut'"),
    ],
)
def test_import_cut_refusals_are_one_line(tmp_path, monkeypatch, case, status, message):
    monkeypatch.chdir(tmp_path)
    file, extra = refused_file(case, Path("."))
    result = invoke("import", "cut", str(file), *extra, "--out", "run")
    assert result.exit_code == status, result.output
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: ") and re.search(message, error), result.output
    if status == 1:  # a usage error (2) comes after click's usage lines
        assert result.output.strip() == error
    assert not Path("run").exists() and not list(Path(".").glob(".import-*"))


# --- the zoo entries ---------------------------------------------------------------------------------
def test_the_catalog_lists_the_authors_six_models_from_one_archive():
    catalog = load_models()
    for name, (experiment, mode, direction, domains) in PUBLISHED.items():
        entry = catalog[name]
        assert (entry.url, entry.format, entry.family, entry.filename) == (
            URL,
            "cut",
            "cut",
            "pretrained_models.tar",
        )
        assert (entry.experiment, entry.cut_mode, entry.direction, entry.domains) == (
            experiment,
            mode,
            direction,
            domains,
        )
        assert entry.image_size == 256 and entry.test_mode == "eval" and entry.licence
        assert sorted(e.name for e in bundled_with(entry)) == sorted(set(PUBLISHED) - {name})
    listed = invoke("models", "list")
    assert listed.exit_code == 0, listed.output
    row = r"horse2zebra_cut +cut +antialiased_resnet\+instance +~273 MB +horse2zebra "
    assert re.search(row, listed.output)
    with pytest.raises(DataError, match=r"did you mean horse2zebra_cut or"):
        get_model("horse2zebra_cut_pretrained")  # the authors' name


def cut_entry(url: str, experiment: str, **fields: object) -> dict:
    return {
        "family": "cut",
        "format": "cut",
        "description": "A -> B, a tiny test model",
        "url": url,
        "arch": "antialiased_resnet",
        "norm": "instance",
        "direction": "a2b",
        "upstream_name": experiment,
        "domains": ["a", "b"],
        "image_size": SIZE,
        "licence": "test licence",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"upstream_name": None}, r"model 'x' \(format cut\) has no 'upstream_name'"),
        ({"domains": "horse zebra"}, r"domains of model 'x' must be a list of names, e.g. \[horse, zebra\]"),
    ],
)
def test_a_cut_entry_without_what_its_importer_needs_is_refused(tmp_path, fields, message):
    catalog = write_catalog(tmp_path / "models.yaml", x=cut_entry("http://x/y.tar", "x", **fields))
    with pytest.raises(DataError, match=message):
        load_models(catalog)


@pytest.fixture
def generators() -> dict[str, nn.Module]:
    return {"tiny_cut_pretrained": authors_generator(), "tiny_fastcut_pretrained": authors_generator(seed=1)}


@pytest.fixture
def zoo(tmp_path, server, generators, monkeypatch) -> Path:
    """A catalog of two models in one archive that the server holds; returns the cache root."""
    server.files[TAR_PATH] = archive(tmp_path, generators).read_bytes()
    url = server.url(TAR_PATH)
    models = {
        "tiny_cut": cut_entry(url, "tiny_cut_pretrained", cut_mode="CUT"),
        "tiny_fastcut": cut_entry(url, "tiny_fastcut_pretrained", cut_mode="FastCUT"),
    }
    monkeypatch.setenv("TRANSLATE_MODEL_CATALOG", str(write_catalog(tmp_path / "models.yaml", **models)))
    return tmp_path / "cache"


def test_download_imports_every_model_of_the_archive_once(zoo, server, generators):
    result = invoke("models", "download", "tiny_cut", "--root", str(zoo), "--no-progress")
    assert result.exit_code == 0, result.output
    ready = f"tiny_cut ready: {zoo / 'tiny_cut'} (antialiased_resnet, instance norm; export a2b)"
    assert ready in result.output
    assert f"from the same download: tiny_fastcut (in {zoo})" in result.output
    assert sorted(p.name for p in zoo.iterdir()) == ["tiny_cut", "tiny_fastcut"]  # the tar is not kept
    assert translates_like(zoo / "tiny_cut", generators["tiny_cut_pretrained"]) <= 1e-5
    assert translates_like(zoo / "tiny_fastcut", generators["tiny_fastcut_pretrained"]) <= 1e-5
    assert load_export(zoo / "tiny_fastcut", None, ("image_to_image",)).checkpoint.task == "fastcut"
    assert model_run("tiny_fastcut", zoo) == zoo / "tiny_fastcut"
    assert server.ranges() == [None]  # one request in all


def test_a_model_the_archive_lacks_is_left_to_download_on_its_own(zoo, server, tmp_path, caplog):
    url = server.url(TAR_PATH)
    models = {
        "tiny_cut": cut_entry(url, "tiny_cut_pretrained"),
        "tiny_absent": cut_entry(url, "absent_cut_pretrained"),
    }
    write_catalog(tmp_path / "models.yaml", **models)
    assert model_run("tiny_cut", zoo, progress=False) == zoo / "tiny_cut"
    assert sorted(p.name for p in zoo.iterdir()) == ["tiny_cut"]
    assert "tiny_absent was not imported from tiny_cut.tar: " in caplog.text
    assert "holds no absent_cut_pretrained/latest_net_G.pth" in caplog.text


def test_a_local_copy_imports_the_named_model_only(zoo, tmp_path, generators):
    """Another file than the catalog's (a mirror, a copy) may hold that model alone: nothing else is
    imported from it."""
    copy = tmp_path / "pretrained_models.tar"  # what the server serves
    assert model_run("tiny_fastcut", zoo, url=str(copy), progress=False) == zoo / "tiny_fastcut"
    assert sorted(p.name for p in zoo.iterdir()) == ["tiny_fastcut"]
    assert translates_like(zoo / "tiny_fastcut", generators["tiny_fastcut_pretrained"]) <= 1e-5


def test_apply_model_downloads_once_and_translates(zoo, server, generators, tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSLATE_HOME", str(zoo.parent / "home"))
    photo = (np.random.default_rng(1).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "horse.png")
    for _ in range(2):
        args = ["apply", str(tmp_path / "horse.png"), "--model", "tiny_cut", "--out", str(tmp_path / "out")]
        result = invoke(*args, "--overwrite")
        assert result.exit_code == 0, result.output
    assert_written_like(tmp_path / "out" / "horse.png", photo, generators["tiny_cut_pretrained"])
    assert server.ranges() == [None]  # downloaded by the first apply, reused by the second
