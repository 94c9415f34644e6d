"""CelebA-style attribute files (``list_attr_celeba.txt``), read by one rule.

The format::

    202599                                          <- line 1: the image count, one number
    5_o_Clock_Shadow Arched_Eyebrows ... Young      <- line 2: the attribute names
    000001.jpg -1  1  1 -1 ... 1                    <- then one line per image: file, +1/-1 per name

The rule, the same for layout detection (``read_attribute_head``, the first lines only) and for reading
the whole file (``read_attribute_file``):

- line 1 is a single decimal number;
- line 2 holds one or more names, none of them a number (a numeric line 2 is a data row, not names);
- when the first image line has as many fields as there are names, line 2 also names the file column
  (some exports write ``Image_Name Attr1 Attr2 ...``): that first name is dropped;
- an image line is a file name and one integer per attribute, each 1, -1 or 0 (``+1`` is 1); blank
  lines are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from translate.errors import DataError

FORMAT_HELP = "expected line 1 = image count, line 2 = attribute names, then 'file +1/-1 ...' per line"
_HEAD_LINES = 8  # detection reads at most this many lines to find the first image line


@dataclass
class AttributeHead:
    """The start of an attribute file: what layout detection needs."""

    declared_count: int
    names: list[str]
    first_file: str  # the file name of the first image line


@dataclass
class AttributeTable:
    """A parsed attribute file: ``values[i][j]`` is +1/-1 (or 0) for ``files[i]``, ``names[j]``."""

    path: Path
    declared_count: int
    names: list[str]
    files: list[str]
    values: list[list[int]]
    issues: list[tuple[int, str]]  # (line number, what is wrong): such lines are left out

    def positives(self) -> dict[str, int]:
        """How many images have each attribute.

        Returns:
            ``{attribute name: number of images with +1}``, in the file's order.
        """
        counts = [0] * len(self.names)
        for row in self.values:
            for j, v in enumerate(row):
                counts[j] += v > 0
        return dict(zip(self.names, counts))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_header(count_line: str, names_line: str, first_row: str | None) -> tuple[int, list[str]]:
    """Lines 1 and 2 of an attribute file, by the module's rule.

    Args:
        count_line: line 1.
        names_line: line 2.
        first_row: the first non-blank line after them (None when there is none): it says whether line 2
            also names the file column.

    Returns:
        ``(declared image count, attribute names)``.

    Raises:
        ValueError: with what is wrong, when the lines do not follow the rule.
    """
    count = count_line.split()
    if len(count) != 1 or not (count[0].isascii() and count[0].isdigit()):
        raise ValueError("line 1 is not an image count")
    names = names_line.split()
    number = next((n for n in names if _is_number(n)), None)
    if number is not None:
        raise ValueError(f"line 2 holds a number ({number}), not attribute names")
    if first_row is not None and len(first_row.split()) == len(names):  # a name over the file column too
        names = names[1:]
    if not names:
        raise ValueError("line 2 holds no attribute names")
    return int(count[0]), names


def parse_row(line: str, names: list[str]) -> tuple[str, list[int]]:
    """One image line: the file name and its values.

    Args:
        line: a non-blank line after the header.
        names: the attribute names (``parse_header``).

    Returns:
        ``(file name, one value per name, each 1, -1 or 0)``.

    Raises:
        ValueError: ``"FILE: what is wrong"`` when the line does not follow the rule.
    """
    name, *raw = line.split()
    if len(raw) != len(names):
        raise ValueError(f"{name}: {len(raw)} values for {len(names)} attributes")
    try:
        row = [int(v) for v in raw]
    except ValueError:
        raise ValueError(f"{name}: values must be 1 or -1") from None
    if any(v not in (1, -1, 0) for v in row):
        raise ValueError(f"{name}: values must be 1 or -1")
    return name, row


def read_attribute_head(path: Path) -> AttributeHead | None:
    """Whether ``path`` starts like an attribute file, reading only its first lines.

    Args:
        path: a candidate file (any ``.txt`` of a dataset folder).

    Returns:
        The count, names and first listed file when the header and the first image line follow the
        module's rule; None otherwise (unreadable, another kind of text, no image line yet).
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [f.readline() for _ in range(_HEAD_LINES)]
    except OSError:
        return None
    first_row = next((line for line in lines[2:] if line.split()), None)
    if first_row is None:
        return None
    try:
        declared, names = parse_header(lines[0], lines[1], first_row)
        file, _ = parse_row(first_row, names)
    except ValueError:
        return None
    return AttributeHead(declared, names, file)


def read_attribute_file(path: str | Path) -> AttributeTable:
    """Read a whole attribute file; lines that break the rule are reported in ``issues`` and left out.

    Args:
        path: the attribute file.

    Returns:
        The table of the well-formed lines. ``issues`` holds ``(line number, reason)`` for each line left
        out (wrong number of values, a value other than 1 / -1 / 0, a file listed twice), and
        ``(1, ...)`` when the count of line 1 differs from the number of image lines.

    Raises:
        DataError: the file cannot be read, or its first two lines are not a count and attribute names.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DataError(f"cannot read attribute file {path}: {exc.strerror}") from None
    try:
        first_row = next((line for line in lines[2:] if line.split()), None)
        declared, names = parse_header(lines[0], lines[1], first_row)
    except (IndexError, ValueError):
        raise DataError(f"{path} is not an attribute file: {FORMAT_HELP}") from None
    table = AttributeTable(path, declared, names, files=[], values=[], issues=[])
    seen: set[str] = set()
    for number, line in enumerate(lines[2:], start=3):
        if not line.split():
            continue
        try:
            name, row = parse_row(line, names)
        except ValueError as exc:
            table.issues.append((number, str(exc)))
            continue
        if name in seen:
            table.issues.append((number, f"{name}: listed twice"))
            continue
        seen.add(name)
        table.files.append(name)
        table.values.append(row)
    listed = len(table.files) + len(table.issues)
    if declared != listed:
        table.issues.append((1, f"declares {declared} images, lists {listed}"))
    return table
