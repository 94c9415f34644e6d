"""`translate serve`: the page, its choices per export kind (CycleGAN direction, StarGAN target, GAN seed and
class), results equal to the Python API's, upload limits and errors as readable one-liners (HTTP tests), and
a real headless Chromium that uploads, translates and downloads (skipped without chromium, chromedriver and
selenium: apt-get install chromium chromium-driver; pip install selenium)."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import shutil
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import tiny_cyclegan_run, tiny_overrides
from PIL import Image
from test_gan import ClassImages
from test_gan import tiny_config as gan_config
from test_stargan import write_attribute_data

from translate.api import train
from translate.cli import FriendlyGroup, main
from translate.cli.serve import serve as serve_command
from translate.engine.grid import grid_image
from translate.engine.trainer import Trainer
from translate.inference import Sampler, Translator
from translate.inference.serve import ServeApp, make_server, parse_multipart

# ----------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cyclegan(tmp_path_factory):
    return tiny_cyclegan_run(tmp_path_factory, steps=1)


@pytest.fixture(scope="module")
def stargan(tmp_path_factory):
    root = write_attribute_data(tmp_path_factory.mktemp("data") / "celeba")
    layer = tiny_overrides("stargan", 1, n_critic=1)
    layer["data"]["attributes"] = ["Black_Hair", "Blond_Hair", "Male"]
    run = tmp_path_factory.mktemp("runs") / "stargan"
    train("stargan", overrides=[{"data": {"root": str(root)}}, layer], run_dir=run)
    return run


@pytest.fixture(scope="module")
def cgan(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "cgan"
    Trainer(gan_config("cgan", steps=1), run, dataset=ClassImages()).fit()
    return run


@contextlib.contextmanager
def serving(app: ServeApp):
    """``app`` served on a free port of 127.0.0.1 in a thread: its URL."""
    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def png(width: int = 40, height: int = 30, mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4}[mode]
    image = Image.fromarray(rng.integers(0, 255, (height, width, channels), dtype=np.uint8), mode)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def flat(width: int, height: int) -> bytes:
    """A one-colour PNG: a few bytes for many pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 160, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(width: int = 40, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png(width, height))).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def multipart(fields: dict[str, str], image: bytes | None, filename: str = "photo.png") -> tuple[bytes, str]:
    """A ``multipart/form-data`` body as browsers send it, and its content type."""
    boundary = "----formboundary7MA4YWxkTrZu0gW"
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    if image is not None:
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
            "Content-Type: image/png\r\n\r\n"
        )
        out += head.encode() + image + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post(url: str, body: bytes, content_type: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """POST ``body``: status, headers and body, also for error statuses."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": content_type, **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def translate(url: str, image: bytes | None, **fields: str) -> tuple[int, dict, bytes]:
    return post(url + "api/translate", *multipart(fields, image))


def get(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=30
        ) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


# ----------------------------------------------------------------------------------------- HTTP
def test_the_page_is_self_contained_and_describes_the_models_directions(cyclegan):
    with serving(ServeApp(cyclegan)) as url:
        status, headers, body = get(url)
        model = json.loads(get(url + "api/model")[2])
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]  # the browser loads nothing else
    assert not any(f'{attr}="http' in page for attr in ("src", "href", "action")), "no external assets"
    assert [(e["name"], e["kind"]) for e in model["exports"]] == [
        ("a2b", "image_to_image"),
        ("b2a", "image_to_image"),
    ]
    assert model["exports"][0]["title"] == "photo \u2192 anime (a2b)"
    assert model["limits"] == {"max_bytes": 20_000_000, "max_pixels": 25_000_000}
    assert json.dumps(model["exports"][1]["title"])[1:-1] in page  # the description is inside the page


def test_each_direction_gives_what_the_python_api_gives(cyclegan):
    image = png(40, 30)
    with serving(ServeApp(cyclegan)) as url:
        results = {}
        for direction in ("a2b", "b2a"):
            status, headers, body = translate(url, image, export=direction)
            assert status == 200, body
            assert headers["Content-Type"] == "image/png"
            assert f'filename="photo-{direction}.png"' in headers["Content-Disposition"]
            results[direction] = decoded(body)
    for direction, result in results.items():
        expected = Translator.from_run(cyclegan, direction)(Image.open(io.BytesIO(image)))
        assert np.array_equal(result, np.asarray(expected)), f"{direction}: not the Python API's result"
    assert results["a2b"].shape == (30, 40, 3) and not np.array_equal(results["a2b"], results["b2a"])


def test_raw_uploads_jpeg_stays_jpeg_and_alpha_is_kept(cyclegan):
    with serving(ServeApp(cyclegan)) as url:
        status, headers, body = post(url + "api/translate?export=b2a&filename=x.jpg", jpeg(), "image/jpeg")
        assert status == 200 and headers["Content-Type"] == "image/jpeg", body
        assert 'filename="x-b2a.jpg"' in headers["Content-Disposition"]
        assert Image.open(io.BytesIO(body)).size == (40, 30)
        status, _, body = translate(url, png(mode="RGBA"))  # no export named: the first (a2b)
        assert status == 200 and Image.open(io.BytesIO(body)).mode == "RGBA"


def test_limits_and_bad_uploads_are_readable_one_line_answers(cyclegan):
    app = ServeApp(cyclegan, max_bytes=30_000, max_pixels=100 * 100)
    truncated = png(60, 60)[:-200]
    with serving(app) as url:
        cases = [
            (png(50, 50), 200, ""),
            (png(120, 120), 413, "this page takes images up to 30.0 kB"),  # bytes, within the form's slack
            (flat(101, 100), 413, "101x100 px (0.0101 MP); this page takes images up to 0.01 MP"),
            (b"just some text", 400, "not an image this page can read"),
            (truncated, 400, "the image cannot be decoded"),
            (b"", 400, "no image was sent"),
        ]
        for image, status, message in cases:
            got, headers, body = translate(url, image)
            assert got == status, (status, body)
            if message:
                text = body.decode()
                assert headers["Content-Type"] == "text/plain; charset=utf-8"
                assert message in text, text
                assert text.count("\n") == 1, text
        # an upload far above the limit is refused from its Content-Length, yet the client reads the answer
        status, _, body = post(url + "api/translate", b"\0" * 200_000, "image/png")
        assert status == 413 and b"the upload is 200.0 kB; this page takes images up to 30.0 kB" in body
        status, _, body = translate(url, None, export="a2b")
        assert status == 400 and b"no image was sent" in body
        status, _, body = translate(url, png(), export="x2y")
        assert status == 400 and body == b"unknown export 'x2y'; this request can use: a2b, b2a\n"
        status, _, body = translate(url, png(), target="Male=1")
        assert status == 400 and b"takes no target" in body
        assert get(url + "api/translate")[0] == 405
        assert get(url + "nothing-here")[0] == 404
        assert get(url + "api/sample")[0] == 405
        status, _, body = post(url + "api/sample", b"seed=1", "application/x-www-form-urlencoded")
        assert status == 400 and body.startswith(
            b"this model does not draw samples; it offers a2b (image_to_image)"
        )


def test_an_image_too_small_for_the_network_is_a_readable_answer(cyclegan):
    with serving(ServeApp(cyclegan)) as url:
        status, _, body = translate(url, png(1, 1))
    assert status == 400 and body.startswith(b"the model cannot translate this 1x1 px image"), body


def test_chunked_uploads_other_hosts_and_the_drained_connection(cyclegan):
    with serving(ServeApp(cyclegan)) as url:
        host, port = url.split("//")[1].rstrip("/").split(":")
        # another host name (DNS rebinding) is refused while bound to 127.0.0.1; loopback names are fine
        assert get(url, {"Host": f"evil.example:{port}"})[0] == 403
        assert get(url, {"Host": f"localhost:{port}"})[0] == 200
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.putrequest("POST", "/api/translate")
        connection.putheader("Transfer-Encoding", "chunked")
        connection.putheader("Content-Type", "image/png")
        connection.endheaders()
        connection.send(b"5\r\nhello\r\n0\r\n\r\n")
        response = connection.getresponse()
        assert response.status == 411 and b"Content-Length" in response.read()
        connection.close()
        # a negative length is refused, not read until the client hangs up
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.putrequest("POST", "/api/translate")
        connection.putheader("Content-Length", "-1")
        connection.putheader("Content-Type", "image/png")
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 400 and b"bad Content-Length" in response.read()
        connection.close()
        # a keep-alive connection still serves the next request after a refused one
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        body, content_type = multipart({}, png(1, 1))
        connection.request("POST", "/api/translate", body, {"Content-Type": content_type})
        assert connection.getresponse().read().startswith(b"the model cannot translate")
        connection.request("GET", "/api/model")
        assert json.loads(connection.getresponse().read())["exports"][0]["name"] == "a2b"
        connection.close()


def test_nothing_is_written_to_the_run_or_the_current_folder(cyclegan, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def snapshot() -> dict:
        return {p: p.stat().st_mtime_ns for p in [*cyclegan.rglob("*"), *tmp_path.rglob("*")]}

    before = snapshot()
    with serving(ServeApp(cyclegan)) as url:
        assert translate(url, png(), export="a2b")[0] == 200
        assert translate(url, b"nope")[0] == 400
    assert snapshot() == before


def test_stargan_targets_attributes_with_groups_and_reads_the_other_labels(stargan):
    image = png(32, 32, seed=3)
    with serving(ServeApp(stargan)) as url:
        (export,) = json.loads(get(url + "api/model")[2])["exports"]
        assert export["kind"] == "image_and_target_to_image" and export["reads_labels"] is True
        assert export["labels"] == {
            "names": ["Black_Hair", "Blond_Hair", "Male"],
            "kind": "attributes",
            "groups": [["Black_Hair", "Blond_Hair"]],
        }
        status, _, body = translate(url, image, target="Blond_Hair=1,Male=0")
        assert status == 200, body
        expected = Translator.from_run(stargan)(Image.open(io.BytesIO(image)), target="Blond_Hair=1,Male=0")
        assert np.array_equal(decoded(body), np.asarray(expected))
        status, _, body = translate(url, image)
        assert status == 400 and body.startswith(b"choose a target: attributes Black_Hair, Blond_Hair, Male")
        status, _, body = translate(url, image, target="Smiling=1")
        assert status == 400 and b"not trained on the attribute 'Smiling'" in body
        status, _, body = translate(url, image, target="Black_Hair=1,Blond_Hair=1")
        assert status == 400 and b"exclude each other" in body


def test_gan_samples_by_seed_and_class_are_the_samplers(cgan):
    sampler = Sampler.from_run(cgan)
    with serving(ServeApp(cgan)) as url:
        (export,) = json.loads(get(url + "api/model")[2])["exports"]
        assert export["kind"] == "noise_to_image"
        assert export["classes"] == ["top-left", "top-right", "bottom-left", "bottom-right"]

        def sample(**fields: str):
            body = urllib.parse.urlencode(fields).encode()
            return post(url + "api/sample", body, "application/x-www-form-urlencoded")

        status, headers, body = sample(seed="7", label="top-right", count="4")
        assert status == 200 and headers["Content-Type"] == "image/png", body
        assert 'filename="samples-seed7-top-right.png"' in headers["Content-Disposition"]
        expected = grid_image(sampler.sample(4, seed=7, label="top-right"), 2)
        assert np.array_equal(decoded(body), np.asarray(expected))
        status, _, every = sample(seed="7", count="8")  # every class in turn: one class per column
        assert (
            status == 200 and decoded(every).shape == np.asarray(grid_image(torch.zeros(8, 1, 8, 8), 4)).shape
        )
        status, _, body = sample(seed="1", label="middle")
        assert status == 400 and b"unknown class 'middle'" in body
        assert sample(count="65")[0] == 400 and sample(seed="x")[0] == 400 and sample(seed="-1")[0] == 400
        status, _, body = translate(url, png())
        assert status == 400 and b"does not translate images; it offers sample (noise_to_image)" in body


def test_multipart_parser_keeps_binary_content_exactly():
    content = bytes(range(256)) * 3 + b"\r\n--not-the-boundary\r\n\r\n" + b"\n\r\r\n"
    body, content_type = multipart({"export": "a2b", "target": "Male=1"}, content, "ph\u00f6to.png")
    fields = parse_multipart(body, content_type.split("boundary=")[1])
    assert fields["image"].data == content and fields["image"].filename == "ph\u00f6to.png"
    assert fields["export"].data == b"a2b" and fields["target"].data == b"Male=1"


# ----------------------------------------------------------------------------------------- command line
def cli() -> click.Group:
    """``translate`` with ``serve``: the real group once it is registered there."""
    if "serve" in main.commands:
        return main

    @click.group(cls=FriendlyGroup)
    def group() -> None:
        pass

    group.add_command(serve_command, "serve")
    return group


def test_command_line_errors_are_one_line(cyclegan, tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli(), ["serve"])
    assert result.exit_code == 2 and "give a run folder (RUN) or --model NAME" in result.output
    result = runner.invoke(cli(), ["serve", str(tmp_path / "missing")])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and result.output.count("\n") == 1
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(cli(), ["serve", str(cyclegan), "--port", str(port)])
    assert result.exit_code == 1 and f"port {port} on 127.0.0.1 is in use" in result.output, result.output
    result = runner.invoke(cli(), ["serve", str(cyclegan), "--model", "style_vangogh"])
    assert result.exit_code == 2 and "one of them" in result.output


def test_model_without_a_model_zoo_is_a_one_line_error(monkeypatch):
    for module in ("translate.cli.models", "translate.catalog.zoo"):
        monkeypatch.setitem(sys.modules, module, None)  # import fails, as in a version without the zoo
    result = CliRunner().invoke(cli(), ["serve", "--model", "style_vangogh"])
    assert result.exit_code == 1, result.output
    assert result.output == (
        "Error: --model style_vangogh: this version has no model zoo (translate.catalog.zoo); "
        "give a run folder\n"
    )


@pytest.mark.parametrize("by", ["run", "model"])
def test_the_command_serves_until_the_server_stops(cyclegan, monkeypatch, by):
    """The command in this process (a second Python would spend seconds importing torch): it loads the
    run (or the zoo model's run: the zoo's resolver is replaced here), binds the port it is given,
    serves, and ends with "stopped"."""
    import translate.cli.serve as serve_cli
    import translate.inference.serve as serve_module

    started: list = []

    def capturing(*args, **kwargs):
        server = make_server(*args, **kwargs)
        started.append(server)
        return server

    monkeypatch.setattr(serve_module, "make_server", capturing)
    result: list = []
    monkeypatch.setattr(serve_cli, "model_run", lambda name: cyclegan if name == "tiny" else None)
    source = [str(cyclegan)] if by == "run" else ["--model", "tiny"]
    command = ["serve", *source, "--port", "0", "--device", "cpu", "--max-upload-mb", "0.05"]
    thread = threading.Thread(target=lambda: result.append(CliRunner().invoke(cli(), command)))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert started, result and result[0].output
        url = started[0].url
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0/")
        assert translate(url, png(), export="b2a")[0] == 200
        assert json.loads(get(url + "api/model")[2])["limits"]["max_bytes"] == 50_000
    finally:
        if started:
            started[0].shutdown()
        thread.join(30)
    (done,) = result
    assert done.exit_code == 0, done.output
    assert done.output.splitlines() == [
        f"serving {cyclegan} [a2b (image_to_image), b2a (image_to_image)] at {url}  (Ctrl-C to stop)",
        "stopped",
    ]


# ----------------------------------------------------------------------------------------- browser
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium driven by Selenium, from the system's chromium and chromedriver (no download)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not binary or not driver_path:
        pytest.skip("chromium and chromedriver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, script: str, timeout: float = 30.0):
    """The value of ``script`` (a JS expression) once it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script};")
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {script}: {driver.find_element('id', 'results').text}")


def photo(path: Path, width: int = 256, height: int = 192) -> Path:
    """A colourful test picture: gradients and discs."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // width, y * 255 // height, 255 - (x + y) * 255 // (width + height)], -1)
    for cx, cy, r, colour in ((70, 80, 40, (250, 220, 40)), (180, 110, 55, (30, 120, 200))):
        image[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = colour
    Image.fromarray(image.astype(np.uint8)).save(path)
    return path


def test_browser_uploads_translates_shows_and_downloads(browser, cyclegan, tmp_path):
    from selenium.webdriver.support.ui import Select

    picture = photo(tmp_path / "street.png")
    (tmp_path / "notes.png").write_text("not a picture")
    with serving(ServeApp(cyclegan)) as url:
        browser.get(url)
        assert "photo \u2192 anime (a2b)" in browser.find_element("id", "export").text
        Select(browser.find_element("id", "export")).select_by_value("b2a")
        browser.find_element("id", "file").send_keys(str(picture))
        wait_for(browser, "document.querySelector('.row .before img')?.naturalWidth > 0")
        browser.find_element("id", "translate").click()
        width = wait_for(browser, "document.querySelector('.row img.result')?.naturalWidth")
        assert width == 256
        link = browser.find_element("css selector", ".row a.download")
        assert (
            link.get_attribute("href").startswith("blob:")
            and link.get_attribute("download") == "street-b2a.png"
        )
        assert "anime \u2192 photo (b2a) in" in browser.find_element("css selector", ".row .status").text
        # the download is the server's PNG
        downloaded = browser.execute_async_script(
            "const done = arguments[0];"
            "fetch(document.querySelector('.row a.download').href).then(r => r.arrayBuffer())"
            ".then(b => done(Array.from(new Uint8Array(b)))).catch(e => done(String(e)));"
        )
        expected = Translator.from_run(cyclegan, "b2a")(Image.open(picture))
        assert np.array_equal(decoded(bytes(downloaded)), np.asarray(expected))
        screenshot = os.environ.get("SERVE_SCREENSHOT")
        if screenshot:
            browser.save_screenshot(screenshot)
        # a file that is not an image: the server's message is shown in its row
        browser.find_element("id", "file").send_keys(str(tmp_path / "notes.png"))
        browser.find_element("id", "translate").click()
        wait_for(browser, "document.querySelectorAll('.row .status.error').length === 1")
        error = browser.find_element("css selector", ".row .status.error").text
        assert error == "the upload is not an image this page can read (JPEG, PNG, WebP, BMP, TIFF, GIF ...)"
        assert (
            browser.execute_script("return document.querySelectorAll('.row img.result:not([hidden])').length")
            == 1
        )


def test_browser_targets_a_stargan_and_draws_gan_samples(browser, stargan, cgan, tmp_path):
    from selenium.webdriver.support.ui import Select

    picture = photo(tmp_path / "face.png", 64, 64)
    with serving(ServeApp(stargan)) as url:
        browser.get(url)
        group = browser.find_element("css selector", "select[data-kind=group]")
        Select(group).select_by_value("Blond_Hair")
        Select(browser.find_element("css selector", "select[data-name=Male]")).select_by_value("0")
        browser.find_element("id", "file").send_keys(str(picture))
        browser.find_element("id", "translate").click()
        assert wait_for(browser, "document.querySelector('.row img.result')?.naturalWidth") == 64
        assert "to Blond_Hair=1,Male=0 in" in browser.find_element("css selector", ".row .status").text
    with serving(ServeApp(cgan)) as url:
        browser.get(url)
        assert browser.find_element("id", "image-section").get_attribute("hidden") is not None
        browser.find_element("id", "seed").clear()
        browser.find_element("id", "seed").send_keys("5")
        Select(browser.find_element("id", "class")).select_by_value("bottom-left")
        browser.find_element("id", "count").clear()
        browser.find_element("id", "count").send_keys("4")
        browser.find_element("id", "sample").click()
        assert wait_for(browser, "document.querySelector('.row img.result')?.naturalWidth") == 2 * 8 + 3 * 2
        link = browser.find_element("css selector", ".row a.download")
        assert link.get_attribute("download") == "samples-seed5-bottom-left.png"
