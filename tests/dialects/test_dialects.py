"""Wire dialects: the reference examples of every service, endpoints, auth headers, request
bodies, tolerant answer parsing and errors reported inside a 2xx answer."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import API_KEY, Exchange, MockAPI, fixture_names, load_fixture, run_mode

from rerank_integrations import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    RateLimitError,
    RerankClient,
    ResponseFormatError,
    ServerError,
)
from rerank_integrations import _json as json_module
from rerank_integrations._codec import (
    body_excerpt,
    decode_response,
    encode_request,
    make_status_error,
    merge_fields,
    scale_mismatch,
    shorten,
)
from rerank_integrations._config import resolve_endpoint
from rerank_integrations._merge import merge_rankings
from rerank_integrations._plan import plan_rerank
from rerank_integrations._secrets import Scrubber
from rerank_integrations.dialects import (
    DIALECTS,
    Dialect,
    RankingRequest,
    get_dialect,
)

# The examples live in tests/dialects/fixtures (see the README there).
FOLDER = "dialects/fixtures"


# -- the reference examples, one row per file --------------------------------------------


@dataclass(frozen=True)
class Row:
    """How to check one reference file.

    Attributes:
        dialect: the dialect that speaks to the service.
        results: where the example's results are (dotted path; ``""`` for a bare list).
        score: the example's score field.
        tokens, units: the usage the answer must yield.
        left_out: request fields of the example we deliberately do not send (dotted paths,
            ``[]`` for list elements), each an option left at the service's default.
        added: fields we send that the example does not show (documented by the service).
        loose: fields whose value shape may differ (the service accepts both forms).
        message: where the server's own message is in an error example (dotted path).
        error: the typed error an error example must raise.
    """

    dialect: str
    results: str = "results"
    score: str = "relevance_score"
    tokens: int | None = None
    units: float | None = None
    left_out: frozenset[str] = field(default_factory=frozenset)
    added: frozenset[str] = field(default_factory=frozenset)
    loose: frozenset[str] = field(default_factory=frozenset)
    message: str = ""
    error: type[APIStatusError] | None = None


def row(dialect: str, **kwargs: Any) -> Row:
    for name in ("left_out", "added", "loose"):
        if name in kwargs:
            kwargs[name] = frozenset(kwargs[name])
    return Row(dialect, **kwargs)


# return_documents=false is sent wherever the service takes it (we never use the echo):
# Jina, Infinity, SiliconFlow, Xinference, Together, Zhipu, LiteLLM and the gateways document
# it; vLLM accepts unknown fields and ignores them (extra='allow'); llama.cpp ignores it.
NO_ECHO = {"return_documents"}

TABLE: dict[str, Row] = {
    # Cohere v1 takes documents as strings or {text} objects; we send strings.
    "cohere_v1_rerank.json": row("cohere", units=1, added=NO_ECHO, loose={"documents"}),
    "cohere_v2_rerank.json": row("cohere", units=1),
    "cohere_error_401.json": row("cohere", message="message", error=AuthenticationError),
    "cohere_error_429.json": row("cohere", message="message", error=RateLimitError),
    "dashscope_native_rerank.json": row("dashscope", results="output.results", tokens=64),
    "infinity_rerank.json": row("generic", tokens=27, added=NO_ECHO),
    "infinity_error_422.json": row("generic", message="detail.0.msg", error=BadRequestError),
    "jina_rerank.json": row("generic", tokens=96, added=NO_ECHO),
    "litellm_rerank.json": row("generic", units=1, added=NO_ECHO),
    "llamacpp_v1_rerank.json": row("generic", tokens=41, added=NO_ECHO),
    "llamacpp_error_503.json": row("generic", message="error.message", error=ServerError),
    # return_input (echo the input) defaults to false: left out.
    "mixedbread_reranking.json": row(
        "mixedbread", results="data", score="score", tokens=71, left_out={"return_input"}
    ),
    "mixedbread_error_429.json": row("mixedbread", message="message", error=RateLimitError),
    "newapi_gateway_rerank.json": row("generic", tokens=58, added=NO_ECHO),
    # truncate defaults to the server's setting: left out (pass truncate="END" as extra body).
    "nim_v1_ranking.json": row("nim", results="rankings", score="logit", left_out={"truncate"}),
    # The document id is the caller's own field and parameters.truncate an option.
    "pinecone_rerank.json": row(
        "pinecone",
        results="data",
        score="score",
        units=1,
        left_out={"parameters", "documents.[].id"},
    ),
    # Baidu Qianfan v1 reports errors with HTTP 200: the status comes from the body.
    "qianfan_error_400.json": row("generic", message="error_msg", error=BadRequestError),
    "siliconflow_rerank.json": row("generic", tokens=44, units=1),
    "siliconflow_error_400.json": row("generic", message="message", error=BadRequestError),
    "tei_rerank.json": row("tei", results="", score="score"),
    "tei_error_401.json": row("tei", error=AuthenticationError),
    # Together takes strings or objects (ranked by rank_fields); we send strings.
    "together_rerank.json": row(
        "generic", tokens=212, left_out={"rank_fields"}, loose={"documents"}
    ),
    "vllm_v1_rerank.json": row("generic", tokens=33, added=NO_ECHO),
    "vllm_error_400.json": row("generic", message="error.message", error=BadRequestError),
    "voyage_rerank.json": row("voyage", results="data", tokens=47, added=NO_ECHO),
    "voyage_error_400.json": row("voyage", message="detail", error=BadRequestError),
    "xinference_rerank.json": row("generic", tokens=53, left_out={"return_len"}),
    "xinference_error_500.json": row("generic", message="detail", error=ServerError),
    "zhipu_rerank.json": row("generic", tokens=39, added=NO_ECHO),
}

SKIPPED = {
    "vllm_score.json": (
        "vLLM's /score is pairwise scoring, not a rank endpoint: it takes 'queries' and "
        "returns one score per document in input order; use /v1/rerank (generic) instead"
    ),
}

REFERENCE_FILES = fixture_names(FOLDER)
# Error examples carry requests made to fail (too many documents, a wrong model): their
# answers are checked, their requests are not.
REQUEST_FILES = [name for name in REFERENCE_FILES if "_error_" not in name]
# Without the folder every test below fails (it does not skip): the examples are part of
# the repository.
NO_REFERENCE = "(the fixture folder tests/dialects/fixtures is missing)"


def load(name: str) -> Exchange:
    example = load_fixture(FOLDER, name)
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    assert name in TABLE, f"reference file {name} has no row in TABLE: add one"
    return example


def dig(value: Any, path: str) -> Any:
    for part in filter(None, path.split(".")):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


def as_text(document: Any) -> str:
    if isinstance(document, str):
        return document
    if isinstance(document, dict) and set(document) <= {"id", "text"}:
        return str(document["text"])
    return json.dumps(document)


def asked_of(dialect: str, body: dict[str, Any]) -> tuple[str, list[str], int | None, Any]:
    """``(query, documents, top_n, model)`` of a request body in the dialect's own terms."""
    if dialect == "tei":
        return body["query"], body["texts"], None, body.get("model")
    if dialect == "nim":
        return body["query"]["text"], [p["text"] for p in body["passages"]], None, body["model"]
    if dialect == "mixedbread":
        return body["query"], body["input"], body.get("top_k"), body.get("model")
    if dialect == "dashscope":
        given, parameters = body["input"], body.get("parameters", {})
        return given["query"], given["documents"], parameters.get("top_n"), body["model"]
    top_n = body.get("top_k") if dialect == "voyage" else body.get("top_n")
    return body["query"], [as_text(d) for d in body["documents"]], top_n, body.get("model")


def shape(value: Any, skip: set[str], loose: set[str], here: str = "") -> Any:
    """The structure of a JSON value (key names and value types), without ``skip`` paths and
    with ``loose`` paths reduced to ``"*"``."""
    if here in loose:
        return "*"
    if isinstance(value, dict):
        return {
            key: shape(item, skip, loose, f"{here}.{key}".lstrip("."))
            for key, item in value.items()
            if f"{here}.{key}".lstrip(".") not in skip
        }
    if isinstance(value, list):
        return [shape(value[0], skip, loose, f"{here}.[]".lstrip("."))] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


@pytest.mark.parametrize("name", REQUEST_FILES or [NO_REFERENCE])
def test_reference_request_has_the_documented_fields(name: str) -> None:
    example = load(name)
    table_row = TABLE[name]
    dialect = get_dialect(table_row.dialect)
    query, documents, top_n, model = asked_of(dialect.name, example.request)
    if top_n is not None:
        top_n = min(top_n, len(documents))  # the core never asks for more than a batch has
    request = RankingRequest(query, documents, top_n, model, example.path)
    body = json.loads(json.dumps(dialect.build_body(request)))

    assert shape(body, set(table_row.added), set(table_row.loose)) == shape(
        example.request, set(table_row.left_out), set(table_row.loose)
    )
    # The same values travel in the same places.
    ours = asked_of(dialect.name, body)
    assert ours[0] == query
    assert ours[1] == documents
    assert ours[2] == (top_n if dialect.name not in ("tei", "nim") else None)
    assert ours[3] == (model if dialect.name != "tei" else None)
    # Where the service takes return_documents, we ask for no echo.
    for holder in (body, body.get("parameters", {})):
        assert holder.get("return_documents", False) is False


@pytest.mark.parametrize("name", REFERENCE_FILES or [NO_REFERENCE])
def test_reference_answer_parses_or_raises(name: str) -> None:
    example = load(name)
    table_row = TABLE[name]
    dialect = get_dialect(table_row.dialect)
    status = example.status
    response = example.response
    content = b"" if response is None else json.dumps(response).encode()
    _, documents, top_n, _ = asked_of(dialect.name, example.request)
    count = len(documents)

    if table_row.error is None:
        ranking = decode_response(dialect, status, content, count, expected=top_n)
        items = dig(response, table_row.results)
        assert ranking.pairs == [(item["index"], float(item[table_row.score])) for item in items]
        assert ranking.total_tokens == table_row.tokens
        assert ranking.billed_units == table_row.units
        assert ranking.model == (response.get("model") if isinstance(response, dict) else None)
        return

    error: APIStatusError
    if 200 <= status < 300:  # an error reported inside a successful answer
        with pytest.raises(table_row.error) as info:
            decode_response(dialect, status, content, count)
        error = info.value
    else:
        error = make_status_error(dialect, status, "Error", content, example.response_headers, None)
    # The file name carries the status the error stands for (qianfan_error_400 is a 200).
    assert isinstance(error, table_row.error)
    assert error.status_code == int(Path(name).stem.rsplit("_", 1)[1])
    text = str(error)
    if table_row.message:
        assert str(dig(response, table_row.message)) in text
    else:
        assert "no message from the server" in text and "empty body" in text


def test_every_reference_file_has_a_row() -> None:
    assert REFERENCE_FILES, NO_REFERENCE
    assert sorted(set(REFERENCE_FILES) - set(SKIPPED)) == sorted(TABLE)


#: Dialects whose examples are our own files (tests/dialects/test_cloud_dialects.py reads them).
CLOUD_FIXTURES = Path(__file__).parent / "fixtures" / "cloud"


def test_reference_rows_cover_every_dialect() -> None:
    ours = {
        json.loads(path.read_text(encoding="utf-8"))["dialect"]
        for path in CLOUD_FIXTURES.glob("*.json")
    }
    assert {table_row.dialect for table_row in TABLE.values()} | ours == set(DIALECTS)


# -- the registry -------------------------------------------------------------------------

LIMITS = {
    "generic": 1000,
    "cohere": 1000,
    "voyage": 1000,
    "tei": 32,
    "nim": 512,
    "mixedbread": 1000,
    "pinecone": 100,
    "dashscope": 500,
    "watsonx": 1000,
    "vertex": 200,
    "bedrock": 1000,
    "oci": 1000,
    "deepinfra": 1000,
    "zhipu": 128,
    "qianfan": 64,
    "siliconflow": 1000,
    "together": 1000,
    "fireworks": 1000,
    "zeroentropy": 1000,
    "contextual": 1000,
    "scaleway": 1000,
    "jina": 1000,
    "vllm": 1000,
    "infinity": 2048,
    "sglang": 1000,
    "openrouter": 1000,
    "vercel": 1000,
}
#: Dialects whose servers return raw, unbounded scores.
LOGITS = {"nim", "watsonx", "sglang"}
#: Dialects that present an API key in a header (the others exchange or sign credentials).
KEY_DIALECTS = sorted(name for name, dialect in DIALECTS.items() if dialect.auth == "api_key")


def test_registry_holds_every_dialect_with_its_limit() -> None:
    assert {name: d.max_documents_per_request for name, d in DIALECTS.items()} == LIMITS
    for name, dialect in DIALECTS.items():
        assert dialect.name == name
        assert dialect.default_path.startswith("/")
        assert dialect.description
        assert dialect.score_scale == ("logit" if name in LOGITS else "probability")


def test_get_dialect_ignores_case_and_lists_the_known_names() -> None:
    assert get_dialect(" Cohere ") is DIALECTS["cohere"]
    with pytest.raises(ValueError, match="dashscope, deepinfra, fireworks, generic, infinity"):
        get_dialect("nonesuch")


# -- endpoints ----------------------------------------------------------------------------

DASHSCOPE_PATH = "/api/v1/services/rerank/text-rerank/text-rerank"
OCI_HOST = "https://inference.generativeai.us-chicago-1.oci.oraclecloud.com"

ENDPOINTS = [
    ("generic", "https://h", "https://h/v1/rerank"),
    ("generic", "https://h/v1", "https://h/v1/rerank"),
    ("generic", "https://h/v1/rerank", "https://h/v1/rerank"),
    ("generic", "https://h/v2/rerank/", "https://h/v2/rerank"),
    (
        "generic",
        "https://open.bigmodel.cn/api/paas/v4",
        "https://open.bigmodel.cn/api/paas/v4/rerank",
    ),
    ("cohere", "https://api.cohere.com", "https://api.cohere.com/v2/rerank"),
    ("cohere", "https://api.cohere.com/v2", "https://api.cohere.com/v2/rerank"),
    ("cohere", "https://api.cohere.com/v1", "https://api.cohere.com/v1/rerank"),
    ("cohere", "https://api.cohere.com/v1/rerank", "https://api.cohere.com/v1/rerank"),
    ("voyage", "https://api.voyageai.com", "https://api.voyageai.com/v1/rerank"),
    ("voyage", "https://api.voyageai.com/v1", "https://api.voyageai.com/v1/rerank"),
    ("voyage", "https://api.voyageai.com/v1/rerank", "https://api.voyageai.com/v1/rerank"),
    ("tei", "http://tei:8080", "http://tei:8080/rerank"),
    ("tei", "http://tei:8080/rerank", "http://tei:8080/rerank"),
    ("tei", "http://gpu/tei", "http://gpu/tei/rerank"),
    ("nim", "http://nim:8000", "http://nim:8000/v1/ranking"),
    ("nim", "http://nim:8000/v1", "http://nim:8000/v1/ranking"),
    ("nim", "http://nim:8000/v1/ranking", "http://nim:8000/v1/ranking"),
    ("mixedbread", "https://api.mixedbread.com", "https://api.mixedbread.com/v1/reranking"),
    ("mixedbread", "https://api.mixedbread.com/v1", "https://api.mixedbread.com/v1/reranking"),
    (
        "mixedbread",
        "https://api.mixedbread.com/v1/reranking",
        "https://api.mixedbread.com/v1/reranking",
    ),
    ("pinecone", "https://api.pinecone.io", "https://api.pinecone.io/rerank"),
    ("pinecone", "https://api.pinecone.io/rerank", "https://api.pinecone.io/rerank"),
    (
        "dashscope",
        "https://dashscope.aliyuncs.com",
        f"https://dashscope.aliyuncs.com{DASHSCOPE_PATH}",
    ),
    (
        "dashscope",
        "https://dashscope-intl.aliyuncs.com/api/v1",
        f"https://dashscope-intl.aliyuncs.com{DASHSCOPE_PATH}",
    ),
    (
        "dashscope",
        f"https://dashscope.aliyuncs.com{DASHSCOPE_PATH}",
        f"https://dashscope.aliyuncs.com{DASHSCOPE_PATH}",
    ),
]


VERTEX_PATH = "/v1/projects/p-1/locations/global/rankingConfigs/default_ranking_config:rank"
ENDPOINTS += [
    (
        "watsonx",
        "https://us-south.ml.cloud.ibm.com",
        "https://us-south.ml.cloud.ibm.com/ml/v1/text/rerank?version=2024-05-01",
    ),
    (
        "watsonx",
        "https://h/ml/v1/text/rerank?version=2025-01-01",
        "https://h/ml/v1/text/rerank?version=2025-01-01",
    ),
    (
        "vertex",
        f"https://discoveryengine.googleapis.com{VERTEX_PATH}",
        f"https://discoveryengine.googleapis.com{VERTEX_PATH}",
    ),
    (
        "bedrock",
        "https://bedrock-agent-runtime.us-east-1.amazonaws.com",
        "https://bedrock-agent-runtime.us-east-1.amazonaws.com/rerank",
    ),
    (
        "oci",
        OCI_HOST,
        f"{OCI_HOST}/20231130/actions/rerankText",
    ),
    (
        "oci",
        f"{OCI_HOST}/20231130/actions/rerankText",
        f"{OCI_HOST}/20231130/actions/rerankText",
    ),
    ("deepinfra", "https://api.deepinfra.com", "https://api.deepinfra.com/v1/inference/{model}"),
    ("deepinfra", "https://api.deepinfra.com/v1", "https://api.deepinfra.com/v1/inference/{model}"),
    (
        "deepinfra",
        "https://api.deepinfra.com/v1/inference",
        "https://api.deepinfra.com/v1/inference/{model}",
    ),
    (
        "deepinfra",
        "https://api.deepinfra.com/v1/inference/BAAI/bge-m3",
        "https://api.deepinfra.com/v1/inference/BAAI/bge-m3",
    ),
    ("zhipu", "https://open.bigmodel.cn", "https://open.bigmodel.cn/api/paas/v4/rerank"),
    ("qianfan", "https://qianfan.baidubce.com", "https://qianfan.baidubce.com/v2/rerankers"),
    ("qianfan", "https://qianfan.baidubce.com/v2", "https://qianfan.baidubce.com/v2/rerankers"),
    ("siliconflow", "https://api.siliconflow.cn/v1", "https://api.siliconflow.cn/v1/rerank"),
    ("together", "https://api.together.xyz", "https://api.together.xyz/v1/rerank"),
    ("fireworks", "https://api.fireworks.ai", "https://api.fireworks.ai/inference/v1/rerank"),
    (
        "fireworks",
        "https://api.fireworks.ai/inference/v1",
        "https://api.fireworks.ai/inference/v1/rerank",
    ),
    ("zeroentropy", "https://api.zeroentropy.dev", "https://api.zeroentropy.dev/v1/models/rerank"),
    (
        "zeroentropy",
        "https://api.zeroentropy.dev/v1",
        "https://api.zeroentropy.dev/v1/models/rerank",
    ),
    ("contextual", "https://api.contextual.ai", "https://api.contextual.ai/v1/rerank"),
    ("scaleway", "https://api.scaleway.ai/p-1/v1", "https://api.scaleway.ai/p-1/v1/rerank"),
    ("jina", "https://api.jina.ai", "https://api.jina.ai/v1/rerank"),
    ("vllm", "http://vllm:8000", "http://vllm:8000/v1/rerank"),
    ("vllm", "http://vllm:8000/v1", "http://vllm:8000/v1/rerank"),
    ("infinity", "http://infinity:7997", "http://infinity:7997/rerank"),
    ("sglang", "http://sglang:30000", "http://sglang:30000/v1/rerank"),
    ("openrouter", "https://openrouter.ai/api", "https://openrouter.ai/api/v1/rerank"),
    ("openrouter", "https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1/rerank"),
    ("vercel", "https://ai-gateway.vercel.sh", "https://ai-gateway.vercel.sh/v2/rerank"),
    ("vercel", "https://ai-gateway.vercel.sh/v1", "https://ai-gateway.vercel.sh/v1/rerank"),
]


@pytest.mark.parametrize(("dialect", "base_url", "endpoint"), ENDPOINTS)
def test_endpoint_rules(dialect: str, base_url: str, endpoint: str) -> None:
    assert resolve_endpoint(base_url, get_dialect(dialect)) == endpoint


def test_endpoint_rules_cover_every_dialect() -> None:
    assert {dialect for dialect, _, _ in ENDPOINTS} == set(DIALECTS)


# -- auth headers -------------------------------------------------------------------------


@pytest.mark.parametrize("name", KEY_DIALECTS)
def test_auth_headers(name: str) -> None:
    client = RerankClient("https://h", api_key=API_KEY, dialect=name)
    headers = {key.lower(): value for key, value in client.settings.wire_headers().items()}
    assert API_KEY not in repr(client.settings.headers)  # the settings hold it as a SecretStr
    if name == "pinecone":
        assert headers["api-key"] == API_KEY
        assert headers["x-pinecone-api-version"] == "2025-10"
        assert "authorization" not in headers
    else:
        assert headers["authorization"] == f"Bearer {API_KEY}"
        assert "api-key" not in headers
    assert API_KEY not in repr(client)


@pytest.mark.parametrize("name", KEY_DIALECTS)
def test_no_key_means_no_auth_header(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    headers = {k.lower() for k in RerankClient("https://h", dialect=name).settings.headers}
    assert not headers & {"authorization", "api-key"}
    assert ("x-pinecone-api-version" in headers) == (name == "pinecone")


# -- request bodies -----------------------------------------------------------------------


def build(name: str, top_n: int | None = 2, model: str | None = "m", path: str = "") -> Any:
    dialect = get_dialect(name)
    request = RankingRequest("q", ["a", "b", "c"], top_n, model, path or dialect.default_path)
    return json.loads(json.dumps(dialect.body(request)))


def test_generic_body() -> None:
    assert build("generic") == {
        "model": "m",
        "query": "q",
        "documents": ["a", "b", "c"],
        "top_n": 2,
        "return_documents": False,
    }
    assert build("generic", top_n=None, model=None) == {
        "query": "q",
        "documents": ["a", "b", "c"],
        "return_documents": False,
    }


def test_cohere_v2_body_by_default_and_v1_by_path() -> None:
    assert build("cohere") == {"model": "m", "query": "q", "documents": ["a", "b", "c"], "top_n": 2}
    for path in ("/v1/rerank", "/cohere/v1/rerank", "/v1/rerank/"):
        assert build("cohere", path=path) == {
            "model": "m",
            "query": "q",
            "documents": ["a", "b", "c"],
            "top_n": 2,
            "return_documents": False,
        }
    assert "model" not in build("cohere", model=None, path="/v1/rerank")
    with pytest.raises(ConfigurationError, match="model"):
        build("cohere", model=None, path="/v2/rerank")


def test_voyage_body_uses_top_k_never_above_the_documents() -> None:
    assert build("voyage") == {
        "model": "m",
        "query": "q",
        "documents": ["a", "b", "c"],
        "top_k": 2,
        "return_documents": False,
    }
    assert build("voyage", top_n=10)["top_k"] == 3
    assert "top_k" not in build("voyage", top_n=None)


def test_voyage_top_k_per_batch_through_the_core() -> None:
    voyage = get_dialect("voyage")
    documents = [f"doc {i}" for i in range(40)]
    plan = plan_rerank("q", documents, 35, 16)
    bodies = [
        json.loads(encode_request(voyage, plan, batch, "m", {}, "/v1/rerank"))
        for batch in plan.batches
    ]
    assert [(len(b["documents"]), b["top_k"]) for b in bodies] == [(16, 16), (16, 16), (8, 8)]


def test_tei_body_has_texts_and_no_model_or_top_n() -> None:
    assert build("tei") == {"query": "q", "texts": ["a", "b", "c"]}


def test_nim_body() -> None:
    assert build("nim") == {
        "model": "m",
        "query": {"text": "q"},
        "passages": [{"text": "a"}, {"text": "b"}, {"text": "c"}],
    }


def test_mixedbread_body() -> None:
    assert build("mixedbread") == {"model": "m", "query": "q", "input": ["a", "b", "c"], "top_k": 2}
    # Issue 13: top_k is sent even when every document is wanted, so that a server-side
    # default never cuts the answer short.
    assert build("mixedbread", top_n=None, model=None) == {
        "query": "q",
        "input": ["a", "b", "c"],
        "top_k": 3,
    }


def test_pinecone_body_sends_document_objects() -> None:
    assert build("pinecone") == {
        "model": "m",
        "query": "q",
        "documents": [{"text": "a"}, {"text": "b"}, {"text": "c"}],
        "top_n": 2,
        "return_documents": False,
    }


def test_dashscope_body_nests_input_and_parameters() -> None:
    assert build("dashscope") == {
        "model": "m",
        "input": {"query": "q", "documents": ["a", "b", "c"]},
        "parameters": {"top_n": 2, "return_documents": False},
    }
    assert build("dashscope", top_n=None)["parameters"] == {"return_documents": False}


@pytest.mark.parametrize("name", ["voyage", "nim", "pinecone", "dashscope", "cohere"])
def test_a_required_model_is_asked_for_before_any_request(
    name: str, mode: str, make_client: Any, mock_api: MockAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RERANK_MODEL", raising=False)
    with pytest.raises(ConfigurationError, match=r"needs a model.*model=") as info:
        build(name, model=None)
    assert isinstance(info.value, ValueError)
    assert DIALECTS[name].requires_model("/v2/rerank")
    assert DIALECTS[name].requires_model("/v1/rerank") == (name != "cohere")  # Cohere v1: none
    client = make_client(dialect=name, base_url="https://rerank.test")
    with pytest.raises(ConfigurationError, match="model"):
        run_mode(
            mode,
            lambda: client.rerank("q", ["a", "b", "c"]),
            lambda: client.arerank("q", ["a", "b", "c"]),
        )
    assert mock_api.requests == []


@pytest.mark.parametrize("name", ["generic", "tei", "mixedbread"])
def test_model_left_out_when_none(name: str) -> None:
    assert "model" not in build(name, model=None)


# -- reading answers ----------------------------------------------------------------------


def decode(body: Any, count: int = 3, dialect: str = "generic") -> Any:
    return decode_response(get_dialect(dialect), 200, json.dumps(body).encode(), count)


@pytest.mark.parametrize(
    "document",
    [{"text": "a"}, "a", {"id": "x", "text": "a", "title": "t"}, None, "(absent)", {"content": []}],
)
@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_any_form_of_echoed_document_is_accepted(name: str, document: Any) -> None:
    item: dict[str, Any] = {"index": 0, "relevance_score": 0.5}
    if document != "(absent)":
        item["document"] = document
    assert decode({"results": [item]}, 1, name).pairs == [(0, 0.5)]


@pytest.mark.parametrize(
    "body",
    [
        {"results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}]},
        {"data": [{"index": 1, "score": 0.9}, {"index": 0, "score": 0.1}]},
        {"rankings": [{"index": 1, "logit": 0.9}, {"index": 0, "logit": 0.1}]},
        {"output": {"results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "score": 0.1}]}},
        [{"index": 1, "score": 0.9}, {"index": 0, "score": 0.1}],
        {"results": None, "data": [{"index": 1, "score": 0.9}, {"index": 0, "score": 0.1}]},
    ],
    ids=["results", "data", "rankings", "output.results", "bare list", "null results"],
)
@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_result_lists_and_score_names(name: str, body: Any) -> None:
    assert decode(body, 2, name).pairs == [(1, 0.9), (0, 0.1)]


def test_raw_logits_pass_through_unchanged() -> None:
    ranking = decode(
        {"rankings": [{"index": 0, "logit": -1.2421875}, {"index": 1, "logit": -6}]}, 2, "nim"
    )
    assert ranking.pairs == [(0, -1.2421875), (1, -6.0)]


@pytest.mark.parametrize(
    ("body", "tokens", "units"),
    [
        ({"usage": {"prompt_tokens": 0, "total_tokens": 815}}, 815, None),
        ({"usage": {"prompt_tokens": 22}}, 22, None),
        ({"meta": {"billed_units": {"search_units": 1}}}, None, 1),
        ({"meta": {"billed_units": {"search_units": 2, "total_tokens": 40}}}, 40, 2),
        ({"meta": {"tokens": {"input_tokens": 87, "output_tokens": 87}}}, 87, None),
        ({"tokens": {"input_tokens": 150, "output_tokens": 10}}, 150, None),
        ({"usage": {"rerank_units": 1}}, None, 1),
        ({"usage": {"total_tokens": 9}, "meta": {"billed_units": {"search_units": 3}}}, 9, 3),
        ({"usage": {}, "meta": {"billed_units": None, "tokens": None}}, None, None),
        ({"usage": {"total_tokens": "9", "rerank_units": True}}, None, None),
    ],
)
def test_usage_in_every_documented_place(body: dict[str, Any], tokens: Any, units: Any) -> None:
    ranking = decode({"results": [{"index": 0, "relevance_score": 0.5}], **body}, 1)
    assert (ranking.total_tokens, ranking.billed_units) == (tokens, units)


def test_usage_is_summed_over_batches_and_kept_apart() -> None:
    plan = plan_rerank("q", ["a", "b", "c"], None, 2)
    first = decode(
        {
            "data": [{"index": 0, "score": 0.1}, {"index": 1, "score": 0.2}],
            "usage": {"rerank_units": 1},
        },
        2,
        "pinecone",
    )
    second = decode(
        {"data": [{"index": 0, "score": 0.3}], "usage": {"rerank_units": 1}}, 1, "pinecone"
    )
    response = merge_rankings(plan, [first, second], "m")
    assert response.usage is not None
    assert (response.usage.total_tokens, response.usage.billed_units) == (None, 2)


def test_tei_and_nim_answers_with_every_text_are_trimmed_on_our_side() -> None:
    # The server scores every text of each batch; the merge keeps the call's top_n.
    documents = [f"text {i}" for i in range(70)]
    plan = plan_rerank("q", documents, 5, 32)
    assert [len(batch.texts) for batch in plan.batches] == [32, 32, 6]
    for name, key in (("tei", "score"), ("nim", "logit")):
        rankings = []
        for batch in plan.batches:
            items = [{"index": i, key: float(batch.start + i)} for i in range(len(batch.texts))]
            items.sort(key=lambda item: -item[key])
            answer = items if name == "tei" else {"rankings": items}
            rankings.append(decode(answer, len(batch.texts), name))
        response = merge_rankings(plan, rankings, None)
        assert [r.index for r in response.results] == [69, 68, 67, 66, 65]
        assert [r.relevance_score for r in response.results] == [69.0, 68.0, 67.0, 66.0, 65.0]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "no 'results'"),
        ({"object": "list"}, "no 'results'"),
        ({"data": {"index": 0}}, "'data' is a dict, not a list"),
        ({"output": {"results": "x"}}, "'output.results' is a str"),
        ({"results": []}, "no results for 1 documents"),
        ({"rankings": [{"index": 0}]}, "no 'relevance_score'"),
        ([{"score": 0.1}], "no 'index'"),
        ("ok", "not an object"),
    ],
)
def test_answers_of_the_wrong_shape(body: Any, words: str) -> None:
    with pytest.raises(ResponseFormatError, match=words):
        decode(body, 1)


# -- errors inside a 2xx answer -----------------------------------------------------------

EMBEDDED = [
    ({"error_code": 336221, "error_msg": "max number of documents is 64"}, 400, "max number"),
    ({"error_code": 18, "error_msg": "Open api qps request limit reached"}, 429, "qps"),
    ({"error_code": 110, "error_msg": "Access token invalid or no longer valid"}, 401, "token"),
    ({"error": "model not loaded"}, 400, "model not loaded"),
    ({"error": {"message": "busy", "type": "unavailable_error", "code": 503}}, 503, "busy"),
    ({"error": {"message": "slow down", "type": "rate_limit_error"}}, 429, "slow down"),
    ({"error": {"message": "bad key", "type": "authentication_error"}}, 401, "bad key"),
    ({"error": {"code": "RESOURCE_EXHAUSTED", "message": "quota"}, "status": 429}, 429, "quota"),
    ({"code": "Throttling.RateQuota", "message": "Requests rate limit exceeded"}, 429, "rate"),
    (
        {"code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": "r"},
        401,
        "API-key",
    ),
    ({"code": "AccessDenied.Unpurchased", "message": "Access denied"}, 403, "denied"),
    ({"code": "InvalidParameter", "message": "Range of top_n should be [1, 500]"}, 400, "top_n"),
    ({"code": "InternalError", "message": "oops", "output": None}, 500, "oops"),
    ({"code": 20012, "message": "Model does not exist.", "data": None}, 400, "Model does not"),
    ({"code": "429", "message": "too fast"}, 429, "too fast"),
    ({"success": False, "msg": "upstream failed"}, 400, "upstream failed"),
    ({"message": "Forbidden"}, 400, "Forbidden"),
    ({"detail": "Not authenticated"}, 400, "Not authenticated"),
    ({"results": [], "error": {"message": "partial failure"}}, 400, "partial failure"),
    ({"error_code": 4}, 429, "error code 4"),
]


@pytest.mark.parametrize(("body", "status", "words"), EMBEDDED)
@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_an_error_inside_a_2xx_answer_is_typed(
    name: str, body: Any, status: int, words: str
) -> None:
    with pytest.raises(APIStatusError, match=words) as info:
        decode(body, 2, name)
    assert info.value.status_code == status
    assert "HTTP 200 answer reports an error" in str(info.value)
    expected = {400: BadRequestError, 401: AuthenticationError, 429: RateLimitError}
    if status in expected:
        assert type(info.value) is expected[status]


def test_an_embedded_error_is_not_an_empty_ranking(
    mode: str, make_client: Any, mock_api: MockAPI
) -> None:
    body = {"code": "Throttling", "message": "Requests throttling triggered.", "request_id": "r"}
    mock_api.queue(httpx.Response(200, json=body))
    client = make_client(dialect="dashscope", model="gte-rerank-v2", base_url="https://d")
    with pytest.raises(RateLimitError, match="throttling triggered"):
        run_mode(mode, lambda: client.rerank("q", ["a"]), lambda: client.arerank("q", ["a"]))
    assert len(mock_api.requests) == 1


# -- error bodies of every dialect ---------------------------------------------------------

ENVELOPES = {
    "generic": {"error": {"message": "the message", "type": "invalid_request_error", "code": 400}},
    "cohere": {"message": "the message"},
    "voyage": {"detail": "the message"},
    "tei": {"error": "the message", "error_type": "Validation"},
    "nim": {"detail": [{"loc": ["body", "passages"], "msg": "the message", "type": "x"}]},
    "mixedbread": {"type": "validation_error", "url": "u", "message": "the message", "details": {}},
    "pinecone": {"error": {"code": "INVALID_ARGUMENT", "message": "the message"}, "status": 400},
    "dashscope": {"code": "InvalidParameter", "message": "the message", "request_id": "r-1"},
    "watsonx": {
        "errors": [{"code": "invalid_input_argument", "message": "the message"}],
        "trace": "t-1",
        "status_code": 422,
    },
    "vertex": {"error": {"code": 422, "message": "the message", "status": "INVALID_ARGUMENT"}},
    "bedrock": {"message": "the message"},
    "oci": {"code": "InvalidParameter", "message": "the message"},
    "deepinfra": {"detail": {"error": "the message"}},
    "zhipu": {"error": {"code": "1214", "message": "the message"}},
    "qianfan": {"error": {"code": "invalid_argument", "message": "the message", "type": "x"}},
    "siliconflow": {"code": 20015, "message": "the message", "data": None},
    "together": {"error": {"message": "the message", "type": "invalid_request_error"}},
    "fireworks": {
        "error": {"object": "error", "type": "invalid_request_error", "message": "the message"}
    },
    "zeroentropy": {"detail": "the message"},
    "contextual": {"detail": [{"loc": ["body", "documents"], "msg": "the message", "type": "x"}]},
    "scaleway": {"message": "the message", "type": "invalid_request_error"},
    "jina": {"detail": "the message"},
    "vllm": {"error": {"message": "the message", "type": "BadRequestError", "code": 400}},
    "infinity": {"detail": [{"loc": ["body", "query"], "msg": "the message", "type": "x"}]},
    "sglang": {"object": "error", "message": "the message", "type": "BadRequestError", "code": 400},
    "openrouter": {"error": {"code": 400, "message": "the message", "metadata": {}}},
    "vercel": {"message": "the message"},
}


@pytest.mark.parametrize("name", sorted(DIALECTS))
@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "the message"),
        (b"", "(no message from the server) | empty body"),
        (
            b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "502 Bad Gateway",
        ),
        (b"upstream connect error or disconnect/reset before headers", "upstream connect error"),
        (b'{"unexpected": true}', "(no message from the server)"),
    ],
    ids=["dialect envelope", "empty", "html", "text", "unknown json"],
)
def test_error_bodies_yield_the_server_message(
    name: str, content: bytes | None, words: str
) -> None:
    dialect: Dialect = DIALECTS[name]
    if content is None:
        content = json.dumps(ENVELOPES[name]).encode()
    error = make_status_error(dialect, 422, "Unprocessable Entity", content, {}, None)
    assert isinstance(error, BadRequestError)
    assert words in str(error)
    assert dialect.error_message(ENVELOPES[name]) is not None


def test_error_envelopes_cover_every_dialect() -> None:
    assert set(ENVELOPES) == set(DIALECTS)


@pytest.mark.parametrize(
    "content",
    [b"[" * 900 + b"]" * 900, b'{"error": ' * 900 + b'"deep"' + b"}" * 900],
    ids=["nested lists", "nested errors"],
)
def test_deeply_nested_error_bodies_do_not_overflow(content: bytes) -> None:
    for dialect in DIALECTS.values():
        error = make_status_error(dialect, 500, "Internal Server Error", content, {}, None)
        assert isinstance(error, ServerError)
        with pytest.raises((ResponseFormatError, APIStatusError)):
            decode_response(dialect, 200, content, 1)


def test_a_body_too_deep_for_json_is_quoted_as_it_came() -> None:
    content = b"[" * 100_000 + b"]" * 100_000  # past any recursion limit
    error = make_status_error(DIALECTS["cohere"], 500, "Internal Server Error", content, {})
    assert error.body == content.decode()
    assert str(error).startswith("HTTP 500 Internal Server Error: [[[")  # read as text


def test_an_error_names_the_request_id_and_quotes_the_body_as_sent() -> None:
    content = b'{"detail":"no such model","extra":1}'
    headers = {"x-request-id": "req-42"}
    error = make_status_error(DIALECTS["cohere"], 400, "Bad Request", content, headers)
    assert error.request_id == "req-42"
    assert "[request id req-42]" in str(error)
    assert '| body: {"detail":"no such model","extra":1}' in str(error)


@pytest.mark.parametrize(
    ("logits_expected", "scores", "says"),
    [
        (False, [], None),
        (True, [], None),
        (False, [0.1, 0.9], None),
        (False, [-2.0, 0.5], "are not 0..1 probabilities"),
        (False, [0.5, 3.0], "are not 0..1 probabilities"),
        (True, [0.1, 0.5, 0.9], "look like probabilities already"),
        (True, [0.1, 0.9], None),  # two scores say too little
        (True, [-1.0, 0.5, 2.0], None),
    ],
)
def test_scores_on_an_unexpected_scale_are_named(
    logits_expected: bool, scores: list[float], says: str | None
) -> None:
    found = scale_mismatch(logits_expected, scores)
    assert found is None if says is None else says in (found or "")


# -- answers no parser foresaw, indexes and scores at their edges ------------------------------


def test_a_parser_that_trips_over_an_answer_gives_a_format_error() -> None:
    def tripping(body: Any) -> Any:
        return body["results"]["first"]  # a list indexed by a string: TypeError

    dialect = dataclasses.replace(DIALECTS["cohere"], parse_body=tripping)
    with pytest.raises(ResponseFormatError, match=r"unreadable answer \(TypeError\)"):
        decode_response(dialect, 200, b'{"results": []}', 1)


def test_a_whole_number_sent_as_a_float_is_an_index() -> None:
    results = [{"index": 1.0, "relevance_score": 0.5}, {"index": 0, "relevance_score": 0.25}]
    ranking = decode({"results": results}, 2, "cohere")
    assert ranking.pairs == [(1, 0.5), (0, 0.25)]
    assert [type(index) for index, _ in ranking.pairs] == [int, int]
    results[0]["index"] = 1.5
    with pytest.raises(ResponseFormatError, match=r"index 1\.5 is not an integer"):
        decode({"results": results}, 2, "cohere")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_a_score_that_is_not_finite_is_refused(
    number: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # orjson refuses these words; the standard library's decoder reads them as floats.
    monkeypatch.setattr(json_module, "loads", json_module.stdlib_loads)
    content = f'{{"results": [{{"index": 0, "relevance_score": {number}}}]}}'.encode()
    with pytest.raises(ResponseFormatError, match="score of index 0 is not finite"):
        decode_response(DIALECTS["cohere"], 200, content, 1)


def test_an_error_reader_that_trips_leaves_the_status_error_without_a_message() -> None:
    def tripping(body: Any) -> str | None:
        raise LookupError("no such field")

    dialect = dataclasses.replace(DIALECTS["cohere"], error_message=tripping)
    error = make_status_error(dialect, 503, "Service Unavailable", b'{"odd": 1}', {})
    assert isinstance(error, ServerError)
    assert error.server_message is None
    assert str(error).startswith("HTTP 503 Service Unavailable (no message from the server)")


# -- error messages: the excerpt, the URL, the scale at its bounds -----------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("a \n\t b", 10, "a b"),  # one line, single spaces
        ("abcdefghij", 10, "abcdefghij"),  # exactly the limit: whole
        ("abcdefghijk", 10, "abcdefghi…"),  # one over: cut, with the ellipsis in the limit
        (" " * 40 + "tail", 10, ""),  # only 4 times the limit is read
        (" " * 30 + "tail", 10, "tail"),
    ],
)
def test_an_excerpt_is_one_line_cut_to_its_limit(text: str, limit: int, expected: str) -> None:
    assert shorten(text, limit) == expected
    assert body_excerpt(text.encode(), limit) == expected


def test_an_excerpt_reads_four_bytes_a_character_of_its_limit() -> None:
    # 13 ideographic spaces are 39 bytes: of 40 bytes read, one more is the tail's first.
    assert body_excerpt(("\u3000" * 13 + "tail").encode(), 10) == "t"


def test_an_extra_field_replaces_a_mapping_it_does_not_extend() -> None:
    body = {"parameters": {"a": 1}, "query": "q"}
    assert merge_fields(body, {"parameters": {"b": 2}}) == {
        "parameters": {"a": 1, "b": 2},
        "query": "q",
    }
    assert merge_fields(body, {"parameters": None, "query": {"x": 1}}) == {
        "parameters": None,
        "query": {"x": 1},
    }


@pytest.mark.parametrize("url", ["https://rerank.test/v1/rerank", ""])
def test_an_error_names_the_url_it_was_sent_to(url: str) -> None:
    error = make_status_error(DIALECTS["cohere"], 400, "Bad Request", b"{}", {}, url=url)
    assert error.url == (url or None)
    assert (f"(POST {url})" in str(error)) is bool(url)
    with pytest.raises(ResponseFormatError) as info:
        decode_response(DIALECTS["cohere"], 200, b"", 1, url=url)
    assert info.value.url == (url or None)
    assert str(info.value).endswith("| body: (empty)")
    with pytest.raises(APIStatusError) as embedded:
        decode_response(DIALECTS["cohere"], 200, b'{"error": "model not loaded"}', 1, url=url)
    assert embedded.value.url == (url or None)


@pytest.mark.parametrize(
    ("logits_expected", "scores", "says"),
    [
        (False, [-1e-10, 1.0 + 1e-10], False),  # within the tolerance of 0..1
        (False, [0.0, 1.0], False),
        (False, [-1e-9, 1.0 + 1e-9], False),  # the tolerance's own bounds
        (True, [-0.5, 0.5, 0.9], False),  # below 0: logits
        (True, [0.1, 0.5, 1.5], False),  # above 1: logits
        (False, [-1e-8, 0.5], True),
        (False, [0.5, 1.0 + 1e-8], True),
        (False, [0.5, 1.5], True),
        (True, [0.0, 0.5, 1.0], True),  # the bounds of 0..1 belong to it
        (True, [0.5, 0.5, 0.5], False),  # all equal: nothing to say
        (True, [0.2, 0.3, 0.4, 0.9], True),
    ],
)
def test_the_scale_check_at_its_bounds(
    logits_expected: bool, scores: list[float], says: bool
) -> None:
    assert (scale_mismatch(logits_expected, scores) is not None) is says


def test_a_bad_answer_leaves_no_secret_in_the_traceback_frames() -> None:
    secret = "sk-secret-123456"
    content = json.dumps({"results": [{"index": 5, "relevance_score": 1}], "echo": secret})
    with pytest.raises(ResponseFormatError) as info:
        decode_response(DIALECTS["cohere"], 200, content.encode(), 1, Scrubber([secret]))
    frames = []
    traceback = info.value.__traceback__
    while traceback is not None:  # the package's frames, not this test's own
        if "rerank_integrations" in traceback.tb_frame.f_code.co_filename:
            frames.append(traceback.tb_frame)
        traceback = traceback.tb_next
    assert frames
    for frame in frames:
        for value in frame.f_locals.values():
            if isinstance(value, (bytes, str)):
                assert secret.encode() not in (
                    value if isinstance(value, bytes) else value.encode()
                )


def test_a_secret_echoed_as_a_json_number_is_scrubbed() -> None:
    """A numeric key that a server echoes as a JSON number is no string for the decoded
    value's scrubbing to find: the body's bytes are scrubbed before they are decoded."""
    secret = "4012888812345678"
    content = b'{"message": "invalid key", "key": 4012888812345678}'
    error = make_status_error(
        DIALECTS["cohere"], 401, "Unauthorized", content, {}, Scrubber([secret])
    )
    assert secret not in str(error) and secret not in repr(error.body)
    assert "***" in str(error)
