"""LiteLLM proxy: ``cohere/``, ``jina_ai/``, ``hosted_vllm/`` and ``infinity/`` models in front
of our local BM25 server (healthy, and one per fault) and of Infinity.

The proxy runs with a master key and no database, as a small deployment does. The model
groups and what stands behind them:

- ``bm25-cohere``, ``bm25-jina``, ``bm25-vllm``: the local server, at most 8 documents a
  request, with its own upstream key;
- ``tiny-infinity``: Infinity serving the tiny cross-encoder;
- ``fault-503``, ``fault-502-html``, ``fault-504``, ``fault-429``: local servers that always
  answer 503, an HTML 502 page, 504, or 429 with ``Retry-After: 5``;
- ``fault-stall``: a local server that stalls for 30 s, with a 2 s timeout in LiteLLM.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

from interop._harness import DOCS, Case, Server, stable_port
from interop._processes import Processes, ServerProcess, free_port
from interop.corpus import DOCUMENTS
from rerank_integrations import __version__ as package_version
from rerank_integrations.server import serve_in_thread

VERSION = "1.82.6"
MASTER_KEY = "sk-interop-master"
UPSTREAM_KEY = "upstream-secret"
UPSTREAM_LIMIT = 8

_NESTED = ['{"error"', "Received Model Group"]  # the upstream's body; the proxy's context
_UNWRAP = (
    "unwrap LiteLLM's nested upstream error: the message is the upstream's own message, "
    "not its JSON body as an escaped string"
)


@contextlib.contextmanager
def upstreams() -> Iterator[dict[str, str]]:
    """The local servers behind the proxy, by role, as base URLs."""
    with contextlib.ExitStack() as stack:
        ok = stack.enter_context(
            serve_in_thread(api_key=UPSTREAM_KEY, max_documents=UPSTREAM_LIMIT, seed=1)
        )
        unavailable = stack.enter_context(serve_in_thread(error_rate=1.0, error_status=503))
        gateway = stack.enter_context(serve_in_thread(error_rate=1.0, error_status=504))
        html = stack.enter_context(
            serve_in_thread(error_rate=1.0, error_status=502, error_html=True)
        )
        limited = stack.enter_context(serve_in_thread(rate_limit_rate=1.0, retry_after=5))
        stalled = stack.enter_context(serve_in_thread(stall_rate=1.0, stall_seconds=30))
        for shown, server in enumerate([ok, unavailable, gateway, html, limited, stalled], 18080):
            stable_port(server.port, shown)
        yield {
            "ok": ok.base_url,
            "503": unavailable.base_url,
            "504": gateway.base_url,
            "502-html": html.base_url,
            "429": limited.base_url,
            "stall": stalled.base_url,
        }


def write_config(
    path: Path, upstream: dict[str, str], infinity_url: str, *, master_key: bool = True
) -> None:
    """The proxy's config.yaml (JSON is valid YAML); without a master key, auth is off."""

    def model(name: str, provider_model: str, api_base: str, **more: object) -> dict[str, object]:
        params: dict[str, object] = {
            "model": provider_model,
            "api_base": api_base,
            "api_key": UPSTREAM_KEY,
        }
        params.update(more)
        return {"model_name": name, "litellm_params": params}

    config = {
        "model_list": [
            model("bm25-cohere", "cohere/rerank-bm25", upstream["ok"]),
            model("bm25-jina", "jina_ai/bm25", upstream["ok"]),
            model("bm25-vllm", "hosted_vllm/bm25", upstream["ok"]),
            model("tiny-infinity", "infinity/tiny-reranker", infinity_url),
            model("fault-503", "cohere/rerank-bm25", upstream["503"]),
            model("fault-502-html", "cohere/rerank-bm25", upstream["502-html"]),
            model("fault-504", "cohere/rerank-bm25", upstream["504"]),
            model("fault-429", "cohere/rerank-bm25", upstream["429"]),
            model("fault-stall", "cohere/rerank-bm25", upstream["stall"], timeout=2),
        ],
        "general_settings": {"master_key": MASTER_KEY} if master_key else {},
        # No retries or fallbacks inside the proxy: each fault reaches our client as is.
        "litellm_settings": {"num_retries": 0, "request_timeout": 20, "telemetry": False},
        "router_settings": {"num_retries": 0},
    }
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def start(
    processes: Processes, root: Path, work: Path, config: Path, *, name: str = "litellm"
) -> tuple[ServerProcess, str]:
    port = free_port()
    stable_port(port, 4001 if name.endswith("open") else 4000)
    venv = root / ".venv-interop-litellm"
    server = processes.start(
        ServerProcess(
            name,
            [
                str(venv / "bin" / "litellm"),
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--num_workers",
                "1",
            ],
            log_path=work / "logs" / f"{name}.log",
            env={
                # The model cost map ships with the package; never fetch it.
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_TELEMETRY": "False",
                "DISABLE_ADMIN_UI": "True",
                "NO_DOCS": "True",
            },
        )
    )
    return server, f"http://127.0.0.1:{port}"


def wait_ready(server: ServerProcess, base: str) -> None:
    server.wait_for_http(f"{base}/health/liveliness", timeout=180)


def server_info() -> Server:
    return Server(
        name="litellm",
        version=VERSION,
        notes=(
            f"LiteLLM proxy {VERSION} (master key, no database) in front of the "
            f"rerank-integrations {package_version} local BM25 server and of Infinity"
        ),
        secrets=[MASTER_KEY, UPSTREAM_KEY],
    )


def open_cases(base: str) -> list[Case]:
    """Against a second proxy started without a master key: auth is off."""
    endpoint = f"{base}/v1/rerank"
    return [
        Case(
            name="auth-off",
            title="a proxy without a master key: no key needed",
            base_url=base,
            model="bm25-jina",
            raw_url=endpoint,
        ),
        Case(
            name="auth-off-any-key",
            title="a proxy without a master key takes any key",
            base_url=base,
            model="bm25-jina",
            api_key="sk-anything",
            raw_url=endpoint,
        ),
    ]


def cases(base: str) -> list[Case]:
    endpoint = f"{base}/v1/rerank"
    key = MASTER_KEY

    def case(name: str, title: str, **kwargs: object) -> Case:
        kwargs.setdefault("base_url", base)
        kwargs.setdefault("api_key", key)
        kwargs.setdefault("raw_url", endpoint)
        return Case(name=name, title=title, **kwargs)  # type: ignore[arg-type]

    found: list[Case] = [
        case(
            "ranking-cohere",
            "cohere/ provider: ranking equals a raw call; meta is null, so usage is None",
            model="bm25-cohere",
        ),
        case(
            "ranking-jina",
            "jina_ai/ provider: ranking and usage equal a raw call",
            model="bm25-jina",
        ),
        case(
            "ranking-hosted-vllm",
            "hosted_vllm/ provider (sends to <api_base>/rerank): ranking equals a raw call",
            model="bm25-vllm",
        ),
        case(
            "ranking-infinity",
            "infinity/ provider in front of Infinity: ranking equals a raw call",
            model="tiny-infinity",
        ),
        case("top-n", "top_n=3 returns the best three", model="bm25-jina", top_n=3),
        case(
            "batching-bm25",
            "8 documents in batches of 3 (3 requests); BM25 scores depend on the batch, so the "
            "ranking equals the raw calls of the same batches",
            model="bm25-jina",
            max_documents_per_request=3,
            raw_split="per-batch",
            expected={"requests": 3},
        ),
        case(
            "batching-infinity",
            "12 documents in batches of 5 (3 requests) through infinity/: equals one unsplit raw "
            "call, since the cross-encoder scores each pair on its own",
            model="tiny-infinity",
            documents=DOCUMENTS,
            max_documents_per_request=5,
            expected={"requests": 3},
            expect_raw_usage=False,
        ),
        case("base-url-root", "base_url is the host root: POST /v1/rerank", model="bm25-jina"),
        case("base-url-v1", "base_url ends in /v1", model="bm25-jina", base_url=f"{base}/v1"),
        case(
            "base-url-full",
            "base_url is the full endpoint /v1/rerank",
            model="bm25-jina",
            base_url=endpoint,
        ),
        case(
            "base-url-bare-rerank",
            "base_url is the full endpoint /rerank (LiteLLM serves both)",
            model="bm25-jina",
            base_url=f"{base}/rerank",
            raw_url=f"{base}/rerank",
        ),
        case(
            "auth-missing",
            "no key: 401 from LiteLLM's own auth",
            model="bm25-jina",
            api_key=None,
            expect_raw_ranking=False,
            expected={"error": ["AuthenticationError"], "status_code": 401},
        ),
        case(
            "auth-wrong-key",
            "a wrong key without a database: LiteLLM answers 400 'No connected db.'; check's "
            "advice must say the gateway refused the key",
            model="bm25-jina",
            api_key="sk-wrong-key",
            expect_raw_ranking=False,
            expected={
                "error": ["BadRequestError"],
                "status_code": 400,
                "message_contains": ["No connected db."],
                "advice_contains": "refused the key",
            },
        ),
        case(
            "unknown-model",
            "an unknown model group: 400, not retried",
            model="no-such-model",
            max_retries=2,
            expect_raw_ranking=False,
            expected={
                "error": ["BadRequestError"],
                "status_code": 400,
                "message_contains": ["Invalid model name passed in model=no-such-model"],
                "requests": 1,
            },
        ),
        case(
            "no-model",
            "no model with the generic dialect: LiteLLM answers 500 \"'model'\"; not retried, "
            "and the message says to set model= or RERANK_MODEL",
            model=None,
            max_retries=2,
            expect_raw_ranking=False,
            expected={
                "error": ["ServerError"],
                "status_code": 500,
                "message_contains": ["RERANK_MODEL"],
                "requests": 1,
            },
        ),
        case(
            "empty-query",
            "an empty query, which the upstream refuses with a 400 nested by LiteLLM, is "
            "refused before sending",
            model="bm25-jina",
            query="",
            expect_raw_ranking=False,
            expected={
                "error": ["ValueError"],
                "message_contains": ["query must not be empty"],
                "requests": 0,
            },
        ),
        case(
            "too-many-documents",
            "12 documents in one request to an upstream that takes 8: its 413, nested by "
            "LiteLLM, splits the batch in half",
            model="bm25-jina",
            documents=DOCUMENTS,
            expect_raw_ranking=False,
            expected={"requests": 3},
        ),
        case(
            "too-many-documents-batched",
            "the same 12 documents with max_documents_per_request=8: two requests, no error",
            model="bm25-jina",
            documents=DOCUMENTS,
            max_documents_per_request=UPSTREAM_LIMIT,
            raw_split="per-batch",
            expected={"requests": 2},
        ),
        case(
            "fault-503",
            "the upstream answers 503: retried once, then a ServerError with the upstream's "
            "own message",
            model="fault-503",
            max_retries=1,
            expect_raw_ranking=False,
            expected={
                "error": ["ServerError"],
                "status_code": 503,
                "message_contains": [
                    "503 Service Unavailable: the rerank service failed (injected fault)."
                ],
                "message_head_excludes": _NESTED,
                "requests": 2,
            },
        ),
        case(
            "fault-502-html",
            "the upstream answers an HTML 502 page: LiteLLM puts the page in its message",
            model="fault-502-html",
            max_retries=1,
            expect_raw_ranking=False,
            expected={
                "error": ["ServerError"],
                "status_code": 502,
                "message_contains": ["502 Bad Gateway"],
                "message_head_excludes": ["<html>", "<head>"],
                "requests": 2,
            },
        ),
        case(
            "fault-504",
            "the upstream answers 504: a gateway timeout, which must be a typed timeout error "
            "(and still a ServerError), retried once",
            model="fault-504",
            max_retries=1,
            expect_raw_ranking=False,
            expected={
                "error": ["ServerError", "APITimeoutError"],
                "status_code": 504,
                "requests": 2,
            },
        ),
        case(
            "fault-429",
            "the upstream answers 429 with Retry-After: 5; LiteLLM drops the header but keeps "
            "'Please retry after 5 seconds.' in the message, which must set the wait",
            model="fault-429",
            max_retries=1,
            expect_raw_ranking=False,
            expected={
                "error": ["RateLimitError"],
                "status_code": 429,
                "message_contains": ["Rate limit exceeded. Please retry after 5 seconds."],
                "requests": 2,
                "min_first_wait": 5.0,
            },
        ),
        case(
            "fault-stall",
            "the upstream stalls past LiteLLM's 2 s timeout: a bare 408 'litellm.Timeout', "
            "which must be a typed timeout error",
            model="fault-stall",
            expect_raw_ranking=False,
            expected={
                "error": ["APIStatusError", "APITimeoutError"],
                "status_code": 408,
                "message_contains": ["litellm.Timeout"],
                "requests": 1,
            },
        ),
        case(
            "raw-scores-dropped",
            "raw_scores=True through infinity/: LiteLLM drops the field, scores stay 0..1",
            model="tiny-infinity",
            extra={"raw_scores": True},
            adapters=False,
            expected={"scores_within": [0.0, 1.0]},
        ),
        case(
            "score-scale-warning",
            "score_transform='sigmoid' on 0..1 scores (raw_scores dropped by the proxy): the "
            "ranking holds, and the client warns once that the scores do not look like logits",
            model="tiny-infinity",
            extra={"raw_scores": True},
            score_transform="sigmoid",
            adapters=False,
            expected={"scale_warning": True},
        ),
        case(
            "extra-body",
            "extra_body={'max_tokens_per_doc': 512} on the client and both adapters reaches the "
            "cohere/ provider",
            model="bm25-cohere",
            extra_body={"max_tokens_per_doc": 512},
        ),
    ]
    assert len(DOCS) <= UPSTREAM_LIMIT
    return found
