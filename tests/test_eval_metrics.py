"""Evaluation metrics against known values (FID, KID, IS, PSNR, SSIM, LPIPS, diversity, memorisation), the
Inception-v3 extractor (random weights of the real shapes: nothing is downloaded), missing weights as one
line, and `translate eval` end to end on a tiny run of each export kind."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import TINY_SIZE, tiny_overrides, tiny_train
from PIL import Image

from translate.cli import main
from translate.metrics.distribution import fid, inception_score, kid
from translate.metrics.paired import psnr
from translate.metrics.perceptual import load_lpips, ssim
from translate.metrics.weights import MissingWeights


@pytest.fixture(autouse=True)
def _no_pretrained_weights(tmp_path, monkeypatch):
    """An empty torch hub cache: whatever this machine holds, no Inception or LPIPS weights are found."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))


def gaussian(n: int = 4000, d: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ----------------------------------------------------------------------------------------- FID, KID, IS
def test_fid_of_a_set_against_itself_is_zero_and_shifted_gaussians_give_the_closed_form():
    a = gaussian()
    a = a - a.mean(0)  # so that 2a has the same mean
    assert fid(a, a) == pytest.approx(0.0, abs=1e-9)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    # the same covariance: only the means differ -> ||shift||^2
    assert fid(a, a + shift) == pytest.approx(float(shift @ shift), rel=1e-9)
    # b = 2a + shift: sigma_b = 4 sigma_a -> ||shift||^2 + tr(sigma_a) + 4 tr(sigma_a) - 2 * 2 tr(sigma_a)
    trace = float(np.trace(np.cov(a.numpy(), rowvar=False)))
    assert fid(a, 2 * a + shift) == pytest.approx(float(shift @ shift) + trace, rel=1e-9)


def test_fid_agrees_with_torch_fidelitys_formula():
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    a, b = gaussian(500, 8, 1).float(), (gaussian(400, 8, 2) * 1.5 + 0.3).float()
    reference = fid_statistics_to_metric(fid_features_to_statistics(a), fid_features_to_statistics(b), False)
    assert fid(a, b) == pytest.approx(reference["frechet_inception_distance"], rel=1e-4)


def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel_near_zero_for_one_distribution():
    a, b = gaussian(200, 16, 1), gaussian(200, 16, 2)
    same, spread = kid(a, b, subsets=20, subset_size=100)
    shifted, _ = kid(a, b + 1.0, subsets=20, subset_size=100)
    assert abs(same) < 3 * spread + 1e-3 and shifted > 0.5 and shifted > 20 * spread
    # one subset of every sample: the formula by hand
    x, y = a[:50], b[:50] + 0.5
    kernel = lambda p, q: (p @ q.T / p.shape[1] + 1) ** 3  # noqa: E731
    m = len(x)
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    expected = (kxx.sum() - kxx.trace() + kyy.sum() - kyy.trace()) / (m * (m - 1)) - 2 * kxy.mean()
    mean, std = kid(x, y, subsets=1, subset_size=50)
    assert mean == pytest.approx(expected.item(), rel=1e-6) and std == 0.0


def test_kid_subsets_never_take_every_sample_so_its_spread_means_something():
    a, b = gaussian(200, 16, 1), gaussian(200, 16, 2)
    _, spread = kid(a, b + 0.3, subsets=20, subset_size=1000)  # n below the subset size: halves of the sets
    assert spread > 0


def test_inception_score_of_a_confident_uniform_classifier_is_the_number_of_classes():
    logits = torch.nn.functional.one_hot(torch.arange(500) % 5, 5).double() * 100
    mean, std = inception_score(logits, splits=1)
    assert mean == pytest.approx(5.0, rel=1e-6) and std == 0.0
    collapsed, _ = inception_score(torch.zeros(100, 5).index_fill_(1, torch.tensor([2]), 100.0), splits=4)
    assert collapsed == pytest.approx(1.0, rel=1e-6)
    uncertain, _ = inception_score(torch.zeros(100, 5))
    assert uncertain == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------- pairs
def test_psnr_and_ssim_on_known_pairs():
    import kornia

    image = torch.rand(3, 3, 16, 16) * 2 - 1
    brighter = image + 0.2  # 0.1 on the [0, 1] scale: MSE 0.01 -> 20 dB
    assert torch.allclose(psnr(brighter, image), torch.full((3,), 20.0), atol=1e-4)
    for i in range(3):  # per image, as kornia computes it on the [0, 1] scale
        expected = kornia.metrics.psnr((brighter[i : i + 1] + 1) / 2, (image[i : i + 1] + 1) / 2, 1.0)
        assert psnr(brighter[i : i + 1], image[i : i + 1]).item() == pytest.approx(expected.item(), rel=1e-5)
    assert torch.allclose(ssim(image, image), torch.ones(3), atol=1e-6)
    # flat images a and b (on [0, 1]): only the luminance term remains, (2ab + c1) / (a^2 + b^2 + c1)
    a, b, c1 = 0.2, 0.6, 0.01**2
    flat_a, flat_b = torch.full((1, 1, 16, 16), a * 2 - 1), torch.full((1, 1, 16, 16), b * 2 - 1)
    assert ssim(flat_a, flat_b).item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=5e-4)
    assert ssim(image, -image).mean() < 0.2  # anti-correlated
    assert ssim(image[:, :, :5, :5], image[:, :, :5, :5]).shape == (3,)  # smaller than the window


def test_lpips_is_zero_for_the_same_image_and_takes_small_gray_images():
    model = load_lpips("alex", pretrained_backbone=False)
    x = torch.rand(2, 1, 8, 8) * 2 - 1
    assert torch.allclose(model(x, x), torch.zeros(2), atol=1e-6)
    assert (model(x, -x) > 0).all()


def test_missing_lpips_backbone_is_one_line_naming_the_file_and_where_it_goes(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingWeights) as error:
        load_lpips("alex")
    message = str(error.value)
    assert "\n" not in message and "alexnet-owt-7be5be79.pth" in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message


# ----------------------------------------------------------------------------------------- Inception
def test_random_inception_gives_pool3_and_logits_from_any_input_size():
    from translate.metrics.inception import InceptionFeatures

    model = InceptionFeatures("fid")
    for images in (torch.rand(2, 1, 8, 8) * 2 - 1, torch.rand(1, 3, 40, 30) * 2 - 1):
        with torch.no_grad():
            pool, logits = model(images)
        assert pool.shape == (len(images), 2048) and logits.shape == (len(images), 1008)
        assert torch.isfinite(pool).all() and (pool >= 0).all()  # after ReLU and average pooling


def test_inception_weights_load_from_a_file_or_the_cache_and_missing_is_one_note(monkeypatch, tmp_path):
    from translate.metrics.features import inception_extractor
    from translate.metrics.inception import (
        FID_WEIGHTS,
        FID_WEIGHTS_URL,
        InceptionFeatures,
        find_inception_weights,
    )

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(MissingWeights) as error:
        find_inception_weights()
    message = str(error.value)
    assert "\n" not in message and FID_WEIGHTS in message and FID_WEIGHTS_URL in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in message and "--inception-weights" in message

    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(InceptionFeatures("fid").net.state_dict(), cache / FID_WEIGHTS)  # the file's own key names
    extractor = inception_extractor()
    assert extractor.name == "inception-v3 (FID weights)" and extractor.weights == str(cache / FID_WEIGHTS)
    assert len(extractor.sha256) == 64
    features, logits = extractor(torch.rand(1, 3, 16, 16) * 2 - 1)
    assert features.shape == (1, 2048) and logits.shape == (1, 1008)
    # torchvision's ImageNet file (with its auxiliary head): the documented fallback variant
    from torchvision.models import inception_v3

    torchvision_file = tmp_path / "inception_v3_google.pth"
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), torchvision_file)
    fallback = inception_extractor(torchvision_file)
    assert fallback.name == "inception-v3 (torchvision weights)" and len(fallback.classes) == 1000
    (tmp_path / "bad.pth").write_bytes(b"nothing")
    with pytest.raises(MissingWeights, match="not a readable weights file"):
        inception_extractor(tmp_path / "bad.pth")


# ----------------------------------------------------------------------------------------- diversity, NN
def test_diversity_shows_mode_collapse_and_nn_distance_shows_copies():
    from translate.metrics.scoring import Suite, evaluate_sampling

    real = torch.rand(16, 1, 8, 8) * 2 - 1
    train = [(real, None)]
    held_out = [(torch.rand(8, 1, 8, 8) * 2 - 1, None)]
    codes = torch.randn(8, 4)
    pairs = (torch.randn(4, 4), torch.randn(4, 4), None)
    suite = Suite({"diversity", "nn"}, pairs=4)

    def collapsed(z, labels):
        return torch.zeros(len(z), 1, 8, 8)

    def copies(z, labels):  # each code -> a training image
        return real[(z[:, 0].abs() * 1000).long() % len(real)]

    def scores(generate):
        rows = evaluate_sampling(suite, generate, codes, None, train, held_out, pair_codes=pairs)
        return {(s.metric, s.subject): s for s in rows}

    dead = scores(collapsed)
    assert dead["diversity", "samples"].value == 0.0 and dead["diversity", "samples"].features == "pixels"
    assert dead["diversity", "real held-out"].value > 0.1
    copied = scores(copies)
    assert copied["NN train distance", "samples"].value == pytest.approx(0.0, abs=1e-6)
    assert copied["NN train distance", "real held-out"].value > 0.1


# ----------------------------------------------------------------------------------------- translate eval
def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def eval_rows(run) -> dict:
    scores = json.loads((run / "eval.json").read_text())
    return {(s["section"], s["metric"], s["features"], s["subject"]): s for s in scores["scores"]}, scores


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    from translate.metrics.inception import InceptionFeatures

    path = tmp_path_factory.mktemp("weights") / "random_inception.pth"
    torch.save(InceptionFeatures("fid").net.state_dict(), path)
    return path


CYCLEGAN_ROWS = [
    ("FD", "classifier"), ("KID", "classifier"), ("target share", "classifier"), ("SSIM", "-"), ("PSNR", "-"),
    ("L1", "-"),
]  # fmt: skip


def test_eval_cyclegan_with_a_classifier_scores_both_directions_and_the_input(tmp_path):
    from translate.api import train
    from translate.catalog.demo import make_demo_dataset

    data = make_demo_dataset(tmp_path / "demo", layout="unaligned", num_train=4, num_test=3, size=TINY_SIZE)
    run = train(
        "cyclegan", overrides=[{"data": {"root": str(data)}}, tiny_overrides("cyclegan", steps=1)],
        run_dir=tmp_path / "run",
    )  # fmt: skip
    result = invoke("classifier", "train", data, "--out", tmp_path / "clf.pt", "--steps", 5, "--size", 16)
    assert result.exit_code == 0, result.output
    result = invoke("eval", run, "--data", data, "--classifier", tmp_path / "clf.pt", "--n", 3)
    assert result.exit_code == 0, result.output
    rows, scores = eval_rows(run)
    assert scores["method"] == "cyclegan" and scores["step"] == 1
    for direction in ("a2b", "b2a"):
        for subject in ("translation", "input as-is"):
            for metric, features in CYCLEGAN_ROWS:
                row = rows[direction, metric, features, subject]
                assert row["n"] == 3 and np.isfinite(row["value"]), row
                assert row["weights_sha256"] == (
                    scores["extractors"]["classifier"]["sha256"] if features != "-" else None
                )
    assert (
        "FID/KID/IS on Inception skipped: no Inception weights: put pt_inception-2015-12-05" in result.output
    )
    assert "target share" in result.output and "input as-is" in result.output
    result = invoke("eval", run, "--data", data, "--metrics", "ssim,bogus")
    assert result.exit_code == 1 and "unknown metric bogus" in result.output


def test_eval_pix2pix_scores_fid_on_inception_and_the_paired_metrics(tmp_path, random_inception):
    from translate.api import train
    from translate.catalog.demo import make_demo_dataset

    data = make_demo_dataset(tmp_path / "pairs", layout="aligned", num_train=2, num_test=3, size=TINY_SIZE)
    run = train(
        "pix2pix", overrides=[{"data": {"root": str(data)}}, tiny_overrides("pix2pix", steps=1)],
        run_dir=tmp_path / "run",
    )  # fmt: skip
    result = invoke(
        "eval", run, "--data", data, "--metrics", "fid,kid,is,ssim,psnr,l1",
        "--inception-weights", random_inception, "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    rows, scores = eval_rows(run)
    assert printed == scores
    for subject in ("translation", "input as-is"):
        assert {"FID", "KID", "IS"} <= {m for (_, m, f, s) in rows if f == "inception" and s == subject}
        assert rows["a2b", "SSIM", "-", subject]["n"] == 3
    assert scores["extractors"]["inception"]["sha256"] == __import__(
        "translate.metrics.weights"
    ).metrics.weights.sha256(random_inception)
    result = invoke("eval", run, "--data", data, "--metrics", "lpips")
    assert result.exit_code == 1 and "alexnet-owt-7be5be79.pth" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_eval_stargan_reads_each_flipped_attribute(tmp_path):
    from test_stargan import write_attribute_data

    from translate.api import train

    data = write_attribute_data(tmp_path / "celeba", rows=16)
    layer = tiny_overrides("stargan", 1, n_critic=1)
    layer["data"].update(attributes=["Black_Hair", "Blond_Hair", "Male"], test_images=4)
    run = train("stargan", overrides=[{"data": {"root": str(data)}}, layer], run_dir=tmp_path / "run")
    result = invoke(
        "classifier", "train", data, "--out", tmp_path / "attr.pt", "--steps", 3, "--size", 16,
        "--attributes", "Blond_Hair,Male",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    result = invoke(
        "eval", run, "--data", data, "--classifier", tmp_path / "attr.pt", "--metrics", "fid,domain"
    )
    assert result.exit_code == 0, result.output
    rows, scores = eval_rows(run)
    for name in ("to Blond_Hair", "flip Male"):
        for subject in ("translation", "input as-is"):
            assert 0 <= rows["targets", name, "classifier", subject]["value"] <= 1
            assert rows["targets", name, "classifier", subject]["n"] == 4
    assert ("targets", "FD", "classifier", "translation") in rows
    assert "the classifier does not read Black_Hair" in result.output
    # without a classifier: the model's own critic reads the labels, and says so
    result = invoke("eval", run, "--data", data, "--metrics", "domain")
    assert result.exit_code == 0, result.output
    rows, _ = eval_rows(run)
    assert ("targets", "to Black_Hair", "model critic", "translation") in rows
    assert "optimistic" in result.output


def test_eval_cgan_scores_classes_coverage_diversity_and_memorisation(tmp_path):
    from translate.api import train

    data = tmp_path / "quarters"
    for label in range(4):  # a bright quarter per class
        row, col = divmod(label, 2)
        for split, count in (("train", 6), ("test", 2)):
            folder = data / f"q{label}" / split
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = np.full((8, 8), 20 + 3 * i + (50 if split == "test" else 0), dtype=np.uint8)
                pixels[row * 4 : row * 4 + 4, col * 4 : col * 4 + 4] = 235
                Image.fromarray(pixels).save(folder / f"{i}.png")
    networks = {
        "generator": {"name": "mlp", "hidden": [16]},
        "discriminator": {"name": "mlp", "hidden": [16]},
    }
    run = train(
        "cgan",
        overrides=[{
            "data": {"root": str(data), "image_size": 8, "out_channels": 1, "num_workers": 0},
            "model": {**networks, "latent_dim": 8},
            "train": tiny_train(2, num_samples=4),
        }],
        run_dir=tmp_path / "run",
    )  # fmt: skip
    result = invoke("classifier", "train", data, "--out", tmp_path / "q.pt", "--steps", 30, "--size", 16)
    assert result.exit_code == 0, result.output
    result = invoke("eval", run, "--data", data, "--classifier", tmp_path / "q.pt", "--n", 8)
    assert result.exit_code == 0, result.output
    rows, scores = eval_rows(run)
    for subject in ("samples", "real held-out"):
        for metric, features in (("FD", "classifier"), ("KID", "classifier"), ("IS", "classifier"),
                                 ("coverage entropy", "classifier"), ("classes covered", "classifier"),
                                 ("class accuracy", "classifier"), ("NN train distance", "pixels"),
                                 ("diversity", "classifier")):  # fmt: skip
            assert np.isfinite(rows["sample", metric, features, subject]["value"]), (metric, subject)
    assert rows["sample", "class accuracy", "classifier", "samples"]["n"] == 8
    assert rows["sample", "coverage entropy", "classifier", "real held-out"]["n"] == 8
    assert "LPIPS skipped" in result.output
