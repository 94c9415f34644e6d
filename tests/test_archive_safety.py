"""Dataset archives: a size cap against decompression bombs, a full disk said as such, https URLs."""

from __future__ import annotations

import builtins
import io
import os
import tarfile
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_download import entry_for, leftovers, make_tar, make_zip, pix2pix_files

import translate.catalog.extract as extract
import translate.catalog.transfer as transfer
from translate.catalog.catalog import load_catalog
from translate.catalog.download import download_dataset
from translate.cli.datasets import datasets
from translate.errors import ConfigError, DataError, StorageError

BOMB = 20 * 2**20  # 20 MiB of zeros: ~20 KB compressed


def bomb_tar(tmp_path: Path) -> Path:
    """A valid facades archive plus one member of BOMB zero bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in pix2pix_files().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("facades/zeros.bin")
        info.size = BOMB
        tar.addfile(info, io.BytesIO(bytes(BOMB)))
    path = tmp_path / "mirror" / "facades.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


def small_facades(url: str):
    """facades as the catalog states it, with a stated size of 1 MB: a cap of 4 MB at the default ratio."""
    return entry_for("facades", url, size_mb=1)


def written_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and ".partial" not in p.parts)


# --- the cap ---------------------------------------------------------------------------------------


def test_a_gzip_bomb_is_capped_and_leaves_nothing(tmp_path):
    archive = bomb_tar(tmp_path)
    assert archive.stat().st_size < 100_000
    with pytest.raises(
        DataError, match=r"unpacks to more than 4\.0 MB \(4 x the ~1 MB stated for facades\)"
    ) as info:
        download_dataset(small_facades(str(archive)), tmp_path / "data", url=str(archive), progress=False)
    assert "\n" not in str(info.value) and "--max-extracted-ratio" in str(info.value)
    assert leftovers(tmp_path / "data") == []


def test_the_cap_follows_the_stated_size(tmp_path):
    archive = bomb_tar(tmp_path)  # 20 MiB unpacked: under facades' stated ~29 MB x 4, so it passes
    assert download_dataset("facades", tmp_path / "data", url=str(archive), progress=False).is_dir()


def test_a_zip_bomb_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    archive = tmp_path / "facades.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in pix2pix_files().items():
            zf.writestr(name, data)
        zf.writestr("facades/zeros.bin", bytes(BOMB))
    writes = []
    monkeypatch.setattr(extract, "_write", lambda *args: writes.append(args))
    with pytest.raises(DataError, match="unpacks to more than"):
        download_dataset(small_facades(str(archive)), tmp_path / "data", url=str(archive), progress=False)
    assert writes == [] and leftovers(tmp_path / "data") == []


def test_the_cap_can_be_raised_by_flag_or_environment(tmp_path, monkeypatch):
    archive = bomb_tar(tmp_path)
    entry = small_facades(str(archive))
    path = download_dataset(entry, tmp_path / "a", url=str(archive), progress=False, max_extracted_ratio=50)
    assert (path / "zeros.bin").stat().st_size == BOMB
    monkeypatch.setenv("TRANSLATE_MAX_EXTRACTED_RATIO", "inf")
    assert download_dataset(entry, tmp_path / "b", url=str(archive), progress=False).is_dir()
    monkeypatch.setenv("TRANSLATE_MAX_EXTRACTED_RATIO", "lots")
    with pytest.raises(ConfigError, match="TRANSLATE_MAX_EXTRACTED_RATIO must be a positive number"):
        download_dataset(entry, tmp_path / "c", url=str(archive), progress=False)


def test_a_capped_download_keeps_the_archive_for_the_next_try(server, tmp_path):
    archive = bomb_tar(tmp_path)
    server.files["/facades.tar.gz"] = archive.read_bytes()
    entry = small_facades(server.url("/facades.tar.gz"))
    root = tmp_path / "data"
    with pytest.raises(DataError, match=r"the archive stays in .*facades\.tar\.gz"):
        download_dataset(entry, root, url=entry.url, progress=False)
    assert leftovers(root) == [] and (root / ".partial" / "facades.tar.gz").is_file()
    download_dataset(entry, root, url=entry.url, progress=False, max_extracted_ratio=50)
    assert len(server.requests) == 1  # the second try extracted the kept archive


def test_the_cli_flag(tmp_path, monkeypatch):
    archive = bomb_tar(tmp_path)
    monkeypatch.setattr(
        "translate.catalog.catalog.get_entry", lambda name, catalog=None: small_facades(str(archive))
    )
    command = [
        "download",
        "facades",
        "--root",
        str(tmp_path / "data"),
        "--url",
        str(archive),
        "--no-progress",
    ]
    refused = CliRunner().invoke(datasets, command)
    last = refused.output.strip().splitlines()[-1]
    assert refused.exit_code == 1 and last.startswith("Error: refusing to extract facades.tar.gz")
    accepted = CliRunner().invoke(datasets, [*command, "--max-extracted-ratio", "50"])
    assert accepted.exit_code == 0, accepted.output


# --- a full disk ------------------------------------------------------------------------------------


def writes_to_dev_full(module, monkeypatch) -> None:
    """Every file ``module`` opens for writing writes to /dev/full: the kernel answers ENOSPC."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    real_open = builtins.open

    def full_open(path, mode="r", *args, **kwargs):
        return real_open("/dev/full" if any(m in mode for m in "wa") else path, mode, *args, **kwargs)

    monkeypatch.setattr(module, "open", full_open, raising=False)


def test_a_full_disk_while_extracting_says_disk_full(tmp_path, monkeypatch):
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(make_tar(pix2pix_files()))
    writes_to_dev_full(extract, monkeypatch)
    with pytest.raises(
        StorageError, match=r"^disk full while extracting facades\.tar\.gz \(.* free in "
    ) as info:
        download_dataset("facades", tmp_path / "data", url=str(archive), progress=False)
    assert "corrupt" not in str(info.value) and "\n" not in str(info.value)
    assert leftovers(tmp_path / "data") == [] and archive.is_file()


def test_a_full_disk_while_downloading_says_disk_full(server, tmp_path, monkeypatch):
    server.files["/facades.zip"] = make_zip(pix2pix_files())
    writes_to_dev_full(transfer, monkeypatch)
    result = CliRunner().invoke(
        datasets,
        [
            "download",
            "facades",
            "--root",
            str(tmp_path),
            "--url",
            server.url("/facades.zip"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 1
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: disk full while downloading facades") and "run the same command" in line


def test_a_full_disk_in_the_cli_is_one_line(server, tmp_path, monkeypatch):
    server.files["/facades.tar.gz"] = make_tar(pix2pix_files())
    writes_to_dev_full(extract, monkeypatch)
    url = server.url("/facades.tar.gz")
    result = CliRunner().invoke(datasets, ["download", "facades", "--root", str(tmp_path), "--url", url])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: disk full while extracting")
    kept = tmp_path / ".partial" / "facades.tar.gz"
    assert kept.is_file()  # downloaded once: extracted by the next run, once there is room


# --- the catalog -----------------------------------------------------------------------------------


def test_every_download_url_is_https():
    for entry in load_catalog().values():
        assert entry.manual or entry.url.startswith("https://"), entry.name


def test_a_stated_checksum_is_checked(tmp_path):
    archive = tmp_path / "facades.tar.gz"
    archive.write_bytes(make_tar(pix2pix_files()))
    wrong = replace(entry_for("facades", str(archive)), sha256="0" * 64)
    with pytest.raises(DataError, match="sha256: expected 0000"):
        download_dataset(wrong, tmp_path / "data", url=str(archive), progress=False)
