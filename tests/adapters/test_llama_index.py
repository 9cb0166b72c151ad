"""RerankPostprocessor: the LlamaIndex adapter, on the sync and the async path."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.callbacks import CallbackManager, CBEventType, EventPayload
from llama_index.core.callbacks.base_handler import BaseCallbackHandler
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.instrumentation.span import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from pydantic import Field, ValidationError
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

from rerank_integrations import ConfigurationError, RerankClient
from rerank_integrations.llama_index import RETRIEVAL_SCORE_KEY, SCORE_KEY, RerankPostprocessor

# -- helpers and fixtures ---------------------------------------------------------------


def seed_nodes() -> list[NodeWithScore]:
    """The seed documents as scored TextNodes with ids ``n0`` .. ``n6`` and some metadata."""
    return [
        NodeWithScore(
            node=TextNode(
                id_=f"n{i}",
                text=text,
                metadata={"source": f"catalog-{i}.txt", "lang": "xx"},
                excluded_llm_metadata_keys=["lang"],
                excluded_embed_metadata_keys=["lang"],
            ),
            score=round(0.5 - i / 100, 2),
        )
        for i, text in enumerate(SEED_DOCUMENTS)
    ]


def rerank(
    mode: str,
    postprocessor: RerankPostprocessor,
    nodes: list[NodeWithScore],
    query: str | None = SEED_QUERY,
) -> list[NodeWithScore]:
    """``postprocess_nodes`` or ``apostprocess_nodes``, by ``mode``."""
    bundle = QueryBundle(query) if query is not None else None
    return run_mode(
        mode,
        lambda: postprocessor.postprocess_nodes(nodes, query_bundle=bundle),
        lambda: postprocessor.apostprocess_nodes(nodes, query_bundle=bundle),
    )


def ids(nodes: list[NodeWithScore]) -> list[str]:
    return [item.node.node_id for item in nodes]


@pytest.fixture
def make_postprocessor(
    make_client: Callable[..., RerankClient],
) -> Callable[..., RerankPostprocessor]:
    """Build postprocessors whose client talks to ``mock_api``; client settings such as
    ``max_documents_per_request`` go to the client, the rest to the postprocessor."""
    client_fields = {"max_documents_per_request", "model", "max_retries", "max_concurrency"}

    def factory(**kwargs: Any) -> RerankPostprocessor:
        client_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in client_fields}
        return RerankPostprocessor(client=make_client(**client_kwargs), **kwargs)

    return factory


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``RERANK_*`` settings from the environment."""
    for name in ("RERANK_BASE_URL", "RERANK_API_KEY", "RERANK_MODEL", "RERANK_DIALECT"):
        monkeypatch.delenv(name, raising=False)


class EventRecorder(BaseEventHandler):
    """Records every instrumentation event it sees."""

    events: list[BaseEvent] = Field(default_factory=list)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)

    def of(self, kind: type[BaseEvent]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


@pytest.fixture
def event_recorder() -> Iterator[EventRecorder]:
    """An event handler attached to the root dispatcher for the test's duration."""
    recorder = EventRecorder()
    root = get_dispatcher()
    root.add_event_handler(recorder)
    yield recorder
    root.event_handlers.remove(recorder)


class CallbackRecorder(BaseCallbackHandler):
    """Records legacy callback events as ``(phase, type, payload)``."""

    def __init__(self) -> None:
        super().__init__(event_starts_to_ignore=[], event_ends_to_ignore=[])
        self.records: list[tuple[str, CBEventType, dict[str, Any]]] = []

    def on_event_start(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        parent_id: str = "",
        **kwargs: Any,
    ) -> str:
        self.records.append(("start", event_type, dict(payload or {})))
        return event_id

    def on_event_end(
        self,
        event_type: CBEventType,
        payload: dict[str, Any] | None = None,
        event_id: str = "",
        **kwargs: Any,
    ) -> None:
        self.records.append(("end", event_type, dict(payload or {})))

    def start_trace(self, trace_id: str | None = None) -> None:
        pass

    def end_trace(
        self, trace_id: str | None = None, trace_map: dict[str, list[str]] | None = None
    ) -> None:
        pass

    def of(self, event_type: CBEventType) -> list[tuple[str, dict[str, Any]]]:
        return [(phase, payload) for phase, kind, payload in self.records if kind == event_type]


class FixedRetriever(BaseRetriever):
    """Returns fresh copies of the same scored nodes for every query."""

    def __init__(self, nodes: list[NodeWithScore]) -> None:
        super().__init__()
        self._nodes = nodes
        self.queries: list[str] = []

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        self.queries.append(query_bundle.query_str)
        return [NodeWithScore(node=item.node, score=item.score) for item in self._nodes]


# -- reordering, scores and metadata ------------------------------------------------------


def test_seed_example_reorders_and_scores(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    mock_api.queue(httpx.Response(200, json=SEED_RESPONSE))
    postprocessor = make_postprocessor()

    result = rerank(mode, postprocessor, seed_nodes())

    assert ids(result) == ["n0", "n6", "n4"]
    expected = [r["relevance_score"] for r in SEED_RESPONSE["results"]]
    assert [item.score for item in result] == expected
    for item, score in zip(result, expected, strict=True):
        node = item.node
        assert node.metadata[SCORE_KEY] == score
        assert node.metadata["source"].startswith("catalog-")
        assert node.excluded_llm_metadata_keys == ["lang", SCORE_KEY]
        assert node.excluded_embed_metadata_keys == ["lang", SCORE_KEY]
        assert SCORE_KEY not in node.get_content(metadata_mode=MetadataMode.LLM)
        assert SCORE_KEY not in node.get_content(metadata_mode=MetadataMode.EMBED)
        assert "source: catalog-" in node.get_content(metadata_mode=MetadataMode.LLM)
        assert RETRIEVAL_SCORE_KEY not in node.metadata

    (body,) = mock_api.bodies
    assert body["query"] == SEED_QUERY
    assert body["top_n"] == 3
    assert len(body["documents"]) == 7


def test_inputs_are_left_untouched(
    mode: str, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    nodes = seed_nodes()
    before = [
        (
            item,
            item.score,
            item.node,
            item.node.metadata,
            dict(item.node.metadata),
            item.node.excluded_llm_metadata_keys,
            list(item.node.excluded_llm_metadata_keys),
            item.node.excluded_embed_metadata_keys,
            list(item.node.excluded_embed_metadata_keys),
        )
        for item in nodes
    ]
    postprocessor = make_postprocessor(top_n=None, keep_retrieval_score=True)

    result = rerank(mode, postprocessor, nodes)

    assert sorted(ids(result)) == [f"n{i}" for i in range(7)]
    for item, score, node, meta, meta_copy, llm, llm_copy, embed, embed_copy in before:
        assert item.score == score
        assert item.node is node
        assert node.metadata is meta and meta == meta_copy
        assert node.excluded_llm_metadata_keys is llm and llm == llm_copy
        assert node.excluded_embed_metadata_keys is embed and embed == embed_copy
    originals = {item.node.node_id: item for item in nodes}
    for item in result:
        original = originals[item.node.node_id]
        assert item is not original
        assert item.node is not original.node
        assert item.node.metadata is not original.node.metadata
        assert item.node.excluded_llm_metadata_keys is not original.node.excluded_llm_metadata_keys
        assert type(item.node) is TextNode
        assert item.node.get_content() == original.node.get_content()


def test_keep_retrieval_score(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    mock_api.queue(httpx.Response(200, json=SEED_RESPONSE))
    postprocessor = make_postprocessor(keep_retrieval_score=True)

    result = rerank(mode, postprocessor, seed_nodes())

    previous = {item.node.node_id: item.score for item in seed_nodes()}
    assert ids(result) == ["n0", "n6", "n4"]
    for item in result:
        node = item.node
        assert node.metadata[RETRIEVAL_SCORE_KEY] == previous[node.node_id]
        assert item.score == node.metadata[SCORE_KEY]
        for keys in (node.excluded_llm_metadata_keys, node.excluded_embed_metadata_keys):
            assert keys == ["lang", SCORE_KEY, RETRIEVAL_SCORE_KEY]
        assert "score" not in node.get_content(metadata_mode=MetadataMode.LLM)


def test_reranking_twice_does_not_repeat_keys(
    mode: str, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    postprocessor = make_postprocessor(top_n=None, keep_retrieval_score=True)
    first = rerank(mode, postprocessor, seed_nodes())
    second = rerank(mode, postprocessor, first)
    for item in second:
        assert item.node.excluded_llm_metadata_keys.count(SCORE_KEY) == 1
        assert item.node.excluded_embed_metadata_keys.count(RETRIEVAL_SCORE_KEY) == 1
    by_id = {item.node.node_id: item.score for item in first}
    assert all(
        item.node.metadata[RETRIEVAL_SCORE_KEY] == by_id[item.node.node_id] for item in second
    )


@pytest.mark.parametrize(
    ("metadata_mode", "sends_metadata"),
    [(MetadataMode.EMBED, True), (MetadataMode.NONE, False)],
)
def test_metadata_mode_decides_the_text_sent(
    mode: str,
    mock_api: MockAPI,
    make_postprocessor: Callable[..., RerankPostprocessor],
    metadata_mode: MetadataMode,
    sends_metadata: bool,
) -> None:
    postprocessor = make_postprocessor(metadata_mode=metadata_mode)
    nodes = seed_nodes()

    rerank(mode, postprocessor, nodes)

    (body,) = mock_api.bodies
    documents = body["documents"]
    assert documents == [item.node.get_content(metadata_mode=metadata_mode) for item in nodes]
    for i, document in enumerate(documents):
        assert SEED_DOCUMENTS[i] in document
        assert (f"source: catalog-{i}.txt" in document) is sends_metadata
        assert "lang" not in document  # excluded from the embed view by the node itself


def test_plain_nodes_and_a_node_with_metadata_each_send_their_own_text(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    # Text nodes without metadata send their text as it is; the last one's metadata must
    # still reach the request, as its metadata mode renders it.
    plain = [NodeWithScore(node=TextNode(text=text, id_=f"p{i}")) for i, text in enumerate("ab")]
    rich = TextNode(text="espresso", id_="r", metadata={"source": "catalog.txt"})
    nodes = [*plain, NodeWithScore(node=rich)]

    rerank(mode, make_postprocessor(top_n=None), nodes)

    (body,) = mock_api.bodies
    rendered = rich.get_content(metadata_mode=MetadataMode.EMBED)
    assert "source: catalog.txt" in rendered
    assert body["documents"] == ["a", "b", rendered]


def test_top_n_default_and_none(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    default = make_postprocessor()
    assert default.top_n == 3
    assert len(rerank(mode, default, seed_nodes())) == 3

    everything = make_postprocessor(top_n=None)
    result = rerank(mode, everything, seed_nodes())
    assert len(result) == 7

    first, second = mock_api.bodies
    assert first["top_n"] == 3
    assert second.get("top_n") is None
    scores = [item.get_score(raise_error=True) for item in result]
    assert scores == sorted(scores, reverse=True)
    expected = [keyword_score(SEED_QUERY, text) for text in second["documents"]]
    assert scores == sorted(expected, reverse=True)


def test_top_n_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        RerankPostprocessor(base_url="http://127.0.0.1:9/v1", top_n=0)


def test_score_threshold(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    mock_api.queue(httpx.Response(200, json=SEED_RESPONSE))
    postprocessor = make_postprocessor(score_threshold=0.87)

    result = rerank(mode, postprocessor, seed_nodes())

    assert ids(result) == ["n0", "n6"]
    assert all(item.score is not None and item.score >= 0.87 for item in result)


def test_score_threshold_can_drop_everything(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    mock_api.queue(httpx.Response(200, json=SEED_RESPONSE))
    postprocessor = make_postprocessor(score_threshold=0.99)
    assert rerank(mode, postprocessor, seed_nodes()) == []


def test_empty_nodes_send_nothing(
    mode: str,
    mock_api: MockAPI,
    make_postprocessor: Callable[..., RerankPostprocessor],
    event_recorder: EventRecorder,
) -> None:
    postprocessor = make_postprocessor()
    assert rerank(mode, postprocessor, []) == []
    assert mock_api.requests == []
    assert event_recorder.of(ReRankStartEvent) == []


def test_missing_query_is_an_error(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    postprocessor = make_postprocessor()
    with pytest.raises(ValueError, match="needs a query"):
        rerank(mode, postprocessor, seed_nodes(), query=None)
    assert mock_api.requests == []


def test_query_str_is_accepted(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    mock_api.queue(httpx.Response(200, json=SEED_RESPONSE))
    postprocessor = make_postprocessor()
    nodes = seed_nodes()
    result = run_mode(
        mode,
        lambda: postprocessor.postprocess_nodes(nodes, query_str=SEED_QUERY),
        lambda: postprocessor.apostprocess_nodes(nodes, query_str=SEED_QUERY),
    )
    assert ids(result) == ["n0", "n6", "n4"]
    assert mock_api.bodies[0]["query"] == SEED_QUERY


def test_model_is_sent(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    rerank(mode, make_postprocessor(model="client-model"), seed_nodes())
    rerank(mode, make_postprocessor(model="client-model").model_copy(), seed_nodes())
    override = RerankPostprocessor(
        client=make_postprocessor(model="client-model").rerank_client, model="chosen"
    )
    rerank(mode, override, seed_nodes())
    assert [body.get("model") for body in mock_api.bodies] == [
        "client-model",
        "client-model",
        "chosen",
    ]


# -- settings, serialization, configuration --------------------------------------------


def test_class_name_and_extra_fields_forbidden() -> None:
    assert RerankPostprocessor.class_name() == "RerankPostprocessor"
    with pytest.raises(ValidationError, match="top_k"):
        RerankPostprocessor(base_url="http://127.0.0.1:9/v1", top_k=3)


def test_serialization_never_shows_the_key(no_env: None) -> None:
    postprocessor = RerankPostprocessor(
        base_url="https://rerank.test/v1",
        api_key=API_KEY,
        model="m-1",
        top_n=5,
        score_threshold=0.2,
        timeout=12.5,
        max_retries=4,
        max_documents_per_request=250,
        max_concurrency=3,
        headers={"X-Extra": f"Bearer {API_KEY}"},
        metadata_mode=MetadataMode.NONE,
        keep_retrieval_score=True,
    )
    data = postprocessor.to_dict()
    text = postprocessor.to_json()
    for shown in (str(data), text, repr(postprocessor), str(postprocessor)):
        assert API_KEY not in shown
        assert "SECRET" not in shown
    assert data["class_name"] == "RerankPostprocessor"
    for hidden in ("api_key", "headers", "client", "callback_manager"):
        assert hidden not in data
    assert json.loads(text)["metadata_mode"] == "none"

    for rebuilt in (
        RerankPostprocessor.from_dict(data, api_key=API_KEY),
        RerankPostprocessor.from_json(text, api_key=API_KEY),
    ):
        assert rebuilt.to_dict() == data
        assert rebuilt.metadata_mode is MetadataMode.NONE
        assert rebuilt.rerank_client.endpoint == "https://rerank.test/v1/rerank"
        assert rebuilt.rerank_client.max_documents_per_request == 250
        secret = rebuilt.rerank_client.settings.api_key
        assert secret is not None and secret.get_secret_value() == API_KEY


def test_serialization_with_a_client(
    make_postprocessor: Callable[..., RerankPostprocessor],
) -> None:
    postprocessor = make_postprocessor()
    assert "client" not in postprocessor.to_dict()
    assert API_KEY not in postprocessor.to_json()
    assert API_KEY not in repr(postprocessor)


def test_config_from_env(monkeypatch: pytest.MonkeyPatch, no_env: None) -> None:
    monkeypatch.setenv("RERANK_BASE_URL", "https://env.test")
    monkeypatch.setenv("RERANK_API_KEY", API_KEY)
    monkeypatch.setenv("RERANK_MODEL", "env-model")

    postprocessor = RerankPostprocessor()

    client = postprocessor.rerank_client
    assert client.endpoint == "https://env.test/v1/rerank"
    assert client.model == "env-model"
    secret = client.settings.api_key
    assert secret is not None and secret.get_secret_value() == API_KEY
    assert API_KEY not in postprocessor.to_json()
    assert API_KEY not in repr(postprocessor)


def test_missing_base_url_is_a_configuration_error(no_env: None) -> None:
    with pytest.raises(ConfigurationError, match="RERANK_BASE_URL"):
        RerankPostprocessor()
    with pytest.raises(ConfigurationError, match="not an http"):
        RerankPostprocessor(base_url="ftp://rerank.test")


def test_import_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name.split(".")[0] == "llama_index"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "llama_index", None)
    monkeypatch.delitem(sys.modules, "rerank_integrations.llama_index")
    with pytest.raises(ImportError, match=r'pip install "rerank-integrations\[llama-index\]"'):
        importlib.import_module("rerank_integrations.llama_index")


# -- events -----------------------------------------------------------------------------


def test_events_fire_on_both_paths(
    mode: str,
    mock_api: MockAPI,
    make_postprocessor: Callable[..., RerankPostprocessor],
    event_recorder: EventRecorder,
) -> None:
    mock_api.queue(httpx.Response(200, json=SEED_RESPONSE))
    callbacks = CallbackRecorder()
    postprocessor = make_postprocessor(model="m-events")
    postprocessor.callback_manager = CallbackManager([callbacks])
    nodes = seed_nodes()

    result = rerank(mode, postprocessor, nodes)

    (start,) = event_recorder.of(ReRankStartEvent)
    (end,) = event_recorder.of(ReRankEndEvent)
    assert isinstance(start.query, QueryBundle) and start.query.query_str == SEED_QUERY
    assert start.nodes == nodes
    assert start.top_n == 3
    assert start.model_name == "m-events"
    assert end.nodes == result
    assert event_recorder.events.index(start) < event_recorder.events.index(end)

    records = callbacks.of(CBEventType.RERANKING)
    assert [phase for phase, _ in records] == ["start", "end"]
    started, ended = records[0][1], records[1][1]
    assert started[EventPayload.NODES] == nodes
    assert started[EventPayload.MODEL_NAME] == "m-events"
    assert started[EventPayload.QUERY_STR] == SEED_QUERY
    assert started[EventPayload.TOP_K] == 3
    assert ended[EventPayload.NODES] == result


def test_events_with_top_n_none_and_no_model(
    mode: str,
    make_postprocessor: Callable[..., RerankPostprocessor],
    event_recorder: EventRecorder,
    no_env: None,
) -> None:
    postprocessor = make_postprocessor(top_n=None)
    rerank(mode, postprocessor, seed_nodes())
    (start,) = event_recorder.of(ReRankStartEvent)
    assert start.top_n == 7
    assert start.model_name == ""


def test_failed_call_ends_the_callback_event(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    mock_api.queue(httpx.Response(400, json={"error": {"message": "bad"}}))
    callbacks = CallbackRecorder()
    postprocessor = make_postprocessor()
    postprocessor.callback_manager = CallbackManager([callbacks])
    with pytest.raises(Exception, match="bad"):
        rerank(mode, postprocessor, seed_nodes())
    records = callbacks.of(CBEventType.RERANKING)
    assert [phase for phase, _ in records] == ["start", "end"]
    assert EventPayload.EXCEPTION in records[1][1]


class SpanRecorder(BaseSpanHandler[SimpleSpan]):
    """Records the id of every span that opens."""

    opened: list[str] = Field(default_factory=list)

    def new_span(
        self,
        id_: str,
        bound_args: Any,
        instance: Any | None = None,
        parent_span_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SimpleSpan:
        self.opened.append(id_)
        return SimpleSpan(id_=id_, parent_id=parent_span_id)

    def prepare_to_exit_span(self, id_: str, *args: Any, **kwargs: Any) -> None:
        return None

    def prepare_to_drop_span(self, id_: str, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def span_recorder() -> Iterator[SpanRecorder]:
    """A span handler attached to the root dispatcher for the test's duration."""
    recorder = SpanRecorder()
    root = get_dispatcher()
    root.add_span_handler(recorder)
    yield recorder
    root.span_handlers.remove(recorder)


def test_a_span_handler_sees_the_rerank_span(
    mode: str,
    make_postprocessor: Callable[..., RerankPostprocessor],
    span_recorder: SpanRecorder,
) -> None:
    rerank(mode, make_postprocessor(), seed_nodes())
    name = "_postprocess_nodes" if mode == "sync" else "_apostprocess_nodes"
    assert [span for span in span_recorder.opened if f"RerankPostprocessor.{name}" in span]


def test_nothing_is_built_for_events_nobody_listens_to(
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    make_postprocessor: Callable[..., RerankPostprocessor],
) -> None:
    module = sys.modules[RerankPostprocessor.__module__]

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("built for no listener")

    for name in ("ReRankStartEvent", "ReRankEndEvent"):
        monkeypatch.setattr(module, name, refused)
    postprocessor = make_postprocessor()
    monkeypatch.setattr(postprocessor.callback_manager, "event", refused)
    assert len(rerank(mode, postprocessor, seed_nodes())) == 3


def test_a_subclass_that_overrides_the_span_method_is_still_called(
    mode: str, make_client: Callable[..., RerankClient]
) -> None:
    seen: list[str] = []

    class Counting(RerankPostprocessor):
        def _postprocess_nodes(
            self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
        ) -> list[NodeWithScore]:
            seen.append("sync")
            return super()._postprocess_nodes(nodes, query_bundle)

        async def _apostprocess_nodes(
            self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
        ) -> list[NodeWithScore]:
            seen.append("async")
            return await super()._apostprocess_nodes(nodes, query_bundle)

    assert len(rerank(mode, Counting(client=make_client()), seed_nodes())) == 3
    assert seen == [mode]


def test_query_str_and_query_bundle_together_are_refused(
    make_postprocessor: Callable[..., RerankPostprocessor],
) -> None:
    postprocessor = make_postprocessor()
    with pytest.raises(ValueError, match="Cannot specify both"):
        postprocessor.postprocess_nodes(
            seed_nodes(), query_bundle=QueryBundle(SEED_QUERY), query_str=SEED_QUERY
        )


# -- the async path is native, batching goes through the client -------------------------


def test_async_path_does_not_use_the_sync_client(
    monkeypatch: pytest.MonkeyPatch,
    mock_api: MockAPI,
    make_postprocessor: Callable[..., RerankPostprocessor],
) -> None:
    mock_api.queue(httpx.Response(200, json=SEED_RESPONSE))
    postprocessor = make_postprocessor()

    def no_sync(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the async path called the sync client")

    monkeypatch.setattr(postprocessor.rerank_client, "rerank", no_sync)
    main_thread = threading.get_ident()
    seen_threads: list[int] = []
    arerank = postprocessor.rerank_client.arerank

    async def spy(*args: Any, **kwargs: Any) -> Any:
        seen_threads.append(threading.get_ident())
        return await arerank(*args, **kwargs)

    monkeypatch.setattr(postprocessor.rerank_client, "arerank", spy)

    result = asyncio.run(
        postprocessor.apostprocess_nodes(seed_nodes(), query_bundle=QueryBundle(SEED_QUERY))
    )

    assert ids(result) == ["n0", "n6", "n4"]
    assert seen_threads == [main_thread]
    with pytest.raises(AssertionError, match="sync client"):
        postprocessor.postprocess_nodes(seed_nodes(), query_str=SEED_QUERY)


def test_batching_through_the_adapter(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    query = "aloe chamomile skin"
    words = ["aloe", "chamomile", "skin"]
    texts = [
        f"item {i} " + " ".join(word for j, word in enumerate(words) if (i >> j) & 1)
        for i in range(2300)
    ]
    # Best ones deep in the second and third batch.
    texts[1500] = "aloe chamomile skin, the longest and best matching text of all"
    texts[2299] = "aloe chamomile skin, the second best"
    nodes = [
        NodeWithScore(node=TextNode(id_=f"b{i}", text=text), score=0.0)
        for i, text in enumerate(texts)
    ]
    postprocessor = make_postprocessor(
        max_documents_per_request=1000, top_n=10, metadata_mode=MetadataMode.NONE
    )

    result = rerank(mode, postprocessor, nodes, query=query)

    assert len(mock_api.requests) == 3
    assert sorted(len(body["documents"]) for body in mock_api.bodies) == [300, 1000, 1000]
    expected = sorted(range(len(texts)), key=lambda i: (-keyword_score(query, texts[i]), i))[:10]
    assert ids(result) == [f"b{i}" for i in expected]
    assert ids(result)[:2] == ["b1500", "b2299"]
    assert [item.score for item in result] == [keyword_score(query, texts[i]) for i in expected]


# -- inside a query engine --------------------------------------------------------------


def test_inside_a_query_engine(
    mode: str, mock_api: MockAPI, make_postprocessor: Callable[..., RerankPostprocessor]
) -> None:
    mock_api.queue(httpx.Response(200, json=SEED_RESPONSE))
    retriever = FixedRetriever(seed_nodes())
    postprocessor = make_postprocessor()
    engine = RetrieverQueryEngine.from_args(
        retriever, llm=MockLLM(), node_postprocessors=[postprocessor]
    )

    response = run_mode(mode, lambda: engine.query(SEED_QUERY), lambda: engine.aquery(SEED_QUERY))

    assert retriever.queries == [SEED_QUERY]
    assert ids(response.source_nodes) == ["n0", "n6", "n4"]
    assert [item.score for item in response.source_nodes] == [
        r["relevance_score"] for r in SEED_RESPONSE["results"]
    ]
    assert all(SCORE_KEY in item.node.metadata for item in response.source_nodes)
    assert mock_api.bodies[0]["query"] == SEED_QUERY


# -- over the wire ----------------------------------------------------------------------


class WireServer:
    """A real rerank endpoint on 127.0.0.1: the package's local server when it is
    available, else a scripted one speaking the generic dialect."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.local = False
        try:
            from rerank_integrations.server import serve_in_thread
        except ImportError:
            self._scripted = self._stack.enter_context(ScriptedServer())
            self.base_url = self._scripted.base_url
        else:
            server = self._stack.enter_context(serve_in_thread())
            self.base_url = server.base_url
            self._stats = server.stats
            self.local = True

    @property
    def requests(self) -> int:
        """Rerank requests received so far."""
        return self._stats.requests if self.local else len(self._scripted.received)

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="module")
def wire_server() -> Iterator[WireServer]:
    """One real rerank endpoint on 127.0.0.1 for this module's wire tests."""
    server = WireServer()
    yield server
    server.close()


WIRE_TEXTS = [
    "Quarterly tax filing deadlines for small businesses.",
    "Aloe vera gel soothes sensitive skin after sun exposure.",
    "How to repot an orchid without damaging its roots.",
    "Chamomile and aloe vera skincare for sensitive skin, fragrance free.",
    "A history of the printing press in early modern Europe.",
]
WIRE_QUERY = "aloe vera skincare for sensitive skin"


def wire_nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(id_=f"w{i}", text=text, metadata={"shelf": i}), score=0.1)
        for i, text in enumerate(WIRE_TEXTS)
    ]


def test_over_the_wire(mode: str, wire_server: WireServer, no_env: None) -> None:
    postprocessor = RerankPostprocessor(
        base_url=wire_server.base_url, top_n=2, timeout=5, metadata_mode=MetadataMode.NONE
    )
    before = wire_server.requests
    try:
        result = rerank(mode, postprocessor, wire_nodes(), query=WIRE_QUERY)
    finally:
        postprocessor.rerank_client.close()

    assert wire_server.requests == before + 1
    assert ids(result) == ["w3", "w1"]
    scores = [item.get_score(raise_error=True) for item in result]
    assert all(isinstance(score, float) for score in scores)
    assert scores == sorted(scores, reverse=True)
    assert all(item.node.metadata[SCORE_KEY] == item.score for item in result)


def test_over_the_wire_from_env_in_a_query_engine(
    mode: str, wire_server: WireServer, monkeypatch: pytest.MonkeyPatch, no_env: None
) -> None:
    monkeypatch.setenv("RERANK_BASE_URL", wire_server.base_url)
    monkeypatch.setenv("RERANK_API_KEY", API_KEY)
    postprocessor = RerankPostprocessor(top_n=2, timeout=5)
    retriever = FixedRetriever(wire_nodes())
    engine = RetrieverQueryEngine.from_args(
        retriever, llm=MockLLM(), node_postprocessors=[postprocessor]
    )
    try:
        response = run_mode(
            mode, lambda: engine.query(WIRE_QUERY), lambda: engine.aquery(WIRE_QUERY)
        )
    finally:
        postprocessor.rerank_client.close()

    assert ids(response.source_nodes) == ["w3", "w1"]
    assert all(SCORE_KEY in item.node.metadata for item in response.source_nodes)
    assert API_KEY not in postprocessor.to_json()


def test_texts_sent_match_get_content_in_every_mode() -> None:
    from llama_index.core.schema import Document as LlamaDocument

    nodes = [
        NodeWithScore(node=TextNode(text="plain"), score=0.1),
        NodeWithScore(node=TextNode(text="with meta", metadata={"source": "wiki"}), score=0.2),
        NodeWithScore(node=LlamaDocument(text="a document"), score=0.3),
    ]
    for mode in MetadataMode:
        postprocessor = RerankPostprocessor(base_url="https://h", metadata_mode=mode)
        expected = [item.node.get_content(metadata_mode=mode) for item in nodes]
        assert postprocessor._texts(nodes) == expected
