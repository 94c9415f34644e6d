"""`translate apply --gallery`: an HTML page of each input beside its outputs, whose every link opens from
disk, names escaped, failed inputs listed with their reasons, outputs that existed shown too."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from conftest import tiny_cyclegan_run
from PIL import Image

from translate import Translator
from translate.cli import main
from translate.errors import StorageError
from translate.inference.gallery import write_gallery

ODD_NAME = "a <b> & c #1.png"


class Page(HTMLParser):
    """What a gallery shows: its rows (the ``src`` of each image), captions and list items."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.captions: list[str] = []
        self.items: list[str] = []
        self._text: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "div" and ("class", "row") in attrs:
            self.rows.append([])
        elif tag == "img":
            self.rows[-1].append(dict(attrs)["src"])
        elif tag in ("figcaption", "li"):
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("figcaption", "li") and self._text is not None:
            (self.captions if tag == "figcaption" else self.items).append("".join(self._text))
            self._text = None


def read_page(path: Path) -> Page:
    """The gallery at ``path``, each image link checked to open from its folder."""
    page = Page(path.read_text(encoding="utf-8"))
    for src in (src for row in page.rows for src in row):
        assert "://" not in src, f"{src}: not a relative link"
        assert (path.parent / unquote(src)).is_file(), f"{src} does not resolve from {path}"
    return page


def picture(path: Path, size: tuple[int, int] = (40, 32), colour: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_cyclegan_run(tmp_path_factory, steps=1)


@pytest.fixture
def photos(tmp_path) -> Path:
    """A folder of mixed sizes, one odd name in a sub-folder and one corrupt file."""
    folder = tmp_path / "my photos"
    picture(folder / "one.png", (40, 32))
    picture(folder / "sub" / ODD_NAME, (24, 48), "blue")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


# ---------------------------------------------------------------------------------------------- the page
def test_each_input_sits_beside_its_outputs_and_every_name_is_escaped(tmp_path):
    inputs = [picture(tmp_path / "in" / name) for name in ("x.png", ODD_NAME)]
    dst = tmp_path / "out"
    outputs = [picture(dst / "x.png"), picture(dst / "deep" / ODD_NAME)]
    page_path = write_gallery(list(zip(inputs, outputs)), dst, title="<run> & co")
    assert page_path == dst / "index.html"
    text = page_path.read_text(encoding="utf-8")
    assert "<run> & co" not in text and "&lt;run&gt; &amp; co" in text
    page = read_page(page_path)
    quoted = "a%20%3Cb%3E%20%26%20c%20%231.png"
    assert page.rows == [["../in/x.png", "x.png"], [f"../in/{quoted}", f"deep/{quoted}"]]
    assert page.captions == ["x.png", "x.png", f"deep/{ODD_NAME}", ODD_NAME]
    assert "http" not in text.lower() and "height: 256px" in text, "one self-contained page, one height"
    assert not list(dst.glob(".*")), "no partial page left"


def test_the_styles_of_one_input_share_its_row_captioned_by_their_suffix(tmp_path):
    source = picture(tmp_path / "cat.jpg")
    styles = [picture(tmp_path / "out" / f"cat-seed0-style{i}.png") for i in range(3)]
    page = read_page(write_gallery([(source, out) for out in styles], tmp_path / "out"))
    assert len(page.rows) == 1 and len(page.rows[0]) == 4
    assert page.captions == ["cat.jpg", "seed0-style0", "seed0-style1", "seed0-style2"]


def test_failed_inputs_are_listed_with_their_reason(tmp_path):
    failed = [(tmp_path / "bad <1>.png", "not an image (cannot identify image file)")]
    page = read_page(write_gallery([], tmp_path / "out", failed=failed))
    assert page.rows == [] and page.items == [f"{failed[0][0]}: {failed[0][1]}"]


def test_a_page_that_cannot_be_written_is_one_line_and_leaves_nothing_behind(tmp_path):
    dst = tmp_path / "out"
    (dst / "index.html").mkdir(parents=True)  # a folder in the page's place
    with pytest.raises(StorageError, match="cannot write the gallery"):
        write_gallery([], dst)
    assert [p.name for p in dst.iterdir()] == ["index.html"], "no partial page left"


# ---------------------------------------------------------------------------------------------- from a run
def test_the_report_pairs_every_input_with_its_output_also_when_they_existed(run, photos, tmp_path):
    translator, dst = Translator.from_run(run), tmp_path / "out"
    translator.apply_paths([photos], dst, progress=False)
    expected = [
        (photos / "one.png", dst / "my photos" / "one.png"),
        (photos / "sub" / ODD_NAME, dst / "my photos" / "sub" / ODD_NAME),
    ]
    assert translator.report.pairs == expected
    assert [path.name for path, _ in translator.report.failed] == ["broken.png"]
    translator.apply_paths([photos], dst, progress=False)
    assert translator.report.translated == [] and translator.report.pairs == expected, "re-run: all shown"


def test_cli_gallery_shows_every_translation_and_the_failed_input(run, photos, tmp_path):
    dst = tmp_path / "out"
    args = ["apply", str(photos), "--run", str(run), "--out", str(dst), "--gallery"]
    for attempt in ("first", "re-run"):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 3, result.output
        assert f"gallery: {dst / 'index.html'}" in result.output, attempt
        page = read_page(dst / "index.html")
        assert len(page.rows) == 2 and all(len(row) == 2 for row in page.rows), attempt
        assert [item.split(": ")[0] for item in page.items] == [str(photos / "broken.png")], attempt
    plain = CliRunner().invoke(main, [*args[:-2], str(tmp_path / "plain")])
    assert "gallery:" not in plain.output and not (tmp_path / "plain" / "index.html").exists()
