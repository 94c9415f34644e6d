import pytest
import torch
from safetensors.torch import load_file, save_file

from translate.errors import CheckpointError
from translate.tasks.image_pool import ImagePool


def numbered(start: int, n: int = 1) -> torch.Tensor:
    """``n`` images ``(1, 2, 2)``; image ``i`` is filled with ``start + i`` so it can be recognised."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone()


def ids(batch: torch.Tensor) -> list[int]:
    return [int(image[0, 0, 0]) for image in batch]


def run(pool: ImagePool, first: int, steps: int, batch: int = 2) -> list[torch.Tensor]:
    return [pool.query(numbered(first + batch * i, batch)) for i in range(steps)]


def test_size_zero_passes_the_input_through():
    images = torch.randn(3, 3, 4, 4, requires_grad=True)
    assert ImagePool(0).query(images) is images


def test_fills_with_the_new_images_then_mixes_in_old_ones():
    torch.manual_seed(0)
    pool = ImagePool(4)
    assert ids(pool.query(numbered(0, 3))) == [0, 1, 2]
    assert ids(pool.query(numbered(3, 1))) == [3]
    assert len(pool) == 4

    returned_old = 0
    for step in range(100):
        new = 100 + step
        out = pool.query(numbered(new))
        assert out.shape == (1, 1, 2, 2)
        assert len(pool) == 4
        if ids(out) != [new]:
            returned_old += 1
            assert ids(out)[0] < new
            assert new in ids(torch.stack(pool.images))  # the new image took the old one's place
    assert 30 <= returned_old <= 70  # p = 0.5


def test_output_has_the_input_shape_and_is_detached():
    pool = ImagePool(3)
    for _ in range(5):
        images = torch.randn(2, 3, 8, 8, requires_grad=True)
        out = pool.query(images)
        assert out.shape == images.shape
        assert not out.requires_grad
    assert not any(image.requires_grad for image in pool.images)


def test_state_round_trip_through_safetensors_reproduces_outputs(tmp_path):
    torch.manual_seed(0)
    pool = ImagePool(5)
    run(pool, 0, 4)  # 8 images seen: full, and already mixed
    save_file(pool.state_dict(), tmp_path / "pool.safetensors")
    restored = ImagePool(5)
    restored.load_state_dict(load_file(tmp_path / "pool.safetensors"))

    torch.manual_seed(123)
    expected = run(pool, 1000, 20)
    torch.manual_seed(123)
    actual = run(restored, 1000, 20)
    assert [ids(b) for b in actual] == [ids(b) for b in expected]
    assert ids(torch.stack(restored.images)) == ids(torch.stack(pool.images))


def test_empty_pool_round_trips(tmp_path):
    save_file(ImagePool(3).state_dict(), tmp_path / "pool.safetensors")
    restored = ImagePool(3)
    restored.load_state_dict(load_file(tmp_path / "pool.safetensors"))
    assert len(restored) == 0

    torch.manual_seed(7)
    expected = run(ImagePool(3), 0, 6)
    torch.manual_seed(7)
    assert [ids(b) for b in run(restored, 0, 6)] == [ids(b) for b in expected]


def test_restored_pool_follows_the_dtype_of_new_images():
    pool = ImagePool(2)
    pool.load_state_dict({"images": numbered(0, 2)})
    torch.manual_seed(0)
    for i in range(10):
        assert pool.query(numbered(10 + i).double()).dtype == torch.float64


def test_loading_more_images_than_the_pool_holds_is_an_error():
    with pytest.raises(CheckpointError):
        ImagePool(2).load_state_dict({"images": numbered(0, 3)})
