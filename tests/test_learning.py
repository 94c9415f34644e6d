"""Short real trainings that must learn (marked slow: run with ``pytest -m slow``)."""

from __future__ import annotations

import pytest
from conftest import SHARED_DATASETS

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


FASHION_MNIST = SHARED_DATASETS / "fashion-mnist"


@pytest.mark.skipif(not FASHION_MNIST.is_dir(), reason=f"needs the shared Fashion-MNIST in {FASHION_MNIST}")
def test_cgan_learns_fashion_mnist_classes_a_classifier_reads(tmp_path):
    """cGAN (the tutorials' MLPs) for 5000 steps (~4 min; the class conditioning takes hold after ~2500): a
    classifier trained on the real images must read its samples as closer to the real test images than the
    untrained generator's, spread over the classes, and mostly as the class asked for."""
    import torch

    from translate import Sampler
    from translate.data.layout import read_idx
    from translate.metrics import feature_statistics, features_and_predictions, generative_scores
    from translate.metrics.domain_classifier import train_domain_classifier

    def split(prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
        images = read_idx(FASHION_MNIST / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(FASHION_MNIST / f"{prefix}-labels-idx1-ubyte.gz")
        return torch.from_numpy(images.copy()).float()[:, None] / 127.5 - 1, torch.from_numpy(
            labels.copy()
        ).long()

    (train_images, train_labels), (test_images, test_labels) = split("train"), split("t10k")
    classifier = train_domain_classifier(train_images, train_labels, 10, steps=800, max_shift=0)
    features, predicted = features_and_predictions(classifier, test_images)
    assert (predicted == test_labels).float().mean() > 0.8  # measured: 0.88
    reference = feature_statistics(features.numpy())

    overrides = [
        {"data": {"root": str(FASHION_MNIST), "num_workers": 0}},
        {"train": {"steps": 5000, "checkpoint_every": 5000, "sample_every": 5000}},
    ]
    run = train("cgan", overrides=overrides, run_dir=tmp_path / "run")
    sampler = Sampler.from_run(run)
    labels = torch.arange(2000) % 10
    trained = generative_scores(classifier, sampler(sampler.noise(2000), labels), reference, 10, labels)
    untrained_generator = type(sampler.generator)(out_channels=1, image_size=28, num_classes=10)
    untrained = generative_scores(
        classifier, untrained_generator(sampler.noise(2000), labels).detach(), reference, 10, labels
    )
    assert trained["fd"] < 0.5 * untrained["fd"], (trained, untrained)
    assert trained["coverage"]["entropy"] > 0.8, trained
    assert trained["requested_accuracy"] > 0.4, trained  # chance: 0.1
