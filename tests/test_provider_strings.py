"""Provider strings, ``"<dialect>:<model>"``: the prefix picks the dialect and its public
base URL where it names a dialect we have, an explicit ``dialect=`` wins, and model names
that merely hold a colon are sent as they are; on the client and both adapters, sync and
async."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from support import ScriptedServer, run_mode

from rerank_integrations import RerankClient
from rerank_integrations.dialects._registry import split_provider


@pytest.mark.parametrize(
    ("model", "dialect", "expected"),
    [
        ("cohere:rerank-v3.5", None, ("cohere", "rerank-v3.5")),
        ("Voyage:rerank-2.5", None, ("voyage", "rerank-2.5")),
        ("openrouter:cohere/rerank-v3.5", None, ("openrouter", "cohere/rerank-v3.5")),
        (
            "jina:jina-reranker-v2-base-multilingual",
            None,
            ("jina", "jina-reranker-v2-base-multilingual"),
        ),
        # model names that hold a colon and name no dialect
        ("arn:aws:bedrock:us-east-1::foundation-model/amazon.rerank-v1:0", None, None),
        ("qwen3-reranker:0.6b", None, None),
        ("amazon.rerank-v1:0", None, None),
        ("cohere.rerank-v3-5:0", None, None),
        ("cohere:", None, None),
        ("rerank-v3.5", None, None),
        # an explicit dialect wins; its own prefix is dropped, another is kept
        ("cohere:rerank-v3.5", "cohere", (None, "rerank-v3.5")),
        ("cohere:rerank-v3.5", "generic", (None, "cohere:rerank-v3.5")),
    ],
)
def test_the_rule(model: str, dialect: str | None, expected: Any) -> None:
    assert split_provider(model, dialect) == (expected or (None, model))


def test_the_prefix_picks_the_dialect_and_its_public_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RERANK_BASE_URL", "RERANK_DIALECT", "RERANK_MODEL"):
        monkeypatch.delenv(name, raising=False)
    client = RerankClient(api_key="k", model="cohere:rerank-v3.5")
    assert (client.dialect, client.model) == ("cohere", "rerank-v3.5")
    assert client.endpoint == "https://api.cohere.com/v2/rerank"
    routed = RerankClient(api_key="k", model="openrouter:cohere/rerank-v3.5")
    assert routed.endpoint == "https://openrouter.ai/api/v1/rerank"
    assert routed.model == "cohere/rerank-v3.5"
    monkeypatch.setenv("RERANK_MODEL", "voyage:rerank-2.5")
    from_env = RerankClient(api_key="k")
    assert (from_env.dialect, from_env.model) == ("voyage", "rerank-2.5")
    monkeypatch.setenv("RERANK_DIALECT", "generic")
    explicit = RerankClient("https://gateway.test/v1", api_key="k")
    assert (explicit.dialect, explicit.model) == ("generic", "voyage:rerank-2.5")


def test_a_base_url_given_is_kept() -> None:
    client = RerankClient("https://proxy.test/cohere", model="cohere:rerank-v3.5")
    assert client.endpoint == "https://proxy.test/cohere/v2/rerank"
    assert client.dialect == "cohere"


def _asked(server: ScriptedServer) -> list[tuple[str | None, str]]:
    return [(r.asked.model, r.path) for r in server.received if r.asked is not None]


@pytest.fixture
def cohere_server() -> Any:
    server = ScriptedServer("cohere")
    yield server
    server.close()


def test_the_client_sends_the_model_after_the_colon(
    mode: str, cohere_server: ScriptedServer
) -> None:
    client = RerankClient(cohere_server.base_url, model="cohere:rerank-v3.5")
    try:
        run_mode(
            mode,
            lambda: client.rerank("apple", ["apple pie", "pear"]),
            lambda: client.arerank("apple", ["apple pie", "pear"]),
        )
        # a call's own provider string naming the client's dialect is read the same way
        run_mode(
            mode,
            lambda: client.rerank("apple", ["apple pie"], model="cohere:rerank-v4.0-fast"),
            lambda: client.arerank("apple", ["apple pie"], model="cohere:rerank-v4.0-fast"),
        )
    finally:
        client.close()
    assert _asked(cohere_server) == [
        ("rerank-v3.5", "/v2/rerank"),
        ("rerank-v4.0-fast", "/v2/rerank"),
    ]


def test_the_langchain_adapter_takes_a_provider_string(
    mode: str, cohere_server: ScriptedServer
) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    from rerank_integrations.langchain import RerankCompressor

    compressor = RerankCompressor(base_url=cohere_server.base_url, model="cohere:rerank-v3.5")
    assert compressor.rerank_client.dialect == "cohere"
    documents = [Document(page_content=text) for text in ("apple pie", "pear")]
    try:
        out = run_mode(
            mode,
            lambda: compressor.compress_documents(documents, "apple"),
            lambda: compressor.acompress_documents(documents, "apple"),
        )
    finally:
        compressor.close()
    assert out[0].page_content == "apple pie"
    assert _asked(cohere_server) == [("rerank-v3.5", "/v2/rerank")]


def test_the_llama_index_adapter_takes_a_provider_string(
    mode: str, cohere_server: ScriptedServer
) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerank_integrations.llama_index import RerankPostprocessor

    postprocessor = RerankPostprocessor(base_url=cohere_server.base_url, model="cohere:rerank-v3.5")
    nodes = [NodeWithScore(node=TextNode(text=text)) for text in ("apple pie", "pear")]
    try:
        out = run_mode(
            mode,
            lambda: postprocessor.postprocess_nodes(nodes, query_str="apple"),
            lambda: postprocessor.apostprocess_nodes(nodes, query_str="apple"),
        )
    finally:
        postprocessor.close()
    assert out[0].node.get_content() == "apple pie"
    assert _asked(cohere_server) == [("rerank-v3.5", "/v2/rerank")]


def test_an_explicit_dialect_wins(mode: str) -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(200, json={"results": [{"index": 0, "relevance_score": 0.5}]})

    transport = httpx.MockTransport(handler)
    client = RerankClient(
        "https://gateway.test/v1",
        model="cohere:rerank-v3.5",
        dialect="generic",
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    run_mode(mode, lambda: client.rerank("q", ["d"]), lambda: client.arerank("q", ["d"]))
    assert b'"model":"cohere:rerank-v3.5"' in bodies[0].replace(b" ", b"")
    assert client.endpoint == "https://gateway.test/v1/rerank"
