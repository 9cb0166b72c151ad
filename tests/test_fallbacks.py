"""Fallbacks and the pass-through of last resort: which failures move on to the next client,
within the call's deadline, and how every step is seen."""

from __future__ import annotations

import json
import logging
import socket
import types
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.documents import Document
from llama_index.core.schema import ImageNode, NodeWithScore, QueryBundle, TextNode
from support import MockAPI, run_mode

from rerank_integrations import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    Image,
    RerankClient,
    RerankResponse,
    ServerError,
)
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor
from rerank_integrations.server import serve_in_thread

QUERY = "apple"
TEXTS = ["pear tart", "apple pie", "plum cake"]


def call(client: RerankClient, mode: str, **kwargs: Any) -> RerankResponse:
    return run_mode(
        mode,
        lambda: client.rerank(QUERY, TEXTS, **kwargs),
        lambda: client.arerank(QUERY, TEXTS, **kwargs),
    )


class Service:
    """One mock API behind its own URL, failing as told."""

    def __init__(self, url: str, *replies: Any) -> None:
        self.api = MockAPI()
        self.api.queue(*replies)
        self.url = url

    def client(self, **kwargs: Any) -> RerankClient:
        transport = httpx.MockTransport(self.api)
        return RerankClient(
            self.url,
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            max_retries=kwargs.pop("max_retries", 1),
            **kwargs,
        )


def status(code: int, message: str = "down") -> httpx.Response:
    return httpx.Response(code, json={"error": {"message": message}})


PRIMARY = "https://primary.test/v1"
SECOND = "https://second.test/v1"
THIRD = "https://third.test/v1"


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(lambda: httpx.ConnectError("refused"), id="connection"),
        pytest.param(lambda: httpx.ReadTimeout("slow"), id="timeout"),
        pytest.param(lambda: status(429, "quota"), id="429"),
        pytest.param(lambda: status(503), id="503"),
        pytest.param(lambda: status(504), id="504"),
        pytest.param(lambda: status(408), id="408"),
    ],
)
def test_a_fallback_answers_when_the_primary_is_down(
    mode: str, failure: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    backup = Service(SECOND)
    primary = Service(PRIMARY, failure(), failure()).client(fallbacks=[backup.client()])
    with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
        response = call(primary, mode, top_n=2)
    assert response.endpoint == SECOND + "/rerank"
    assert [r.index for r in response.results] == [1, 0]
    assert len(backup.api.requests) == 1
    stats = primary.stats()
    assert (stats.calls, stats.fallbacks, stats.requests, stats.retries) == (1, 1, 2, 1)
    moved = [r.getMessage() for r in caplog.records if "trying fallback 1 of 1" in r.getMessage()]
    assert len(moved) == 1 and PRIMARY in moved[0] and SECOND in moved[0]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (400, BadRequestError),
        (422, BadRequestError),
        (401, AuthenticationError),
    ],
)
def test_a_refusal_of_the_input_never_falls_back(
    mode: str, reply: int, error: type[Exception]
) -> None:
    backup = Service(SECOND)
    primary = Service(PRIMARY, status(reply, "refused")).client(fallbacks=[backup.client()])
    with pytest.raises(error):
        call(primary, mode)
    assert backup.api.requests == []
    assert primary.stats().fallbacks == 0


def test_bad_arguments_are_refused_before_anything(mode: str) -> None:
    backup = Service(SECOND)
    primary = Service(PRIMARY).client(fallbacks=[backup.client()])
    with pytest.raises(ValueError, match="top_n"):
        call(primary, mode, top_n=0)
    assert backup.api.requests == [] and primary.stats().requests == 0


def test_fallbacks_are_tried_in_order_and_the_last_error_keeps_the_chain(mode: str) -> None:
    second = Service(SECOND, *[status(500, "second down"), status(500, "second down")])
    third = Service(THIRD, *[httpx.ConnectError("third refused")] * 2)
    primary = Service(PRIMARY, *[status(502, "primary down"), status(502, "primary down")]).client(
        fallbacks=[second.client(), third.client()]
    )
    with pytest.raises(APIConnectionError, match="third refused") as raised:
        call(primary, mode)
    cause = raised.value.__cause__
    assert isinstance(cause, ServerError) and "second down" in str(cause)
    assert isinstance(cause.__cause__, ServerError) and "primary down" in str(cause.__cause__)
    assert primary.stats().fallbacks == 0

    working = Service(THIRD)
    primary = Service(PRIMARY, *[status(502), status(502)]).client(
        fallbacks=[Service(SECOND, *[status(500), status(500)]).client(), working.client()]
    )
    assert call(primary, mode).endpoint == THIRD + "/rerank"
    assert primary.stats().fallbacks == 1


def test_a_fallback_that_refuses_the_input_ends_the_chain(mode: str) -> None:
    last = Service(THIRD)
    primary = Service(PRIMARY, *[status(503), status(503)]).client(
        fallbacks=[Service(SECOND, status(400, "unknown model")).client(), last.client()]
    )
    with pytest.raises(BadRequestError, match="unknown model"):
        call(primary, mode)
    assert last.api.requests == []


IMAGE_DOCUMENTS = ["pear tart", Image(url="https://img.test/apple-pie.jpg"), "apple pie"]


def image_call(client: RerankClient, mode: str) -> RerankResponse:
    return run_mode(
        mode,
        lambda: client.rerank(QUERY, IMAGE_DOCUMENTS),
        lambda: client.arerank(QUERY, IMAGE_DOCUMENTS),
    )


def test_a_fallback_that_cannot_take_the_documents_is_skipped(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    text_only = Service(SECOND)
    images = Service(THIRD)
    primary = Service(PRIMARY, status(503, "primary down"), status(503, "primary down")).client(
        dialect="jina",
        model="jina-reranker-m0",
        fallbacks=[text_only.client(), images.client(dialect="jina", model="jina-reranker-m0")],
    )
    with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
        response = image_call(primary, mode)
    assert response.endpoint == THIRD + "/rerank"
    assert text_only.api.requests == [] and len(images.api.requests) == 1
    skipped = [r.getMessage() for r in caplog.records if "cannot take" in r.getMessage()]
    assert len(skipped) == 1 and SECOND in skipped[0] and "documents[1] is an image" in skipped[0]
    moved = [r.getMessage() for r in caplog.records if "trying fallback 2 of 2" in r.getMessage()]
    assert len(moved) == 1 and PRIMARY in moved[0] and "primary down" in moved[0]


def test_errors_after_a_skipped_fallback_chain_back_to_the_primarys(mode: str) -> None:
    # Only fallbacks that cannot take the documents: the primary's error is raised.
    primary = Service(PRIMARY, status(503, "primary down"), status(503, "primary down")).client(
        dialect="jina", model="jina-reranker-m0", fallbacks=[Service(SECOND).client()]
    )
    with pytest.raises(ServerError, match="primary down"):
        image_call(primary, mode)
    # The next one fails too: its error, caused by the primary's.
    failing = Service(THIRD, status(502, "third down"), status(502, "third down"))
    primary = Service(PRIMARY, status(503, "primary down"), status(503, "primary down")).client(
        dialect="jina",
        model="jina-reranker-m0",
        fallbacks=[Service(SECOND).client(), failing.client(dialect="jina", model="m")],
    )
    with pytest.raises(ServerError, match="third down") as raised:
        image_call(primary, mode)
    cause = raised.value.__cause__
    assert isinstance(cause, ServerError) and "primary down" in str(cause)


@pytest.mark.parametrize("adapter", ["langchain", "llama_index"])
def test_the_adapters_pass_through_when_no_fallback_can_take_the_documents(
    mode: str, adapter: str
) -> None:
    primary = Service(PRIMARY, status(503), status(503)).client(
        dialect="jina", model="jina-reranker-m0", fallbacks=[Service(SECOND).client()]
    )
    image = "https://img.test/apple-pie.jpg"
    if adapter == "langchain":
        compressor = RerankCompressor(client=primary, on_error="passthrough")
        given = [
            Document(page_content="pear tart", id="d0"),
            Document(page_content="", id="d1", metadata={"rerank_image": image}),
        ]
        out = run_mode(
            mode,
            lambda: compressor.compress_documents(given, QUERY),
            lambda: compressor.acompress_documents(given, QUERY),
        )
        ids, metadata = [d.id for d in out], out[0].metadata
    else:
        postprocessor = RerankPostprocessor(client=primary, on_error="passthrough")
        nodes = [
            NodeWithScore(node=TextNode(text="pear tart", id_="d0"), score=0.5),
            NodeWithScore(node=ImageNode(image_url=image, id_="d1"), score=0.4),
        ]
        bundle = QueryBundle(QUERY)
        out = run_mode(
            mode,
            lambda: postprocessor.postprocess_nodes(nodes, query_bundle=bundle),
            lambda: postprocessor.apostprocess_nodes(nodes, query_bundle=bundle),
        )
        ids, metadata = [n.node.node_id for n in out], out[0].node.metadata
    assert ids == ["d0", "d1"]
    assert metadata == {"reranked": False, "rerank_error": "ServerError"}
    assert primary.stats().passthroughs == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def test_never_past_the_deadline(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(
        "rerank_integrations._call.time", types.SimpleNamespace(monotonic=clock.monotonic)
    )

    def slow_failure(request: httpx.Request) -> httpx.Response:
        clock.now += 6.0  # the primary's answer takes longer than the call may
        return status(503)

    backup = Service(SECOND)
    primary = Service(PRIMARY, slow_failure).client(
        fallbacks=[backup.client()], deadline=5.0, max_retries=0
    )
    with pytest.raises((ServerError, APITimeoutError)):
        call(primary, mode)
    assert backup.api.requests == []


def test_a_fallback_gets_what_is_left_of_the_deadline(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(
        "rerank_integrations._call.time", types.SimpleNamespace(monotonic=clock.monotonic)
    )

    def failure(request: httpx.Request) -> httpx.Response:
        clock.now += 3.0
        return status(503)

    backup = Service(SECOND).client(deadline=60.0)
    seen: list[Any] = []
    original, aoriginal = backup.rerank, backup.arerank

    def spy(*args: Any, **kwargs: Any) -> RerankResponse:
        seen.append(kwargs["deadline"])
        return original(*args, **kwargs)

    async def aspy(*args: Any, **kwargs: Any) -> RerankResponse:
        seen.append(kwargs["deadline"])
        return await aoriginal(*args, **kwargs)

    backup.rerank, backup.arerank = spy, aspy  # type: ignore[method-assign]
    primary = Service(PRIMARY, failure).client(fallbacks=[backup], deadline=5.0, max_retries=0)
    assert call(primary, mode).endpoint == SECOND + "/rerank"
    assert seen == [pytest.approx(2.0)]

    # Without a deadline of the call's own, the fallback keeps its own.
    seen.clear()
    primary = Service(PRIMARY, failure).client(fallbacks=[backup], max_retries=0)
    call(primary, mode)
    assert len(seen) == 1 and type(seen[0]).__name__ == "NotGiven"


def test_fallbacks_use_their_own_model(mode: str) -> None:
    backup = Service(SECOND)
    primary = Service(PRIMARY, *[status(503), status(503)]).client(
        model="big-model", fallbacks=[backup.client(model="small-model")]
    )
    call(primary, mode, model="big-model-v2")
    assert json.loads(backup.api.requests[0].content)["model"] == "small-model"


def test_fallbacks_must_be_clients() -> None:
    with pytest.raises(TypeError, match="fallbacks must be a list"):
        RerankClient("https://h", fallbacks=RerankClient("https://g"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"fallbacks\[1\] must be a RerankClient"):
        RerankClient("https://h", fallbacks=[RerankClient("https://g"), "https://f"])  # type: ignore[list-item]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_over_the_wire_a_local_server_stands_in_for_a_dead_one(mode: str) -> None:
    with serve_in_thread() as server:
        backup = RerankClient(server.base_url)
        primary = RerankClient(
            f"http://127.0.0.1:{closed_port()}/v1", max_retries=0, fallbacks=[backup]
        )
        response = call(primary, mode, top_n=1)
        assert response.endpoint == backup.endpoint
        assert TEXTS[response.results[0].index] == "apple pie"
        assert server.stats.requests == 1
        primary.close()
        backup.close()


# -- the adapters ----------------------------------------------------------------------------


def documents() -> list[Document]:
    return [Document(page_content=t, id=f"d{i}") for i, t in enumerate(TEXTS)]


def nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.5) for i, t in enumerate(TEXTS)
    ]


def test_the_adapters_fall_back_before_passing_through(mode: str) -> None:
    backup = Service(SECOND)
    compressor = RerankCompressor(
        base_url=f"http://127.0.0.1:{closed_port()}/v1",  # nothing listens there
        fallbacks=[backup.client()],
        max_retries=0,
        top_n=1,
        on_error="passthrough",
    )
    kept = run_mode(
        mode,
        lambda: compressor.compress_documents(documents(), QUERY),
        lambda: compressor.acompress_documents(documents(), QUERY),
    )
    assert [d.id for d in kept] == ["d1"] and "relevance_score" in kept[0].metadata
    stats = compressor.rerank_client.stats()
    assert (stats.fallbacks, stats.passthroughs) == (1, 0)
    assert "fallbacks" not in compressor.model_dump()


@pytest.mark.parametrize("adapter", ["langchain", "llama_index"])
def test_a_passthrough_is_counted_logged_and_marked(
    mode: str,
    adapter: str,
    make_client: Callable[..., RerankClient],
    mock_api: MockAPI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mock_api.queue(*[httpx.ConnectError("no route to host")] * 2)
    client = make_client(max_retries=1)
    with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
        if adapter == "langchain":
            compressor = RerankCompressor(client=client, on_error="passthrough", top_n=2)
            out = run_mode(
                mode,
                lambda: compressor.compress_documents(documents(), QUERY),
                lambda: compressor.acompress_documents(documents(), QUERY),
            )
            metadata = [d.metadata for d in out]
        else:
            postprocessor = RerankPostprocessor(client=client, on_error="passthrough", top_n=2)
            bundle = QueryBundle(QUERY)
            out = run_mode(
                mode,
                lambda: postprocessor.postprocess_nodes(nodes(), query_bundle=bundle),
                lambda: postprocessor.apostprocess_nodes(nodes(), query_bundle=bundle),
            )
            metadata = [n.node.metadata for n in out]
    assert metadata == [{"reranked": False, "rerank_error": "APIConnectionError"}] * 2
    assert client.stats().passthroughs == 1
    logged = [r.getMessage() for r in caplog.records if "original order" in r.getMessage()]
    assert len(logged) == 1 and "APIConnectionError" in logged[0] and "no route" in logged[0]
