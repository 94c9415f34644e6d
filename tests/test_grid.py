"""Image grids (translate.engine.grid): training samples, the sampler's files and the serve page."""

import numpy as np
import pytest
import torch
from PIL import Image

from translate.engine.grid import HEADER, grid_image, save_grid, visuals_grid


def test_a_grid_tiles_rows_of_columns_with_white_gaps():
    images = torch.stack([torch.full((3, 4, 6), v) for v in (-1.0, 0.0, 1.0)])
    grid = np.asarray(grid_image(images, columns=2))
    assert grid.shape == (2 + 2 * (4 + 2), 2 + 2 * (6 + 2), 3)  # 2 rows, 2 columns, 2 px gaps
    assert (grid[2, 2] == 0).all() and (grid[2, 10] == 128).all() and (grid[8, 2] == 255).all()
    assert (grid[0] == 255).all(), "the gaps are white"
    assert (grid[8, 10] == 255).all(), "the missing fourth image is left white"


def test_one_channel_images_give_a_gray_picture_and_files_are_written_whole(tmp_path):
    assert grid_image(torch.zeros(2, 1, 4, 4), 2).mode == "L"
    path = save_grid(torch.zeros(2, 3, 4, 4), tmp_path / "deep" / "grid.png", 1)
    assert Image.open(path).size == (8, 14) and list(tmp_path.rglob("*.partial")) == []


def test_visuals_are_rows_per_sample_with_one_column_per_visual_at_the_largest_size():
    visuals = {"input": torch.zeros(2, 1, 4, 4), "output": torch.ones(2, 3, 8, 8)}
    images, columns = visuals_grid(visuals)
    assert columns == 2 and images.shape == (4, 3, 8, 8)
    assert images[0].eq(0).all() and images[1].eq(1).all() and images[2].eq(0).all()


def test_labels_name_each_column_above_it_and_leave_the_images_where_they_were():
    images = torch.ones(4, 3, 40, 40)  # white images: any dark pixel is a label's ink
    plain = np.asarray(grid_image(images, 2))
    labelled = np.asarray(grid_image(images, 2, ["real_A", "a_name_much_too_long_for_its_column"]))
    assert labelled.shape[0] == plain.shape[0] + HEADER and labelled.shape[1:] == plain.shape[1:]
    assert (labelled[HEADER:] == plain).all(), "the images sit below the label row, unchanged"
    header = labelled[:HEADER].min(axis=2) < 128
    middle = plain.shape[1] // 2
    left, right = header[:, :middle], header[:, middle:]
    assert left.any() and right.any(), "each column has its label"
    assert not header[:, middle - 1 : middle + 1].any(), "a long label is shortened to its column"


def test_a_label_per_column_is_required_and_training_grids_are_labelled(tmp_path):
    with pytest.raises(ValueError, match="1 labels for 2 columns"):
        grid_image(torch.zeros(2, 3, 4, 4), 2, ["only_one"])
    visuals = {"real_A": torch.ones(1, 3, 16, 16), "fake_B": torch.ones(1, 3, 16, 16)}
    images, columns = visuals_grid(visuals)
    path = save_grid(images, tmp_path / "grid.png", columns, list(visuals))
    assert Image.open(path).size == (2 + 2 * 18, 2 + 18 + HEADER)
