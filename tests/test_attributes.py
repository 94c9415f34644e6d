"""One rule for CelebA-style attribute files: layout detection (the first lines) and the whole-file reader
accept the same files and read the same names."""

from __future__ import annotations

import pytest
from test_layout import SHARED, images

from translate.data.attributes import read_attribute_file, read_attribute_head
from translate.data.layout import detect_layout
from translate.errors import DataError

CELEBA = "3\nBlack_Hair Male Young\n0.jpg  1 -1  1\n1.jpg -1 -1  1\n2.jpg  1  1 -1\n"
# Exports that also name the file column: "Image_Name Attr1 Attr2 ..." on line 2.
NAMED_FILE_COLUMN = "3\nimage_id Black_Hair Male Young\n0.jpg 1 -1 1\n1.jpg -1 -1 1\n2.jpg 1 1 -1\n"
ACCEPTED = {
    "celeba": CELEBA,
    "named file column": NAMED_FILE_COLUMN,
    "windows line ends": CELEBA.replace("\n", "\r\n"),
    "plus signs and zeros": "2\nBlack_Hair Male Young\n0.jpg +1 0 -1\n1.jpg -1 +1 0\n",
    "tabs": CELEBA.replace("  ", "\t").replace(" ", "\t"),
    "blank line after the header": NAMED_FILE_COLUMN.replace("Young\n", "Young\n\n"),
}
REJECTED = {
    "no count": "Black_Hair Male Young\n0.jpg 1 -1 1\n",
    "two numbers on line 1": "3 3\nBlack_Hair Male Young\n0.jpg 1 -1 1\n",
    "numbers for names": "3\n1 -1 1\n0.jpg 1 -1 1\n",
    "no names": "3\n\n0.jpg 1 -1 1\n",
    "only the file column named": "1\nimage_id\n0.jpg\n",
}


@pytest.mark.parametrize("name", list(ACCEPTED))
def test_detection_and_reading_accept_the_same_files(tmp_path, name):
    images(tmp_path / "images", count=3, ext=".jpg")
    path = tmp_path / "list_attr_celeba.txt"
    path.write_bytes(ACCEPTED[name].encode())
    head, table = read_attribute_head(path), read_attribute_file(path)
    assert head is not None and head.names == table.names == ["Black_Hair", "Male", "Young"]
    assert head.first_file == table.files[0] == "0.jpg" and table.issues == []
    assert head.declared_count == table.declared_count == len(table.files)
    layout = detect_layout(tmp_path)
    assert layout.kind == "attributes" and layout.attributes == table.names


@pytest.mark.parametrize("name", list(REJECTED))
def test_detection_and_reading_reject_the_same_files(tmp_path, name):
    path = tmp_path / "attrs.txt"
    path.write_text(REJECTED[name])
    assert read_attribute_head(path) is None
    with pytest.raises(DataError, match="is not an attribute file: expected line 1 = image count"):
        read_attribute_file(path)


def test_detection_needs_an_image_line_naming_an_image(tmp_path):
    images(tmp_path / "images", count=1, ext=".jpg")
    (tmp_path / "notes.txt").write_text("2\nsome words here\nnot an image list\n")
    (tmp_path / "header_only.txt").write_text("0\nBlack_Hair Male\n")
    assert read_attribute_head(tmp_path / "notes.txt") is None  # values are not 1 / -1
    assert read_attribute_head(tmp_path / "header_only.txt") is None  # no image line to go by
    assert read_attribute_file(tmp_path / "header_only.txt").files == []
    (tmp_path / "scores.txt").write_text("1\nBlack_Hair Male\nrow1 1 -1\n")
    assert read_attribute_head(tmp_path / "scores.txt").first_file == "row1"
    assert detect_layout(tmp_path).kind == "flat"  # row1 is no image file: not an attribute layout


def test_the_shared_celeba_file_reads_alike():
    path = SHARED / "celeba" / "list_attr_celeba.txt"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared datasets sit beside the project on the dev machines only)")
    head, table = read_attribute_head(path), read_attribute_file(path)
    assert head.names == table.names and len(table.names) == 40 and table.issues == []
    assert head.first_file == table.files[0] and head.declared_count == len(table.files)
