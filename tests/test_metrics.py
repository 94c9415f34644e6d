import math

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
