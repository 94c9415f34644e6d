"""The top-level datasets/ folder: where downloads land in a checkout, and `translate datasets combine`."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from test_download import make_tar, pix2pix_files

from translate.catalog.checkout import checkout_root, default_dataset_root
from translate.cli.datasets import datasets

REPOSITORY = Path(__file__).resolve().parents[1]


def make_checkout(folder: Path) -> Path:
    (folder / "datasets").mkdir(parents=True)
    (folder / "datasets" / "README.md").write_text("# datasets/\n")
    (folder / "pyproject.toml").write_text('[project]\nname = "translate-gan"\n')
    return folder


@pytest.fixture
def archive(tmp_path) -> Path:
    path = tmp_path / "mirror" / "facades.tar.gz"
    path.parent.mkdir()
    path.write_bytes(make_tar(pix2pix_files()))
    return path


@pytest.fixture(autouse=True)
def _no_data_root_override(monkeypatch):
    monkeypatch.delenv("TRANSLATE_DATA_ROOT", raising=False)


def download(archive: Path, *extra: str):
    arguments = ["download", "facades", "--url", str(archive), "--no-progress", *extra]
    return CliRunner().invoke(datasets, arguments)


# --- where downloads land --------------------------------------------------------------------------


def test_in_a_checkout_downloads_land_in_its_datasets_folder(tmp_path, archive, monkeypatch):
    checkout = make_checkout(tmp_path / "clone")
    monkeypatch.chdir(checkout)
    result = download(archive)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (checkout / "datasets" / "facades").iterdir()) == ["test", "train", "val"]
    assert "ready: datasets/facades" in result.output
    assert "--data-root datasets/facades" in result.output
    assert not (checkout / "data").exists()


def test_from_a_folder_inside_the_checkout_too(tmp_path, archive, monkeypatch):
    checkout = make_checkout(tmp_path / "clone")
    (checkout / "runs" / "x").mkdir(parents=True)
    monkeypatch.chdir(checkout / "runs" / "x")
    assert default_dataset_root() == checkout.resolve() / "datasets"
    assert download(archive).exit_code == 0
    assert (checkout / "datasets" / "facades" / "train").is_dir()


def test_outside_a_checkout_the_default_stays_data(tmp_path, archive, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = download(archive)
    assert result.exit_code == 0, result.output
    assert (work / "data" / "facades" / "train").is_dir()


def test_another_projects_datasets_folder_is_not_a_checkout(tmp_path, monkeypatch):
    other = make_checkout(tmp_path / "other")
    (other / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    monkeypatch.chdir(other)
    assert checkout_root() is None and default_dataset_root() == Path("data")


def test_root_and_the_environment_win(tmp_path, archive, monkeypatch):
    checkout = make_checkout(tmp_path / "clone")
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("TRANSLATE_DATA_ROOT", str(tmp_path / "env"))
    assert download(archive).exit_code == 0
    assert (tmp_path / "env" / "facades").is_dir()
    assert download(archive, "--root", str(tmp_path / "flag")).exit_code == 0
    assert (tmp_path / "flag" / "facades").is_dir()
    assert not (checkout / "datasets" / "facades").exists()


def test_list_says_where_downloads_go(tmp_path, monkeypatch):
    monkeypatch.chdir(make_checkout(tmp_path / "clone"))
    result = CliRunner().invoke(datasets, ["list"])
    assert result.exit_code == 0 and "into datasets/NAME" in result.output


def test_this_repository_is_a_checkout_and_git_ignores_downloads():
    assert checkout_root(REPOSITORY / "tests") == REPOSITORY
    assert (REPOSITORY / "datasets" / "README.md").is_file()
    if shutil.which("git") is None or not (REPOSITORY / ".git").exists():
        pytest.skip("not a git clone")

    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=REPOSITORY).returncode == 0

    assert ignored("datasets/facades/train/1.jpg") and ignored("datasets/facades")
    assert not ignored("datasets/README.md")


# --- combine ---------------------------------------------------------------------------------------


def write(path: Path, pixels: np.ndarray, **save) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **save)
    return path


def solid(value: int, width: int = 8, height: int = 8) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def combine(*args: str | Path, options: tuple[str, ...] = ()):
    return CliRunner().invoke(datasets, ["combine", *map(str, args), "--no-progress", *options])


def test_combine_pairs_by_name_per_split(tmp_path):
    a, b, out = tmp_path / "A", tmp_path / "B", tmp_path / "AB"
    write(a / "train" / "1.png", solid(10))
    write(b / "train" / "1.jpg", solid(200), quality=100)  # the partner may have another extension
    write(a / "train" / "2.png", solid(20))
    write(b / "train" / "2.png", solid(220))
    write(a / "train" / "lonely.png", solid(30))
    write(a / "test" / "3.bmp", solid(40))
    write(b / "test" / "3.png", solid(240))
    result = combine(a, b, out)
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == [
        "test/3.png",  # .bmp is read, not written: PNG
        "train/1.png",
        "train/2.png",
    ]
    pair = np.asarray(Image.open(out / "train" / "2.png"))
    assert pair.shape == (8, 16, 3)
    assert (pair[:, :8] == 20).all() and (pair[:, 8:] == 220).all()  # A left, B right
    assert abs(int(np.asarray(Image.open(out / "train" / "1.png"))[:, 8:].mean()) - 200) <= 2
    assert "wrote 3 A|B pairs" in result.output and "1 in test/, 2 in train/" in result.output
    assert "left out 1 of" in result.output and "train/lonely.png" in result.output
    assert "train with: translate train pix2pix --data-root" in result.output
    assert not list(out.rglob(".*"))  # no temporary files left


def test_combine_folders_without_splits(tmp_path):
    a, b, out = tmp_path / "A", tmp_path / "B", tmp_path / "AB"
    for i in range(2):
        write(a / f"{i}.png", solid(i))
        write(b / f"{i}.png", solid(100 + i))
    assert combine(a, b, out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["0.png", "1.png"]


def test_sizes_that_differ_are_named_in_one_line_and_nothing_is_written(tmp_path):
    a, b, out = tmp_path / "A", tmp_path / "B", tmp_path / "AB"
    write(a / "train" / "1.png", solid(1))
    write(b / "train" / "1.png", solid(2))
    write(a / "train" / "2.png", solid(1, 8, 8))
    write(b / "train" / "2.png", solid(2, 16, 8))
    result = combine(a, b, out)
    assert result.exit_code == 1
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: 1 of 2 pairs differ in size: train/2.png (A 8x8, B 16x8)")
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_exif_rotation_counts_as_read(tmp_path):
    a, b, out = tmp_path / "A", tmp_path / "B", tmp_path / "AB"
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 16x8, shown rotated: 8x16
    buffer = io.BytesIO()
    Image.fromarray(solid(50, 16, 8)).save(buffer, format="JPEG", exif=exif)
    (a / "train").mkdir(parents=True)
    (a / "train" / "1.jpg").write_bytes(buffer.getvalue())
    write(b / "train" / "1.png", solid(60, 8, 16))
    result = combine(a, b, out)
    assert result.exit_code == 0, result.output
    assert Image.open(out / "train" / "1.jpg").size == (16, 16)


def test_nothing_is_overwritten_without_overwrite(tmp_path):
    a, b, out = tmp_path / "A", tmp_path / "B", tmp_path / "AB"
    write(a / "1.png", solid(1))
    write(b / "1.png", solid(2))
    write(out / "1.png", solid(99, 16, 8))
    result = combine(a, b, out)
    assert result.exit_code == 1 and "1 of the 1 outputs exist already" in result.output
    assert "--overwrite" in result.output
    assert (np.asarray(Image.open(out / "1.png")) == 99).all()
    again = combine(a, b, out, options=("--overwrite",))
    assert again.exit_code == 0, again.output
    assert (np.asarray(Image.open(out / "1.png"))[:, :8] == 1).all()


@pytest.mark.parametrize("inside", ["A/out", "B"])
def test_out_dir_may_not_lie_in_a_side(tmp_path, inside):
    a, b = tmp_path / "A", tmp_path / "B"
    write(a / "1.png", solid(1))
    write(b / "1.png", solid(2))
    result = combine(a, b, tmp_path / inside)
    assert result.exit_code == 1 and "lies inside" in result.output


def test_no_pairs_is_one_line(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    write(a / "1.png", solid(1))
    write(b / "2.png", solid(2))
    result = combine(a, b, tmp_path / "AB")
    assert result.exit_code == 1
    assert result.output.startswith("Error: no pairs") and "A: 1.png; B: 2.png" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_two_images_with_one_name_are_refused(tmp_path):
    a, b = tmp_path / "A", tmp_path / "B"
    write(a / "1.png", solid(1))
    write(a / "1.jpg", solid(1))
    write(b / "1.png", solid(2))
    result = combine(a, b, tmp_path / "AB")
    assert result.exit_code == 1 and "1.jpg and 1.png" in result.output


def test_a_full_disk_is_said_as_such(tmp_path, monkeypatch):
    import errno

    import translate.data.io as image_io

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(image_io, "write_image", full)
    a, b = tmp_path / "A", tmp_path / "B"
    write(a / "1.png", solid(1))
    write(b / "1.png", solid(2))
    result = combine(a, b, tmp_path / "AB")
    assert result.exit_code == 1
    assert result.output.startswith("Error: disk full while writing") and "free in" in result.output
