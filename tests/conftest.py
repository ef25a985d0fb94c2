"""Shared fixtures: stack files written on the fly and a small price catalog with known numbers."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.catalog import Catalog, load_catalog

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent


@pytest.fixture
def mini_catalog_path() -> Path:
    return DATA / "mini-offers.csv"


@pytest.fixture
def mini_catalog(mini_catalog_path: Path) -> Catalog:
    return load_catalog(mini_catalog_path)


@pytest.fixture
def write_stack(tmp_path: Path) -> Callable[[str], Path]:
    """Write YAML text (dedented) to a stack file and return its path."""

    def write(text: str, name: str = "stack.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write
