"""The page of ``translate serve``: one HTML document with its CSS and JavaScript inline, no external
assets (it works offline), filled with the model's description (``ServeApp.describe``)."""

from __future__ import annotations

import html
import json
from typing import Any


def render_page(model: dict[str, Any]) -> str:
    """The page for ``model``: its description as JSON inside the page (``<`` escaped, so no text of a
    checkpoint can close the script element)."""
    data = json.dumps(model).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return PAGE.replace("@TITLE@", html.escape(model["title"])).replace("@MODEL@", data)


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>translate: @TITLE@</title>
<style>
  :root { --ink: #1d2327; --muted: #5f6b73; --line: #d5dbe0; --accent: #2364aa; --bad: #b3261e; }
  * { box-sizing: border-box; }
  body { font: 15px/1.45 system-ui, sans-serif; color: var(--ink); margin: 0; background: #f6f7f9; }
  header { padding: 14px 24px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; }
  header p { margin: 2px 0 0; color: var(--muted); }
  main { padding: 16px 24px; max-width: 1200px; }
  .controls { display: flex; flex-wrap: wrap; gap: 10px 18px; align-items: end; margin-bottom: 14px; }
  .controls label { display: flex; flex-direction: column; font-size: 13px; color: var(--muted); gap: 3px; }
  select, input[type=number], button { font: inherit; padding: 5px 8px; border: 1px solid var(--line);
    border-radius: 6px; background: #fff; color: var(--ink); }
  button { cursor: pointer; }
  button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
  button:disabled { opacity: .5; cursor: default; }
  #drop { display: block; border: 2px dashed var(--line); border-radius: 10px; padding: 26px;
    text-align: center; background: #fff; color: var(--muted); cursor: pointer; margin-bottom: 10px; }
  #drop.over { border-color: var(--accent); background: #eef4fb; }
  #drop input { display: block; margin: 10px auto 0; }
  .actions { display: flex; gap: 10px; align-items: center; margin-bottom: 14px; }
  .hint { color: var(--muted); font-size: 13px; }
  #message { color: var(--bad); min-height: 1.2em; margin: 0 0 10px; }
  .row { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; background: #fff;
    border: 1px solid var(--line); border-radius: 10px; padding: 12px; margin-bottom: 12px; }
  .row.single { grid-template-columns: 1fr; }
  figure { margin: 0; min-width: 0; }
  figure img { display: block; max-width: 100%; max-height: 60vh; min-width: 96px; background:
    repeating-conic-gradient(#eee 0 25%, #fff 0 50%) 0 0 / 16px 16px; image-rendering: auto; }
  figure img.small { image-rendering: pixelated; }
  figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; overflow-wrap: anywhere; }
  .error { color: var(--bad); }
  a.download { margin-left: 8px; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<header>
  <h1>translate</h1>
  <p id="model-title"></p>
</header>
<main>
  <div class="controls">
    <label id="export-choice" hidden>
      <span id="export-label">Model entry</span> <select id="export"></select>
    </label>
    <span id="target-controls" class="controls"></span>
  </div>

  <section id="image-section" hidden>
    <label id="drop" for="file">Drop images here, or choose files
      <input id="file" type="file" accept="image/*" multiple>
    </label>
    <div class="actions">
      <button id="translate" class="primary" disabled>Translate</button>
      <button id="clear" disabled>Clear</button>
      <span class="hint" id="limits"></span>
    </div>
  </section>

  <section id="noise-section" hidden>
    <div class="controls">
      <label>Seed <input id="seed" type="number" min="0" step="1" value="0"></label>
      <button id="random-seed" type="button">Random seed</button>
      <label id="class-choice" hidden>Class <select id="class"></select></label>
      <label>Images <input id="count" type="number" min="1" value="16"></label>
      <button id="sample" class="primary">Draw</button>
    </div>
  </section>

  <p id="message" role="alert"></p>
  <section id="results"></section>
</main>
<script type="application/json" id="model">@MODEL@</script>
<script>
"use strict";
const MODEL = JSON.parse(document.getElementById("model").textContent);
const $ = (id) => document.getElementById(id);
const rows = [];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function megabytes(bytes) {
  return bytes >= 1e6 ? (bytes / 1e6).toFixed(1) + " MB" : (bytes / 1e3).toFixed(1) + " kB";
}
function currentExport() {
  return MODEL.exports.find((e) => e.name === $("export").value) || MODEL.exports[0];
}
const takes = (e, control) => e.controls.includes(control);  // image, target, style, noise (translate.kinds)
function isImageKind(e) { return takes(e, "image"); }
function say(text) { $("message").textContent = text || ""; }

// ------------------------------------------------------------------------------ choices
function setUp() {
  $("model-title").textContent = MODEL.title;
  const limits = MODEL.limits;
  $("limits").textContent = "Up to " + megabytes(limits.max_bytes) + " and " + (limits.max_pixels / 1e6) +
    " MP per image. Images stay on this computer: nothing is stored.";
  for (const e of MODEL.exports) $("export").append(el("option", {value: e.name}, e.title));
  $("export-choice").hidden = MODEL.exports.length < 2;
  if (MODEL.exports.every((e) => e.controls.join() === "image")) $("export-label").textContent = "Direction";
  $("export").addEventListener("change", showExport);
  showExport();
}

function showExport() {
  const e = currentExport();
  $("image-section").hidden = !isImageKind(e);
  $("noise-section").hidden = !takes(e, "noise");
  const box = $("target-controls");
  box.replaceChildren();
  if (takes(e, "target")) targetControls(e, box);
  if (takes(e, "style")) styleControls(e, box);
  if (takes(e, "noise")) {
    $("class").replaceChildren(el("option", {value: ""}, "every class in turn"));
    for (const name of e.classes || []) $("class").append(el("option", {value: name}, name));
    $("class-choice").hidden = !(e.classes && e.classes.length);
    $("count").max = e.max_count;
  }
  say("");
}

// StarGAN-style targets: a domain, or per attribute keep / yes / no (an exclusive group: one of it).
function targetControls(e, box) {
  const labels = e.labels;
  if (labels.kind === "domains") {
    const select = el("select", {id: "target-domain", "data-kind": "domain"});
    for (const name of labels.names) select.append(el("option", {value: name}, name));
    box.append(el("label", {}, "Target domain", select));
    return;
  }
  const grouped = new Set(labels.groups.flat());
  const keep = e.reads_labels;  // the model reads the input's own labels: unnamed ones are kept
  for (const group of labels.groups) {
    const select = el("select", {"data-kind": "group", "data-names": JSON.stringify(group)});
    if (keep) select.append(el("option", {value: ""}, "keep"));
    for (const name of group) select.append(el("option", {value: name}, name));
    select.append(el("option", {value: "-"}, "none"));
    if (!keep) select.value = "-";
    box.append(el("label", {}, "One of " + group.join(" / "), select));
  }
  for (const name of labels.names) {
    if (grouped.has(name)) continue;
    const select = el("select", {"data-kind": "attribute", "data-name": name});
    if (keep) select.append(el("option", {value: ""}, "keep"));
    select.append(el("option", {value: "1"}, "yes"), el("option", {value: "0"}, "no"));
    if (!keep) select.value = "0";
    box.append(el("label", {}, name, select));
  }
}

// Style models (MUNIT): several random styles drawn from a seed, side by side, or a reference's style.
function styleControls(e, box) {
  const count = el("input", {id: "style-count", type: "number", min: "1", max: String(e.max_styles),
    step: "1", value: "4"});
  const seed = el("input", {id: "style-seed", type: "number", min: "0", step: "1", value: "0"});
  box.append(el("label", {}, "Styles", count), el("label", {}, "Style seed", seed));
  if (e.reads_references) {
    const reference = el("input", {id: "style-reference", type: "file", accept: "image/*"});
    box.append(el("label", {}, "Or the style of an image", reference));
  }
}

// What the style controls ask: the fields to send, the file-name suffix and words for the status line.
function styleChoice() {
  const reference = $("style-reference") && $("style-reference").files[0];
  if (reference) {
    const stem = reference.name.replace(/\\.[^.]*$/, "") || "reference";
    return {fields: [["reference", reference, reference.name]], suffix: "-style-" + stem,
      text: " in the style of " + reference.name};
  }
  const count = $("style-count").value || "1", seed = $("style-seed").value || "0";
  return {fields: [["styles", count], ["seed", seed]], suffix: "-seed" + seed + "-styles" + count,
    text: ", " + count + " styles of seed " + seed};
}

// The target as `translate apply --to` takes it: "Blond_Hair=1,Male=0" or "happy".
function targetText() {
  const parts = [];
  for (const select of $("target-controls").querySelectorAll("select")) {
    const kind = select.dataset.kind, value = select.value;
    if (kind === "domain") parts.push(value);
    else if (kind === "attribute" && value !== "") parts.push(select.dataset.name + "=" + value);
    else if (kind === "group" && value === "-") {
      for (const name of JSON.parse(select.dataset.names)) parts.push(name + "=0");
    } else if (kind === "group" && value !== "") parts.push(value + "=1");
  }
  return parts.join(",");
}

// ------------------------------------------------------------------------------ images
function addFiles(files) {
  for (const file of files) {
    const before = el("img", {alt: "before: " + file.name});
    const after = el("img", {class: "result", alt: "after: " + file.name});
    const beforeCaption = el("figcaption", {}, file.name);
    const status = el("span", {class: "status"}, "not translated yet");
    const link = el("a", {class: "download", hidden: ""}, "Download");
    after.hidden = true;
    const row = el("div", {class: "row"},
      el("figure", {class: "before"}, before, beforeCaption),
      el("figure", {class: "after"}, after, el("figcaption", {}, status, link)));
    const item = {file, row, before, after, status, link, url: null, source: URL.createObjectURL(file)};
    before.addEventListener("load", () => {
      const size = before.naturalWidth + "x" + before.naturalHeight + " px";
      beforeCaption.textContent = file.name + " (" + size + ")";
      if (before.naturalWidth < 96) before.classList.add("small");
    });
    before.addEventListener("error", () => { beforeCaption.textContent = file.name + " (no preview)"; });
    before.src = item.source;
    rows.push(item);
    $("results").append(row);
  }
  $("translate").disabled = $("clear").disabled = rows.length === 0;
}

function resultName(name, type, suffix) {
  const stem = name.replace(/\\.[^.]*$/, "") || "image";
  return stem + "-" + currentExport().name + suffix + (type === "image/jpeg" ? ".jpg" : ".png");
}

function failed(item, text) {
  item.status.textContent = text;
  item.status.classList.add("error");
  item.after.hidden = true;
  item.link.hidden = true;
}

async function translateOne(item, exportName, target, style) {
  item.status.classList.remove("error");
  item.status.textContent = "translating\\u2026";
  if (item.file.size > MODEL.limits.max_bytes) {
    return failed(item, "the image is " + megabytes(item.file.size) + "; this page takes images up to " +
      megabytes(MODEL.limits.max_bytes) + " (translate serve --max-upload-mb)");
  }
  const form = new FormData();
  form.append("export", exportName);
  if (target) form.append("target", target);
  for (const field of style ? style.fields : []) form.append(...field);
  form.append("image", item.file, item.file.name);
  let response;
  try {
    response = await fetch("api/translate", {method: "POST", body: form});
  } catch (error) {
    return failed(item, "the server did not answer (" + error.message + ")");
  }
  if (!response.ok) return failed(item, (await response.text()).trim() || response.statusText);
  const blob = await response.blob();
  if (item.url) URL.revokeObjectURL(item.url);
  item.url = URL.createObjectURL(blob);
  item.after.src = item.url;
  item.after.hidden = false;
  item.link.href = item.url;
  item.link.download = resultName(item.file.name, blob.type, style ? style.suffix : "");
  item.link.hidden = false;
  const seconds = Number(response.headers.get("X-Seconds") || 0).toFixed(2);
  item.status.textContent = currentExport().title + (target ? " to " + target : "") +
    (style ? style.text : "") + " in " + seconds + " s";
}

async function translateAll() {
  const e = currentExport(), target = takes(e, "target") ? targetText() : "";
  const style = takes(e, "style") ? styleChoice() : null;
  say("");
  $("translate").disabled = true;
  try {
    for (const item of rows) await translateOne(item, e.name, target, style);
  } finally {
    $("translate").disabled = rows.length === 0;
  }
}

function clearAll() {
  for (const item of rows) {
    URL.revokeObjectURL(item.source);
    if (item.url) URL.revokeObjectURL(item.url);
  }
  rows.length = 0;
  $("results").replaceChildren();
  $("file").value = "";
  $("translate").disabled = $("clear").disabled = true;
  say("");
}

// ------------------------------------------------------------------------------ samples
async function drawSamples() {
  const e = currentExport();
  const body = new URLSearchParams({export: e.name, seed: $("seed").value || "0",
    label: $("class").value, count: $("count").value || "1"});
  say("");
  $("sample").disabled = true;
  try {
    const response = await fetch("api/sample", {method: "POST", body});
    if (!response.ok) return say((await response.text()).trim() || response.statusText);
    const blob = await response.blob(), url = URL.createObjectURL(blob);
    const image = el("img", {class: "result small", alt: "samples"});
    image.addEventListener("load", () => {  // tiny samples shown larger, pixel for pixel
      image.style.width = Math.min(4 * image.naturalWidth, Math.max(image.naturalWidth, 512)) + "px";
    });
    image.src = url;
    const label = $("class").value ? ", class " + $("class").value : "";
    const name = "samples-seed" + $("seed").value + ($("class").value ? "-" + $("class").value : "") + ".png";
    const link = el("a", {class: "download", href: url, download: name}, "Download");
    const caption = el("figcaption", {}, "seed " + $("seed").value + label, link);
    $("results").prepend(el("div", {class: "row single"}, el("figure", {class: "after"}, image, caption)));
  } catch (error) {
    say("the server did not answer (" + error.message + ")");
  } finally {
    $("sample").disabled = false;
  }
}

// ------------------------------------------------------------------------------ wiring
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  addFiles([...event.dataTransfer.files]);
});
$("file").addEventListener("change", () => { addFiles([...$("file").files]); $("file").value = ""; });
$("translate").addEventListener("click", translateAll);
$("clear").addEventListener("click", clearAll);
$("sample").addEventListener("click", drawSamples);
$("random-seed").addEventListener("click", () => {
  $("seed").value = String(Math.floor(Math.random() * 1e9));
  drawSamples();
});
setUp();
</script>
</body>
</html>
"""
