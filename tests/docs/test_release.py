"""The wheel and the sdist: they build offline, pass ``twine check``, carry the version
declared once, and the wheel holds the package and nothing else of the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from rerank_integrations import __version__

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel and an sdist built from the working tree, without network (hatchling is in
    the environment, so no isolated build environment is fetched)."""
    out = tmp_path_factory.mktemp("dist")
    completed = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("*.whl")
    return wheel


def test_twine_check_passes(dist: Path) -> None:
    files = sorted(str(path) for path in dist.iterdir())
    completed = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert len(files) == 2
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_version_is_declared_once(dist: Path) -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")

    assert __version__ == "0.2.0"
    assert 'dynamic = ["version"]' in pyproject
    assert not re.search(r"^version\s*=", pyproject, re.M)
    assert _wheel(dist).name.startswith(f"rerank_integrations-{__version__}-")
    assert (dist / f"rerank_integrations-{__version__}.tar.gz").is_file()


def test_the_wheel_holds_the_package_and_nothing_else(dist: Path) -> None:
    names = zipfile.ZipFile(_wheel(dist)).namelist()
    top = {name.split("/")[0] for name in names}

    assert top == {"rerank_integrations", f"rerank_integrations-{__version__}.dist-info"}
    for unwanted in ("tests/", "benchmarks/", "notebooks/", "interop/", "examples/", "docs/"):
        assert not any(name.startswith(unwanted) for name in names), unwanted
    assert not any(name.endswith((".ipynb", ".pyc")) or "__pycache__" in name for name in names)
    assert "rerank_integrations/py.typed" in names
    assert "rerank_integrations/server/_app.py" in names
    assert any(name.startswith("rerank_integrations/demo/data/") for name in names)
    assert f"rerank_integrations-{__version__}.dist-info/licenses/LICENSE" in names


def test_the_wheel_declares_the_license_and_the_readme(dist: Path) -> None:
    wheel = zipfile.ZipFile(_wheel(dist))
    metadata = wheel.read(f"rerank_integrations-{__version__}.dist-info/METADATA").decode()

    assert "License-Expression: MIT" in metadata
    assert "Provides-Extra: demo" in metadata
    assert "# rerank-integrations" in metadata  # the README is the long description


def test_the_sdist_has_the_license_and_no_local_environments(dist: Path) -> None:
    with tarfile.open(dist / f"rerank_integrations-{__version__}.tar.gz") as sdist:
        names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]

    assert "LICENSE" in names
    assert "CHANGELOG.md" in names
    assert "pyproject.toml" in names
    assert not any(name.startswith((".venv", "site/", ".git/")) for name in names)
