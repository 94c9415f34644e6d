"""The repository, the sdist and the wheel carry the MIT licence that the metadata states (issue 23)."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS_DEFAULT_LICENSE_FILES = ["LICEN[CS]E*", "COPYING*", "NOTICE*", "AUTHORS*"]


def test_the_license_file_is_the_mit_licence_the_metadata_states():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = (ROOT / "LICENSE").read_text()
    assert project["license"] == "MIT"
    assert text.startswith("MIT License\n")
    assert "Copyright (c)" in text and "the translate authors" in text


def test_the_build_picks_up_the_license_file():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    patterns = project.get("license-files", SETUPTOOLS_DEFAULT_LICENSE_FILES)
    assert any(fnmatch.fnmatch("LICENSE", pattern) for pattern in patterns), patterns
