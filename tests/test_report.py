"""Pictures of a run: ``loss_curves.png`` written with the sample grids, and ``translate report RUN``: one
self-contained HTML page (images inline, nothing external)."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser

import pytest
from click.testing import CliRunner
from conftest import TINY_SIZE, EvaluatingTrainer, tiny_overrides, tiny_train
from PIL import Image
from toy_tasks import SIZE, ToyImages, registered

from translate.cli import main
from translate.config import build_config
from translate.engine.report import PANEL_HEIGHT, draw_curves, log_ticks, panels, series, smooth
from translate.registry import TASKS


@pytest.fixture(autouse=True)
def toy_tasks():
    with registered():
        yield


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A toy GAN run with evaluation every step, a best checkpoint and sample grids at steps 2, 4, 6."""
    with registered():
        folder = tmp_path_factory.mktemp("report") / "run"
        train = tiny_train(6, num_samples=2, eval_every=1, eval_images=6, best_metric="eval/fd_random")
        config = build_config(
            {"task": "toy_wgan"},
            TASKS.get("toy_wgan").default_config,
            {"data": {"image_size": SIZE, "num_workers": 0}, "train": train},
        )
        EvaluatingTrainer(config, folder, dataset=ToyImages()).fit()
    return folder


def test_loss_curves_png_is_written_with_the_sample_grids(run):
    image = Image.open(run / "loss_curves.png")
    # panels: G, D and eval/fd_random
    assert image.size[1] == 3 * PANEL_HEIGHT
    assert (run / "loss_curves.png").stat().st_mtime >= (run / "samples" / "step_0000006.png").stat().st_mtime
    assert not list(run.glob(".*.tmp"))


def test_curves_group_losses_and_metrics_and_smooth_without_bias():
    records = [
        {"step": 1, "lr": 1e-4, "G/adv": 1.0, "G/l1": 2.0, "D/adv": 0.5, "steps_per_s": 9.0},
        {"step": 2, "G/adv": 3.0, "G/l1": float("nan"), "D/adv": 0.7},
        {"step": 2, "eval/fd": 4.0, "eval/a2b/fd": 3.0, "eval/b2a/fd": 5.0, "eval/psnr": None},
    ]
    named = series(records)
    assert named["G/adv"] == [(1, 1.0), (2, 3.0)] and named["G/l1"] == [(1, 2.0)]
    assert "lr" not in named and "steps_per_s" not in named and "eval/psnr" not in named
    assert panels(named) == {
        "G": ["G/adv", "G/l1"],
        "D": ["D/adv"],
        "eval/fd": ["eval/fd", "eval/a2b/fd", "eval/b2a/fd"],
    }
    assert smooth([5.0, 5.0, 5.0], 0.9) == pytest.approx([5.0, 5.0, 5.0])  # debiased: no pull towards 0
    assert smooth([1.0, 3.0], 0.5) == pytest.approx([1.0, (0.25 * 1 + 0.5 * 3) / 0.75])
    assert log_ticks(1, 20000) == [1, 10, 100, 1000, 10000] and log_ticks(50, 400) == [50, 100, 200]
    assert draw_curves(records).size[1] == 3 * PANEL_HEIGHT
    assert draw_curves([{"step": 1, "lr": 0.1}]) is None


class Page(HTMLParser):
    """Tags, attributes and text of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_translate_report_writes_one_self_contained_page(run, tmp_path):
    scores = {
        "method": "toy_wgan",
        "step": 6,
        "data": "toy",
        "scores": [{"section": "sample", "metric": "FD", "subject": "samples", "value": 12.5, "n": 6,
                    "features": "classifier", "std": None}],
        "notes": ["a note <with markup>"],
    }  # fmt: skip
    (run / "eval.json").write_text(json.dumps(scores))
    out = tmp_path / "page.html"
    result = CliRunner().invoke(main, ["report", str(run), "--out", str(out), "--grids", "2"])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    page = Page()
    page.feed(out.read_text())
    text = " ".join(page.text)

    # nothing outside the file: no scripts, stylesheets or linked resources
    assert not [t for t, a in page.tags if t in ("script", "link", "iframe", "object")]
    assert not [a for _, a in page.tags if "href" in a]
    images = [a for t, a in page.tags if t == "img"]
    assert all(a["src"].startswith("data:image/png;base64,") for a in images)
    decoded = [Image.open(io.BytesIO(base64.b64decode(a["src"].split(",", 1)[1]))) for a in images]
    assert all(image.size[0] > 0 for image in decoded)

    # the curves, two sample grids (the first and the last), the tables and the config
    alts = [a["alt"] for a in images]
    assert alts == ["loss curves", "samples at step 2", "samples at step 6"]
    assert decoded[0].size[1] == 3 * PANEL_HEIGHT
    assert "eval/fd_random" in text and "★" in text  # the evaluation table, the best value marked
    assert "12.5" in text and "a note <with markup>" in text  # eval.json's table, escaped
    assert "best: step" in text and "step_0000006 (latest)" in text
    assert "task: toy_wgan" in text and "eval_every: 1" in text


def test_report_of_a_folder_that_is_not_a_run_is_one_line_error(tmp_path):
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert (
        result.output.strip()
        == f"Error: {tmp_path} is not a run folder: it holds no log.jsonl and no checkpoints"
    )


def test_tensorboard_gets_every_logged_number(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from translate.api import train
    from translate.catalog.demo import make_demo_dataset

    root = make_demo_dataset(tmp_path / "demo", layout="unaligned", num_train=4, num_test=2, size=TINY_SIZE)
    layers = [
        {"data": {"root": str(root), "domains": ["photo", "anime"]}},
        tiny_overrides("cyclegan", steps=2),
    ]
    run = train("cyclegan", overrides=[*layers, {"train": {"tensorboard": True}}], run_dir=tmp_path / "run")
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    name = next(k for k in logged[-1] if k.startswith("G/"))
    assert [e.step for e in events.Scalars(name)] == [r["step"] for r in logged if name in r]
    assert events.Scalars(name)[-1].value == pytest.approx(logged[-1][name], rel=1e-6)


def test_report_of_a_run_with_damaged_log_and_config_bytes_leaves_those_lines_out(run, tmp_path):
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(run, damaged)
    log = damaged / "log.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(lines[0] + b'{"step": 7, "G/adv": 1.0\xff\xfe}\n' + b"".join(lines[1:]))
    (damaged / "config.yaml").write_bytes(b"task: \xff\xfe\n")
    result = CliRunner().invoke(main, ["report", str(damaged)])
    assert result.exit_code == 0, result.output
    page = (damaged / "report.html").read_text()
    assert 'alt="loss curves"' in page and "eval/fd_random" in page, "the intact lines are still reported"
