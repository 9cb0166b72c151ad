"""Every dialect over a real loopback HTTP connection: the client and both framework adapters,
sync and async, including calls with more documents than the dialect takes in one request."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from support import ScriptedServer, limit_message, run_mode, served_score

from rerank_integrations import (
    AuthenticationError,
    BadRequestError,
    RerankClient,
    RerankResponse,
)
from rerank_integrations._dialects import DIALECTS

KEY = "sk-dialect-SECRET-42"
MODEL = "test-reranker"
QUERY = "apple pie"
DOCUMENTS = ["pear tart", "apple pie recipe", "apple", "bicycle", "an apple pie", "pie"]


@dataclass(frozen=True)
class Target:
    """A dialect and the base URL suffix that selects its endpoint."""

    dialect: str
    suffix: str = ""

    @property
    def id(self) -> str:
        return self.dialect + self.suffix.replace("/", "-")


TARGETS = [Target(name) for name in sorted(DIALECTS)] + [Target("cohere", "/v1")]

# What each dialect reports: tokens, billing units, or nothing.
TOKENS = {"generic", "voyage", "mixedbread", "dashscope"}
UNITS = {"cohere", "pinecone"}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ScriptedServer]]:
    """One server per dialect for the whole module, started on first use."""
    started: dict[str, ScriptedServer] = {}
    yield started
    for server in started.values():
        server.close()


@pytest.fixture(params=TARGETS, ids=lambda target: target.id)
def target(request: pytest.FixtureRequest) -> Target:
    """Each dialect in turn (and Cohere once more on its v1 endpoint)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server(target: Target, servers: dict[str, ScriptedServer]) -> ScriptedServer:
    """The server of ``target``'s dialect, with no requests recorded."""
    if target.dialect not in servers:
        servers[target.dialect] = ScriptedServer(target.dialect, api_key=KEY)
    found = servers[target.dialect]
    found.reset()
    return found


def make_client(server: ScriptedServer, target: Target, **kwargs: Any) -> RerankClient:
    kwargs.setdefault("api_key", KEY)
    kwargs.setdefault("model", MODEL)
    return RerankClient(
        server.base_url + target.suffix,
        dialect=target.dialect,
        max_retries=0,
        timeout=10,
        **kwargs,
    )


def rerank(mode: str, client: RerankClient, query: str, documents: list[str], **kw: Any) -> Any:
    """``rerank`` or ``arerank`` (closing the loop's pool before the loop ends), by ``mode``."""

    async def in_loop() -> RerankResponse:
        try:
            return await client.arerank(query, documents, **kw)
        finally:
            await client.aclose()

    try:
        return run_mode(mode, lambda: client.rerank(query, documents, **kw), in_loop)
    finally:
        client.close()


def expected(dialect: str, query: str, documents: list[str], top_n: int) -> list[int]:
    """The server's ranking, best first, ties in the caller's order."""
    order = sorted(
        range(len(documents)), key=lambda i: (-served_score(dialect, query, documents[i]), i)
    )
    return order[:top_n]


def test_ranking_in_every_dialect(mode: str, target: Target, server: ScriptedServer) -> None:
    client = make_client(server, target)
    response = rerank(mode, client, QUERY, DOCUMENTS, top_n=5)

    name = target.dialect
    best = expected(name, QUERY, DOCUMENTS, 5)
    assert [r.index for r in response.results] == best
    assert [r.relevance_score for r in response.results] == [
        served_score(name, QUERY, DOCUMENTS[i]) for i in best
    ]
    assert [r.document for r in response.results] == [DOCUMENTS[i] for i in best]
    if name == "nim":  # raw logits pass through, negative ones included
        assert response.results[-1].relevance_score < 0

    first = server.received[0]
    assert first.path == urlsplit(client.endpoint).path
    assert first.asked is not None
    assert first.asked.wants_documents is False
    assert first.asked.model == (None if name == "tei" else MODEL)
    assert first.asked.top_n == (None if name in ("tei", "nim") else 5)
    usage = response.usage
    if name in TOKENS:
        assert usage is not None and usage.total_tokens and usage.billed_units is None
    elif name in UNITS:
        assert usage is not None and usage.billed_units == 1 and usage.total_tokens is None
    else:
        assert usage is None


def test_more_documents_than_the_limit_are_batched(
    mode: str, target: Target, server: ScriptedServer
) -> None:
    name = target.dialect
    limit = DIALECTS[name].max_documents_per_request
    count = 2 * limit + 3
    documents = [f"doc {i} apple" if i % 7 == 3 else f"doc {i} pear" for i in range(count)]
    client = make_client(server, target)
    assert client.max_documents_per_request == limit

    response = rerank(mode, client, "apple", documents, top_n=5)

    sizes = sorted(len(r.asked.documents) for r in server.received if r.asked is not None)
    assert len(server.received) == math.ceil(count / limit) == 3
    assert sizes == [3, limit, limit]
    best = expected(name, "apple", documents, 5)
    assert [r.index for r in response.results] == best
    assert [r.relevance_score for r in response.results] == [
        served_score(name, "apple", documents[i]) for i in best
    ]
    assert [r.document for r in response.results] == [documents[r.index] for r in response.results]


def test_the_server_refuses_more_than_its_limit(
    mode: str, target: Target, server: ScriptedServer
) -> None:
    limit = DIALECTS[target.dialect].max_documents_per_request
    client = make_client(server, target, max_documents_per_request=limit + 1)
    documents = [f"doc {i}" for i in range(limit + 1)]
    with pytest.raises(BadRequestError, match=limit_message(limit + 1, limit)) as info:
        rerank(mode, client, "q", documents)
    assert 400 <= info.value.status_code < 500
    assert len(server.received) == 1


def test_a_wrong_key_is_refused_with_the_server_message(
    mode: str, target: Target, server: ScriptedServer
) -> None:
    client = make_client(server, target, api_key="sk-wrong-key")
    with pytest.raises(AuthenticationError) as info:
        rerank(mode, client, "q", ["a", "b"])
    message = str(info.value)
    assert "sk-wrong-key" not in message
    if target.dialect == "tei":
        assert "empty body" in message  # TEI answers a bad key with a bare 401
    else:
        assert "Invalid API Key" in message or "invalid api token" in message


# -- the framework adapters in every dialect ----------------------------------------------

try:
    from langchain_core.documents import Document

    from rerank_integrations.langchain import RerankCompressor
except ImportError:  # pragma: no cover - the adapter or LangChain is not there
    RerankCompressor = None  # type: ignore[assignment,misc]

try:
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerank_integrations.llama_index import RerankPostprocessor
except ImportError:  # pragma: no cover - the adapter or LlamaIndex is not there
    RerankPostprocessor = None  # type: ignore[assignment,misc]


def adapter_settings(server: ScriptedServer, target: Target) -> dict[str, Any]:
    return {
        "base_url": server.base_url + target.suffix,
        "api_key": KEY,
        "model": MODEL,
        "dialect": target.dialect,
        "top_n": 2,
        "max_retries": 0,
    }


@pytest.mark.skipif(RerankCompressor is None, reason="the LangChain adapter does not import")
def test_langchain_compressor_in_every_dialect(
    mode: str, target: Target, server: ScriptedServer
) -> None:
    compressor = RerankCompressor(**adapter_settings(server, target))
    documents = [Document(page_content=text, metadata={"i": i}) for i, text in enumerate(DOCUMENTS)]

    async def in_loop() -> Any:
        try:
            return await compressor.acompress_documents(documents, QUERY)
        finally:
            await compressor.rerank_client.aclose()

    try:
        out = run_mode(mode, lambda: compressor.compress_documents(documents, QUERY), in_loop)
    finally:
        compressor.rerank_client.close()
    best = expected(target.dialect, QUERY, DOCUMENTS, 2)
    assert [d.metadata["i"] for d in out] == best
    assert [d.metadata["relevance_score"] for d in out] == [
        served_score(target.dialect, QUERY, DOCUMENTS[i]) for i in best
    ]
    assert len(server.received) == 1


@pytest.mark.skipif(RerankPostprocessor is None, reason="the LlamaIndex adapter does not import")
def test_llama_index_postprocessor_in_every_dialect(
    mode: str, target: Target, server: ScriptedServer
) -> None:
    postprocessor = RerankPostprocessor(**adapter_settings(server, target))
    nodes = [
        NodeWithScore(node=TextNode(text=text, id_=f"n{i}"), score=0.1)
        for i, text in enumerate(DOCUMENTS)
    ]

    async def in_loop() -> Any:
        try:
            return await postprocessor.apostprocess_nodes(nodes, query_str=QUERY)
        finally:
            await postprocessor.rerank_client.aclose()

    try:
        out = run_mode(
            mode, lambda: postprocessor.postprocess_nodes(nodes, query_str=QUERY), in_loop
        )
    finally:
        postprocessor.rerank_client.close()
    best = expected(target.dialect, QUERY, DOCUMENTS, 2)
    assert [item.node.node_id for item in out] == [f"n{i}" for i in best]
    assert [item.score for item in out] == [
        served_score(target.dialect, QUERY, DOCUMENTS[i]) for i in best
    ]
    assert len(server.received) == 1
