"""Dataset catalog and downloads: a local HTTP server on 127.0.0.1 serves generated archives."""

from __future__ import annotations

import hashlib
import io
import socket
import stat
import tarfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from translate.catalog.catalog import DatasetEntry, get_entry, load_catalog
from translate.catalog.download import ManualDownloadError, download_dataset, safe_member_path
from translate.cli.datasets import datasets
from translate.data.layout import detect_layout
from translate.errors import DataError

PIX2PIX = ["facades", "maps", "edges2shoes", "edges2handbags", "night2day"]
CYCLEGAN = [
    "horse2zebra",
    "apple2orange",
    "summer2winter_yosemite",
    "monet2photo",
    "cezanne2photo",
    "ukiyoe2photo",
    "vangogh2photo",
    "iphone2dslr_flower",
]


# --- archives ----------------------------------------------------------------------------------------


def png(width: int, height: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    ok, data = cv2.imencode(".png", rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    assert ok
    return data.tobytes()


def pix2pix_files(name: str = "facades") -> dict[str, bytes]:
    files = {}
    for split, count in (("train", 4), ("val", 2), ("test", 2)):
        for i in range(count):
            files[f"{name}/{split}/{i + 1}.png"] = png(32, 16, seed=i)
    return files


def cyclegan_files(name: str = "horse2zebra") -> dict[str, bytes]:
    return {
        f"{name}/{folder}/n{i}.png": png(16, 16, seed=i)
        for folder in ("trainA", "trainB", "testA", "testB")
        for i in range(3)
    }


def make_tar(
    files: dict[str, bytes], compression: str = "gz", extra: list[tarfile.TarInfo] | None = None
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}") as tar:
        for member in extra or []:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def make_zip(files: dict[str, bytes], extra: list[tuple[zipfile.ZipInfo, bytes]] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for info, data in extra or []:
            zf.writestr(info, data)
        for name, data in files.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def entry_for(name: str, url: str, **changes) -> DatasetEntry:
    return replace(get_entry(name), url=url, **changes)


def leftovers(root: Path) -> list[str]:
    """Hidden extraction folders or dataset folders left in root (there should be none after a failure)."""
    return sorted(p.name for p in root.iterdir() if p.name != ".partial") if root.exists() else []


# --- catalog ------------------------------------------------------------------------------------------


def test_catalog_lists_the_published_sets():
    catalog = load_catalog()
    for name in PIX2PIX:
        entry = catalog[name]
        assert entry.url == f"https://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{name}.tar.gz"
        assert entry.layout == "aligned" and entry.size_mb and not entry.manual
    for name in CYCLEGAN:
        entry = catalog[name]
        assert entry.url == f"https://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
        assert entry.layout == "cyclegan" and entry.size_mb
    assert catalog["maps_cyclegan"].url.endswith("/cyclegan/datasets/maps.zip")
    assert catalog["maps"].layout == "aligned" and catalog["maps_cyclegan"].layout == "cyclegan"
    for name in ("cityscapes", "celeba"):
        assert catalog[name].manual and catalog[name].steps and catalog[name].url is None
    for entry in catalog.values():
        assert entry.licence and entry.description
        for algo, length in (("md5", 32), ("sha256", 64)):
            value = getattr(entry, algo)
            assert value is None or (len(value) == length and int(value, 16) >= 0)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(DataError, match=r"did you mean facades"):
        get_entry("facade")
    with pytest.raises(DataError, match=r"unknown dataset 'zzz'.*known: facades"):
        get_entry("zzz")


def test_catalog_path_override(tmp_path, monkeypatch):
    custom = tmp_path / "catalog.yaml"
    custom.write_text(
        "datasets:\n  tiny:\n    description: a mirror\n    layout: flat\n    url: http://x/t.zip\n"
    )
    monkeypatch.setenv("TRANSLATE_DATASET_CATALOG", str(custom))
    assert list(load_catalog()) == ["tiny"]
    monkeypatch.setenv("TRANSLATE_DATASET_CATALOG", str(tmp_path / "missing.yaml"))
    with pytest.raises(DataError, match="dataset catalog not found"):
        load_catalog()


def test_cli_list_shows_every_dataset_with_its_size():
    result = CliRunner().invoke(datasets, ["list"])
    assert result.exit_code == 0, result.output
    for name in [*PIX2PIX, *CYCLEGAN, "maps_cyclegan", "cityscapes", "celeba"]:
        assert name in result.output
    assert "~29 MB" in result.output and "manual" in result.output


# --- downloads ----------------------------------------------------------------------------------------


def test_pix2pix_download_over_http_with_progress(server, tmp_path, capsys):
    server.files["/facades.tar.gz"] = make_tar(pix2pix_files())
    root = tmp_path / "data"
    path = download_dataset("facades", root, url=server.url("/facades.tar.gz"))
    assert path == root / "facades"
    assert sorted(p.name for p in path.iterdir()) == ["test", "train", "val"]
    layout = detect_layout(path)
    assert layout.kind == "aligned" and layout.splits == ["train", "val", "test"]
    assert leftovers(root) == ["facades"] and not (root / ".partial").exists()
    assert "facades" in capsys.readouterr().err  # the tqdm bar
    # a second call finds it and downloads nothing
    assert download_dataset("facades", root, url=server.url("/facades.tar.gz")) == path
    assert len(server.requests) == 1


def test_cyclegan_zip_through_the_cli(server, tmp_path):
    server.files["/maps.zip"] = make_zip(
        cyclegan_files("maps") | {"__MACOSX/._junk": b"x", "README.txt": b"hi"}
    )
    result = CliRunner().invoke(
        datasets,
        [
            "download",
            "maps_cyclegan",
            "--root",
            str(tmp_path),
            "--url",
            server.url("/maps.zip"),
            "--no-progress",
        ],
    )
    assert result.exit_code == 0, result.output
    target = tmp_path / "maps_cyclegan"
    assert sorted(p.name for p in target.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert "ready" in result.output and "translate train cyclegan --data-root" in result.output
    assert not (tmp_path / "__MACOSX").exists() and leftovers(tmp_path) == ["maps_cyclegan"]


def test_resume_after_a_cut_connection(server, tmp_path):
    data = make_tar(pix2pix_files(), compression="")  # uncompressed: big enough to cut meaningfully
    server.files["/facades.tar"] = data
    server.cuts = 1
    path = download_dataset("facades", tmp_path, url=server.url("/facades.tar"), progress=False, retry_wait=0)
    assert detect_layout(path).kind == "aligned"
    assert server.ranges() == [None, f"bytes={len(data) // 2}-"]  # the second request resumed halfway


def test_interrupted_download_leaves_only_the_part_file_and_resumes_next_run(server, tmp_path):
    data = make_tar(pix2pix_files(), compression="")
    server.files["/facades.tar"] = data
    server.cuts = 1
    with pytest.raises(DataError, match="interrupted.*run the same command again to resume") as info:
        download_dataset("facades", tmp_path, url=server.url("/facades.tar"), progress=False, retries=0)
    assert "\n" not in str(info.value)
    part = tmp_path / ".partial" / "facades.tar.part"
    assert part.stat().st_size == len(data) // 2
    assert leftovers(tmp_path) == []  # no half-written dataset folder
    download_dataset("facades", tmp_path, url=server.url("/facades.tar"), progress=False)
    assert server.ranges()[-1] == f"bytes={len(data) // 2}-"
    assert detect_layout(tmp_path / "facades").kind == "aligned"
    assert not part.exists()


def test_server_that_ignores_range_restarts_from_zero(server, tmp_path):
    data = make_tar(pix2pix_files())
    server.files["/facades.tar.gz"] = data
    server.cuts, server.ignore_range = 1, True
    path = download_dataset(
        "facades", tmp_path, url=server.url("/facades.tar.gz"), progress=False, retry_wait=0
    )
    assert server.ranges() == [None, f"bytes={len(data) // 2}-"]  # asked to resume, got the whole file
    assert len(list((path / "train").iterdir())) == 4


def test_changed_file_on_the_server_is_not_spliced(server, tmp_path):
    server.files["/facades.tar"] = make_tar(pix2pix_files(), compression="")
    server.cuts = 1
    with pytest.raises(DataError, match="interrupted"):
        download_dataset("facades", tmp_path, url=server.url("/facades.tar"), progress=False, retries=0)
    server.files["/facades.tar"] = make_tar(
        pix2pix_files() | {"facades/test/9.png": png(32, 16)}, compression=""
    )
    path = download_dataset("facades", tmp_path, url=server.url("/facades.tar"), progress=False)
    assert (path / "test" / "9.png").is_file()  # If-Range with the old ETag -> the server sent the new file


@pytest.mark.parametrize("field", ["sha256", "md5", "size_bytes"])
def test_checksum_or_size_mismatch_deletes_and_names_both_values(server, tmp_path, field):
    data = make_tar(pix2pix_files())
    server.files["/facades.tar.gz"] = data
    wrong = {"sha256": "0" * 64, "md5": "0" * 32, "size_bytes": len(data) + 1}[field]
    actual = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
        "size_bytes": str(len(data)),
    }[field]
    entry = entry_for("facades", server.url("/facades.tar.gz"), **{field: wrong})
    with pytest.raises(DataError, match="failed verification") as info:
        download_dataset(entry, tmp_path, progress=False)
    assert str(wrong) in str(info.value) and actual in str(info.value)
    assert leftovers(tmp_path) == [] and not list((tmp_path / ".partial").glob("*.part"))


def test_matching_checksums_pass(server, tmp_path):
    data = make_zip(cyclegan_files())
    server.files["/h.zip"] = data
    entry = entry_for(
        "horse2zebra",
        server.url("/h.zip"),
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data).hexdigest(),
        size_bytes=len(data),
    )
    assert detect_layout(download_dataset(entry, tmp_path, progress=False)).kind == "cyclegan"


def _tar_link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def _tar_special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


def _zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def _tar_file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 4
    return info


MALICIOUS = {
    "tar dotdot": ("tar", [_tar_file("facades/../../outside/evil.txt")], "climbs out"),
    "tar absolute": ("tar", [_tar_file("{outside}/evil.txt")], "absolute"),
    "tar symlink out": ("tar", [_tar_link("facades/train/evil.png", "../../../outside/evil.txt")], "link"),
    "tar symlink dir then write through it": (
        "tar",
        [_tar_link("facades/sneaky", "{outside}"), _tar_file("facades/sneaky/evil.txt")],
        "link",
    ),
    "tar hardlink out": (
        "tar",
        [_tar_link("facades/train/evil.png", "{outside}/evil.txt", hard=True)],
        "link",
    ),
    "tar char device": ("tar", [_tar_special("facades/dev", tarfile.CHRTYPE)], "device"),
    "tar fifo": ("tar", [_tar_special("facades/fifo", tarfile.FIFOTYPE)], "FIFO"),
    "zip dotdot": ("zip", [(zipfile.ZipInfo("../outside/evil.txt"), b"evil")], "climbs out"),
    "zip absolute": ("zip", [(zipfile.ZipInfo("{outside}/evil.txt"), b"evil")], "absolute"),
    "zip backslash dotdot": ("zip", [(zipfile.ZipInfo("..\\outside\\evil.txt"), b"evil")], "climbs out"),
    "zip symlink": ("zip", [_zip_symlink("horse2zebra/trainA/evil.png", "/etc/passwd")], "link"),
}


@pytest.mark.parametrize("case", list(MALICIOUS))
def test_malicious_archives_are_refused_and_write_nothing_outside(server, tmp_path, case):
    kind, members, reason = MALICIOUS[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "data" / "inner"
    for member in members:  # the absolute cases point at the real outside folder
        info = member[0] if kind == "zip" else member
        attr = "filename" if kind == "zip" else "name"
        setattr(info, attr, getattr(info, attr).replace("{outside}", str(outside)))
        if kind == "tar" and info.linkname:
            info.linkname = info.linkname.replace("{outside}", str(outside))
    if kind == "tar":
        name, archive = "facades", make_tar(pix2pix_files(), extra=members)
    else:
        name, archive = "horse2zebra", make_zip(cyclegan_files(), extra=members)
    server.files["/evil"] = archive
    with pytest.raises(DataError, match=rf"refusing to extract.*{reason}"):
        download_dataset(name, root, url=server.url("/evil"), progress=False)
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "data" / "outside").exists() and not (tmp_path / "evil.txt").exists()
    assert leftovers(root) == []  # no dataset folder, no temporary folder


def test_safe_member_path_rules(tmp_path):
    assert safe_member_path(tmp_path, "a/./b/c.png") == tmp_path / "a" / "b" / "c.png"
    for bad in ("/etc/passwd", "C:/x", "a/../../x", "\\\\server\\share"):
        with pytest.raises(DataError):
            safe_member_path(tmp_path, bad)


def test_offline_fails_fast_with_one_line(tmp_path):
    with socket.socket() as sock:  # a port that nothing listens on: connection refused at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/facades.tar.gz"
    start = time.perf_counter()
    result = CliRunner().invoke(datasets, ["download", "facades", "--root", str(tmp_path), "--url", url])
    assert time.perf_counter() - start < 5
    assert result.exit_code == 1
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and url in error[0] and "--url /path/to/facades.tar.gz" in error[0]
    assert list(tmp_path.iterdir()) == [], "nothing to resume, so not even an empty .partial folder"


def test_http_error_is_one_line(server, tmp_path):
    with pytest.raises(DataError, match=r"HTTP 404 .*--url") as info:
        download_dataset("facades", tmp_path, url=server.url("/missing.tar.gz"), progress=False)
    assert "\n" not in str(info.value)


def test_url_may_be_a_local_path_or_file_url(tmp_path):
    archive = tmp_path / "mirror" / "facades.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(make_tar(pix2pix_files()))
    path = download_dataset("facades", tmp_path / "a", url=str(archive), progress=False)
    assert detect_layout(path).kind == "aligned"
    zipped = tmp_path / "mirror" / "h2z.zip"
    zipped.write_bytes(make_zip(cyclegan_files()))
    result = CliRunner().invoke(
        datasets, ["download", "horse2zebra", "--root", str(tmp_path / "b"), "--url", zipped.as_uri()]
    )
    assert result.exit_code == 0, result.output
    assert detect_layout(tmp_path / "b" / "horse2zebra").kind == "cyclegan"
    assert archive.is_file() and zipped.is_file()  # the user's copies are never deleted


def test_corrupt_or_wrong_archives_leave_nothing(tmp_path):
    good = make_tar(pix2pix_files())
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match="cannot extract cut.tar.gz"):
        download_dataset("facades", tmp_path / "data", url=str(truncated), progress=False)
    wrong = tmp_path / "flat.tar.gz"
    wrong.write_bytes(make_tar({"stuff/a.png": png(16, 16), "stuff/b.png": png(16, 16)}))
    with pytest.raises(DataError, match="holds a flat dataset.*not the aligned layout"):
        download_dataset("facades", tmp_path / "data", url=str(wrong), progress=False)
    html = tmp_path / "page.zip"
    html.write_bytes(b"<html>not found</html>")
    with pytest.raises(DataError, match="neither a tar nor a zip"):
        download_dataset("horse2zebra", tmp_path / "data", url=str(html), progress=False)
    with pytest.raises(DataError, match="is not a file"):
        download_dataset("horse2zebra", tmp_path / "data", url=str(tmp_path / "nope.zip"), progress=False)
    assert leftovers(tmp_path / "data") == [] and truncated.is_file()


@pytest.mark.parametrize(
    ("name", "expected"),
    [("cityscapes", "prepare_cityscapes_dataset.py"), ("celeba", "list_attr_celeba.txt")],
)
def test_manual_datasets_print_their_steps(tmp_path, name, expected):
    result = CliRunner().invoke(datasets, ["download", name, "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert expected in result.output and "1. " in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: ")
    with pytest.raises(ManualDownloadError):
        download_dataset(name, tmp_path)
    assert leftovers(tmp_path) == []
