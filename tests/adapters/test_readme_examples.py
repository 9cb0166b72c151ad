"""The README keeps its promises: every public name it and ``__all__`` listed before the
package was laid out by stage still imports, and its Python examples run, unchanged, against
the embedded server on 127.0.0.1.

The examples run in order, each in its own namespace holding what the earlier ones imported,
as a reader who pastes them one after the other would run them. The few names a block takes
from the reader's own code (``vector_store``, ``index``, ``candidates``, ``docs``, ``rows``,
``client``, a chat ``model``) are given beforehand, the example hosts
(``https://api.example.com/v1``...) are the local server, and so is ``RERANK_BASE_URL`` for
the blocks that name only a dialect. A block that needs a cloud account or cloud storage is
skipped by the comment ``<!-- readme-test: skip (why) -->`` on the line before it;
:data:`SKIPPED` lists them.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import ScriptedServer, json_reply

from rerank_integrations.dialects import _registry
from rerank_integrations.server import serve_in_thread

README = Path(__file__).resolve().parents[2] / "README.md"
SKIP_MARK = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<why>[^)]*)\)\s*-->\s*$")

#: Every public name the README imported and ``__all__`` listed at 06f0043, the last commit
#: before the package was laid out by stage: (module, name).
PUBLIC_NAMES: list[tuple[str, str]] = [
    # rerank_integrations.__all__
    ("rerank_integrations", "DIALECTS"),
    ("rerank_integrations", "NOT_GIVEN"),
    ("rerank_integrations", "APIConnectionError"),
    ("rerank_integrations", "APIStatusError"),
    ("rerank_integrations", "APITimeoutError"),
    ("rerank_integrations", "AuthenticationError"),
    ("rerank_integrations", "BadRequestError"),
    ("rerank_integrations", "ConfigurationError"),
    ("rerank_integrations", "GatewayTimeoutError"),
    ("rerank_integrations", "Image"),
    ("rerank_integrations", "Limiter"),
    ("rerank_integrations", "NotGiven"),
    ("rerank_integrations", "RateLimit"),
    ("rerank_integrations", "RateLimitError"),
    ("rerank_integrations", "RateLimiter"),
    ("rerank_integrations", "RequestTimeoutError"),
    ("rerank_integrations", "RerankCache"),
    ("rerank_integrations", "RerankClient"),
    ("rerank_integrations", "RerankError"),
    ("rerank_integrations", "RerankResponse"),
    ("rerank_integrations", "RerankResult"),
    ("rerank_integrations", "RerankStats"),
    ("rerank_integrations", "ResponseFormatError"),
    ("rerank_integrations", "RetryPolicy"),
    ("rerank_integrations", "ServerError"),
    ("rerank_integrations", "ToolInputError"),
    ("rerank_integrations", "Usage"),
    ("rerank_integrations", "__version__"),
    ("rerank_integrations", "backoff_delay"),
    ("rerank_integrations", "next_wait"),
    ("rerank_integrations", "parse_retry_after"),
    # the README's imports
    ("rerank_integrations", "batch"),
    ("rerank_integrations", "testing"),
    ("rerank_integrations.langchain", "RerankCompressor"),
    ("rerank_integrations.llama_index", "RerankPostprocessor"),
    ("rerank_integrations.server", "serve_in_thread"),
    ("rerank_integrations.ray", "Reranker"),
]

#: The README's blocks this test does not run, by their first line, and why. The front page
#: holds only blocks that run here; the ones that need a cloud account or a cluster live in
#: the documentation, where tests/docs/test_docs_examples.py marks and type-checks them.
SKIPPED: dict[str, str] = {}

#: The example hosts the README writes, and the local server stands in for each of them.
EXAMPLE_HOSTS = (
    "https://api.example.com/v1",
    "http://tei.internal:8080",
    "https://rank.acme.example",
)

QUERY = "How do I descale an espresso machine?"
TEXTS = [
    "Descale an espresso machine with citric acid every two months.",
    "A burr grinder gives an even grind.",
    "Run the descaling solution through the boiler, then rinse twice.",
    "Milk froths best when cold.",
]


def readme_blocks() -> list[tuple[str, str | None]]:
    """The README's ```python blocks in order, each with the reason it is skipped, if it is."""
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks: list[tuple[str, str | None]] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```python":
            mark = SKIP_MARK.search(lines[index - 1]) if index else None
            end = lines.index("```", index + 1)
            blocks.append(("\n".join(lines[index + 1 : end]) + "\n", mark["why"] if mark else None))
            index = end
        index += 1
    return blocks


@pytest.mark.parametrize(
    ("module", "name"), PUBLIC_NAMES, ids=[f"{m}.{n}" for m, n in PUBLIC_NAMES]
)
def test_every_public_name_of_before_still_imports(module: str, name: str) -> None:
    if module == "rerank_integrations.ray":
        pytest.importorskip("ray")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated names still import
        namespace: dict[str, Any] = {}
        exec(f"from {module} import {name}", namespace)  # as a user writes it
    assert namespace[name] is not None


def test_the_skipped_blocks_are_the_listed_ones() -> None:
    skipped = {code.splitlines()[0]: why for code, why in readme_blocks() if why}
    assert skipped == SKIPPED, "mark the block in README.md or update SKIPPED"


@pytest.fixture
def registry() -> Iterator[None]:
    """A dialect a README block registers is gone after the test."""
    before = dict(_registry._REGISTERED)
    yield
    _registry._REGISTERED.clear()
    _registry._REGISTERED.update(before)


def readers_names(scripted_server: ScriptedServer) -> dict[str, Any]:
    """What the README's blocks take from the reader's own code."""
    from langchain_core.documents import Document
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.language_models import FakeListChatModel
    from langchain_core.vectorstores import InMemoryVectorStore
    from llama_index.core import Document as LlamaDocument
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import MockEmbedding

    from rerank_integrations import RerankClient

    vector_store = InMemoryVectorStore(DeterministicFakeEmbedding(size=16))
    vector_store.add_documents(
        [Document(page_content=text, id=str(i)) for i, text in enumerate(TEXTS)]
    )
    index = VectorStoreIndex.from_documents(
        [LlamaDocument(text=text) for text in TEXTS], embed_model=MockEmbedding(embed_dim=16)
    )
    # The testing-switch block shows one wait of 2 s: the server asks for it once.
    scripted_server.queue(
        json_reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "2"})
    )
    return {
        "vector_store": vector_store,
        "index": index,
        "candidates": [Document(page_content=text) for text in TEXTS],
        "docs": TEXTS,
        "rows": [{"id": str(i), "query": QUERY, "documents": TEXTS} for i in range(3)],
        "client": RerankClient(scripted_server.base_url),
        "model": FakeListChatModel(responses=["Run citric acid through the boiler."]),
        "__name__": "readme",
    }


@pytest.mark.usefixtures("registry")
def test_the_readmes_examples_run_against_the_local_server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scripted_server: ScriptedServer,
) -> None:
    from llama_index.core import Settings
    from llama_index.core.llms import MockLLM

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs.jsonl").write_text(
        "".join(
            json.dumps({"id": str(i), "query": QUERY, "documents": TEXTS}) + "\n" for i in range(4)
        )
    )
    monkeypatch.setattr(Settings, "_llm", MockLLM(max_tokens=8))
    ran: list[str] = []
    with serve_in_thread(seed=1) as server:
        monkeypatch.setenv("RERANK_BASE_URL", f"{server.base_url}/v1")
        monkeypatch.setenv("RERANK_API_KEY", "sk-local")
        readers = readers_names(scripted_server)
        imported: dict[str, Any] = {}
        for code, skipped in readme_blocks():
            if skipped:
                continue
            for host in EXAMPLE_HOSTS:
                code = code.replace(host, f"{server.base_url}/v1")
            namespace = {**readers, **imported}
            exec(compile(code, f"README.md: {code.splitlines()[0]}", "exec"), namespace)
            imported.update({name: namespace[name] for name in imported_names(code)})
            ran.append(code.splitlines()[0])
        readers["client"].close()
    assert len(ran) == len(readme_blocks()) - len(SKIPPED) >= 3  # one quick start a framework


def imported_names(code: str) -> list[str]:
    """The names a block's import statements bind: a reader has them in the next blocks."""
    names: list[str] = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names += [(alias.asname or alias.name).split(".")[0] for alias in node.names]
    return names
