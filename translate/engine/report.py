"""Pictures of a run folder: ``loss_curves.png`` (drawn with Pillow, no plotting library needed) and the
one-page HTML report of ``translate report RUN``.

``loss_curves.png`` shows every named loss of ``log.jsonl`` (``G/adv``, ``D/gp``, ...), one panel per
optimizer group, and the evaluation metrics (``eval/psnr``; one panel per metric, each export's curve in
it), on a logarithmic step axis. Each curve is drawn faintly as logged and solid after EMA smoothing
(TensorBoard's, debiased), whose weight grows with the number of points: ``1 - 30 / n``, at most 0.95.
The trainer redraws it whenever it writes a sample grid.

The report is one self-contained HTML file (images inline as base64 PNG, no scripts, no external files):
the curves, the evaluation table of ``log.jsonl`` (best value marked), the scores of ``translate eval``
(``eval.json``), a selection of sample grids over time, the checkpoints and the resolved config.
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml
from PIL import Image, ImageDraw, ImageFont

from translate.engine import checkpoint as ckpt
from translate.errors import CheckpointError

CURVES_FILE = "loss_curves.png"
NOT_LOSSES = {"step", "lr", "steps_per_s"}
"""Numbers of a log line that are not losses or metrics."""
PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]
WIDTH, PANEL_HEIGHT = 900, 260
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 28, 34


# ----------------------------------------------------------------------------------------- log
def read_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of ``log.jsonl`` in order (lines that are not UTF-8 JSON are left out)."""
    path = Path(run_dir) / "log.jsonl"
    records = []
    if path.is_file():
        for line in path.read_bytes().splitlines():
            try:
                record = json.loads(line.decode("utf-8"))
            except ValueError:  # UnicodeDecodeError is one
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                records.append(record)
    return records


def series(records: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Every named loss and metric: ``{"G/adv": [(step, value), ...]}`` (steps >= 1, finite values)."""
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for record in records:
        step = record["step"]
        for key, value in record.items():
            if key in NOT_LOSSES or "/" not in key or step < 1:
                continue
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                out[key].append((step, float(value)))
    return dict(out)


def panels(named: dict[str, list[tuple[int, float]]]) -> dict[str, list[str]]:
    """Panel title -> the curves in it: a panel per loss group (``G``, ``D``, ...), then one per evaluation
    metric (``eval/fd`` with ``eval/a2b/fd`` and ``eval/b2a/fd``)."""
    losses: dict[str, list[str]] = defaultdict(list)
    metrics: dict[str, list[str]] = defaultdict(list)
    for key in named:
        if key.startswith("eval/"):
            metrics[f"eval/{key.rsplit('/', 1)[-1]}"].append(key)
        else:
            losses[key.split("/", 1)[0]].append(key)
    order = sorted(losses, key=lambda g: ({"G": 0, "D": 1}.get(g, 2), g))
    return {**{g: losses[g] for g in order}, **{m: metrics[m] for m in sorted(metrics)}}


def smooth(values: list[float], weight: float | None = None) -> list[float]:
    """Debiased exponential moving average (TensorBoard's smoothing); ``weight`` None: ``1 - 30 / n``,
    between 0 and 0.95."""
    if weight is None:
        weight = min(0.95, max(0.0, 1 - 30 / max(len(values), 1)))
    out, last = [], 0.0
    for i, value in enumerate(values, 1):
        last = last * weight + (1 - weight) * value
        out.append(last / (1 - weight**i) if weight > 0 else value)
    return out


# ----------------------------------------------------------------------------------------- drawing
def _font(size: int = 12) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the fixed bitmap font
        return ImageFont.load_default()


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values from ``low`` to ``high`` (about ``count``), 1, 2 or 5 times a power of ten apart."""
    if high <= low:
        high = low + 1
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def log_ticks(low: int, high: int) -> list[int]:
    """Steps to label on a log axis from ``low`` to ``high``: powers of ten, and 2 and 5 times them when
    the range spans less than two decades."""
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    multiples = (1,) if math.log10(high / low) >= 2 else (1, 2, 5)
    ticks = [m * 10**d for d in decades for m in multiples]
    return [t for t in ticks if low <= t <= high] or [low, high]


def step_label(step: float) -> str:
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if step >= size:
            return f"{step / size:g}{suffix}"
    return f"{step:g}"


def value_label(value: float) -> str:
    return f"{value:.3g}" if value else "0"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def draw_panel(
    draw: ImageDraw.ImageDraw, top: int, title: str, curves: dict[str, list[tuple[int, float]]]
) -> None:
    """One panel at height ``top``: axes, ticks, a faint raw and a solid smoothed line per curve, legend."""
    font, small = _font(13), _font(11)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, top + TOP, top + PANEL_HEIGHT - BOTTOM
    steps = [s for points in curves.values() for s, _ in points]
    first, last = min(steps), max(steps)
    lo_x, hi_x = math.log10(first), math.log10(last)
    if hi_x - lo_x < 1e-9:
        lo_x, hi_x = lo_x - 0.5, hi_x + 0.5
    smoothed = {k: smooth([v for _, v in points]) for k, points in curves.items()}
    values = [v for points in curves.values() for _, v in points]
    low = min(_percentile(values, 0.02), *(min(v) for v in smoothed.values()))
    high = max(_percentile(values, 0.98), *(max(v) for v in smoothed.values()))
    if high - low < 1e-12:
        low, high = low - max(abs(low) * 0.1, 1e-3), high + max(abs(high) * 0.1, 1e-3)
    pad = (high - low) * 0.05
    low, high = low - pad, high + pad

    def x_of(step: float) -> float:
        return x0 + (math.log10(step) - lo_x) / (hi_x - lo_x) * (x1 - x0)

    def y_of(value: float) -> float:
        return y1 - (min(max(value, low), high) - low) / (high - low) * (y1 - y0)

    draw.text((x0, top + 6), title, fill=(0, 0, 0), font=font)
    for tick in nice_ticks(low, high):
        y = y_of(tick)
        draw.line([(x0, y), (x1, y)], fill=(232, 232, 232))
        draw.text((x0 - 6, y), value_label(tick), fill=(60, 60, 60), font=small, anchor="rm")
    for tick in log_ticks(first, last) if last > first else [first]:
        x = x_of(tick)
        draw.line([(x, y0), (x, y1)], fill=(232, 232, 232))
        draw.text((x, y1 + 4), step_label(tick), fill=(60, 60, 60), font=small, anchor="ma")
    draw.text((x1, y1 + 18), "step (log scale)", fill=(90, 90, 90), font=small, anchor="ra")
    draw.rectangle([x0, y0, x1, y1], outline=(120, 120, 120))
    legend_y = y0 + 4
    for index, (name, points) in enumerate(curves.items()):
        colour = PALETTE[index % len(PALETTE)]
        faint = tuple(int(c + (255 - c) * 0.7) for c in colour)
        raw = [(x_of(s), y_of(v)) for s, v in points]
        line = [(x_of(s), y_of(v)) for (s, _), v in zip(points, smoothed[name])]
        if len(raw) > 1:
            draw.line(raw, fill=faint, width=1)
            draw.line(line, fill=colour, width=2)
        else:
            ((x, y),) = line
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        label = f"{name}  {points[-1][1]:.4g}"
        width = draw.textlength(label, font=small)
        draw.rectangle([x1 - width - 30, legend_y, x1 - 4, legend_y + 14], fill=(255, 255, 255))
        draw.line([(x1 - width - 26, legend_y + 7), (x1 - width - 12, legend_y + 7)], fill=colour, width=2)
        draw.text((x1 - 6, legend_y), label, fill=(30, 30, 30), font=small, anchor="ra")
        legend_y += 16


def draw_curves(records: list[dict[str, Any]]) -> Image.Image | None:
    """The curves of ``records`` (log.jsonl) as one image, or None when there is nothing to draw."""
    named = series(records)
    layout = panels(named)
    if not layout:
        return None
    image = Image.new("RGB", (WIDTH, PANEL_HEIGHT * len(layout)), "white")
    draw = ImageDraw.Draw(image)
    for index, (title, keys) in enumerate(layout.items()):
        draw_panel(draw, index * PANEL_HEIGHT, title, {k: named[k] for k in keys})
    return image


def write_loss_curves(run_dir: str | Path) -> Path | None:
    """Draw ``loss_curves.png`` in the run folder from its log.jsonl (atomically); None when the log holds
    no losses yet."""
    image = draw_curves(read_log(run_dir))
    if image is None:
        return None
    path = Path(run_dir) / CURVES_FILE
    tmp = path.with_name(f".{CURVES_FILE}.tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)
    return path


# ----------------------------------------------------------------------------------------- HTML
def png_data(image: Image.Image, max_width: int = 1100) -> str:
    """``data:image/png;base64,...`` of ``image``, scaled down to ``max_width`` when wider."""
    if image.width > max_width:
        image = image.resize((max_width, round(image.height * max_width / image.width)), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def pick(items: list[Any], count: int) -> list[Any]:
    """``count`` items evenly spread over ``items``, the first and the last included."""
    if count <= 0 or not items:
        return []
    if len(items) <= count:
        return list(items)
    if count == 1:
        return [items[-1]]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def _resolved_config(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "config.yaml"
    if path.is_file():
        try:
            return yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            pass
    try:
        return ckpt.load_model_checkpoint(run_dir).config
    except CheckpointError:
        return None


def _eval_table(records: list[dict[str, Any]], best: dict[str, Any] | None) -> str:
    rows = [r for r in records if any(k.startswith("eval/") for k in r)]
    if not rows:
        return "<p>No evaluation during training (set <code>train.eval_every</code>).</p>"
    keys = list(dict.fromkeys(k for r in rows for k in r if k.startswith("eval/")))
    head = "".join(f"<th>{html.escape(k)}</th>" for k in keys)
    body = []
    for record in rows:
        cells = []
        for key in keys:
            value = record.get(key)
            text = "-" if not isinstance(value, int | float) else f"{value:.4g}"
            marked = best is not None and best.get("metric") == key and best.get("step") == record["step"]
            cells.append(f'<td class="best">{text} ★</td>' if marked else f"<td>{text}</td>")
        body.append(f"<tr><td>{record['step']}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>step</th>{head}</tr>{''.join(body)}</table>"


def _scores_table(run_dir: Path) -> str:
    path = run_dir / "eval.json"
    if not path.is_file():
        command = "<code>translate eval RUN --data PATH</code>"
        return f"<p>No <code>eval.json</code> (score the run with {command}).</p>"
    try:
        report = json.loads(path.read_text())
    except ValueError as exc:
        return f"<p>eval.json is unreadable: {html.escape(str(exc))}</p>"
    rows = []
    for score in report.get("scores", []):
        value = score.get("value")
        text = f"{value:.4g}" if isinstance(value, int | float) else "-"
        if score.get("std") is not None:
            text += f" ± {score['std']:.2g}"
        cells = [score.get("section", ""), score.get("metric", ""), score.get("subject", ""), text]
        cells += [str(score.get("n", "")), score.get("features", "")]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.get("notes", []))
    heading = (
        f"<p>{html.escape(str(report.get('method', '')))} at step {report.get('step')} on "
        f"{html.escape(str(report.get('data', '')))}</p>"
    )
    columns = ("section", "metric", "subject", "value", "n", "features")
    header = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
    return heading + f"<table>{header}{''.join(rows)}</table>" + (f"<ul>{notes}</ul>" if notes else "")


def _checkpoints(run_dir: Path, best: dict[str, Any] | None) -> str:
    found = ckpt.checkpoint_dirs(run_dir)
    items = [f"<li>{html.escape(p.name)}{' (latest)' if p == found[-1] else ''}</li>" for p in found]
    if best is not None:
        items.insert(
            0,
            f"<li>best: step {best['step']}, {html.escape(best['metric'])} {best['value']:.4g} "
            f"(<code>--checkpoint best</code>)</li>",
        )
    return f"<ul>{''.join(items)}</ul>" if items else "<p>No checkpoint yet.</p>"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1150px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; } td, th { border: 1px solid #ddd; padding: 3px 8px; }
th { background: #f4f4f4; } td { text-align: right; } td.best { background: #fff3c4; font-weight: bold; }
pre { background: #f7f7f7; padding: 10px; overflow-x: auto; font-size: 0.85em; }
figure { margin: 12px 0; } figcaption { color: #555; font-size: 0.9em; } img { max-width: 100%; }
"""


def write_report(run_dir: str | Path, out: str | Path | None = None, grids: int = 6) -> Path:
    """Write the run's HTML report (default ``RUN/report.html``): one file, every image inline.
    ``grids``: how many sample grids, evenly spread over the run (the first and the last included)."""
    run_dir = Path(run_dir)
    records = read_log(run_dir)
    if not records and not ckpt.checkpoint_dirs(run_dir):
        raise CheckpointError(f"{run_dir} is not a run folder: it holds no log.jsonl and no checkpoints")
    config = _resolved_config(run_dir) or {}
    best = ckpt.best_info(run_dir)
    task = config.get("task", "?")
    last = records[-1]["step"] if records else 0
    total = config.get("train", {}).get("steps")
    parts = [
        f"<h1>{html.escape(str(task))}: {html.escape(run_dir.name)}</h1>",
        f"<p>{html.escape(str(run_dir.resolve()))}<br>step {last} of {total}; report written "
        f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}</p>",
    ]
    if config.get("train", {}).get("ema_decay"):
        parts.append(
            f"<p>Exported weights and sample grids: the EMA of the generator's weights (decay "
            f"{config['train']['ema_decay']:g}).</p>"
        )
    parts.append("<h2>Losses and evaluation</h2>")
    curves = draw_curves(records)
    if curves is None:
        parts.append("<p>No losses logged yet.</p>")
    else:
        parts.append(f'<img class="curves" alt="loss curves" src="{png_data(curves)}">')
    parts += ["<h2>Evaluation during training</h2>", _eval_table(records, best)]
    parts += ["<h2>translate eval</h2>", _scores_table(run_dir)]
    parts.append("<h2>Sample grids</h2>")
    files = sorted((run_dir / "samples").glob("step_*.png"))
    chosen = pick(files, grids)
    if not chosen:
        parts.append("<p>No sample grids yet.</p>")
    for file in chosen:
        try:
            with Image.open(file) as grid:
                data = png_data(grid.convert("RGB"))
        except OSError:
            continue
        step = int(file.stem[5:]) if file.stem[5:].isdigit() else file.stem
        image = f'<img alt="samples at step {step}" src="{data}">'
        parts.append(f"<figure>{image}<figcaption>step {step}</figcaption></figure>")
    parts += ["<h2>Checkpoints</h2>", _checkpoints(run_dir, best)]
    parts += ["<h2>Config</h2>", f"<pre>{html.escape(yaml.safe_dump(config, sort_keys=False))}</pre>"]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(str(task))} {html.escape(run_dir.name)}: translate report</title>"
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )
    path = Path(out) if out is not None else run_dir / "report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(path)
    return path
