"""Every dialect over a real loopback HTTP connection: the client and both framework adapters,
sync and async, including calls with more documents than the dialect takes in one request."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from support import (
    IAM_UNKNOWN_KEY,
    OCI_UNAUTHENTICATED,
    ScriptedServer,
    limit_message,
    oci_test_key,
    run_mode,
    served_score,
)

from rerank_integrations import (
    AuthenticationError,
    RerankClient,
    RerankResponse,
)
from rerank_integrations.dialects import DIALECTS

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
UNITS = {"cohere", "pinecone", "vercel"}
BOTH = {"openrouter"}  # tokens and search units
NO_USAGE = {"tei", "nim", "vertex", "bedrock", "oci", "zeroentropy", "contextual", "sglang"}
TOKENS = set(DIALECTS) - UNITS - NO_USAGE - BOTH
# Dialects whose requests carry no top_n: every document is scored, we trim.
NO_TOP_N = {"tei", "nim", "deepinfra"}

AWS_KEY, AWS_SECRET = "AKIDWIRETEST", "aws-wire-SECRET-7"
REGION = "us-east-1"
OCI_KEY, OCI_OTHER_KEY = oci_test_key("wire"), oci_test_key("wire-unknown")
COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaawiretest"
# The model as each server reads it back.
SERVED_MODEL = {
    "tei": None,
    "bedrock": f"arn:aws:bedrock:{REGION}::foundation-model/{MODEL}",
}


def connection(server: ScriptedServer, target: Target, api_key: str = KEY) -> dict[str, Any]:
    """The settings that reach ``server`` in its dialect: the base URL and the credentials
    (an IBM API key and the server's IAM endpoint, AWS keys, a token or a key)."""
    settings: dict[str, Any] = {"base_url": server.base_url + target.suffix}
    if target.dialect == "watsonx":
        settings.update(api_key=api_key, auth_url=server.token_url)
        settings["extra_body"] = {"project_id": "test-project"}
    elif target.dialect == "bedrock":
        secret = AWS_SECRET if api_key == KEY else api_key
        settings.update(location=REGION)
        settings["credentials"] = {"aws_access_key_id": AWS_KEY, "aws_secret_access_key": secret}
    elif target.dialect == "oci":
        key = OCI_KEY if api_key == KEY else OCI_OTHER_KEY  # a key the server does not know
        settings.update(credentials=key.config, project=COMPARTMENT, location=REGION)
    elif target.dialect == "vertex":
        settings.update(api_key=api_key, project="test-project")
    else:
        settings["api_key"] = api_key
    return settings


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ScriptedServer]]:
    """One server per dialect for the whole module, started on first use."""
    started: dict[str, ScriptedServer] = {}
    yield started
    for server in started.values():
        server.close()


def server_of(servers: dict[str, ScriptedServer], dialect: str) -> ScriptedServer:
    """The module's server of ``dialect`` (wanting ``KEY``, AWS keys for Bedrock, or a
    signature by ``OCI_KEY`` for OCI), with no requests recorded."""
    if dialect not in servers:
        secrets = {AWS_KEY: AWS_SECRET}
        oci_keys = {OCI_KEY.key_id: OCI_KEY.public_key}
        servers[dialect] = ScriptedServer(
            dialect, api_key=KEY, aws_secrets=secrets, oci_keys=oci_keys
        )
    found = servers[dialect]
    found.reset()
    return found


@pytest.fixture(params=TARGETS, ids=lambda target: target.id)
def target(request: pytest.FixtureRequest) -> Target:
    """Each dialect in turn (and Cohere once more on its v1 endpoint)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server(target: Target, servers: dict[str, ScriptedServer]) -> ScriptedServer:
    """The server of ``target``'s dialect, with no requests recorded."""
    return server_of(servers, target.dialect)


def make_client(server: ScriptedServer, target: Target, **kwargs: Any) -> RerankClient:
    settings = connection(server, target, kwargs.pop("api_key", KEY))
    kwargs.setdefault("model", MODEL)
    return RerankClient(dialect=target.dialect, max_retries=0, timeout=10, **settings, **kwargs)


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
    url = client.settings.dialect.request_url(client.endpoint, MODEL)
    assert urlsplit(first.path).path == urlsplit(url).path
    assert first.asked is not None
    assert first.asked.wants_documents is False
    assert first.asked.model == SERVED_MODEL.get(name, MODEL)
    assert first.asked.top_n == (None if name in NO_TOP_N else 5)
    usage = response.usage
    if name in TOKENS:
        assert usage is not None and usage.total_tokens and usage.billed_units is None
    elif name in UNITS:
        assert usage is not None and usage.billed_units == 1 and usage.total_tokens is None
        assert usage.search_units == 1 and usage.search_units_source == "reported"
    elif name in BOTH:
        assert usage is not None and usage.billed_units == 1 and usage.total_tokens
    else:  # nothing reported: the counts are unknown, never 0
        assert usage is not None and usage.requests == len(server.received)
        assert (usage.total_tokens, usage.billed_units, usage.input_tokens) == (None, None, None)
    assert usage.documents == sum(
        len(received.asked.documents) for received in server.received if received.asked
    )


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


def test_a_batch_the_server_refuses_as_too_big_is_split_and_its_size_kept(
    mode: str, target: Target, server: ScriptedServer
) -> None:
    limit = DIALECTS[target.dialect].max_documents_per_request
    client = make_client(server, target, max_documents_per_request=limit + 1)
    documents = [f"doc {i}" for i in range(limit + 1)]
    # The server refuses limit + 1 documents (in its own words, limit_message); the batch is
    # split in half and the call goes through all the same.
    response = rerank(mode, client, "q", documents)
    assert sorted(result.index for result in response.results) == list(range(limit + 1))
    assert len(server.received) == 3  # the refused request, then its two halves
    learned = client._connection.learned.documents
    assert learned is not None
    assert learned <= limit
    assert limit_message(limit + 1, limit)  # the words the refusal was recognised by
    rerank(mode, client, "q", documents)  # a later call plans with what the server took
    assert len(server.received) == 3 + -(-(limit + 1) // learned)


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
    elif target.dialect == "watsonx":
        assert IAM_UNKNOWN_KEY in message  # IAM refuses to exchange it
        assert not server.received
    elif target.dialect == "bedrock":
        assert "signature we calculated does not match" in message
    elif target.dialect == "oci":
        assert OCI_UNAUTHENTICATED in message and "(NotAuthenticated)" in message
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
        **connection(server, target),
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


# -- what only some dialects do -------------------------------------------------------------


def test_bedrock_pages_make_one_ranking(mode: str, servers: dict[str, ScriptedServer]) -> None:
    target = Target("bedrock")
    server = server_of(servers, "bedrock")
    server.page_size = 2
    try:
        response = rerank(mode, make_client(server, target), QUERY, DOCUMENTS, top_n=5)
    finally:
        server.page_size = None
    best = expected("bedrock", QUERY, DOCUMENTS, 5)
    assert [r.index for r in response.results] == best
    tokens = [r.asked.page_token for r in server.received if r.asked is not None]
    assert len(tokens) == 3 and tokens[0] is None and None not in tokens[1:]


def test_watsonx_exchanges_the_key_once_for_every_batch(
    mode: str, servers: dict[str, ScriptedServer]
) -> None:
    target = Target("watsonx")
    server = server_of(servers, "watsonx")
    documents = [f"doc {i} apple" for i in range(40)]
    client = make_client(server, target, max_documents_per_request=4, max_concurrency=8)
    response = rerank(mode, client, "apple", documents, top_n=3)
    assert len(response.results) == 3
    assert len(server.received) == 10
    assert len(server.token_requests) == 1  # fetched once, before the batches fan out


@pytest.mark.skipif(
    RerankCompressor is None or RerankPostprocessor is None, reason="an adapter does not import"
)
@pytest.mark.parametrize("adapter", ["langchain", "llama_index"])
def test_adapters_batch_at_the_dialects_limit(
    mode: str, target: Target, server: ScriptedServer, adapter: str
) -> None:
    limit = DIALECTS[target.dialect].max_documents_per_request
    texts = [f"doc {i} apple" if i % 5 == 2 else f"doc {i} pear" for i in range(limit + 1)]
    settings = {**adapter_settings(server, target), "top_n": 3}
    best = expected(target.dialect, "apple", texts, 3)
    if adapter == "langchain":
        compressor = RerankCompressor(**settings)
        documents = [Document(page_content=t, metadata={"i": i}) for i, t in enumerate(texts)]
        client = compressor.rerank_client

        def sync_call() -> list[int]:
            return [d.metadata["i"] for d in compressor.compress_documents(documents, "apple")]

        async def async_call() -> list[int]:
            out = await compressor.acompress_documents(documents, "apple")
            return [d.metadata["i"] for d in out]
    else:
        postprocessor = RerankPostprocessor(**settings)
        nodes = [NodeWithScore(node=TextNode(text=t, id_=str(i))) for i, t in enumerate(texts)]
        client = postprocessor.rerank_client

        def sync_call() -> list[int]:
            out = postprocessor.postprocess_nodes(nodes, query_str="apple")
            return [int(item.node.node_id) for item in out]

        async def async_call() -> list[int]:
            out = await postprocessor.apostprocess_nodes(nodes, query_str="apple")
            return [int(item.node.node_id) for item in out]

    async def in_loop() -> list[int]:
        try:
            return await async_call()
        finally:
            await client.aclose()

    try:
        assert run_mode(mode, sync_call, in_loop) == best
    finally:
        client.close()
    sizes = sorted(len(r.asked.documents) for r in server.received if r.asked is not None)
    assert sizes == [1, limit]
