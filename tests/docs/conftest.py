"""Fixtures of the documentation tests: where the project's files are."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def root() -> Path:
    """The project's root folder (README.md, docs/, mkdocs.yml)."""
    return ROOT
