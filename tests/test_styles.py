"""Image + style models after training (MUNIT): random styles by seed, the style of a reference image, from
the Python API, `translate apply` (one output per style, named after it), `translate serve` and exported
files; models that take no style code refuse both in one line naming their kind."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import TINY_SIZE, tiny_cyclegan_run
from PIL import Image
from test_export import needs_onnx
from test_munit import layers
from test_serve import decoded, get, png, post, serving

from translate import Translator
from translate.api import train
from translate.catalog.demo import make_demo_dataset
from translate.cli import main
from translate.errors import ConfigError
from translate.inference.model import load_export
from translate.inference.portable import check_parity, export_model, read_contract
from translate.inference.serve_app import ServeApp
from translate.kinds import kinds_with
from translate.kinds.style import style_codes

STYLE_DIM = 8


def images(n: int = 2, height: int = TINY_SIZE, width: int = TINY_SIZE, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, height, width, generator=generator) * 2 - 1


def picture(path: Path, seed: int, size: tuple[int, int] = (40, 32)) -> Path:
    """A random RGB image file of ``size`` (width, height)."""
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def network(run: Path, direction: str = "a2b"):
    return load_export(run, direction, kinds_with("style"))


@pytest.fixture(scope="module")
def munit_run(tmp_path_factory) -> Path:
    """test_munit's tiny MUNIT, trained two steps on the demo photo/anime data."""
    data = tmp_path_factory.mktemp("data") / "demo"
    make_demo_dataset(data, layout="unaligned", num_train=4, num_test=2, size=TINY_SIZE)
    return train("munit", overrides=layers(data, steps=2), run_dir=tmp_path_factory.mktemp("runs") / "munit")


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory) -> Path:
    return tiny_cyclegan_run(tmp_path_factory, steps=1)


def apply(*args: str):
    return CliRunner().invoke(main, ["apply", *map(str, args)])


# ---------------------------------------------------------------------------------------------- the API
def test_the_same_seed_gives_the_same_styles_and_each_style_its_own_translation(munit_run):
    translator, x = Translator.from_run(munit_run), images(2)
    out = translator(x, styles=3, seed=0)
    assert out.shape == (2, 3, 3, TINY_SIZE, TINY_SIZE), "per input, its translations in style order"
    torch.testing.assert_close(translator(x, styles=3, seed=0), out, rtol=0, atol=0)
    module = network(munit_run).module
    for k, code in enumerate(style_codes(STYLE_DIM, 3, seed=0)):  # the kind's seeded codes
        torch.testing.assert_close(out[:, k], module(x, code[None]))
    assert (out[:, 0] - out[:, 1]).abs().max() > 1e-2, "two styles of one input look alike"
    assert (translator(x, styles=3, seed=1) - out).abs().max() > 1e-2, "another seed, other styles"
    torch.testing.assert_close(translator(x, styles=2, seed=0), out[:, :2], rtol=0, atol=0)
    torch.testing.assert_close(translator(x[0], styles=3), out[0])  # one (C, H, W) image: (K, C, H, W)
    codes = torch.randn(2, STYLE_DIM)
    torch.testing.assert_close(translator(x, styles=codes)[:, 1], module(x, codes[1:2].reshape(1, -1, 1, 1)))
    torch.testing.assert_close(translator(x), module(x, torch.zeros(1, STYLE_DIM, 1, 1)))  # no style: zero


def test_pil_images_and_lists_give_a_list_of_styles_per_input(munit_run, tmp_path):
    translator = Translator.from_run(munit_run)
    first, second = (Image.open(picture(tmp_path / f"{n}.png", n)) for n in (1, 2))
    out = translator([first, second], styles=2, seed=5)
    assert [len(styles) for styles in out] == [2, 2]
    assert all(isinstance(image, Image.Image) and image.size == (40, 32) for image in out[0] + out[1])
    alone = translator(second, styles=2, seed=5)
    assert [np.asarray(image).tolist() for image in alone] == [np.asarray(image).tolist() for image in out[1]]
    with pytest.raises(ConfigError, match="number of styles"):
        translator(first, styles=0)
    with pytest.raises(ConfigError, match=r"style codes are \(K, 8\)"):
        translator(first, styles=torch.zeros(2, 5))


def test_style_from_translates_in_the_style_of_the_reference(munit_run, tmp_path):
    translator, x = Translator.from_run(munit_run), images(2)
    loaded = network(munit_run)
    references = images(2, seed=7)  # at the training size: read as they are
    guided = translator(x, style_from=references[0])
    assert guided.shape == x.shape
    torch.testing.assert_close(guided, loaded.module(x, loaded.module.encode_style(references[:1])))
    torch.testing.assert_close(translator(x, style_from=references[0]), guided, rtol=0, atol=0)
    other = translator(x, style_from=references[1])
    assert (other - guided).abs().max() > 1e-3, "two references, one style"
    large = picture(tmp_path / "large.png", 3, (96, 64))  # read at the training size (shorter side 32)
    reference = translator.to_tensor(Image.open(large))
    small = F.interpolate(
        reference[None], size=(32, 48), mode="bilinear", antialias=True, align_corners=False
    )
    torch.testing.assert_close(
        translator(x, style_from=large), loaded.module(x, loaded.module.encode_style(small))
    )
    torch.testing.assert_close(translator(x, style_from=Image.open(large)), translator(x, style_from=large))
    with pytest.raises(ConfigError, match=r"random styles \(--styles\) or a reference \(--style-from\)"):
        translator(x, styles=2, style_from=references[0])


def test_models_without_a_style_refuse_styles_in_one_line_naming_their_kind(cyclegan, tmp_path):
    translator = Translator.from_run(cyclegan)
    with pytest.raises(ConfigError, match="this image_to_image model takes no style code") as error:
        translator(images(1), styles=2)
    assert "image_and_style_to_image" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="this image_to_image model takes no style code"):
        translator(images(1), style_from=images(1)[0])
    photo = picture(tmp_path / "in" / "a.png", 0)
    for option in (["--styles", "2"], ["--style-from", str(photo)]):
        result = apply(photo, "--run", cyclegan, "--out", tmp_path / "out", *option)
        assert result.exit_code == 1
        assert result.output.strip().splitlines() == [
            "Error: this image_to_image model takes no style code: --styles and --style-from (styles=, "
            "style_from=) are for image_and_style_to_image models"
        ]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


# ---------------------------------------------------------------------------------------------- apply
def test_apply_writes_each_style_as_its_own_output_named_after_it(munit_run, tmp_path):
    inputs = tmp_path / "photos"
    for name, seed in (("x.png", 1), ("x.bmp", 2), ("y.jpg", 3)):
        picture(inputs / name, seed)
    out = tmp_path / "out"
    result = apply(inputs, "--run", munit_run, "--out", out, "--styles", "2")
    assert result.exit_code == 0, result.output
    assert "translated 6" in result.output
    names = sorted(p.name for p in (out / "photos").iterdir())
    assert names == [  # x.bmp's outputs would be x.png's: the pipeline's collision rule keeps both
        "x-seed0-style0.bmp.png",
        "x-seed0-style0.png",
        "x-seed0-style1.bmp.png",
        "x-seed0-style1.png",
        "y-seed0-style0.jpg",
        "y-seed0-style1.jpg",
    ]
    expected = Translator.from_run(munit_run)(inputs / "x.png", styles=2, seed=0)
    for k in range(2):
        written = np.asarray(Image.open(out / "photos" / f"x-seed0-style{k}.png"))
        assert np.array_equal(written, np.asarray(expected[k])), f"style {k} is not the Python API's"

    again = apply(inputs, "--run", munit_run, "--out", out, "--styles", "3", "--seed", "0")
    assert "translated 3, skipped 6 existing" in again.output, "styles 0 and 1 of seed 0 are done already"
    apply(inputs / "x.png", "--run", munit_run, "--out", out, "--styles", "1", "--seed", "4")
    other = np.asarray(Image.open(out / "x-seed4-style0.png"))
    assert not np.array_equal(other, np.asarray(expected[0])), "another seed, another style"


def test_apply_style_from_names_the_reference_and_uses_it(munit_run, tmp_path):
    photo = picture(tmp_path / "in" / "x.png", 1)
    references = [picture(tmp_path / f"{name}.png", seed) for name, seed in (("ref1", 8), ("ref2", 9))]
    out = tmp_path / "out"
    for reference in references:
        result = apply(photo, "--run", munit_run, "--out", out, "--style-from", reference)
        assert result.exit_code == 0, result.output
    first, second = (np.asarray(Image.open(out / f"x-style-{name}.png")) for name in ("ref1", "ref2"))
    assert not np.array_equal(first, second)
    expected = Translator.from_run(munit_run)(photo, style_from=references[0])
    assert np.array_equal(first, np.asarray(expected))


def test_apply_style_options_that_do_not_fit_are_usage_errors(munit_run, tmp_path):
    photo = picture(tmp_path / "x.png", 1)
    result = apply(photo, "--run", munit_run, "--out", tmp_path / "out", "--seed", "3")
    assert result.exit_code == 2 and "--seed draws the random styles of --styles N" in result.output
    both = apply(photo, "--run", munit_run, "--out", tmp_path / "o", "--styles", "2", "--style-from", photo)
    assert both.exit_code == 1 and both.output.strip().splitlines() == [
        "Error: give random styles (--styles) or a reference (--style-from), not both"
    ]
    missing = apply(photo, "--run", munit_run, "--out", tmp_path / "o", "--style-from", tmp_path / "no.png")
    assert missing.exit_code == 1 and len(missing.output.strip().splitlines()) == 1
    assert "no.png" in missing.output


# ---------------------------------------------------------------------------------------------- serve
def form(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body with ``fields`` and ``files`` (field: (file name, bytes))."""
    boundary = "----styleboundary"
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, (filename, data) in files.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n\r\n'
        out += head.encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def served(url: str, photo: bytes, reference: bytes | None = None, **fields: str):
    files = {"image": ("photo.png", photo), **({"reference": ("ref.png", reference)} if reference else {})}
    return post(url + "api/translate", *form(fields, files))


def test_serve_offers_styles_and_answers_them_as_the_python_api_does(munit_run):
    photo, references = png(40, 32, seed=1), [png(32, 32, seed=s) for s in (2, 3)]
    translator = Translator.from_run(munit_run, "a2b")
    with serving(ServeApp(munit_run)) as url:
        model = json.loads(get(url + "api/model")[2])
        status, headers, body = served(url, photo, export="a2b", styles="3", seed="2")
        guided = [served(url, photo, reference, export="a2b") for reference in references]
    entry = model["exports"][0]
    assert entry["controls"] == ["image", "style"] and entry["max_styles"] == 16 and entry["reads_references"]
    assert status == 200, body
    assert 'filename="photo-a2b-seed2-styles3.png"' in headers["Content-Disposition"]
    row = decoded(body)
    assert row.shape == (32, 3 * 40 + 2 * 2, 3), "three styles side by side, 2 px apart"
    expected = translator(Image.open(io.BytesIO(photo)), styles=3, seed=2)
    for k, image in enumerate(expected):
        assert np.array_equal(row[:, k * 42 : k * 42 + 40], np.asarray(image)), f"style {k}"
    assert [g[0] for g in guided] == [200, 200]
    assert 'filename="photo-a2b-style-ref.png"' in guided[0][1]["Content-Disposition"]
    for (_, _, body), reference in zip(guided, references):
        want = translator(Image.open(io.BytesIO(photo)), style_from=Image.open(io.BytesIO(reference)))
        assert np.array_equal(decoded(body), np.asarray(want))
    assert not np.array_equal(decoded(guided[0][2]), decoded(guided[1][2])), "two references, one style"


def test_serve_refuses_styles_that_do_not_fit_in_one_line(munit_run, cyclegan):
    photo = png(40, 32)
    with serving(ServeApp(munit_run)) as url:
        too_many = served(url, photo, styles="17")
        both = served(url, photo, png(32, 32, seed=5), styles="2")
        not_a_number = served(url, photo, styles="two")
    assert too_many[0] == 400 and too_many[2] == b"the number of styles must be between 1 and 16; got 17\n"
    assert both[0] == 400 and both[2] == b"send a number of styles or a reference image, not both\n"
    assert not_a_number[0] == 400 and not_a_number[2] == b"styles is a whole number; got 'two'\n"
    with serving(ServeApp(cyclegan)) as url:
        status, _, body = served(url, photo, export="a2b", styles="2")
    assert status == 400 and body == (
        b"a2b (image_to_image) takes no style: styles and references are for "
        b"image_and_style_to_image models\n"
    )


# ---------------------------------------------------------------------------------------------- export
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("format", ["torchscript", pytest.param("onnx", marks=needs_onnx)])
def test_an_exported_style_model_takes_style_codes_and_holds_no_style_encoder(munit_run, tmp_path, format):
    out = export_model(munit_run, tmp_path / f"munit.{'pt' if format == 'torchscript' else 'onnx'}", format)
    contract = read_contract(out)
    assert contract["inputs"] == ["image", "style"]
    assert contract["options"] == {"direction": "a2b", "source": "photo", "target": "anime", "style_dim": 8}
    worst, _ = check_parity(munit_run, out)
    assert worst <= 1e-4
    exported, trained = Translator.from_exported(out), Translator.from_run(munit_run)
    x = images(2, 32, 40)
    torch.testing.assert_close(exported(x, styles=3, seed=1), trained(x, styles=3, seed=1), atol=1e-4, rtol=0)
    torch.testing.assert_close(exported(x), trained(x), atol=1e-4, rtol=0)  # the zero code, given
    with pytest.raises(ConfigError, match="an exported file holds no style encoder: .* needs the run folder"):
        exported(x, style_from=x[0])
    photo = picture(tmp_path / "x.png", 1)
    result = apply(photo, "--run", out, "--out", tmp_path / "out", "--styles", "2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "x-seed0-style0.png",
        "x-seed0-style1.png",
    ]
