"""The LangChain adapter: ``RerankCompressor`` on its own, inside LangChain retrievers, and
over a real HTTP connection; every behaviour on the sync and the async path."""

from __future__ import annotations

import asyncio
import copy
import importlib
import json
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_classic.retrievers.document_compressors import DocumentCompressorPipeline
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ValidationError
from support import (
    API_KEY,
    SEED_DOCUMENTS,
    SEED_QUERY,
    SEED_RESPONSE,
    MockAPI,
    ScriptedServer,
    keyword_score,
    run_mode,
)

from rerank_integrations import AuthenticationError, ConfigurationError, RerankClient
from rerank_integrations.langchain import SCORE_KEY, RerankCompressor

MakeClient = Callable[..., RerankClient]

SEED_SCORES = [r["relevance_score"] for r in SEED_RESPONSE["results"]]


def seed_documents() -> list[Document]:
    """The seed's seven texts as Documents with ids and (nested) metadata."""
    return [
        Document(
            id=f"doc-{i}",
            page_content=text,
            metadata={"source": f"catalogue/{i}", "tags": ["skincare", str(i)], "pos": {"i": i}},
        )
        for i, text in enumerate(SEED_DOCUMENTS)
    ]


def compress(mode: str, compressor: Any, documents: Sequence[Document], query: str) -> Any:
    """``compress_documents`` or ``acompress_documents``, by ``mode``."""
    return run_mode(
        mode,
        lambda: compressor.compress_documents(documents, query),
        lambda: compressor.acompress_documents(documents, query),
    )


def rank(
    mode: str, compressor: RerankCompressor, documents: Sequence[Any], query: str, **kwargs: Any
) -> list[dict[str, Any]]:
    """``rerank`` or ``arerank``, by ``mode``."""
    return run_mode(
        mode,
        lambda: compressor.rerank(documents, query, **kwargs),
        lambda: compressor.arerank(documents, query, **kwargs),
    )


def expected_order(query: str, texts: Sequence[str]) -> list[int]:
    """The mock API's ranking of ``texts``, best first, ties in input order."""
    return sorted(range(len(texts)), key=lambda i: (-keyword_score(query, texts[i]), i))


class ListRetriever(BaseRetriever):
    """Returns its documents for any query."""

    documents: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return list(self.documents)


@pytest.fixture
def compressor(make_client: MakeClient) -> RerankCompressor:
    """A compressor with default settings, talking to ``mock_api``."""
    return RerankCompressor(client=make_client())


# -- ranking and documents --------------------------------------------------------------


def test_seed_example_reorders_and_scores(
    mode: str, mock_api: MockAPI, compressor: RerankCompressor
) -> None:
    mock_api.queue(httpx.Response(200, json=SEED_RESPONSE))
    documents = seed_documents()

    result = compress(mode, compressor, documents, SEED_QUERY)

    assert [d.id for d in result] == ["doc-0", "doc-6", "doc-4"]
    assert [d.metadata[SCORE_KEY] for d in result] == SEED_SCORES
    for out in result:
        original = documents[int(out.id.removeprefix("doc-"))]
        assert type(out) is Document
        assert out.page_content == original.page_content
        assert out.metadata == {**original.metadata, SCORE_KEY: out.metadata[SCORE_KEY]}
    (body,) = mock_api.bodies
    assert body["query"] == SEED_QUERY
    assert body["documents"] == SEED_DOCUMENTS
    assert body["top_n"] == 3


def test_ties_keep_input_order(mode: str, mock_api: MockAPI, compressor: RerankCompressor) -> None:
    # The server lists the tied documents 6 and 0 the other way round.
    reply = copy.deepcopy(SEED_RESPONSE)
    reply["results"][0], reply["results"][1] = reply["results"][1], reply["results"][0]
    mock_api.queue(httpx.Response(200, json=reply))

    result = compress(mode, compressor, seed_documents(), SEED_QUERY)

    assert [d.id for d in result] == ["doc-0", "doc-6", "doc-4"]
    assert result[0].metadata[SCORE_KEY] == result[1].metadata[SCORE_KEY]


def test_inputs_are_never_changed(mode: str, compressor: RerankCompressor) -> None:
    documents = seed_documents()
    before = copy.deepcopy(documents)
    metadata_dicts = [d.metadata for d in documents]

    result = compress(mode, compressor, documents, "aloe vera skin")

    assert documents == before
    assert [d.metadata for d in documents] == [d.metadata for d in before]
    assert all(d.metadata is m for d, m in zip(documents, metadata_dicts, strict=True))
    assert all(SCORE_KEY not in d.metadata for d in documents)
    assert len(result) == 3
    for out in result:
        assert all(out is not d for d in documents)
        assert all(out.metadata is not m for m in metadata_dicts)
    # A second call on the same documents sees them as they were.
    again = compress(mode, compressor, documents, "aloe vera skin")
    assert again == result


class TaggedDocument(Document):
    """A Document subclass with a field of its own."""

    tag: str = ""


def test_document_class_id_and_fields_are_kept(mode: str, compressor: RerankCompressor) -> None:
    documents: list[Document] = [
        TaggedDocument(id="t-1", page_content="aloe vera for skin", tag="first", metadata={}),
        Document(id="p-2", page_content="cars and trucks", metadata={"k": 1}),
        Document(page_content="aloe vera skin care for sensitive skin"),
    ]

    result = compress(mode, compressor, documents, "aloe vera skin care")

    assert [d.id for d in result] == [None, "t-1", "p-2"]
    assert [type(d) for d in result] == [Document, TaggedDocument, Document]
    tagged = result[1]
    assert isinstance(tagged, TaggedDocument)
    assert tagged.tag == "first"
    assert tagged.type == "Document"
    assert result[2].metadata == {"k": 1, SCORE_KEY: result[2].metadata[SCORE_KEY]}
    for out in result:
        source = next(d for d in documents if d.page_content == out.page_content)
        assert out.model_dump(exclude={"metadata"}) == source.model_dump(exclude={"metadata"})


def test_duplicate_documents_each_get_a_copy(mode: str, compressor: RerankCompressor) -> None:
    same = Document(id="x", page_content="aloe vera skin", metadata={"n": 1})
    documents = [same, Document(page_content="cars"), same]

    result = compress(mode, compressor, documents, "aloe skin")

    assert [d.id for d in result] == ["x", "x", None]
    assert result[0] is not result[1]
    assert result[0].metadata is not result[1].metadata


# -- settings ---------------------------------------------------------------------------


def test_top_n_default_none_and_explicit(
    mode: str, mock_api: MockAPI, make_client: MakeClient
) -> None:
    documents = seed_documents()
    order = expected_order(SEED_QUERY, SEED_DOCUMENTS)

    three = compress(mode, RerankCompressor(client=make_client()), documents, SEED_QUERY)
    every = compress(
        mode, RerankCompressor(client=make_client(), top_n=None), documents, SEED_QUERY
    )
    five = compress(mode, RerankCompressor(client=make_client(), top_n=5), documents, SEED_QUERY)
    more = compress(mode, RerankCompressor(client=make_client(), top_n=50), documents, SEED_QUERY)

    assert [d.id for d in three] == [f"doc-{i}" for i in order[:3]]
    assert [d.id for d in every] == [f"doc-{i}" for i in order]
    assert [d.id for d in five] == [f"doc-{i}" for i in order[:5]]
    assert [d.id for d in more] == [d.id for d in every]
    assert [body.get("top_n") for body in mock_api.bodies] == [3, None, 5, None]


def test_score_threshold_drops_low_scores(
    mode: str, mock_api: MockAPI, make_client: MakeClient
) -> None:
    compressor = RerankCompressor(client=make_client(), score_threshold=0.87)
    mock_api.queue(httpx.Response(200, json=SEED_RESPONSE), httpx.Response(200, json=SEED_RESPONSE))

    documents = compress(mode, compressor, seed_documents(), SEED_QUERY)
    ranked = rank(mode, compressor, SEED_DOCUMENTS, SEED_QUERY)

    assert [d.id for d in documents] == ["doc-0", "doc-6"]
    assert [r["index"] for r in ranked] == [0, 6]
    exact = RerankCompressor(client=make_client(), score_threshold=SEED_SCORES[-1])
    mock_api.queue(httpx.Response(200, json=SEED_RESPONSE))
    assert len(compress(mode, exact, seed_documents(), SEED_QUERY)) == 3  # ">=" keeps it


def test_model_is_sent(mode: str, mock_api: MockAPI, make_client: MakeClient) -> None:
    compressor = RerankCompressor(client=make_client(), model="rerank-small")

    compress(mode, compressor, seed_documents(), SEED_QUERY)
    rank(mode, compressor, ["a", "b"], "a")

    assert [body["model"] for body in mock_api.bodies] == ["rerank-small", "rerank-small"]


def test_empty_documents_send_nothing(
    mode: str, mock_api: MockAPI, compressor: RerankCompressor
) -> None:
    assert compress(mode, compressor, [], SEED_QUERY) == []
    assert rank(mode, compressor, [], SEED_QUERY) == []
    assert rank(mode, compressor, (), SEED_QUERY, top_n=None) == []
    assert mock_api.requests == []


def test_extra_arguments_are_refused(make_client: MakeClient) -> None:
    with pytest.raises(ValidationError, match="top_k"):
        RerankCompressor(client=make_client(), top_k=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="top_n"):
        RerankCompressor(client=make_client(), top_n=0)


def test_api_key_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERANK_BASE_URL", raising=False)
    compressor = RerankCompressor(
        base_url="https://rerank.test/v1",
        api_key=API_KEY,
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    shown = [
        repr(compressor),
        str(compressor),
        json.dumps(compressor.model_dump(), default=str),
        compressor.model_dump_json(),
        repr(compressor.rerank_client),
    ]
    assert all(API_KEY not in text for text in shown)
    assert "api_key" not in compressor.model_dump()
    assert compressor.model_dump()["base_url"] == "https://rerank.test/v1"
    assert compressor.api_key is not None
    assert compressor.api_key.get_secret_value() == API_KEY
    # Nor in the errors of settings that fail.
    with pytest.raises(ValidationError) as invalid:
        RerankCompressor(base_url="https://rerank.test", api_key=API_KEY, top_n=0)
    with pytest.raises(ConfigurationError) as unusable:
        RerankCompressor(base_url="ftp://rerank.test", api_key=API_KEY)
    with pytest.raises(ConfigurationError) as missing:
        RerankCompressor(api_key=API_KEY)
    for error in (invalid.value, unusable.value, missing.value):
        assert API_KEY not in str(error)
        assert API_KEY not in repr(error)
        assert API_KEY not in str(error.__context__)  # what pydantic raised first


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERANK_BASE_URL", "https://env.rerank.test/v1")
    monkeypatch.setenv("RERANK_API_KEY", API_KEY)
    monkeypatch.setenv("RERANK_MODEL", "env-model")

    compressor = RerankCompressor()

    client = compressor.rerank_client
    assert client.endpoint == "https://env.rerank.test/v1/rerank"
    assert client.model == "env-model"
    assert client.settings.wire_headers()["Authorization"] == f"Bearer {API_KEY}"
    assert compressor.base_url is None  # arguments stay as given
    overridden = RerankCompressor(base_url="https://arg.rerank.test")
    assert overridden.rerank_client.endpoint == "https://arg.rerank.test/v1/rerank"


def test_missing_base_url_names_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERANK_BASE_URL", raising=False)

    with pytest.raises(ConfigurationError) as caught:
        RerankCompressor(api_key=API_KEY)

    message = str(caught.value)
    assert "base_url=" in message
    assert "RERANK_BASE_URL" in message
    assert isinstance(caught.value, ValueError)


# -- plain ranking ----------------------------------------------------------------------


def test_rerank_returns_indexes_and_scores(
    mode: str, mock_api: MockAPI, compressor: RerankCompressor
) -> None:
    texts = ["cars", "aloe vera skin", "skin", "aloe vera for sensitive skin care", "boats"]
    mixed: list[Any] = [Document(page_content=t) if i % 2 else t for i, t in enumerate(texts)]
    query = "aloe vera skin care"
    order = expected_order(query, texts)

    default = rank(mode, compressor, mixed, query)
    every = rank(mode, compressor, mixed, query, top_n=None)
    two = rank(mode, compressor, texts, query, top_n=2)

    assert [r["index"] for r in default] == order[:3]
    assert [r["index"] for r in every] == order
    assert [r["index"] for r in two] == order[:2]
    assert all(set(r) == {"index", "relevance_score"} for r in every)
    assert [r["relevance_score"] for r in every] == [keyword_score(query, texts[i]) for i in order]
    assert [body["documents"] for body in mock_api.bodies] == [texts] * 3
    assert [body.get("top_n") for body in mock_api.bodies] == [3, None, 2]


def test_rerank_with_field_top_n_none(mode: str, make_client: MakeClient) -> None:
    compressor = RerankCompressor(client=make_client(), top_n=None)

    assert len(rank(mode, compressor, SEED_DOCUMENTS, SEED_QUERY)) == 7
    assert len(rank(mode, compressor, SEED_DOCUMENTS, SEED_QUERY, top_n=1)) == 1


@pytest.mark.parametrize(
    ("call", "documents", "query", "error", "message"),
    [
        ("compress", [Document(page_content="a")], 42, TypeError, "query must be a string"),
        ("rerank", ["a"], None, TypeError, "query must be a string, got NoneType"),
        ("compress", [Document(page_content="a"), "b"], "q", TypeError, r"documents\[1\] must"),
        ("rerank", ["a", Document(page_content="b"), 3], "q", TypeError, r"documents\[2\] must"),
        ("rerank", [b"bytes"], "q", TypeError, "must be a Document or a string, got bytes"),
        ("compress", "not a list", "q", TypeError, "must be a list of Document objects, got str"),
        ("rerank", {"a": 1}, "q", TypeError, "got dict"),
        ("compress", Document(page_content="a"), "q", TypeError, "got Document"),
        ("compress", [], 42, TypeError, "query must be a string"),
    ],
)
def test_bad_input_fails_before_any_request(
    mode: str,
    mock_api: MockAPI,
    compressor: RerankCompressor,
    call: str,
    documents: Any,
    query: Any,
    error: type[Exception],
    message: str,
) -> None:
    function = compress if call == "compress" else rank
    with pytest.raises(error, match=message):
        function(mode, compressor, documents, query)
    assert mock_api.requests == []


def test_bad_top_n_argument(mode: str, mock_api: MockAPI, compressor: RerankCompressor) -> None:
    with pytest.raises(ValueError, match="top_n must be at least 1"):
        rank(mode, compressor, ["a", "b"], "q", top_n=0)
    with pytest.raises(TypeError, match="top_n must be a positive integer"):
        rank(mode, compressor, ["a", "b"], "q", top_n="2")
    assert mock_api.requests == []


# -- inside LangChain -------------------------------------------------------------------


def test_inside_contextual_compression_retriever(mode: str, compressor: RerankCompressor) -> None:
    documents = seed_documents()
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=ListRetriever(documents=documents)
    )
    order = expected_order(SEED_QUERY, SEED_DOCUMENTS)

    result = run_mode(
        mode, lambda: retriever.invoke(SEED_QUERY), lambda: retriever.ainvoke(SEED_QUERY)
    )

    assert [d.id for d in result] == [f"doc-{i}" for i in order[:3]]
    assert all(SCORE_KEY in d.metadata for d in result)
    assert documents == seed_documents()


def test_inside_document_compressor_pipeline(
    mode: str, mock_api: MockAPI, make_client: MakeClient
) -> None:
    documents = seed_documents()
    pipeline = DocumentCompressorPipeline(
        transformers=[
            RerankCompressor(client=make_client(), top_n=5),
            RerankCompressor(client=make_client(), top_n=2, model="second-stage"),
        ]
    )
    retriever = ContextualCompressionRetriever(
        base_compressor=pipeline, base_retriever=ListRetriever(documents=documents)
    )
    order = expected_order(SEED_QUERY, SEED_DOCUMENTS)

    result = run_mode(
        mode, lambda: retriever.invoke(SEED_QUERY), lambda: retriever.ainvoke(SEED_QUERY)
    )

    assert [d.id for d in result] == [f"doc-{i}" for i in order[:2]]
    assert [d.metadata[SCORE_KEY] for d in result] == [
        keyword_score(SEED_QUERY, SEED_DOCUMENTS[i]) for i in order[:2]
    ]
    first, second = mock_api.bodies
    assert len(first["documents"]) == 7
    assert second["documents"] == [SEED_DOCUMENTS[i] for i in order[:5]]
    assert second["model"] == "second-stage"
    assert documents == seed_documents()


def test_async_path_is_native(
    monkeypatch: pytest.MonkeyPatch, mock_api: MockAPI, compressor: RerankCompressor
) -> None:
    client = compressor.rerank_client
    threads: list[threading.Thread] = []
    arerank = client.arerank

    def no_sync(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the async path called the sync client")

    async def recording_arerank(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        asyncio.get_running_loop()  # we are on the loop, not in a worker thread
        return await arerank(*args, **kwargs)

    monkeypatch.setattr(client, "rerank", no_sync)
    monkeypatch.setattr(client, "arerank", recording_arerank)
    retriever = ContextualCompressionRetriever(
        base_compressor=DocumentCompressorPipeline(transformers=[compressor]),
        base_retriever=ListRetriever(documents=seed_documents()),
    )

    async def main() -> tuple[Any, ...]:
        loop_thread = threading.current_thread()
        results = (
            await compressor.acompress_documents(seed_documents(), SEED_QUERY),
            await compressor.arerank(SEED_DOCUMENTS, SEED_QUERY),
            await retriever.ainvoke(SEED_QUERY),
        )
        assert threads == [loop_thread] * 3
        return results

    documents, ranked, retrieved = asyncio.run(main())

    assert len(documents) == len(ranked) == len(retrieved) == 3
    assert len(mock_api.requests) == 3
    with pytest.raises(AssertionError, match="sync client"):
        compressor.compress_documents(seed_documents(), SEED_QUERY)


# -- the client underneath --------------------------------------------------------------


def test_batching_gives_one_global_ranking(
    mode: str, mock_api: MockAPI, make_client: MakeClient
) -> None:
    query = "aloe vera skin care"
    words = query.split()
    texts = [f"item {i} " + " ".join(words[: i % 4]) + " x" * (i % 11) for i in range(2_300)]
    planted = [5, 1_500, 2_250]  # the only texts with every query word, one per batch
    for extra, i in enumerate(planted):
        texts[i] = f"item {i} {query}" + " y" * extra
    documents = [Document(id=str(i), page_content=t) for i, t in enumerate(texts)]
    compressor = RerankCompressor(client=make_client(max_documents_per_request=1000), top_n=10)
    order = expected_order(query, texts)

    result = compress(mode, compressor, documents, query)

    # The batches go out concurrently: the server sees them in any order.
    assert sorted(len(body["documents"]) for body in mock_api.bodies) == [300, 1000, 1000]
    assert [body["top_n"] for body in mock_api.bodies] == [10, 10, 10]
    assert [d.id for d in result] == [str(i) for i in order[:10]]
    assert [d.id for d in result[:3]] == ["2250", "1500", "5"]
    assert [d.metadata[SCORE_KEY] for d in result] == [
        keyword_score(query, texts[i]) for i in order[:10]
    ]

    ranked = rank(mode, compressor, documents, query, top_n=None)
    assert [r["index"] for r in ranked] == order
    assert len(mock_api.requests) == 6


def test_authentication_error_hides_the_key(
    mode: str, mock_api: MockAPI, compressor: RerankCompressor
) -> None:
    body = {"error": {"message": f"invalid api key {API_KEY}", "type": "authentication_error"}}
    mock_api.queue(httpx.Response(401, json=body))

    with pytest.raises(AuthenticationError) as caught:
        compress(mode, compressor, seed_documents(), SEED_QUERY)

    assert caught.value.status_code == 401
    assert "invalid api key" in str(caught.value)
    assert API_KEY not in str(caught.value)
    assert len(mock_api.requests) == 1  # a 401 is not retried
    assert mock_api.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_missing_langchain_core_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        n for n in sys.modules if n == "langchain_core" or n.startswith("langchain_core.")
    ]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "rerank_integrations.langchain")

    with pytest.raises(ImportError) as caught:
        importlib.import_module("rerank_integrations.langchain")

    assert 'pip install "rerank-integrations[langchain]"' in str(caught.value)


# -- over a real HTTP connection --------------------------------------------------------


@dataclass
class WireServer:
    """A rerank server listening on 127.0.0.1 that wants ``API_KEY``."""

    base_url: str
    kind: str
    scripted: ScriptedServer | None = None

    @property
    def paths(self) -> list[str]:
        """The paths the scripted server was asked for (none recorded for the BM25 one)."""
        return self.scripted.paths if self.scripted is not None else []


@pytest.fixture(params=["bm25", "scripted"])
def wire_server(request: pytest.FixtureRequest) -> Iterator[WireServer]:
    """The package's own BM25 server when it is there, and a scripted generic one."""
    if request.param == "bm25":
        try:
            from rerank_integrations.server import serve_in_thread
        except ImportError as exc:
            pytest.skip(f"rerank_integrations.server is not available: {exc}")
        with serve_in_thread(api_key=API_KEY) as bm25:
            yield WireServer(bm25.base_url, "bm25")
        return
    with ScriptedServer(api_key=API_KEY) as scripted:
        yield WireServer(scripted.base_url, "scripted", scripted)


def run_and_close(
    mode: str,
    compressor: RerankCompressor,
    sync_call: Callable[[], Any],
    async_call: Callable[[], Any],
) -> Any:
    """Run by ``mode``, then close the client's connection pools on that same path."""

    def sync_run() -> Any:
        try:
            return sync_call()
        finally:
            compressor.rerank_client.close()

    async def async_run() -> Any:
        try:
            return await async_call()
        finally:
            await compressor.rerank_client.aclose()

    return run_mode(mode, sync_run, async_run)


def test_over_http(mode: str, wire_server: WireServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERANK_BASE_URL", wire_server.base_url)
    monkeypatch.setenv("RERANK_API_KEY", API_KEY)
    monkeypatch.delenv("RERANK_MODEL", raising=False)
    monkeypatch.delenv("RERANK_DIALECT", raising=False)
    compressor = RerankCompressor(timeout=5, max_retries=0)
    documents = seed_documents()
    retriever = ContextualCompressionRetriever(
        base_compressor=compressor, base_retriever=ListRetriever(documents=documents)
    )

    def sync_calls() -> Any:
        return (
            compressor.compress_documents(documents, SEED_QUERY),
            retriever.invoke(SEED_QUERY),
            compressor.rerank(documents, SEED_QUERY, top_n=None),
        )

    async def async_calls() -> Any:
        return (
            await compressor.acompress_documents(documents, SEED_QUERY),
            await retriever.ainvoke(SEED_QUERY),
            await compressor.arerank(documents, SEED_QUERY, top_n=None),
        )

    direct, retrieved, ranked = run_and_close(mode, compressor, sync_calls, async_calls)

    assert len(direct) == 3
    assert direct[0].id == "doc-0"  # the one English text about organic skincare
    assert [d.id for d in retrieved] == [d.id for d in direct]
    scores = [d.metadata[SCORE_KEY] for d in direct]
    assert scores == sorted(scores, reverse=True)
    assert [d.metadata[SCORE_KEY] for d in retrieved] == scores
    assert len(ranked) == 7
    assert [f"doc-{r['index']}" for r in ranked[:3]] == [d.id for d in direct]
    assert [r["relevance_score"] for r in ranked[:3]] == scores
    for out in direct:
        source = documents[int(out.id.removeprefix("doc-"))]
        assert out.page_content == source.page_content
        assert out.metadata == {**source.metadata, SCORE_KEY: out.metadata[SCORE_KEY]}
    assert documents == seed_documents()
    if wire_server.kind == "scripted":
        order = expected_order(SEED_QUERY, SEED_DOCUMENTS)
        assert [r["index"] for r in ranked] == order
        assert wire_server.paths == ["/v1/rerank"] * 3


def test_over_http_wrong_key(mode: str, wire_server: WireServer) -> None:
    wrong_key = "sk-wrong-KEY-9876543210"
    compressor = RerankCompressor(base_url=wire_server.base_url, api_key=wrong_key, timeout=5)

    with pytest.raises(AuthenticationError) as caught:
        run_and_close(
            mode,
            compressor,
            lambda: compressor.compress_documents(seed_documents(), SEED_QUERY),
            lambda: compressor.acompress_documents(seed_documents(), SEED_QUERY),
        )

    assert caught.value.status_code == 401
    assert wrong_key not in str(caught.value)
