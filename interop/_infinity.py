"""Infinity (``infinity-emb``) serving the tiny cross-encoder, once open and once with a key.

Infinity serves ``POST /rerank`` (no ``/v1`` unless started with ``--url-prefix /v1``), takes
at most ``INFINITY_MAX_CLIENT_BATCH_SIZE`` documents a request (12 here), ignores the model
name when it serves one model, and scores each (query, document) pair on its own: sigmoid of
the logit by default, the logit with ``raw_scores=true``.
"""

from __future__ import annotations

from pathlib import Path

from interop._harness import Case, Server, stable_port
from interop._processes import Processes, ServerProcess, free_port
from interop.corpus import DOCUMENTS, MANY_DOCUMENTS

VERSION = "0.0.78"
MODEL = "tiny-reranker"
API_KEY = "infinity-interop-key"
MAX_DOCUMENTS = 12

_FALLBACK = (
    "a 404 on a derived path (/v1/rerank) tries the other common rerank path (/rerank) once "
    "and remembers the one that worked"
)


def start(
    processes: Processes, root: Path, work: Path, model_dir: Path, *, api_key: str | None
) -> tuple[ServerProcess, str]:
    port = free_port()
    stable_port(port, 7998 if api_key else 7997)
    venv = root / ".venv-interop-infinity"
    argv = [
        str(venv / "bin" / "infinity_emb"),
        "v2",
        "--model-id",
        str(model_dir),
        "--served-model-name",
        MODEL,
        "--engine",
        "torch",
        "--device",
        "cpu",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-model-warmup",
        "--batch-size",
        "16",
    ]
    if api_key:
        argv += ["--api-key", api_key]
    name = "infinity-auth" if api_key else "infinity"
    server = processes.start(
        ServerProcess(
            name,
            argv,
            log_path=work / "logs" / f"{name}.log",
            env={
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "INFINITY_ANONYMOUS_USAGE_STATS": "0",
                "DO_NOT_TRACK": "1",
                "INFINITY_MAX_CLIENT_BATCH_SIZE": str(MAX_DOCUMENTS),
                "OMP_NUM_THREADS": "1",
            },
        )
    )
    return server, f"http://127.0.0.1:{port}"


def wait_ready(server: ServerProcess, base: str, api_key: str | None = None) -> None:
    # /health needs no key on either instance.
    server.wait_for_http(f"{base}/health", timeout=300)


def server_info() -> Server:
    return Server(
        name="infinity",
        version=VERSION,
        notes=(
            f"infinity-emb {VERSION}, torch engine on CPU, serving a 2-layer random BERT "
            "cross-encoder built by interop/tiny_model.py"
        ),
        secrets=[API_KEY],
    )


def cases(base: str, auth_base: str) -> list[Case]:
    endpoint = f"{base}/rerank"

    def case(name: str, title: str, **kwargs: object) -> Case:
        kwargs.setdefault("base_url", endpoint)
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("raw_url", endpoint)
        return Case(name=name, title=title, **kwargs)  # type: ignore[arg-type]

    return [
        case("ranking", "ranking and usage equal a raw call to /rerank"),
        case("top-n", "top_n=3 returns the best three", top_n=3),
        case(
            "batching",
            "12 documents in batches of 5 (3 requests) equal one unsplit raw call: scores are "
            "per pair",
            documents=DOCUMENTS,
            max_documents_per_request=5,
            expected={"requests": 3},
            expect_raw_usage=False,
        ),
        case("base-url-full", "base_url is the full endpoint /rerank"),
        case(
            "base-url-root",
            "base_url is the host root: we derive /v1/rerank, Infinity answers 404 "
            "{'detail': 'Not Found'}; the client must then try /rerank",
            base_url=base,
            expected={"requests": 2},
        ),
        case(
            "base-url-v1",
            "base_url ends in /v1: /v1/rerank is a 404 here too; the client must then try /rerank",
            base_url=f"{base}/v1",
            expected={"requests": 2},
        ),
        case(
            "base-url-full-wrong",
            "the user gives /v1/rerank in full: no other path is tried, and the 404's message "
            "names the URL",
            base_url=f"{base}/v1/rerank",
            max_retries=2,
            expect_raw_ranking=False,
            expected={
                "error": ["BadRequestError"],
                "status_code": 404,
                "message_names_url": True,
                "requests": 1,
            },
        ),
        case(
            "raw-scores",
            "raw_scores=True per call: logits (some negative), ranking equal to a raw call",
            extra={"raw_scores": True},
            adapters=False,
        ),
        case(
            "score-scale-warning",
            "raw_scores=True gives logits where the generic dialect declares 0..1: one warning",
            extra={"raw_scores": True},
            adapters=False,
            expected={"scale_warning": True},
        ),
        case(
            "extra-body",
            "extra_body={'raw_scores': True} on the client and both adapters",
            extra_body={"raw_scores": True},
        ),
        case(
            "unknown-model",
            "an unknown model name: Infinity serves its one model anyway (200)",
            model="no-such-model",
        ),
        case("no-model", "no model: Infinity serves its one model (200)", model=None),
        case(
            "empty-query",
            "an empty query, which the server would score (200), is refused before sending",
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
            f"{len(MANY_DOCUMENTS)} documents in one request, over Infinity's "
            f"{MAX_DOCUMENTS}: its 422 ('at most 12 items') splits the batch in half",
            documents=MANY_DOCUMENTS,
            max_documents_per_request=100,
            max_retries=2,
            expect_raw_ranking=False,
            expected={"requests": 3},
        ),
        case(
            "too-many-documents-batched",
            f"the same {len(MANY_DOCUMENTS)} documents with max_documents_per_request=12: "
            "two requests; per-pair scores, so equal to the raw calls of the same batches",
            documents=MANY_DOCUMENTS,
            max_documents_per_request=MAX_DOCUMENTS,
            raw_split="per-batch",
            expected={"requests": 2},
        ),
        case(
            "auth-on",
            "with --api-key: the right key ranks like a raw call",
            base_url=f"{auth_base}/rerank",
            raw_url=f"{auth_base}/rerank",
            api_key=API_KEY,
        ),
        case(
            "auth-wrong-key",
            "with --api-key: a wrong key is refused",
            base_url=f"{auth_base}/rerank",
            raw_url=f"{auth_base}/rerank",
            api_key="wrong-key",
            expect_raw_ranking=False,
            expected={"error": ["AuthenticationError"]},
        ),
        case(
            "auth-missing",
            "with --api-key: no key is refused",
            base_url=f"{auth_base}/rerank",
            raw_url=f"{auth_base}/rerank",
            expect_raw_ranking=False,
            expected={"error": ["AuthenticationError"]},
        ),
    ]
