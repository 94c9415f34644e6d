"""Short real trainings that must learn (marked slow: run with ``pytest -m slow``)."""

from __future__ import annotations

import pytest

from translate import Translator, train
from translate.catalog.demo import make_demo_dataset
from translate.metrics.evaluate import aligned_pairs, evaluate_pairs

pytestmark = pytest.mark.slow


def test_pix2pix_learns_photo_to_cartoon_on_the_demo_pairs(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", layout="aligned", num_train=100, num_test=20, size=32)
    layers = [
        {"data": {"root": str(root), "image_size": 32, "load_size": 36, "num_workers": 0}},
        {
            "model": {
                "generator": {"name": "unet", "num_downs": 5, "base_channels": 16},
                "discriminator": {"base_channels": 16},
                "test_mode": "eval",  # trained at batch 4
            }
        },
        {"train": {"steps": 1000, "batch_size": 4, "sample_every": 1000, "checkpoint_every": 1000}},
    ]
    run = train("pix2pix", overrides=layers, run_dir=tmp_path / "run")
    scores = evaluate_pairs(Translator.from_run(run).translate_many, aligned_pairs(root / "test", "a2b", 3))
    # Held-out scenes: the translation must be clearly closer to the true cartoon than the photo itself is.
    assert scores.output["L1"] < 0.8 * scores.identity["L1"], scores.table()  # measured: 0.71
