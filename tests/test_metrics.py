import math

import pytest
import torch

from translate.metrics import estimate_palette, l1_distance, label_accuracy, psnr, to_labels


def test_l1_and_psnr_known_values():
    a = torch.zeros(2, 3, 4, 4)
    b = torch.full((2, 3, 4, 4), 0.2)  # 0.1 apart on the [0, 1] scale
    assert torch.allclose(l1_distance(a, b), torch.tensor([0.1, 0.1]))
    assert torch.allclose(psnr(a, b), torch.tensor([20.0, 20.0]))
    assert math.isclose(psnr(a, a)[0].item(), 100.0)


def test_palette_and_label_accuracy_survive_noise():
    palette = torch.tensor([[-1.0, -1.0, 1.0], [1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    labels = torch.randint(0, 3, (4, 8, 8), generator=torch.Generator().manual_seed(0))
    clean = palette[labels].permute(0, 3, 1, 2)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    found = estimate_palette(noisy, 3)
    assert torch.cdist(found, palette).min(1).values.max() < 0.1
    assert torch.equal(to_labels(noisy, found).unique(), torch.arange(3))
    assert torch.allclose(label_accuracy(noisy, clean, found), torch.ones(4))
    wrong = clean.roll(1, dims=0)
    assert label_accuracy(wrong, clean, found).mean() < 0.6


def test_domain_classifier_learns_two_styles_and_reads_shares():
    from translate.metrics.domain_classifier import domain_shares, predict_domains, train_domain_classifier

    generator = torch.Generator().manual_seed(0)
    noise = torch.rand(80, 3, 16, 16, generator=generator) * 0.5
    # domain 0: reddish noise; domain 1: bluish noise (same texture statistics otherwise)
    red, blue = noise[:40].clone(), noise[40:].clone()
    red[:, 0] += 0.5
    blue[:, 2] += 0.5
    images, labels = torch.cat([red, blue]) * 2 - 1, torch.cat([torch.zeros(40), torch.ones(40)]).long()
    classifier = train_domain_classifier(images, labels, num_domains=2, steps=60, batch_size=16)
    assert (predict_domains(classifier, images) == labels).float().mean() > 0.9
    shares = domain_shares(classifier, images[:40], 2)
    assert shares.sum().item() == pytest.approx(1.0) and shares[0] > 0.9


def test_palette_ignores_the_blends_at_class_edges():
    import torch.nn.functional as F

    palette = torch.tensor([[-1.0, -1.0, 1.0], [1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    blocks = torch.randint(0, 3, (6, 4, 4), generator=torch.Generator().manual_seed(0))
    labels = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)  # 32x32 maps of 8x8 flat blocks
    sharp = palette[labels].permute(0, 3, 1, 2)
    blurred = F.avg_pool2d(F.pad(sharp, (1, 1, 1, 1), mode="replicate"), 3, stride=1)  # edges blend
    found = estimate_palette(blurred, 3)
    assert torch.cdist(found, palette).min(1).values.max() < 0.05
