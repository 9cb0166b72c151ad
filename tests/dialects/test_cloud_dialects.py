"""The cloud dialects and the presets, from their vendors' documented examples: requests
built, answers parsed, errors typed with the server's own message; endpoints and limits;
answers by record id, scores in input order and paged answers through the client."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from support import MockAPI, run_mode

import rerank_integrations
from rerank_integrations import (
    APIStatusError,
    ConfigurationError,
    Image,
    RerankClient,
    ResponseFormatError,
)
from rerank_integrations._codec import decode_response, encode_request, make_status_error
from rerank_integrations._config import resolve_endpoint
from rerank_integrations._documents import prepare_documents
from rerank_integrations._plan import plan_rerank
from rerank_integrations.dialects import DIALECTS, LIMIT_NAMES, PRESETS, get_dialect
from rerank_integrations.dialects._instructions import carry_instruction

FIXTURES = Path(__file__).parent / "fixtures" / "cloud"
FILES = sorted(path.name for path in FIXTURES.glob("*.json"))
EXCHANGES = [name for name in FILES if "call" in json.loads((FIXTURES / name).read_text())]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


def test_every_file_says_where_it_comes_from() -> None:
    assert len(FILES) >= 25
    for name in FILES:
        data = load(name)
        assert data["dialect"] in DIALECTS, name
        assert data["fidelity"] in ("documented", "from-source", "assumed"), name
        assert data["source"] and data["notes"] and data["service"], name


NEW_DIALECTS = {"watsonx", "vertex", "bedrock", "oci", "deepinfra"} | {p.name for p in PRESETS}


def test_every_new_dialect_and_preset_has_an_answer_and_its_request() -> None:
    answered = {load(name)["dialect"] for name in EXCHANGES if "_error_" not in name}
    assert answered >= NEW_DIALECTS


# -- the table ------------------------------------------------------------------------------


def call_documents(call: dict[str, Any]) -> list[Any]:
    """The call's documents: strings, and the files' marks for images and mappings."""
    documents: list[Any] = []
    for document in call["documents"]:
        if isinstance(document, str):
            documents.append(document)
        elif "image_url" in document:
            documents.append(Image(url=document["image_url"]))
        elif "image_data" in document:
            data = base64.b64decode(document["image_data"])
            documents.append(Image(data=data, mime_type=document["mime_type"]))
        else:
            documents.append(document["fields"])
    return documents


@pytest.mark.parametrize("name", [name for name in EXCHANGES if "_error_" not in name])
def test_request_is_the_documented_one(name: str) -> None:
    example = load(name)
    call, documented = example["call"], example["request"]
    dialect = get_dialect(example["dialect"])
    endpoint = resolve_endpoint(call["base_url"], dialect, {"location": call.get("location")})
    parts = urlsplit(dialect.request_url(endpoint, call["model"]))
    assert parts.path == documented["path"]
    assert parts.query == documented.get("query", "")

    rank_fields = tuple(call["rank_fields"]) if call.get("rank_fields") else None
    documents, originals = prepare_documents(
        call_documents(call),
        dialect.name,
        dialect.image_format is not None,
        dialect.accepts_objects(parts.path),
        rank_fields,
    )
    carried = carry_instruction(dialect, call["query"], call.get("instruction"), call["model"])
    plan = plan_rerank(
        carried.query,
        documents,
        call["top_n"],
        1000,
        None,
        originals,
        rank_fields,
        instruction=carried.field,
        wrapper=carried.wrapper,
    )
    body = encode_request(
        dialect,
        plan,
        plan.batches[0],
        call["model"],
        call.get("extra_body", {}),
        parts.path,
        call.get("location"),
        call.get("project"),
    )
    assert json.loads(body) == documented["body"]


@pytest.mark.parametrize("name", EXCHANGES)
def test_answer_reads_as_documented(name: str) -> None:
    example = load(name)
    dialect = get_dialect(example["dialect"])
    response, expect = example["response"], example["expect"]
    content = json.dumps(response["body"]).encode()
    count = len(example["call"]["documents"])
    if "error" not in expect:
        top_n = example["call"].get("top_n")
        ranking = decode_response(dialect, response["status"], content, count, expected=top_n)
        assert ranking.pairs == [(index, score) for index, score in expect["pairs"]]
        assert ranking.total_tokens == expect.get("tokens")
        assert ranking.billed_units == expect.get("units")
        assert ranking.model == expect.get("model")
        assert ranking.next_page == expect.get("next_page")
        return
    error = make_status_error(
        dialect, response["status"], "Error", content, response.get("headers", {}), None
    )
    assert type(error) is getattr(rerank_integrations, expect["error"])
    assert error.status_code == response["status"] == int(name.rsplit("_", 1)[1][:3])
    assert expect["message"] in str(error)
    assert "no message from the server" not in str(error)


# -- limits, paths, descriptions ------------------------------------------------------------

DOCUMENTED_LIMITS = {
    "vertex": {"max_documents_per_request": 200},
    "bedrock": {"max_documents_per_request": 1000, "max_characters_per_document": 32000},
    "zhipu": {"max_documents_per_request": 128, "max_characters_per_document": 4096},
    "qianfan": {"max_documents_per_request": 64},
    "zeroentropy": {"max_request_bytes": 5_000_000},
    "infinity": {"max_documents_per_request": 2048},
}


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_limits_are_recorded_by_the_budget_names(name: str) -> None:
    limits = DIALECTS[name].limits
    assert tuple(limits) == LIMIT_NAMES
    assert limits["max_documents_per_request"] >= 1  # type: ignore[operator]
    for key, value in DOCUMENTED_LIMITS.get(name, {}).items():
        assert limits[key] == value
    unknown = (
        set(LIMIT_NAMES) - {"max_documents_per_request"} - set(DOCUMENTED_LIMITS.get(name, {}))
    )
    assert all(limits[key] is None for key in unknown)


PUBLIC_HOSTS = {
    "vertex": "https://discoveryengine.googleapis.com",
    "deepinfra": "https://api.deepinfra.com/v1/inference/{model}",
    "zhipu": "https://open.bigmodel.cn/api/paas/v4/rerank",
    "qianfan": "https://qianfan.baidubce.com/v2/rerankers",
    "siliconflow": "https://api.siliconflow.cn/v1/rerank",
    "together": "https://api.together.xyz/v1/rerank",
    "fireworks": "https://api.fireworks.ai/inference/v1/rerank",
    "zeroentropy": "https://api.zeroentropy.dev/v1/models/rerank",
    "contextual": "https://api.contextual.ai/v1/rerank",
    "scaleway": "https://api.scaleway.ai/v1/rerank",
    "jina": "https://api.jina.ai/v1/rerank",
    "cohere": "https://api.cohere.com/v2/rerank",
    "voyage": "https://api.voyageai.com/v1/rerank",
    "mixedbread": "https://api.mixedbread.com/v1/reranking",
    "pinecone": "https://api.pinecone.io/rerank",
    "dashscope": "https://dashscope.aliyuncs.com/api/v1/services/rerank/text-rerank/text-rerank",
    "openrouter": "https://openrouter.ai/api/v1/rerank",
    "vercel": "https://ai-gateway.vercel.sh/v2/rerank",
}


@pytest.mark.parametrize("name", sorted(set(PUBLIC_HOSTS) - {"vertex"}))
def test_a_hosted_service_needs_no_base_url(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERANK_BASE_URL", raising=False)
    client = RerankClient(api_key="sk-1", dialect=name, model="m")
    assert client.endpoint == PUBLIC_HOSTS[name]


def test_a_self_hosted_preset_still_needs_a_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERANK_BASE_URL", raising=False)
    for name in ("infinity", "sglang", "generic"):
        with pytest.raises(ConfigurationError, match="no base URL"):
            RerankClient(dialect=name)


def test_the_vertex_endpoint_is_built_from_project_and_location() -> None:
    client = RerankClient(api_key="ya29.token", dialect="vertex", project="my-project")
    assert client.endpoint == (
        "https://discoveryengine.googleapis.com/v1/projects/my-project/locations/global"
        "/rankingConfigs/default_ranking_config:rank"
    )
    europe = RerankClient(api_key="t", dialect="vertex", project="p", location="eu")
    assert "/projects/p/locations/eu/rankingConfigs/" in europe.endpoint
    with pytest.raises(ConfigurationError, match="project") as info:
        RerankClient(api_key="t", dialect="vertex")
    assert info.value.setting == "project"


def test_a_cloud_setting_for_a_dialect_that_ignores_it_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="auth_url= is not used by the generic"):
        RerankClient("https://h", auth_url="https://iam.test/identity/token")
    with pytest.raises(ConfigurationError, match=r"project= .* \(only by oci, vertex\)"):
        RerankClient("https://h", dialect="jina", project="p")
    with pytest.raises(ConfigurationError, match=r"location= .* \(only by bedrock, oci, vertex\)"):
        RerankClient("https://h", location="eu")


# -- behaviour through the client -------------------------------------------------------------


def test_deepinfra_puts_the_model_in_the_path_and_sorts_scores(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    mock_api.queue(
        lambda request: httpx.Response(
            200, json={"scores": [0.2, 0.9, 0.5, 0.7], "input_tokens": 40}
        )
    )
    client = make_client(base_url="https://api.deepinfra.com", dialect="deepinfra")
    docs = ["a", "b", "c", "d"]
    response = run_mode(
        mode,
        lambda: client.rerank("q", docs, top_n=2, model="BAAI/bge-reranker-v2-m3"),
        lambda: client.arerank("q", docs, top_n=2, model="BAAI/bge-reranker-v2-m3"),
    )
    assert [(r.index, r.relevance_score) for r in response.results] == [(1, 0.9), (3, 0.7)]
    assert response.usage is not None and response.usage.total_tokens == 40
    request = mock_api.requests[0]
    assert request.url.path == "/v1/inference/BAAI/bge-reranker-v2-m3"
    assert json.loads(request.content) == {"queries": ["q"] * 4, "documents": docs}


def test_deepinfra_without_a_model_fails_before_sending(
    make_client: Any, mock_api: MockAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RERANK_MODEL", raising=False)
    client = make_client(base_url="https://api.deepinfra.com", dialect="deepinfra")
    with pytest.raises(ConfigurationError, match="needs a model"):
        client.rerank("q", ["a"])
    assert mock_api.requests == []


def test_vertex_answers_are_mapped_back_by_record_id(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    # Two batches of two: each answer names its records by id, in its own order.
    def answer(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)["records"]
        scored = [{"id": r["id"], "score": len(r["content"]) / 10} for r in records]
        return httpx.Response(200, json={"records": sorted(scored, key=lambda r: -r["score"])})

    mock_api.queue(answer, answer)
    client = make_client(
        base_url="https://discoveryengine.googleapis.com",
        dialect="vertex",
        api_key="ya29.token",
        project="p",
        max_documents_per_request=2,
    )
    docs = ["aaaa", "a", "aaa", "aaaaa"]
    response = run_mode(mode, lambda: client.rerank("q", docs), lambda: client.arerank("q", docs))
    assert [r.index for r in response.results] == [3, 0, 2, 1]
    assert mock_api.requests[0].headers["authorization"] == "Bearer ya29.token"


@pytest.mark.parametrize("record_id", ["7", "x", None, 1])
def test_vertex_refuses_an_id_it_did_not_send(record_id: Any) -> None:
    body = json.dumps({"records": [{"id": record_id, "score": 0.5}]}).encode()
    with pytest.raises(ResponseFormatError):
        decode_response(get_dialect("vertex"), 200, body, 2)


def test_pages_make_one_ranking_and_a_repeated_index_is_refused() -> None:
    from rerank_integrations._codec import BatchRanking
    from rerank_integrations._merge import merge_pages

    first = BatchRanking([(2, 0.9)], None, None, None, "t")
    second = BatchRanking([(0, 0.5), (1, 0.1)], None, None, None, None)
    assert merge_pages([first, second], 3).pairs == [(2, 0.9), (0, 0.5), (1, 0.1)]
    with pytest.raises(ResponseFormatError, match="more than one page"):
        merge_pages([first, BatchRanking([(2, 0.1)], None, None, None, None)], 3)


def test_a_page_that_never_ends_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from rerank_integrations._actions import Answer
    from rerank_integrations._call import start_call
    from rerank_integrations._flow import batch_flow

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    client = RerankClient(dialect="bedrock", location="us-east-1", model="m")
    call = start_call(
        client.settings, client._connection, "q", ["a", "b"], None, "m", None, None, {}
    )
    flow = batch_flow(client.settings, client._connection, call, 0, lambda: 0.0)
    body = json.dumps({"results": [{"index": 0, "relevanceScore": 0.5}], "nextToken": "same"})

    def drive_to_the_end() -> None:
        action = flow.send(None)
        while True:
            answer = Answer(200, "OK", {}, body.encode()) if hasattr(action, "url") else None
            action = flow.send(answer)

    with pytest.raises(ResponseFormatError, match="another page"):
        drive_to_the_end()


@pytest.mark.parametrize("name", ["mixedbread", "scaleway", "bedrock"])
def test_top_n_is_sent_even_when_every_result_is_wanted(name: str) -> None:
    dialect = get_dialect(name)
    plan = plan_rerank("q", ["a", "b", "c"], None, 1000)
    body = json.loads(encode_request(dialect, plan, plan.batches[0], "m", {}, "/", "us-east-1"))
    sent = body.get("top_k", body.get("top_n"))
    if name == "bedrock":
        sent = body["rerankingConfiguration"]["bedrockRerankingConfiguration"]["numberOfResults"]
    assert sent == 3


def test_watsonx_project_and_parameters_merge_one_level_deep() -> None:
    dialect = get_dialect("watsonx")
    plan = plan_rerank("q", ["a", "b"], 1, 1000)
    extra = {"project_id": "p-1", "parameters": {"truncate_input_tokens": 512}}
    body = json.loads(encode_request(dialect, plan, plan.batches[0], "m", extra, "/", None))
    assert body["project_id"] == "p-1"
    assert body["parameters"] == {"return_options": {"top_n": 1}, "truncate_input_tokens": 512}


def test_bedrock_keeps_a_full_model_arn() -> None:
    dialect = get_dialect("bedrock")
    plan = plan_rerank("q", ["a"], None, 1000)
    arn = "arn:aws:bedrock:eu-central-1::foundation-model/cohere.rerank-v3-5:0"
    body = json.loads(encode_request(dialect, plan, plan.batches[0], arn, {}, "/", "us-east-1"))
    configuration = body["rerankingConfiguration"]["bedrockRerankingConfiguration"]
    assert configuration["modelConfiguration"]["modelArn"] == arn


@pytest.mark.parametrize("name", sorted(NEW_DIALECTS))
def test_odd_answers_raise_a_typed_error(name: str) -> None:
    dialect = get_dialect(name)
    for body in ({"scores": "x"}, {"records": {}}, {"results": [{"index": 0}]}, "x"):
        with pytest.raises((ResponseFormatError, APIStatusError)):
            decode_response(dialect, 200, json.dumps(body).encode(), 1)
