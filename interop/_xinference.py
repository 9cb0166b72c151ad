"""Xinference (``xinference-local``) with its database-backed auth, serving the tiny model.

Since 3.0 a fresh Xinference requires authentication: on first start it logs a one-time
setup token; ``POST /v1/admin/setup`` with it creates the admin, ``POST /token`` logs in, and
``POST /v1/admin/keys`` creates an API key. API keys may only query and run models, so the
tiny cross-encoder is registered (``/v1/model_registrations/rerank``) and launched
(``/v1/models``, engine ``sentence_transformers``) with the admin's token.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
from pathlib import Path

import httpx

from interop._harness import Case, Server, stable_port
from interop._processes import Processes, ServerProcess, free_port, log_tail
from interop.corpus import DOCUMENTS, MANY_DOCUMENTS

VERSION = "4.1.0"
MODEL = "tiny-reranker"
ADMIN = "interop-admin"

_NO_MODEL = (
    "a 5xx saying a required field (model) is missing is not retried and says to set "
    "model=/RERANK_MODEL"
)


class XinferenceSetup:
    """A running Xinference with an admin, an API key and the tiny model launched."""

    def __init__(self, server: ServerProcess, base: str, api_key: str) -> None:
        self.server = server
        self.base = base
        self.api_key = api_key


def start(
    processes: Processes, root: Path, work: Path, model_dir: Path, *, auth: bool = True
) -> XinferenceSetup:
    """Start Xinference with a fresh home; with ``auth``, do the first-run setup and create an
    API key; then register and launch the tiny model."""
    name = "xinference" if auth else "xinference-open"
    home = work / f"{name}-home"
    shutil.rmtree(home, ignore_errors=True)  # a fresh home: the first-run setup every time
    port = free_port()
    stable_port(port, 9997 if auth else 9998)
    venv = root / ".venv-interop-xinference"
    server = processes.start(
        ServerProcess(
            name,
            [str(venv / "bin" / "xinference-local"), "-H", "127.0.0.1", "-p", str(port)],
            log_path=work / "logs" / f"{name}.log",
            env={
                "XINFERENCE_AUTH_ADVANCED": "true" if auth else "false",
                "XINFERENCE_HOME": str(home),
                "XINFERENCE_AUTH_JWT_SECRET_KEY": secrets.token_hex(32),
                "XINFERENCE_AUTH_ENCRYPTION_KEY": secrets.token_hex(32),
                "XINFERENCE_MODEL_SRC": "huggingface",
                "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1",
                "OMP_NUM_THREADS": "1",
            },
        )
    )
    base = f"http://127.0.0.1:{port}"
    if not auth:
        server.wait_for_http(f"{base}/v1/models", timeout=300)
        with httpx.Client(base_url=base, timeout=600) as http:
            _register_and_launch(server, http, model_dir, {})
        return XinferenceSetup(server, base, "")
    server.wait_for_http(f"{base}/v1/admin/setup/status", timeout=300)

    token_line = re.search(r"Setup token: (\S+)", server.log_path.read_text(errors="replace"))
    if token_line is None:
        raise server.fail("no 'Setup token:' line in the log")
    password = secrets.token_urlsafe(18)
    with httpx.Client(base_url=base, timeout=600) as http:
        status = http.get("/v1/admin/setup/status").json()
        if not status.get("needs_setup"):
            raise server.fail(f"a fresh home does not ask for setup: {status}")
        answer = http.post(
            "/v1/admin/setup",
            json={"setup_token": token_line.group(1), "username": ADMIN, "password": password},
        )
        _ok(server, answer, "admin setup")
        answer = http.post("/token", json={"username": ADMIN, "password": password})
        _ok(server, answer, "admin login")
        admin = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        answer = http.post("/v1/admin/keys", json={"name": "interop"}, headers=admin)
        _ok(server, answer, "API key creation")
        api_key = str(answer.json()["key"])
        _register_and_launch(server, http, model_dir, admin)
    return XinferenceSetup(server, base, api_key)


def _register_and_launch(
    server: ServerProcess, http: httpx.Client, model_dir: Path, admin: dict[str, str]
) -> None:
    family = {
        "version": 2,
        "model_name": MODEL,
        "language": ["en"],
        "type": "normal",
        "max_tokens": 512,
        "model_specs": [
            {"model_format": "pytorch", "model_uri": str(model_dir), "quantization": "none"}
        ],
    }
    answer = http.post(
        "/v1/model_registrations/rerank",
        json={"model": json.dumps(family), "persist": False},
        headers=admin,
    )
    _ok(server, answer, "model registration")
    answer = http.post(
        "/v1/models",
        json={
            "model_uid": MODEL,
            "model_name": MODEL,
            "model_type": "rerank",
            "model_engine": "sentence_transformers",
        },
        headers=admin,
    )
    _ok(server, answer, "model launch")


def _ok(server: ServerProcess, answer: httpx.Response, step: str) -> None:
    if not answer.is_success:
        raise server.fail(f"{step} failed: HTTP {answer.status_code} {answer.text[:500]}")


def server_info(api_key: str, *, auth: bool = True) -> Server:
    mode = "auth on: first-run admin setup and an API key" if auth else "auth off"
    return Server(
        name="xinference",
        version=VERSION,
        notes=(
            f"xinference {VERSION} (xinference-local, {mode}), the tiny cross-encoder "
            "registered as a custom rerank model, engine sentence_transformers on CPU"
        ),
        secrets=[api_key] if api_key else [],
    )


def open_cases(base: str) -> list[Case]:
    """Against a second Xinference started with XINFERENCE_AUTH_ADVANCED=false."""
    endpoint = f"{base}/v1/rerank"
    return [
        Case(
            name="auth-off",
            title="XINFERENCE_AUTH_ADVANCED=false: no key needed",
            base_url=base,
            model=MODEL,
            raw_url=endpoint,
        ),
        Case(
            name="auth-off-any-key",
            title="XINFERENCE_AUTH_ADVANCED=false: any key is ignored",
            base_url=base,
            model=MODEL,
            api_key="xf-anything",
            raw_url=endpoint,
        ),
    ]


def cases(base: str, api_key: str) -> list[Case]:
    endpoint = f"{base}/v1/rerank"

    def case(name: str, title: str, **kwargs: object) -> Case:
        kwargs.setdefault("base_url", base)
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("api_key", api_key)
        kwargs.setdefault("raw_url", endpoint)
        return Case(name=name, title=title, **kwargs)  # type: ignore[arg-type]

    return [
        case("ranking", "ranking equals a raw call; meta has only nulls, so usage is None"),
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
        case("base-url-root", "base_url is the host root: POST /v1/rerank"),
        case("base-url-v1", "base_url ends in /v1", base_url=f"{base}/v1"),
        case("base-url-full", "base_url is the full endpoint", base_url=endpoint),
        case(
            "return-len",
            "return_len=True per call: usage comes back in meta.tokens",
            extra={"return_len": True},
            adapters=False,
        ),
        case(
            "extra-body",
            "extra_body={'return_len': True} on the client and both adapters",
            extra_body={"return_len": True},
        ),
        case(
            "auth-missing",
            "auth is on: no key is a 401",
            api_key=None,
            expect_raw_ranking=False,
            expected={"error": ["AuthenticationError"], "status_code": 401},
        ),
        case(
            "auth-wrong-key",
            "auth is on: a wrong key is a 401",
            api_key="xf-wrong-key",
            expect_raw_ranking=False,
            expected={"error": ["AuthenticationError"], "status_code": 401},
        ),
        case(
            "unknown-model",
            "an unknown model: 404 'Model not found in the model list' (a model 404, not a "
            "route 404: trying /rerank instead would only give a 405); not retried",
            model="no-such-model",
            max_retries=2,
            expect_raw_ranking=False,
            expected={
                "error": ["BadRequestError"],
                "status_code": 404,
                "message_contains": ["Model not found in the model list"],
                "requests": 1,
            },
        ),
        case(
            "unknown-model-cached",
            "the same unknown model again: Xinference caches the miss and says '(cached, retry "
            "after 10.0s)' in a 404; a wait stated in a message must not make a 404 retryable",
            model="no-such-model",
            max_retries=2,
            expect_raw_ranking=False,
            expected={
                "error": ["BadRequestError"],
                "status_code": 404,
                "message_contains": ["retry after"],
                "requests": 1,
            },
        ),
        case(
            "no-model",
            "no model: 500 text/plain 'model field required'; not retried, and the message "
            "says to set model= or RERANK_MODEL",
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
            "many-documents",
            f"{len(MANY_DOCUMENTS)} documents in one request: Xinference sets no limit",
            documents=MANY_DOCUMENTS,
        ),
    ]


__all__ = ["XinferenceSetup", "cases", "log_tail", "server_info", "start"]
