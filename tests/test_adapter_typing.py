"""The adapters type-check as users write them: ``api_key="sk-..."`` passes ``mypy --strict``
(without pydantic's plugin) and pyright, and reads back as a ``SecretStr``; a string where a
number belongs does not pass."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
from pydantic import SecretStr

from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor

compressor = RerankCompressor(base_url="https://api.example.com/v1", api_key="sk-...", top_n=5)
postprocessor = RerankPostprocessor(
    base_url="https://api.example.com/v1", api_key="sk-...", top_n=5
)
with_secret = RerankCompressor(base_url="https://h", api_key=SecretStr("sk-..."))
compressor.api_key = "sk-other"
postprocessor.api_key = None
keys: list[SecretStr | None] = [compressor.api_key, postprocessor.api_key, with_secret.api_key]
top_n: int | None = compressor.top_n
"""

BAD = """\
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor

RerankCompressor(base_url="https://h", top_n="3")
RerankPostprocessor(base_url="https://h", api_key=42)
key: str = RerankCompressor(base_url="https://h", api_key="sk-...").api_key
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _mypy(tmp_path: Path, *snippets: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mypy", "--strict", "--config-file", ""]
    command += ["--cache-dir", str(tmp_path / "cache"), *map(str, snippets)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


def _errors_in(output: str, snippet: Path) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"{snippet}:")]


def test_str_api_key_passes_mypy_strict(tmp_path: Path) -> None:
    good = _write(tmp_path, "good.py", GOOD)
    bad = _write(tmp_path, "bad.py", BAD)
    done = _mypy(tmp_path, good, bad)  # one run: the frameworks are analysed once
    assert "pydantic.mypy" not in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert done.returncode == 1, done.stdout + done.stderr
    assert _errors_in(done.stdout, good) == [], done.stdout
    errors = "\n".join(_errors_in(done.stdout, bad))
    assert len(_errors_in(done.stdout, bad)) == 3, done.stdout
    assert 'Argument "top_n" to "RerankCompressor" has incompatible type "str"' in errors
    assert 'Argument "api_key" to "RerankPostprocessor" has incompatible type "int"' in errors
    assert 'has type "SecretStr | None", variable has type "str"' in errors


def _pyright() -> str | None:
    found = Path(sys.executable).with_name("pyright")
    return str(found) if found.exists() else shutil.which("pyright")


def test_str_api_key_passes_pyright(tmp_path: Path) -> None:
    pyright = _pyright()
    if pyright is None:
        pytest.skip("pyright is not installed (dev group)")
    good = _write(tmp_path, "good.py", GOOD)
    bad = _write(tmp_path, "bad.py", BAD)
    command = [pyright, "--outputjson", "--pythonpath", sys.executable, str(good), str(bad)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        pytest.skip("pyright did not start (it fetches node packages on first use)")
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.skip(f"pyright could not run here: {(done.stdout + done.stderr)[:300]}")
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    assert [d for d in errors if d["file"] == str(good)] == []
    assert len([d for d in errors if d["file"] == str(bad)]) == 3, errors
