"""Every Python block of the README and of the documentation runs, against the local server.

The blocks are read with Sybil: the blocks of one page run in order in one namespace (a page
may build on its earlier blocks, as a reader does), a page's line numbers show in
tracebacks, and a block that needs a cloud account is marked in the Markdown with a comment
the site does not show::

    <!-- skip: next "cloud account: Google Cloud" -->

Such a block is skipped here and type-checked by ``test_cloud_examples_type_check``
instead. The others read the endpoint from ``RERANK_BASE_URL``, as the pages tell readers
to, so they run unchanged: here it points at the embedded BM25 server. Each page also finds
``vector_store`` (LangChain), ``index`` (LlamaIndex), ``candidates`` (LangChain
documents) and ``model`` (a chat model), which the pages say come from the reader's own
code; here they hold the demo corpus, and the model is a scripted one.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import unittest
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

from rerank_integrations.dialects import _registry
from rerank_integrations.server import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]
PAGES = [
    "README.md",
    *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")),
]
CLOUD = re.compile(r'<!-- skip: next "cloud account: ([^"]+)" -->\s*```python\n(.*?)```', re.S)
SKIP = re.compile(r"<!-- skip: next (.*?) -->")
PYTHON_BLOCK = re.compile(r"^```python\n", re.M)

# What a cloud block takes from the reader's code, with its type, for mypy.
READER_NAMES = """from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langchain_core.vectorstores import VectorStore

model: BaseChatModel
search_docs: BaseTool
vector_store: VectorStore
"""

SYBIL = Sybil(parsers=[PythonCodeBlockParser(), SkipParser()], path=str(ROOT))


def _python_blocks(text: str) -> int:
    return len(PYTHON_BLOCK.findall(text))


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    """The embedded BM25 server every block talks to."""
    with serve_in_thread() as server:
        yield server.base_url


@pytest.fixture(scope="module")
def reader_objects() -> Iterator[dict[str, Any]]:
    """What the pages take from the reader's code, built on the demo corpus; LlamaIndex's
    query engines get a mock LLM, as a reader's get theirs."""
    from langchain_core.documents import Document
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.vectorstores import InMemoryVectorStore
    from llama_index.core import Settings, VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.schema import TextNode

    from rerank_integrations.demo import langchain_embeddings, llama_index_embedding, load_passages

    passages = load_passages()
    documents = [Document(p.text, id=p.id, metadata={"topic": p.topic}) for p in passages]
    vector_store = InMemoryVectorStore(langchain_embeddings())
    vector_store.add_documents(documents)
    index = VectorStoreIndex(
        [TextNode(text=p.text, id_=p.id) for p in passages], embed_model=llama_index_embedding()
    )
    previous_llm = Settings._llm
    Settings.llm = MockLLM()
    model = GenericFakeChatModel(messages=itertools.cycle([AIMessage("Descale it monthly.")]))
    yield {
        "vector_store": vector_store,
        "index": index,
        "candidates": documents[:3],
        "model": model,
    }
    Settings._llm = previous_llm


@pytest.fixture
def reader_environment(
    server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The environment the pages describe: the endpoint and a key in ``RERANK_*``, a
    scratch working folder; dialects a page registers are gone afterwards."""
    for name in ("RERANK_MODEL", "RERANK_DIALECT", "RERANK_LONG_DOCUMENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RERANK_BASE_URL", server_url)
    monkeypatch.setenv("RERANK_API_KEY", "sk-docs-example")
    monkeypatch.chdir(tmp_path)
    registered = dict(_registry._REGISTERED)
    yield
    _registry._REGISTERED.clear()
    _registry._REGISTERED.update(registered)


@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_runs(
    page: str, reader_environment: None, reader_objects: dict[str, Any]
) -> None:
    document = SYBIL.parse(ROOT / page)
    document.namespace.update(reader_objects)
    ran, skipped = 0, []
    for example in document.examples():
        try:
            example.evaluate()
        except unittest.SkipTest as reason:
            skipped.append(str(reason))
            continue
        if example.parsed is not None and not isinstance(example.parsed, tuple):
            ran += 1
    for name in ("client", "compressor", "reranker"):
        closing = getattr(document.namespace.get(name), "close", None)
        if callable(closing):
            closing()
    text = (ROOT / page).read_text(encoding="utf-8")
    assert all(reason.startswith("cloud account: ") for reason in skipped), skipped
    assert ran + len(skipped) == _python_blocks(text), "a Python block was not read"


def test_only_cloud_blocks_are_skipped() -> None:
    """A skip marker that does not say which account the block needs is refused."""
    for page in PAGES:
        for reason in SKIP.findall((ROOT / page).read_text(encoding="utf-8")):
            assert reason.startswith('"cloud account: '), f"{page}: skip: next {reason}"


def test_cloud_examples_type_check(tmp_path: Path) -> None:
    """The blocks that need a cloud account pass ``mypy --strict`` as they are written."""
    blocks = [
        (page, code)
        for page in PAGES
        for _, code in CLOUD.findall((ROOT / page).read_text(encoding="utf-8"))
    ]
    assert blocks, "no cloud block found: the marker changed?"
    files = []
    for number, (page, code) in enumerate(blocks):
        path = tmp_path / f"example_{number}.py"
        path.write_text(f"# from {page}\n{READER_NAMES}\n{code}", encoding="utf-8")
        files.append(str(path))
    # Ray is typed but large: its own modules are taken as they declare themselves.
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\nstrict = True\nignore_missing_imports = True\npython_version = 3.10\n"
        "follow_imports = silent\n[mypy-ray.*]\nfollow_imports = skip\n",
        encoding="utf-8",
    )
    completed = subprocess.run(
        [sys.executable, "-m", "mypy", f"--config-file={config}", *files],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
