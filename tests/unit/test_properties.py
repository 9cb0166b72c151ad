"""Any status and any body: a correct ranking or a RerankError, never anything else."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerank_integrations import RerankClient, RerankError, RerankResponse

DOCUMENTS = ["alpha", "beta", "gamma", "delta", "alpha"]  # one repeat: dedup is exercised
DISTINCT = 4

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
any_json = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.text(max_size=12), children, max_size=6),
    ),
    max_leaves=30,
)
index_values = st.one_of(
    st.integers(min_value=-3, max_value=DISTINCT + 2),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)
score_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
    st.lists(st.floats(), max_size=2),
)
result_items = st.one_of(
    st.fixed_dictionaries({"index": index_values, "relevance_score": score_values}),
    st.fixed_dictionaries({"index": index_values, "score": score_values}),
    st.fixed_dictionaries(
        {"index": index_values, "relevance_score": score_values, "document": any_json}
    ),
    any_json,
)
near_valid = st.one_of(
    st.fixed_dictionaries({"results": st.lists(result_items, max_size=7)}),
    st.fixed_dictionaries({"results": st.lists(result_items, max_size=7), "usage": any_json}),
    st.fixed_dictionaries({"data": st.lists(result_items, max_size=7), "model": any_json}),
    st.lists(result_items, max_size=7),
    st.fixed_dictionaries({"results": any_json}),
    st.fixed_dictionaries({"error": any_json}),
    st.fixed_dictionaries({"error_code": any_json, "error_msg": any_json}),
)


def encode(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


bodies = st.one_of(
    st.binary(max_size=200),
    any_json.map(encode),
    near_valid.map(encode),
    st.integers(min_value=1, max_value=5_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(min_value=1, max_value=50_000).map(
        lambda depth: b'{"a":' * depth + b"1" + b"}" * depth
    ),
    st.integers(min_value=1, max_value=5_000).map(
        lambda depth: b'{"error":' + b"[" * depth + b"]" * depth + b"}"
    ),
)
statuses = st.one_of(
    st.sampled_from([200, 200, 200, 201, 204, 400, 401, 404, 429, 500, 502]), st.integers(200, 599)
)
header_sets = st.one_of(
    st.just({}),
    st.fixed_dictionaries(
        {"retry-after": st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)}
    ),
    st.fixed_dictionaries(
        {"content-type": st.sampled_from(["text/html", "application/json", "text/plain"])}
    ),
)


def client_for(status: int, body: bytes, headers: dict[str, str]) -> RerankClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    transport = httpx.MockTransport(handler)
    return RerankClient(
        "https://rerank.test",
        max_retries=1,
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )


def check_ranking(response: RerankResponse, top_n: int | None) -> None:
    results = response.results
    indexes = [r.index for r in results]
    assert len(set(indexes)) == len(indexes)
    assert all(0 <= i < len(DOCUMENTS) for i in indexes)
    scores = [r.relevance_score for r in results]
    assert all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert scores == sorted(scores, reverse=True)
    assert all(r.document == DOCUMENTS[r.index] for r in results)
    if top_n is not None:
        assert len(results) <= top_n
    # copies of a repeated text share its score
    by_index = {r.index: r.relevance_score for r in results}
    if 0 in by_index and 4 in by_index:
        assert by_index[0] == by_index[4]


COMMON = settings(
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@COMMON
@given(status=statuses, body=bodies, headers=header_sets, top_n=st.sampled_from([None, 1, 3]))
def test_any_answer_on_the_sync_path(
    status: int, body: bytes, headers: dict[str, str], top_n: int | None
) -> None:
    client = client_for(status, body, headers)
    try:
        response = client.rerank("alpha", DOCUMENTS, top_n=top_n)
    except RerankError:
        return
    finally:
        client.close()
    check_ranking(response, top_n)


@COMMON
@given(status=statuses, body=bodies, headers=header_sets, top_n=st.sampled_from([None, 1, 3]))
def test_any_answer_on_the_async_path(
    status: int, body: bytes, headers: dict[str, str], top_n: int | None
) -> None:
    client = client_for(status, body, headers)

    async def run() -> RerankResponse | None:
        try:
            return await client.arerank("alpha", DOCUMENTS, top_n=top_n)
        except RerankError:
            return None

    response = asyncio.run(run())
    client.close()
    if response is not None:
        check_ranking(response, top_n)
