"""What `translate apply` writes: JPEG at quality 95 (or --quality), PNG lossless, WebP kept, and alpha and
EXIF orientation handled as the Python API handles them."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import tiny_cyclegan_run
from PIL import Image, JpegImagePlugin, features

from translate import Translator
from translate.cli import main
from translate.data.io import read_image_and_alpha, write_image


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return tiny_cyclegan_run(tmp_path_factory, steps=1)


def noise(height: int, width: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)


def apply(*args) -> None:
    result = CliRunner().invoke(main, ["apply", *map(str, args)])
    assert result.exit_code == 0, result.output


def luminance_quantisation(path) -> int:
    """The first entry of a JPEG's luminance table: 8 at libjpeg's quality 75, 2 at 95, 1 at 100."""
    with Image.open(path) as image:
        return image.quantization[0][0]


def test_jpeg_at_quality_95_by_default_and_as_asked(run, tmp_path):
    Image.fromarray(noise(40, 48)).save(tmp_path / "photo.jpg", quality=90)
    apply(tmp_path / "photo.jpg", "--run", run, "--out", tmp_path / "default")
    apply(tmp_path / "photo.jpg", "--run", run, "--out", tmp_path / "q60", "--quality", 60)
    default, low = tmp_path / "default" / "photo.jpg", tmp_path / "q60" / "photo.jpg"
    assert luminance_quantisation(default) == 2, "quality 95"
    with Image.open(default) as image:
        assert JpegImagePlugin.get_sampling(image) == 0, "full-resolution colour (4:4:4) at high quality"
    assert luminance_quantisation(low) > 8 and low.stat().st_size < default.stat().st_size
    result = CliRunner().invoke(
        main, ["apply", str(tmp_path / "photo.jpg"), "--run", str(run), "--quality", "0"]
    )
    assert result.exit_code == 2 and "--quality" in result.output
    translator = Translator.from_run(run)  # the Python API has the same knob
    translator.apply_folder(tmp_path / "default", tmp_path / "api", progress=False, quality=60)
    assert luminance_quantisation(tmp_path / "api" / "default" / "photo.jpg") == luminance_quantisation(low)


def test_png_is_lossless_and_webp_stays_webp(run, tmp_path):
    Image.fromarray(noise(37, 50)).save(tmp_path / "a.png")
    Image.fromarray(noise(37, 50, seed=1)).save(tmp_path / "b.bmp")
    apply(tmp_path / "a.png", tmp_path / "b.bmp", "--run", run, "--out", tmp_path / "out")
    translator = Translator.from_run(run)
    for name, written in [("a.png", "a.png"), ("b.bmp", "b.png")]:
        expected = np.asarray(translator(Image.open(tmp_path / name)))
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / written)), expected), "bit for bit"
    if features.check("webp"):
        Image.fromarray(noise(32, 40)).save(tmp_path / "c.webp", lossless=True)
        apply(tmp_path / "c.webp", "--run", run, "--out", tmp_path / "webp", "--quality", 100)
        with Image.open(tmp_path / "webp" / "c.webp") as image:
            assert image.format == "WEBP"
            expected = np.asarray(translator(Image.open(tmp_path / "c.webp")))
            assert np.array_equal(np.asarray(image.convert("RGB")), expected), "quality 100: lossless WebP"


def test_the_command_line_and_the_python_api_treat_alpha_and_exif_alike(run, tmp_path):
    translator = Translator.from_run(run)
    rgba = np.dstack([noise(30, 44), np.tile(np.linspace(0, 255, 44, dtype=np.uint8), (30, 1))])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    gray_alpha = np.dstack([noise(24, 28, 1)[:, :, 0], np.full((24, 28), 128, np.uint8)])
    Image.fromarray(gray_alpha, "LA").save(tmp_path / "la.png")
    upright = Image.fromarray(noise(20, 36))
    exif = upright.getexif()
    exif[0x0112] = 6  # orientation: displayed turned 90 degrees clockwise
    upright.save(tmp_path / "turned.png", exif=exif)  # a PNG with EXIF: both sides lossless

    apply(
        tmp_path / "rgba.png",
        tmp_path / "la.png",
        tmp_path / "turned.png",
        "--run",
        run,
        "--out",
        tmp_path / "o",
    )
    for name in ("rgba.png", "la.png", "turned.png"):
        with Image.open(tmp_path / name) as source, Image.open(tmp_path / "o" / name) as written:
            expected = translator(source)
            assert written.size == expected.size and written.mode == expected.mode, name
            assert np.array_equal(np.asarray(written), np.asarray(expected)), name
    with Image.open(tmp_path / "o" / "rgba.png") as written:
        assert written.mode == "RGBA" and np.array_equal(np.asarray(written)[:, :, 3], rgba[:, :, 3])
    with Image.open(tmp_path / "o" / "turned.png") as written:
        assert written.size == (20, 36), "turned upright as the EXIF orientation says"
    # the colours under the alpha are composited onto white, as training read them
    colour, alpha = read_image_and_alpha(tmp_path / "rgba.png")
    assert np.array_equal(alpha, rgba[:, :, 3]) and colour[:, 0].min() == 255  # alpha 0: white


def test_write_image_writes_whole_files_in_the_format_of_the_suffix(tmp_path):
    image = noise(16, 16)
    write_image(tmp_path / "x.png", image)
    write_image(tmp_path / "x.jpg", np.dstack([image, np.full((16, 16), 255, np.uint8)]))  # alpha dropped
    assert Image.open(tmp_path / "x.png").format == "PNG" and Image.open(tmp_path / "x.jpg").mode == "RGB"
    assert not list(tmp_path.glob(".*partial"))
