"""apply --faces: faces found in a photo are aligned like the training faces, translated and pasted back."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import SHARED_DATASETS
from PIL import Image

from translate.errors import TranslateError
from translate.inference.faces import FACE_TEMPLATE, Face, alignment, mtcnn_detector, paste_faces


def scene(height: int = 120, width: int = 160) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 200, (height, width, 3), dtype=np.uint8)


def face_at(x: float, y: float, side: float) -> Face:
    """A face whose landmarks sit where the template puts them in a ``side`` square at (x, y)."""
    landmarks = FACE_TEMPLATE * side + np.array([x, y], dtype=np.float32)
    return Face(np.array([x, y, x + side, y + side], dtype=np.float32), landmarks, 0.99)


def test_alignment_maps_the_landmarks_onto_the_template():
    matrix = alignment(face_at(30, 20, 50).landmarks, side=100)
    np.testing.assert_allclose(matrix, [[2, 0, -60], [0, 2, -40]], atol=1e-3)


def test_faces_are_replaced_with_a_feathered_edge_and_the_rest_is_kept():
    image = scene()
    white = lambda crop: np.full_like(crop, 255)  # noqa: E731
    out = paste_faces(image, [face_at(40, 30, 60)], side=32, translate=white)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (out[55:65, 65:75] == 255).all(), "the middle of the face is the translation"
    assert np.array_equal(out[:, :35], image[:, :35]) and np.array_equal(out[95:], image[95:]), "outside kept"
    edge = out[60, 40:45].astype(int)  # the feathered border: between the photo and the translation
    assert (edge < 255).all() and (edge >= image[60, 40:45]).all()
    two = paste_faces(image, [face_at(5, 5, 40), face_at(110, 60, 40)], side=32, translate=white)
    assert (two[25, 25] == 255).all() and (two[80, 130] == 255).all()
    assert np.array_equal(paste_faces(image, [], 32, white), image)


def test_a_missing_detector_is_a_one_line_error_saying_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)
    with pytest.raises(TranslateError, match=r"pip install -e \"\.\[faces\]\""):
        mtcnn_detector()


CELEBA = SHARED_DATASETS / "celeba" / "images"


@pytest.mark.skipif(not CELEBA.is_dir(), reason="needs ../shared/datasets/celeba")
def test_a_celeba_face_pasted_into_a_larger_photo_is_found_translated_and_pasted_back(tmp_path):
    pytest.importorskip("facenet_pytorch", reason="the MTCNN detector is an optional install")
    from test_stargan import tiny_config, write_attribute_data

    from translate.engine.trainer import Trainer
    from translate.inference import Translator

    face = Image.open(CELEBA / "009991.jpg").convert("RGB").resize((178, 218))
    photo = Image.new("RGB", (400, 300), (90, 120, 60))
    photo.paste(face, (150, 40))
    (tmp_path / "photos").mkdir()
    photo.save(tmp_path / "photos" / "scene.png")
    Image.new("RGB", (200, 100), (30, 60, 200)).save(tmp_path / "photos" / "empty.png")
    found = mtcnn_detector()(np.asarray(photo))
    assert len(found) == 1 and 150 < found[0].landmarks[0, 0] < 328

    run = Trainer(tiny_config(write_attribute_data(tmp_path / "celeba"), steps=1), tmp_path / "run").fit()
    translator = Translator.from_run(run)
    written = translator.apply_folder(
        tmp_path / "photos", tmp_path / "out", target="Blond_Hair=1", faces=True, progress=False
    )
    assert sorted(p.name for p in written) == ["empty.png", "scene.png"]
    out = np.asarray(Image.open(tmp_path / "out" / "photos" / "scene.png")).astype(int)
    original = np.asarray(photo).astype(int)
    assert np.array_equal(out[:, :140], original[:, :140]), "the scene around the face is untouched"
    assert np.abs(out[120:160, 210:270] - original[120:160, 210:270]).mean() > 5, "the face is translated"
    empty = np.asarray(Image.open(tmp_path / "out" / "photos" / "empty.png"))
    assert np.array_equal(empty, np.asarray(Image.open(tmp_path / "photos" / "empty.png"))), "no face: copied"
