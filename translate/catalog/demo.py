"""A small, deterministic synthetic dataset for the built-in default run: photo-like scenes <-> flat cartoons.

Each scene (sky and ground, a few circles, rectangles and triangles) is drawn twice from the same
geometry: a *photo* style (gradients, shaded shapes, soft shadows, texture and noise, no outlines) and a
*cartoon* style (a few flat, quantized colours, dark outlines). Layouts:

- ``unaligned``: ``root/<photo>/`` and ``root/<cartoon>/`` hold ``num_train`` different scenes each
  (disjoint scene seeds: unpaired), ``root/test/<photo>/`` and ``root/test/<cartoon>/`` hold ``num_test``
  scenes drawn in both styles under identical file names (a ground truth for scoring).
- ``aligned``: ``root/train/*.png`` and ``root/test/*.png``, each photo|cartoon side by side (A|B).

The data is written into a temporary folder that is renamed to ``root`` once complete, with a marker file
(the parameters) written last; a later call with the same parameters returns at once.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from translate.errors import DataError

MARKER = ".translate-demo-v1"
LAYOUTS = ("unaligned", "aligned")
SUPERSAMPLE = 2
"""Scenes are drawn at this multiple of the output size, then area-downsampled (antialiasing)."""

_TRAIN, _TEST = 0, 1


@dataclass
class Shape:
    kind: str  # circle | rect | triangle
    color: np.ndarray  # float RGB in [0, 1]
    points: np.ndarray  # polygon vertices (rect, triangle) in output pixels
    center: np.ndarray
    radius: float


@dataclass
class Scene:
    sky_top: np.ndarray
    sky_bottom: np.ndarray
    ground_far: np.ndarray
    ground_near: np.ndarray
    horizon: float  # fraction of the height
    light: np.ndarray  # unit 2-vector pointing towards the light, image coordinates (y down)
    shapes: list[Shape]


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    pixel = np.array([[[(h % 1.0) * 179.0, s * 255.0, v * 255.0]]], dtype=np.float32)
    return cv2.cvtColor(pixel.astype(np.uint8), cv2.COLOR_HSV2RGB)[0, 0].astype(np.float32) / 255.0


def random_scene(rng: np.random.Generator, size: int) -> Scene:
    """Random scene geometry and colours in output-pixel coordinates."""
    sky_hue = rng.uniform(0.52, 0.66) if rng.random() < 0.8 else rng.uniform(0.0, 0.1)  # blue, or dusk
    ground_hue = rng.choice(
        [rng.uniform(0.2, 0.4), rng.uniform(0.05, 0.12), rng.uniform(0.0, 1.0)], p=[0.5, 0.3, 0.2]
    )
    ground_sat = rng.uniform(0.3, 0.7)
    angle = rng.uniform(-np.pi * 0.85, -np.pi * 0.15)  # light from somewhere above
    shapes = []
    for _ in range(int(rng.integers(2, 6))):
        kind = str(rng.choice(["circle", "rect", "triangle"]))
        color = _hsv(rng.uniform(0, 1), rng.uniform(0.55, 1.0), rng.uniform(0.6, 1.0))
        radius = rng.uniform(0.08, 0.2) * size
        center = np.array([rng.uniform(0.12, 0.88), rng.uniform(0.25, 0.85)]) * size
        if kind == "rect":
            w, h = radius * rng.uniform(0.7, 1.3, size=2)
            turn = rng.uniform(-0.5, 0.5)
            corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]])
            rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
            points = center + corners @ rot.T
        elif kind == "triangle":
            turn = rng.uniform(0, 2 * np.pi)
            angles = turn + np.array([0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.3, 0.3, 3)
            points = center + radius * 1.2 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        else:
            points = center[None]
        shapes.append(Shape(kind, color, points, center, radius))
    shapes.sort(key=lambda s: s.center[1])  # far (higher up) first
    return Scene(
        sky_top=_hsv(sky_hue, rng.uniform(0.5, 0.9), rng.uniform(0.55, 0.85)),
        sky_bottom=_hsv(sky_hue + rng.uniform(-0.04, 0.04), rng.uniform(0.1, 0.35), rng.uniform(0.85, 1.0)),
        ground_far=_hsv(ground_hue, ground_sat * 0.7, rng.uniform(0.55, 0.8)),
        ground_near=_hsv(ground_hue, ground_sat, rng.uniform(0.3, 0.55)),
        horizon=rng.uniform(0.4, 0.65),
        light=np.array([np.cos(angle), np.sin(angle)]),
        shapes=shapes,
    )


def _shape_mask(shape: Shape, big: int, scale: float, dilate: float = 0.0, offset=(0.0, 0.0)) -> np.ndarray:
    """Antialiased float mask in [0, 1] of a shape at the drawing resolution."""
    mask = np.zeros((big, big), np.uint8)
    shift = 4  # sub-pixel precision of cv2 drawing
    unit = scale * (1 << shift)
    if shape.kind == "circle":
        center = np.round((shape.center + offset) * unit).astype(np.int64)
        radius = int(round((shape.radius + dilate) * unit))
        cv2.circle(mask, (int(center[0]), int(center[1])), radius, 255, -1, cv2.LINE_AA, shift)
    else:
        points = np.round((shape.points + offset) * unit).astype(np.int32)
        cv2.fillPoly(mask, [points], 255, cv2.LINE_AA, shift)
    return mask.astype(np.float32) / 255.0


def render_photo(scene: Scene, size: int, rng: np.random.Generator) -> np.ndarray:
    """Photo-like rendering: gradients, shaded shapes, soft shadows, texture and noise; ``uint8`` RGB."""
    big = size * SUPERSAMPLE
    ys, xs = np.mgrid[0:big, 0:big].astype(np.float32) / SUPERSAMPLE  # output-pixel coordinates
    horizon = float(scene.horizon * size)
    t_sky = np.clip(ys / horizon, 0, 1)[..., None]
    t_ground = np.clip((ys - horizon) / (size - horizon), 0, 1)[..., None]
    sky = scene.sky_top * (1 - t_sky) + scene.sky_bottom * t_sky
    ground = scene.ground_far * (1 - t_ground) + scene.ground_near * t_ground
    # low-frequency mottling of the ground, like grass or soil
    blotches = rng.normal(0, 1, (6, 6)).astype(np.float32)
    blotches = cv2.resize(blotches, (big, big), interpolation=cv2.INTER_CUBIC)
    ground = ground * (1 + 0.08 * blotches[..., None])
    above = np.clip((horizon - ys) * SUPERSAMPLE + 0.5, 0, 1)[..., None]  # soft horizon edge
    image = sky * above + ground * (1 - above)
    # sun glow in the sky on the light's side
    sun_x, sun_y = (np.array([size / 2, horizon / 2]) + scene.light * size * 0.45).tolist()
    glow = np.exp(((xs - sun_x) ** 2 + (ys - sun_y) ** 2) * (-0.5 / (0.18 * size) ** 2))[..., None]
    image = image + 0.25 * glow * above

    lx, ly = scene.light.tolist()
    for shape in scene.shapes:
        # soft shadow cast away from the light, squashed onto the ground
        offset = -scene.light * shape.radius * 0.6 + np.array([0.0, shape.radius * 0.35])
        shadow = _shape_mask(shape, big, SUPERSAMPLE, offset=offset)
        blur = max(1, int(shape.radius * SUPERSAMPLE * 0.35)) * 2 + 1
        shadow = cv2.GaussianBlur(shadow, (blur, blur), 0)[..., None]
        image = image * (1 - 0.45 * shadow)

        mask = _shape_mask(shape, big, SUPERSAMPLE)
        x0, y0, w, h = cv2.boundingRect((mask > 0).astype(np.uint8))
        if w == 0 or h == 0:
            continue
        box = (slice(y0, y0 + h), slice(x0, x0 + w))  # shade only where the shape is
        cx, cy, radius = float(shape.center[0]), float(shape.center[1]), float(shape.radius)
        dx, dy = (xs[box] - cx) / radius, (ys[box] - cy) / radius
        if shape.kind == "circle":  # a lit sphere: Lambert + ambient + a specular highlight
            nz = np.sqrt(np.clip(1 - dx**2 - dy**2, 0, 1))
            light = np.array([lx * 0.6, ly * 0.6, 0.8])
            light = (light / np.linalg.norm(light)).tolist()
            lambert = np.clip(dx * light[0] + dy * light[1] + nz * light[2], 0, 1)
            shade = 0.3 + 0.8 * lambert
            specular = lambert**24 * 0.6
        else:  # flat faces: a gradient along the light direction
            shade = 0.75 + 0.25 * np.clip(dx * lx + dy * ly, -1.5, 1.5)
            specular = 0.0
        surface = shape.color * shade[..., None] + np.asarray(specular, np.float32)[..., None]
        m = mask[box][..., None]
        image[box] = image[box] * (1 - m) + surface * m

    image = cv2.resize(image.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
    image = cv2.GaussianBlur(image, (3, 3), 0.5)
    image = image + rng.normal(0, 0.015, image.shape).astype(np.float32)  # sensor noise
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)


def _flat(color: np.ndarray, levels: int = 4) -> np.ndarray:
    """A cartoon colour: more saturated, then quantized to ``levels`` steps per channel."""
    gray = color.mean()
    vivid = np.clip(gray + (color - gray) * 1.4, 0, 1)
    return np.round(vivid * (levels - 1)) / (levels - 1)


def render_cartoon(scene: Scene, size: int) -> np.ndarray:
    """Flat cartoon rendering of the same scene: quantized flat colours, dark outlines; ``uint8`` RGB."""
    big = size * SUPERSAMPLE
    horizon = scene.horizon * size
    image = np.empty((big, big, 3), np.float32)
    cut = int(round(horizon * SUPERSAMPLE))
    image[:cut] = _flat((scene.sky_top + scene.sky_bottom) / 2)
    image[cut:] = _flat((scene.ground_far + scene.ground_near) / 2)
    ink = np.array([0.08, 0.06, 0.1], np.float32)
    width = max(2, round(size / 40 * SUPERSAMPLE))
    cv2.line(image, (0, cut), (big, cut), ink.tolist(), width, cv2.LINE_AA)
    shift = 4
    unit = SUPERSAMPLE * (1 << shift)
    for shape in scene.shapes:
        mask = _shape_mask(shape, big, SUPERSAMPLE)[..., None]
        image = image * (1 - mask) + _flat(shape.color) * mask
        if shape.kind == "circle":
            center = tuple(int(v) for v in np.round(shape.center * unit))
            radius = int(round(shape.radius * unit))
            cv2.circle(image, center, radius, ink.tolist(), width, cv2.LINE_AA, shift)
        else:
            points = np.round(shape.points * unit).astype(np.int32)
            cv2.polylines(image, [points], True, ink.tolist(), width, cv2.LINE_AA, shift)
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8)


def render_scene(
    seed: int, split: int, index: int, size: int, styles: str = "both"
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(photo, cartoon) renderings of scene ``index`` of a split, a pure function of the arguments;
    ``styles="photo"`` or ``"cartoon"`` renders only that one (the other is None)."""
    rng = np.random.default_rng([seed & 0xFFFF_FFFF, split, index])
    scene = random_scene(rng, size)
    photo = render_photo(scene, size, rng) if styles in ("both", "photo") else None
    cartoon = render_cartoon(scene, size) if styles in ("both", "cartoon") else None
    return photo, cartoon


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover
        raise DataError(f"could not encode {path}")
    path.write_bytes(encoded.tobytes())


def _generate(
    root: Path, layout: str, domains: tuple[str, str], num_train: int, num_test: int, size: int, seed: int
) -> None:
    if layout == "aligned":
        for split, folder, count in ((_TRAIN, root / "train", num_train), (_TEST, root / "test", num_test)):
            folder.mkdir(parents=True)
            for i in range(count):
                photo, cartoon = render_scene(seed, split, i, size)
                _write_png(folder / f"{i:04d}.png", np.concatenate([photo, cartoon], axis=1))
        return
    photo_dir, cartoon_dir = root / domains[0], root / domains[1]
    test_photo, test_cartoon = root / "test" / domains[0], root / "test" / domains[1]
    for folder in (photo_dir, cartoon_dir, test_photo, test_cartoon):
        folder.mkdir(parents=True)
    for i in range(num_train):  # disjoint scenes per domain: no hidden pairs in training
        photo = render_scene(seed, _TRAIN, i, size, "photo")[0]
        cartoon = render_scene(seed, _TRAIN, num_train + i, size, "cartoon")[1]
        _write_png(photo_dir / f"{i:04d}.png", photo)
        _write_png(cartoon_dir / f"{i:04d}.png", cartoon)
    for i in range(num_test):
        photo, cartoon = render_scene(seed, _TEST, i, size)
        _write_png(test_photo / f"{i:04d}.png", photo)
        _write_png(test_cartoon / f"{i:04d}.png", cartoon)


def make_demo_dataset(
    root: str | Path,
    layout: str,
    domains: tuple[str, str] = ("photo", "anime"),
    num_train: int = 200,
    num_test: int = 20,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Generate (once) the synthetic photo/cartoon dataset in ``root`` and return ``root``.

    ``layout="unaligned"``: ``root/<domains[0]>`` (photo style), ``root/<domains[1]>`` (cartoon style),
    paired test scenes in ``root/test/<domain>``. ``layout="aligned"``: ``root/{train,test}/*.png`` with
    photo|cartoon side by side. Same arguments, same bytes.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
    domains = tuple(str(d) for d in domains)
    if layout == "unaligned":
        if len(domains) != 2 or domains[0] == domains[1] or not all(domains):
            raise DataError(f"the demo data needs two different domain names; got {list(domains)}")
        if any(Path(d).parts[0] == "test" for d in domains):
            raise DataError("a demo domain cannot be named 'test' (root/test holds the paired test scenes)")
    if min(num_train, size) < 1 or num_test < 0:
        raise ValueError("num_train and size must be positive, num_test non-negative")
    root = Path(root)
    params = {
        "version": 1,
        "layout": layout,
        "domains": list(domains) if layout == "unaligned" else None,
        "num_train": num_train,
        "num_test": num_test,
        "size": size,
        "seed": seed,
    }
    if _marker_matches(root, params):
        return root
    if root.exists() and not (root / MARKER).is_file() and (not root.is_dir() or any(root.iterdir())):
        raise DataError(f"{root} exists and is not a translate demo dataset; refusing to write into it")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        _generate(tmp, layout, domains, num_train, num_test, size, seed)
        (tmp / MARKER).write_text(json.dumps(params, sort_keys=True) + "\n")
        if _marker_matches(root, params):  # another process (of a multi-process run) made it meanwhile
            return root
        if root.exists():  # an older demo dataset (other parameters), or an empty folder
            shutil.rmtree(root) if root.is_dir() else root.unlink()
        try:
            tmp.rename(root)
        except OSError:
            if not _marker_matches(root, params):  # not another process finishing the same job first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root


def _marker_matches(root: Path, params: dict) -> bool:
    try:
        return json.loads((root / MARKER).read_text()) == params
    except (OSError, ValueError):
        return False
