"""The ``translate train`` command line printed for each detected layout (translate.catalog.commands)."""

from __future__ import annotations

import numpy as np
from test_layout import images, write_attributes, write_idx

from translate.catalog.commands import suggested_command
from translate.data.layout import detect_layout


def test_one_command_per_layout_kind(tmp_path):
    for split in ("train", "test"):
        images(tmp_path / "facades" / split, width=32, height=16)
    for folder in ("trainA", "trainB"):
        images(tmp_path / "horse2zebra" / folder)
    images(tmp_path / "emoji dir" / "windows")
    images(tmp_path / "emoji dir" / "apple")
    images(tmp_path / "faces")
    write_idx(tmp_path / "digits" / "train-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    images(tmp_path / "celeba" / "images", count=1, ext=".jpg")
    write_attributes(tmp_path / "celeba" / "list_attr_celeba.txt", ["Male"], {"0.jpg": [1]})
    expected = {
        "facades": f"translate train pix2pix --data-root {tmp_path / 'facades'}",
        "horse2zebra": f"translate train cyclegan --data-root {tmp_path / 'horse2zebra'}",
        "emoji dir": f'translate train cyclegan --data-root "{tmp_path / "emoji dir"}" '
        "--domains apple windows",
        "faces": f"translate train dcgan --data-root {tmp_path / 'faces'}",
        "digits": f"translate train gan --data-root {tmp_path / 'digits'}",
        "celeba": None,  # StarGAN needs chosen attributes: no single command
    }
    for name, command in expected.items():
        layout = detect_layout(tmp_path / name)
        assert suggested_command(layout) == command, name
