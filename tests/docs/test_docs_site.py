"""The documentation site builds strict, and its search finds every setting by name.

The build is MkDocs' own (``mkdocs build --strict``, as ``make docs`` runs it): a broken
link or anchor, a page left out of the navigation, a reference mkdocstrings cannot resolve
or a docstring griffe cannot read fails it.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rerank_integrations import DIALECTS, RerankClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One strict build of the site, into a scratch folder."""
    out = tmp_path_factory.mktemp("site")
    completed = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1"},
    )
    assert completed.returncode == 0, completed.stderr[-5000:]
    return out


def _setting_names() -> list[str]:
    try:
        from rerank_integrations._settings import SETTINGS  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        names = list(inspect.signature(RerankClient).parameters)
    else:
        names = list(SETTINGS)
    from langchain_core.documents import BaseDocumentCompressor
    from llama_index.core.postprocessor.types import BaseNodePostprocessor

    from rerank_integrations.langchain import RerankCompressor
    from rerank_integrations.llama_index import RerankPostprocessor

    ours = {*RerankCompressor.model_fields, *RerankPostprocessor.model_fields}
    theirs = {*BaseDocumentCompressor.model_fields, *BaseNodePostprocessor.model_fields}
    return sorted({*names, *(ours - theirs)})


def test_the_site_builds_strict(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "reference" / "settings" / "index.html").is_file()
    assert (site / "api" / "client" / "index.html").is_file()


def test_search_finds_every_setting_by_name(site: Path) -> None:
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    settings_pages = [
        entry["text"]
        for entry in index["docs"]
        if entry["location"].startswith("reference/settings/")
    ]
    text = " ".join(settings_pages)
    missing = [name for name in _setting_names() if name not in text]

    assert settings_pages
    assert missing == []


def test_search_finds_every_command_and_error(site: Path) -> None:
    from rerank_integrations import _exceptions

    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    text = " ".join(entry["text"] for entry in index["docs"])

    for name in _exceptions.__all__:
        assert name in text
    for command in ("rerank", "batch", "check", "demo", "serve"):
        assert f"rerank-integrations {command}" in text


def test_the_dialect_table_agrees_with_the_dialects() -> None:
    """Each row's default path and documents per request are the dialect's own."""
    page = (ROOT / "docs" / "providers" / "index.md").read_text(encoding="utf-8")
    rows = dict(
        re.findall(r"^\| `(\w+)`(?: \(default\))? \| [^|]+ \| `([^`]+)`[^|]* \|", page, re.M)
    )
    assert sorted(rows) == sorted(DIALECTS)
    for name, dialect in DIALECTS.items():
        path = rows[name]
        expected = dialect.default_path
        if dialect.query_params:
            expected += "?" + "&".join(f"{k}={v}" for k, v in dialect.query_params.items())
        assert path == expected, name
    counts = dict(
        re.findall(
            r"^\| `(\w+)`(?: \(default\))? \| [^|]+ \| `[^`]+`[^|]* \| ([\d,]+) \|", page, re.M
        )
    )
    for name, dialect in DIALECTS.items():
        assert int(counts[name].replace(",", "")) == dialect.max_documents_per_request, name


def test_every_dialect_has_a_family_page() -> None:
    index = (ROOT / "docs" / "providers" / "index.md").read_text(encoding="utf-8")
    families = re.findall(r"^\| \[[^\]]+\]\((\w+)\.md\) \| (.*) \|$", index, re.M)
    listed = [name for _, cell in families for name in re.findall(r"`(\w+)`", cell)]

    assert sorted(listed) == sorted(DIALECTS)
    for page, _ in families:
        assert (ROOT / "docs" / "providers" / f"{page}.md").is_file()


def test_benchmark_figures_are_quoted_from_the_benchmark_only() -> None:
    """A ratio written into a page by hand would drift from the next ``make bench``:
    every ``0.97x`` on a page must be one BENCHMARKS.md (included by the performance page)
    holds."""
    benchmarks = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    stray = [
        (page.name, ratio)
        for page in pages
        for ratio in re.findall(r"\b\d+\.\d+x\b", page.read_text(encoding="utf-8"))
        if ratio not in benchmarks
    ]
    assert stray == []


def test_the_readme_counts_the_dialects_there_are() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    counted = re.search(r"One client speaks (\d+) rerank APIs", readme)
    assert counted is not None
    assert int(counted.group(1)) == len(DIALECTS)


def test_the_readme_is_a_front_page() -> None:
    """At most 200 lines, and every link into the docs leads to a page that exists."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs/|CHANGELOG|LICENSE)[^)#]*)", readme)

    assert len(readme.splitlines()) <= 200
    assert links
    for link in links:
        assert (ROOT / link).is_file(), link
