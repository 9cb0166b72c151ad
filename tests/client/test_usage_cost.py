"""Usage and cost: counts summed over every answered request of a call (batches, windows of a
chunked document, the retry that got through, the fallback that answered), units computed
by a dialect's billing rule, ``Price`` and ``response.cost``, ``stats().cost``, the events of
both adapters, and the model that answered; sync and async, through ``httpx.MockTransport``
and on the wire."""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from support import ScriptedServer, json_reply, rank_body, run_mode
from support.wire import token_count

from rerank_integrations import Price, RerankClient, RerankResponse, Usage
from rerank_integrations.dialects import COHERE, PINECONE, BillingRule, Dialect, register_dialect
from rerank_integrations.langchain import USAGE_EVENT, RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor

QUERY = "apple"
LONG = " ".join(["apple orchard notes"] * 40)  # cut into windows of 30 tokens
TEXTS = ["apple pie", "pear tart", LONG, "plum cake", "poison cake"]


class Service:
    """A MockTransport API that reports ``total_tokens`` and the model it answered with;
    it fails every request holding ``poison`` and the first holding ``flaky`` (once)."""

    def __init__(
        self, poison: str | None = None, flaky: str | None = None, model: str | None = None
    ) -> None:
        self.poison, self.flaky, self.model = poison, flaky, model
        self.answered: list[dict[str, Any]] = []  # the bodies answered with a ranking
        self.failed = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        documents = body["documents"]
        if self.poison in documents or (self.flaky in documents and self.flaky):
            self.flaky = None if self.poison not in documents else self.flaky
            self.failed += 1
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        answer = rank_body(body)
        answer["usage"] = {"total_tokens": 10 * len(documents)}
        answer["model"] = self.model or body.get("model")
        self.answered.append(body)
        return httpx.Response(200, json=answer)

    def client(self, url: str, **kwargs: Any) -> RerankClient:
        transport = httpx.MockTransport(self)
        return RerankClient(
            url,
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            **kwargs,
        )

    @property
    def documents(self) -> int:
        return sum(len(body["documents"]) for body in self.answered)


def rerank(mode: str, client: RerankClient, texts: list[str], **kwargs: Any) -> RerankResponse:
    return run_mode(
        mode,
        lambda: client.rerank(QUERY, texts, **kwargs),
        lambda: client.arerank(QUERY, texts, **kwargs),
    )


PRICE = Price(per_million_tokens="2.50", per_request="0.001")


def expected_cost(tokens: int, requests: int) -> Decimal:
    return Decimal(tokens) * Decimal("2.50") / Decimal(1_000_000) + requests * Decimal("0.001")


@pytest.fixture
def services() -> Iterator[tuple[Service, Service, RerankClient]]:
    """A primary that answers its first batches (one after a retry) and then fails for
    good, and a fallback that answers; the primary batches two texts at a time, one by
    one, and chunks the long document."""
    primary, fallback = Service(poison="poison cake", flaky="apple pie"), Service()
    chunked = {"long_documents": "chunk", "max_tokens_per_document": 30}
    backup = fallback.client("https://fallback.test/v1", max_documents_per_request=3, **chunked)
    client = primary.client(
        "https://primary.test/v1",
        max_documents_per_request=2,
        max_concurrency=1,
        max_retries=1,
        fallbacks=[backup],
        **chunked,
        price=PRICE,
    )
    yield primary, fallback, client
    client.close()
    backup.close()


def check_summed(response: RerankResponse, primary: Service, fallback: Service) -> None:
    """Every answered request counted once: the primary's (the retried one once) and the
    fallback's; the failed attempts not at all."""
    answered = [*primary.answered, *fallback.answered]
    assert primary.answered and fallback.answered and primary.failed >= 3
    usage = response.usage
    assert usage is not None
    assert usage.requests == len(answered)
    assert usage.documents == primary.documents + fallback.documents
    assert usage.total_tokens == 10 * usage.documents
    assert usage.search_units is None and usage.billed_units is None  # nobody reported units
    assert usage.input_tokens is None
    assert len(usage.per_request) == len(answered)
    assert sorted(raw["usage"]["total_tokens"] for raw in usage.per_request) == sorted(
        10 * len(body["documents"]) for body in answered
    )
    assert response.windows > 0  # the long document went as windows, to both
    assert any(LONG not in body["documents"] and len(body["documents"]) for body in answered)
    windows = [text for body in primary.answered for text in body["documents"] if "orchard" in text]
    assert len(windows) > 1
    assert response.cost == expected_cost(usage.total_tokens, usage.requests)


def test_usage_and_cost_sum_over_a_batched_chunked_retried_and_fallen_back_call(
    mode: str, services: tuple[Service, Service, RerankClient]
) -> None:
    primary, fallback, client = services
    response = rerank(mode, client, TEXTS)
    check_summed(response, primary, fallback)
    assert response.endpoint == "https://fallback.test/v1/rerank"
    stats = client.stats()
    assert stats.cost == response.cost and stats.fallbacks == 1
    again = rerank(mode, client, TEXTS[:2])  # one batch, answered at once
    assert again.usage == Usage(
        total_tokens=20,
        requests=1,
        documents=2,
        per_request=({"usage": {"total_tokens": 20}},),
    )
    assert client.stats().cost == response.cost + expected_cost(20, 1)


class UsageEvents(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append((name, data))


def test_the_langchain_event_carries_the_summed_usage_and_cost(
    mode: str, services: tuple[Service, Service, RerankClient]
) -> None:
    primary, fallback, client = services
    compressor = RerankCompressor(client=client, top_n=2)
    handler = UsageEvents()
    documents = [Document(page_content=text) for text in TEXTS]
    run_mode(
        mode,
        lambda: compressor.compress_documents(documents, QUERY, callbacks=[handler]),
        lambda: compressor.acompress_documents(documents, QUERY, callbacks=[handler]),
    )
    ((name, data),) = handler.events
    assert name == USAGE_EVENT
    answered = len(primary.answered) + len(fallback.answered)
    documents_sent = primary.documents + fallback.documents
    assert data["requests"] == len(fallback.answered)  # those of the client that answered
    assert data["documents"] == documents_sent
    assert data["total_tokens"] == 10 * documents_sent
    assert data["cost"] == expected_cost(10 * documents_sent, answered)
    assert data["currency"] == "USD"
    assert client.stats().cost == data["cost"]


class EndEvents(BaseEventHandler):
    seen: list[ReRankEndEvent]

    @classmethod
    def class_name(cls) -> str:
        return "UsageEndEvents"

    def handle(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, ReRankEndEvent):
            self.seen.append(event)


def test_the_llama_index_end_event_carries_the_summed_usage_and_cost(
    mode: str, services: tuple[Service, Service, RerankClient]
) -> None:
    primary, fallback, client = services
    handler = EndEvents(seen=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    try:
        postprocessor = RerankPostprocessor(client=client, top_n=2)
        nodes = [NodeWithScore(node=TextNode(text=text), score=0.5) for text in TEXTS]
        bundle = QueryBundle(QUERY)
        run_mode(
            mode,
            lambda: postprocessor.postprocess_nodes(nodes, query_bundle=bundle),
            lambda: postprocessor.apostprocess_nodes(nodes, query_bundle=bundle),
        )
    finally:
        root.event_handlers.remove(handler)
    (event,) = handler.seen
    usage = event.tags["usage"]
    answered = len(primary.answered) + len(fallback.answered)
    documents_sent = primary.documents + fallback.documents
    assert (usage["requests"], usage["documents"]) == (len(fallback.answered), documents_sent)
    assert usage["cost"] == expected_cost(10 * documents_sent, answered)
    assert usage["currency"] == "USD"


def test_adapters_take_a_price_and_build_their_client_with_it(mode: str) -> None:
    service = Service()
    transport = httpx.MockTransport(service)
    price = Price(per_request="0.5", currency="eur")
    compressor = RerankCompressor(
        base_url="https://one.test/v1", price=price, top_n=1, max_documents_per_request=2
    )
    postprocessor = RerankPostprocessor(base_url="https://one.test/v1", price=price, top_n=1)
    for adapter in (compressor, postprocessor):
        client = adapter.rerank_client
        assert client.settings.price == price
        client._user_http_client = httpx.Client(transport=transport)
        client._user_async_http_client = httpx.AsyncClient(transport=transport)
    handler = UsageEvents()
    documents = [Document(page_content=text) for text in TEXTS[:3]]
    run_mode(
        mode,
        lambda: compressor.compress_documents(documents, QUERY, callbacks=[handler]),
        lambda: compressor.acompress_documents(documents, QUERY, callbacks=[handler]),
    )
    ((_, data),) = handler.events
    assert data["cost"] == Decimal("1.0") and data["currency"] == "EUR"  # two requests
    assert compressor.rerank_client.stats().cost == Decimal("1.0")


# -- on the wire --------------------------------------------------------------------------


def test_usage_and_cost_on_the_wire_retried_and_fallen_back(
    mode: str, start_server: Callable[..., ScriptedServer]
) -> None:
    primary, backup = start_server(), start_server()
    texts = ["apple pie", "pear tart", "plum cake", "apple crumble"]
    answer = {
        "results": [{"index": 0, "relevance_score": 0.9}, {"index": 1, "relevance_score": 0.1}],
        "usage": {"total_tokens": 7},
    }
    # batch 1: 503, then answered; batch 2: 503 twice, so the fallback takes the call.
    overloaded = json_reply(503, {"error": {"message": "overloaded"}})
    primary.queue(overloaded, json_reply(200, answer), overloaded, overloaded)
    fallback = RerankClient(backup.base_url, max_documents_per_request=3, timeout=10)
    client = RerankClient(
        primary.base_url,
        max_documents_per_request=2,
        max_concurrency=1,
        max_retries=1,
        timeout=10,
        fallbacks=[fallback],
        price=PRICE,
    )
    try:
        response = rerank(mode, client, texts)
    finally:
        client.close()
        fallback.close()
    assert len(primary.received) == 4 and len(backup.received) == 2
    fallback_tokens = sum(token_count(r.asked) for r in backup.received if r.asked)
    usage = response.usage
    assert usage is not None
    assert (usage.requests, usage.documents) == (3, 2 + 4)
    assert usage.total_tokens == 7 + fallback_tokens
    assert response.cost == expected_cost(7 + fallback_tokens, 3)


def test_pinecone_rerank_units_on_the_wire(
    mode: str, start_server: Callable[..., ScriptedServer]
) -> None:
    server = start_server("pinecone")
    texts = [f"apple {i}" if i % 3 else f"pear {i}" for i in range(250)]
    client = RerankClient(
        server.base_url,
        "key",
        "bge-reranker-v2-m3",
        dialect="pinecone",
        timeout=10,
        price=Price(per_search_unit="0.002"),
    )
    try:
        response = rerank(mode, client, texts)
    finally:
        client.close()
    usage = response.usage
    assert usage is not None and usage.requests == 3  # 100 documents a request
    assert usage.search_units == usage.billed_units == 3
    assert usage.search_units_source == "reported"
    assert response.cost == Decimal("0.006")


# -- units by the dialect's rule ------------------------------------------------------------


def test_billing_rules_are_stated_per_dialect() -> None:
    assert COHERE.billing == BillingRule(
        "search unit", 100, 500, query_in_document=True, source=COHERE.billing.source
    )
    assert PINECONE.billing is not None and PINECONE.billing.tokens_per_document is None
    cohere, pinecone = COHERE.billing, PINECONE.billing
    assert cohere.units(5, [10] * 100) == 1
    assert cohere.units(5, [10] * 101) == 2
    assert cohere.units(5, [495] * 99 + [10]) == 1  # 500 tokens with the query: one each
    assert cohere.units(5, [496] * 50) == 1  # 501 tokens: two documents each, 100 in all
    assert cohere.units(5, [496] * 51) == 2
    assert cohere.units(5, [1200] * 40) == 2  # each counts as 3 documents: 120
    assert pinecone.units(5, [5000] * 100) == 1 and pinecone.units(5, [1] * 250) == 3


@pytest.mark.parametrize("reported", [True, False])
def test_units_are_computed_by_the_rule_only_where_not_reported(mode: str, reported: bool) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        results = [{"index": i, "relevance_score": 0.5} for i in range(len(body["documents"]))]
        meta = {"billed_units": {"search_units": 1}} if reported else {}
        return httpx.Response(200, json={"results": results, "meta": meta})

    transport = httpx.MockTransport(answer)
    client = RerankClient(
        "https://cohere.test",
        "key",
        "rerank-v3.5",
        dialect="cohere",
        max_documents_per_request=150,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        price=Price(per_search_unit="0.002"),
    )
    texts = [f"apple {i}" for i in range(299)] + [" ".join(["word"] * 900)]
    response = rerank(mode, client, texts)
    usage = response.usage
    assert usage is not None and usage.requests == 2
    if reported:
        assert usage.search_units == usage.billed_units == 2
        assert usage.search_units_source == "reported"
    else:
        # 150 short documents: 2 units; 149 more and one of ~900 tokens (2 or more
        # documents by Cohere's rule): 2 units.
        assert usage.billed_units is None and usage.search_units == 4
        assert usage.search_units_source == "computed"
    assert response.cost == Decimal("0.002") * Decimal(str(usage.search_units))


def test_a_cost_whose_unit_nobody_reported_is_none_and_said_once(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    service = Service()
    client = service.client("https://plain.test/v1", price=Price(per_search_unit="0.002"))
    with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
        first = rerank(mode, client, TEXTS[:2])
        second = rerank(mode, client, TEXTS[:2])
    assert first.cost is None and second.cost is None
    said = [r.getMessage() for r in caplog.records if "no cost" in r.getMessage()]
    assert len(said) == 1 and "search units" in said[0]
    assert client.stats().cost == 0  # the price is set; no call had a known cost
    plain = service.client("https://plain.test/v1")
    assert rerank(mode, plain, TEXTS[:2]).cost is None and plain.stats().cost is None


def test_a_call_answered_from_the_cache_uses_nothing_and_costs_nothing(mode: str) -> None:
    service = Service()
    client = service.client("https://plain.test/v1", cache={}, price=PRICE)
    rerank(mode, client, TEXTS[:2])
    again = rerank(mode, client, TEXTS[:2])
    assert again.usage is not None and again.usage.requests == 0
    assert again.usage.total_tokens == 0 and again.cost == Decimal(0)


# -- Price --------------------------------------------------------------------------------


def test_price_keeps_decimals_and_refuses_what_is_not_a_price() -> None:
    price = Price(per_search_unit=0.002, per_million_tokens=2, per_request="0.0001")
    assert price.per_search_unit == Decimal("0.002")
    assert price.per_million_tokens == Decimal(2) and price.per_request == Decimal("0.0001")
    assert price.currency == "USD"
    assert pickle.loads(pickle.dumps(price)) == price
    usage = Usage(total_tokens=500_000, requests=3, search_units=2)
    assert price.cost(usage) == Decimal("0.004") + Decimal(1) + Decimal("0.0003")
    with pytest.raises(ValueError, match="at least one"):
        Price()
    with pytest.raises(ValueError, match="per_request"):
        Price(per_request=-1)
    with pytest.raises(ValueError, match="per_search_unit"):
        Price(per_search_unit="a lot")
    with pytest.raises(ValueError, match="per_million_tokens"):
        Price(per_million_tokens=float("nan"))
    with pytest.raises(TypeError, match="per_request"):
        Price(per_request=True)
    with pytest.raises(ValueError, match="currency"):
        Price(per_request=1, currency=" ")
    with pytest.raises(TypeError, match="price must be a Price"):
        RerankClient("https://x.test", price={"per_request": 1})  # type: ignore[arg-type]


def test_a_dialect_with_a_billing_rule_of_the_wrong_kind_is_refused() -> None:
    from dataclasses import replace

    from rerank_integrations.dialects import GENERIC

    bad: Dialect = replace(GENERIC, name="bad-billing", billing="per call")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="billing"):
        register_dialect(bad)
    zero = replace(GENERIC, name="bad-billing", billing=BillingRule("unit", 0))
    with pytest.raises(ValueError, match="billing"):
        register_dialect(zero)


# -- the model that answered --------------------------------------------------------------


def swapped(**kwargs: Any) -> tuple[Service, RerankClient]:
    service = Service(model="rerank-4-fast")
    return service, service.client("https://swap.test/v1", model="rerank-3.5", **kwargs)


def test_the_model_that_answered_and_the_one_asked_for(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, client = swapped()
    with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
        first = rerank(mode, client, TEXTS[:2])
        rerank(mode, client, TEXTS[:3])
        same = rerank(mode, client, TEXTS[:2], model="rerank-4-fast")
    assert (first.model, first.requested_model) == ("rerank-4-fast", "rerank-3.5")
    assert (same.model, same.requested_model) == ("rerank-4-fast", "rerank-4-fast")
    said = [r for r in caplog.records if "answered with" in r.getMessage()]
    assert len(said) == 1  # once per client and pair
    assert "'rerank-3.5'" in said[0].getMessage() and "'rerank-4-fast'" in said[0].getMessage()
    assert "another scale" not in said[0].getMessage()
    _, other = swapped()
    with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
        rerank(mode, other, TEXTS[:2])
    assert len([r for r in caplog.records if "answered with" in r.getMessage()]) == 2


def test_a_server_that_names_no_model_answers_with_the_one_asked_for(mode: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=rank_body(json.loads(request.content)))

    transport = httpx.MockTransport(answer)
    client = RerankClient(
        "https://quiet.test/v1",
        model="m",
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    response = rerank(mode, client, TEXTS[:2])
    assert (response.model, response.requested_model) == ("m", "m")


def test_a_swap_under_a_score_threshold_is_warned_of_louder_once(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, client = swapped()
    compressor = RerankCompressor(client=client, top_n=2, score_threshold=0.1)
    documents = [Document(page_content=text) for text in TEXTS[:3]]
    nodes = [NodeWithScore(node=TextNode(text=text), score=0.5) for text in TEXTS[:3]]
    postprocessor = RerankPostprocessor(client=client, top_n=2, score_threshold=0.1)
    bundle = QueryBundle(QUERY)
    with caplog.at_level(logging.WARNING, logger="rerank_integrations"):
        for _ in range(2):
            run_mode(
                mode,
                lambda: compressor.compress_documents(documents, QUERY),
                lambda: compressor.acompress_documents(documents, QUERY),
            )
            run_mode(
                mode,
                lambda: postprocessor.postprocess_nodes(nodes, query_bundle=bundle),
                lambda: postprocessor.apostprocess_nodes(nodes, query_bundle=bundle),
            )
    said = [r for r in caplog.records if "answered with" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING
    assert "scores may be on another scale" in said[0].getMessage()
    assert "score_threshold" in said[0].getMessage()


@pytest.mark.parametrize(
    ("name", "model", "total_tokens", "input_tokens", "units"),
    [
        ("cohere_v2_rerank.json", None, None, None, 1),
        ("litellm_rerank.json", None, None, None, 1),
        ("pinecone_rerank.json", "bge-reranker-v2-m3", None, None, 1),
        ("voyage_rerank.json", "rerank-2.5", 47, None, None),
        ("jina_rerank.json", "jina-reranker-v2-base-multilingual", 96, None, None),
        ("vllm_v1_rerank.json", "BAAI/bge-reranker-base", 33, None, None),
        ("infinity_rerank.json", "BAAI/bge-reranker-base", 27, 27, None),
        ("siliconflow_rerank.json", None, 44, 44, 1),
        ("xinference_rerank.json", None, 53, 53, None),
        ("nim_v1_ranking.json", None, None, None, None),
    ],
)
def test_documented_answers_give_their_model_and_usage(
    name: str, model: str | None, total_tokens: int | None, input_tokens: int | None, units: Any
) -> None:
    """What each vendor's documented answer says of the model and the usage: Jina, vLLM,
    Infinity, Voyage and Pinecone name the model; Cohere (and LiteLLM's Cohere-shaped
    answer) report search units in ``meta`` but no model."""
    from support import load_fixture

    from rerank_integrations._answers import parse_ranking

    parsed = parse_ranking(load_fixture("dialects/fixtures", name).response)
    assert parsed.model == model
    assert (parsed.total_tokens, parsed.input_tokens) == (total_tokens, input_tokens)
    assert parsed.billed_units == units
    assert bool(parsed.usage) == (name != "nim_v1_ranking.json")


def test_zero_units_reported_for_documents_ranked_count_as_unreported(mode: str) -> None:
    """SiliconFlow answers ``search_units: 0`` beside its tokens (LiteLLM's cost 0): a
    request that ranked documents cannot have used no unit, so the count is unknown."""

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        results = [{"index": i, "relevance_score": 0.5} for i in range(len(body["documents"]))]
        billed = {"input_tokens": 101, "search_units": 0}
        return httpx.Response(200, json={"results": results, "meta": {"billed_units": billed}})

    transport = httpx.MockTransport(answer)
    client = RerankClient(
        "https://sf.test/v1",
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
        price=Price(per_search_unit="0.002"),
    )
    response = rerank(mode, client, TEXTS[:2])
    assert response.usage is not None and response.usage.search_units is None
    assert response.usage.input_tokens == 101 and response.cost is None
    assert response.usage.per_request == ({"meta": {"billed_units": billed_of(101)}},)


def billed_of(tokens: int) -> dict[str, int]:
    return {"input_tokens": tokens, "search_units": 0}


def test_an_adapters_price_survives_serialization() -> None:
    price = Price(per_search_unit="0.002", currency="EUR")
    postprocessor = RerankPostprocessor(base_url="https://one.test/v1", price=price)
    data = json.loads(postprocessor.to_json())
    assert data["price"] == {
        "per_search_unit": "0.002",
        "per_million_tokens": None,
        "per_request": None,
        "currency": "EUR",
    }
    again = RerankPostprocessor.from_dict(data)
    assert again.price == price and again.rerank_client.settings.price == price
    compressor = RerankCompressor(base_url="https://one.test/v1", price=price)
    assert RerankCompressor(**compressor.model_dump()).price == price
    assert pickle.loads(pickle.dumps(compressor)).price == price
    with pytest.raises(ValueError, match="price"):
        RerankCompressor(base_url="https://one.test/v1", price="cheap")


def test_a_retriever_run_carries_the_usage_and_the_cost_in_its_metadata(
    mode: str, start_server: Callable[..., ScriptedServer]
) -> None:
    from support.lc import QUERY as LC_QUERY
    from support.lc import ListRetriever, RecordingTracer, passage_documents

    from rerank_integrations.langchain import RerankRetriever

    server = start_server()
    reranker = RerankCompressor(
        base_url=server.base_url,
        top_n=2,
        timeout=5,
        max_documents_per_request=3,
        price=Price(per_request="0.01", per_million_tokens="100"),
    )
    retriever = RerankRetriever(
        base_retriever=ListRetriever(documents=passage_documents()), reranker=reranker
    )
    tracer = RecordingTracer()
    config: Any = {"callbacks": [tracer], "run_name": "priced"}

    async def ainvoke() -> Any:
        try:
            return await retriever.ainvoke(LC_QUERY, config=config)
        finally:
            await reranker.aclose()

    run_mode(mode, lambda: retriever.invoke(LC_QUERY, config=config), ainvoke)
    reranker.close()
    (rerank_run,) = tracer.named("priced")
    usage = rerank_run.metadata["rerank_usage"]
    tokens = sum(token_count(r.asked) for r in server.received if r.asked)
    requests = len(server.received)
    assert requests > 1 and usage["total_tokens"] == tokens
    assert usage["cost"] == Decimal(tokens) * 100 / Decimal(1_000_000) + requests * Decimal("0.01")
    assert usage["currency"] == "USD" and usage["documents"] == len(passage_documents())
    (event,) = tracer.events
    assert event.data == usage
