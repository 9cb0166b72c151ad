"""The README's LangChain quick start and recipes: the quick start runs where
``langchain_classic`` cannot be imported (against a rerank server on 127.0.0.1, sync and async),
and every block that imports our LangChain classes passes ``mypy --strict``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import API_KEY, ScriptedServer

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
OURS = "from rerank_integrations.langchain import"


def section(title: str, following: str) -> str:
    start = README.index(f"## {title}")
    return README[start : README.index(f"## {following}", start)]


LANGCHAIN = section("Quick start: LangChain", "Quick start: LlamaIndex")
QUICK_START = BLOCK.findall(LANGCHAIN)[0]
OUR_BLOCKS = [block for block in BLOCK.findall(README) if OURS in block]

# Makes ``import langchain_classic`` fail as if it were not installed.
BLOCKER = """
import importlib.abc, sys

class _NoClassic(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "langchain_classic" or name.startswith("langchain_classic."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoClassic())
"""

# What the quick start assumes the reader has: a vector store.
VECTOR_STORE = """
from langchain_core.documents import Document
from langchain_core.vectorstores import InMemoryVectorStore
from rerank_integrations.demo import langchain_embeddings

vector_store = InMemoryVectorStore(langchain_embeddings())
vector_store.add_documents([
    Document(id="descale", page_content="To descale an espresso machine, run citric acid through."),
    Document(id="grind", page_content="A burr grinder gives an even grind for espresso."),
    Document(id="milk", page_content="Steam milk to about 60 degrees for a latte."),
])
"""

CHECKS = """
assert "langchain_classic" not in sys.modules
assert [d.id for d in docs][0] == "descale", docs
"""


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(api_key=API_KEY) as scripted:
        yield scripted


def test_quick_start_is_core_only() -> None:
    assert "langchain_classic" not in QUICK_START
    assert "RerankRetriever(" in QUICK_START


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_quick_start_runs_without_langchain_classic(mode: str, server: ScriptedServer) -> None:
    code = QUICK_START.replace("https://api.example.com/v1", server.base_url).replace(
        "sk-...", API_KEY
    )
    if mode == "async":
        call = 'retriever.invoke("How do I descale an espresso machine?")'
        assert call in code
        code = code.replace(
            call, 'asyncio.run(retriever.ainvoke("How do I descale an espresso machine?"))'
        )
    script = "\n".join(
        [BLOCKER, "import asyncio", "import langchain_core", VECTOR_STORE, code, CHECKS]
    )
    probe = "import langchain_classic"
    blocked = subprocess.run(
        [sys.executable, "-c", BLOCKER + "\n" + probe], capture_output=True, text=True, env=_env()
    )
    assert "No module named 'langchain_classic'" in blocked.stderr  # the blocker works

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=_env(), timeout=120
    )

    assert result.returncode == 0, result.stderr
    assert "('descale', " in result.stdout
    assert server.bodies[0]["query"] == "How do I descale an espresso machine?"


# Names the README blocks take as given, with their types (bound, so that pyright too
# reads them as given rather than unbound).
PRELUDE = """
from typing import cast

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langchain_core.vectorstores import VectorStore

vector_store = cast(VectorStore, object())
model = cast(BaseChatModel, object())
search_docs = cast(BaseTool, object())
candidates = cast(list[Document], object())
"""


def _blocks(folder: Path) -> list[str]:
    files = []
    for number, block in enumerate(OUR_BLOCKS):
        path = folder / f"readme_block_{number}.py"
        path.write_text(PRELUDE + "\n" + textwrap.dedent(block), encoding="utf-8")
        files.append(str(path))
    return files


def test_readme_blocks_pass_mypy_strict(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    assert len(OUR_BLOCKS) >= 5
    files = _blocks(tmp_path)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            # A block may import a library that ships no types (diskcache): the reader's
            # environment, not the block, decides how that is checked.
            "--disable-error-code",
            "import-untyped",
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            *files,
        ],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=600,
    )

    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert errors == [], result.stdout
    assert result.returncode in (0, 1), result.stderr


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT) if not path else f"{ROOT}{os.pathsep}{path}",
    }


def test_readme_blocks_pass_pyright(tmp_path: Path) -> None:
    pyright = Path(sys.executable).with_name("pyright")
    if not pyright.exists():
        pytest.skip("pyright is not installed (dev group)")
    assert len(OUR_BLOCKS) >= 5
    files = _blocks(tmp_path)
    try:
        result = subprocess.run(
            [str(pyright), "--outputjson", "--pythonpath", sys.executable, *files],
            capture_output=True,
            text=True,
            env=_env(),
            cwd=tmp_path,
            timeout=900,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("pyright did not start (it fetches its node package on first use)")
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.skip(f"pyright could not run here: {(result.stdout + result.stderr)[:300]}")
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    assert errors == []
