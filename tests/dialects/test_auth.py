"""Credentials exchanged or signed per request, on both paths: the IBM IAM token exchange
(cached, refreshed once on a 401), Google credentials (a fake metadata server, application
default credentials, a token passed in), AWS SigV4 (checked by recomputing the signature
with botocore) and OCI request signatures (checked with the public half of a throwaway RSA
key); optional packages stay optional; no secret reaches a log, error or dump."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import httpx
import pytest
from pydantic import SecretStr
from support import (
    IAM_UNKNOWN_KEY,
    OCI_UNAUTHENTICATED,
    MetadataServer,
    MockAPI,
    OCITestKey,
    ScriptedServer,
    Stall,
    TrickleBody,
    json_reply,
    keyword_score,
    oci_test_key,
    run_mode,
    verify_oci_signature,
)

from rerank_integrations import (
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    RerankClient,
    RerankResponse,
    ResponseFormatError,
    ServerError,
)
from rerank_integrations._actions import Answer, Send, Wait
from rerank_integrations.dialects._bedrock import region_from_host
from rerank_integrations.dialects._oci import region_from_host as oci_region_from_host
from rerank_integrations.dialects._watsonx import DEFAULT_IAM_URL, IAMAuthorizer

FIXTURES = Path(__file__).parent / "fixtures" / "cloud"
IBM_KEY = "ibm-apikey-CANARY-5d1f0c"
QUERY = "apple pie"
DOCUMENTS = ["pear tart", "apple pie recipe", "apple", "bicycle", "an apple pie", "pie"]
BEST = sorted(range(len(DOCUMENTS)), key=lambda i: (-keyword_score(QUERY, DOCUMENTS[i]), i))


def rerank(mode: str, client: RerankClient, **kwargs: Any) -> RerankResponse:
    """One call on the chosen path; the client's pools are closed after it."""

    async def in_loop() -> RerankResponse:
        try:
            return await client.arerank(QUERY, DOCUMENTS, **kwargs)
        finally:
            await client.aclose()

    try:
        return run_mode(mode, lambda: client.rerank(QUERY, DOCUMENTS, **kwargs), in_loop)
    finally:
        client.close()


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record at DEBUG and above, from every logger."""
    caplog.set_level(logging.DEBUG)
    return caplog


def assert_nowhere(secrets: list[str], *texts: str) -> None:
    for secret in secrets:
        for text in texts:
            assert secret not in text


# -- IBM Cloud IAM, sans-IO -----------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token_answer(token: str, **fields: Any) -> Answer:
    body = {"access_token": token, "token_type": "Bearer", **fields}
    return Answer(200, "OK", {}, json.dumps(body).encode())


def authorize(authorizer: IAMAuthorizer, answers: list[Answer]) -> tuple[Send, list[Send]]:
    """Run one authorize flow, answering its token requests from ``answers``."""
    asked: list[Send] = []
    flow = authorizer.authorize(Send("https://h/ml/v1/text/rerank", b"{}", {}, httpx.Timeout(5)))
    outcome: Any = None
    try:
        while True:
            action = flow.send(outcome)
            assert isinstance(action, Send)
            asked.append(action)
            outcome = answers.pop(0)
    except StopIteration as stop:
        return stop.value, asked


def test_the_token_request_is_the_documented_form() -> None:
    documented = json.loads((FIXTURES / "iam_token.json").read_text())
    authorizer = IAMAuthorizer(SecretStr(IBM_KEY), DEFAULT_IAM_URL, clock=Clock())
    sent, asked = authorize(authorizer, [token_answer("t-1", expires_in=3600)])
    (request,) = asked
    assert request.url == "https://iam.cloud.ibm.com/identity/token"
    assert request.headers["Content-Type"] == documented["request"]["headers"]["Content-Type"]
    form = {key: value[0] for key, value in parse_qs(request.content.decode()).items()}
    assert form == {**documented["request"]["form"], "apikey": IBM_KEY}
    assert sent.headers["Authorization"] == "Bearer t-1"
    assert "t-1" not in repr(authorizer) and IBM_KEY not in repr(authorizer)


def test_the_token_is_cached_until_shortly_before_it_expires() -> None:
    clock = Clock()
    authorizer = IAMAuthorizer(SecretStr(IBM_KEY), clock=clock)
    authorize(authorizer, [token_answer("t-1", expires_in=1000)])
    clock.now += 799  # 80 % of its lifetime: still used
    sent, asked = authorize(authorizer, [])
    assert asked == [] and sent.headers["Authorization"] == "Bearer t-1"
    clock.now += 2
    sent, asked = authorize(authorizer, [token_answer("t-2", expires_in=1000)])
    assert len(asked) == 1 and sent.headers["Authorization"] == "Bearer t-2"


@pytest.mark.parametrize(
    ("fields", "lifetime"),
    [({"expires_in": 100}, 100), ({"expiration": "EPOCH+200"}, 200), ({}, 3600)],
)
def test_the_lifetime_comes_from_expires_in_or_expiration(
    fields: dict[str, Any], lifetime: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rerank_integrations.dialects._watsonx.time.time", lambda: 5000.0)
    if fields.get("expiration"):
        fields = {"expiration": 5200}
    clock = Clock()
    authorizer = IAMAuthorizer(SecretStr(IBM_KEY), clock=clock)
    authorize(authorizer, [token_answer("t-1", **fields)])
    clock.now += lifetime * 0.8 - 1
    assert authorize(authorizer, [])[1] == []
    clock.now += 2
    assert len(authorize(authorizer, [token_answer("t-2")])[1]) == 1


def test_invalidate_drops_only_the_token_that_was_refused() -> None:
    authorizer = IAMAuthorizer(SecretStr(IBM_KEY), clock=Clock())
    sent, _ = authorize(authorizer, [token_answer("t-1")])
    authorizer.invalidate(Send("u", b"", {"Authorization": "Bearer older"}, httpx.Timeout(1)))
    assert authorize(authorizer, [])[1] == []
    authorizer.invalidate(sent)
    assert len(authorize(authorizer, [token_answer("t-2")])[1]) == 1


def iam_error(status: int, body: Any) -> Answer:
    return Answer(status, "Error", {}, json.dumps(body).encode())


def test_iam_errors_are_typed_with_its_message_and_never_the_key() -> None:
    documented = json.loads((FIXTURES / "iam_error_400.json").read_text())["response"]
    authorizer = IAMAuthorizer(SecretStr(IBM_KEY), clock=Clock())
    with pytest.raises(AuthenticationError) as info:
        authorize(authorizer, [iam_error(400, documented["body"])])
    assert info.value.status_code == 400
    assert "Provided API key could not be found. [BXNIM0415E]" in str(info.value)
    echoed = {"errorMessage": f"bad key {IBM_KEY}", "errorCode": "BXNIM0415E"}
    with pytest.raises(AuthenticationError) as info:
        authorize(authorizer, [iam_error(400, echoed)])
    assert IBM_KEY not in str(info.value) and IBM_KEY not in json.dumps(info.value.body)
    with pytest.raises(ServerError):
        authorize(authorizer, [iam_error(503, {"errorMessage": "down"})])
    with pytest.raises(ResponseFormatError, match="no access_token") as format_error:
        authorize(authorizer, [iam_error(200, {"refresh_token": "r-CANARY"})])
    assert "r-CANARY" not in str(format_error.value)


#: A key that JSON escapes (``\/``, ``\u002b``) and a form encodes (``%2F``, ``%2B``, ``%3D``)
#: unlike itself.
ESCAPED_KEY = "ibm/apikey+CANARY=9f3"
_UNICODE_ESCAPED = "".join(c if c.isalnum() else f"\\u{ord(c):04x}" for c in ESCAPED_KEY)


@pytest.mark.parametrize(
    "echo",
    [
        json.dumps({"errorMessage": f"bad key {ESCAPED_KEY}"}).replace("/", "\\/"),
        json.dumps({"errorMessage": "bad", "request": f"apikey={quote(ESCAPED_KEY, safe='')}"}),
        '{"errorMessage": "bad key ' + _UNICODE_ESCAPED + '"}',
        f"grant_type=x&apikey={quote(ESCAPED_KEY, safe='')}",
    ],
    ids=["json-escaped", "form-encoded", "unicode-escaped", "form-body"],
)
def test_an_iam_error_never_carries_the_key_in_any_form(echo: str) -> None:
    authorizer = IAMAuthorizer(SecretStr(ESCAPED_KEY), clock=Clock())
    with pytest.raises(AuthenticationError) as info:
        authorize(authorizer, [Answer(400, "Bad Request", {}, echo.encode())])
    error = info.value
    shown = [
        str(error),
        repr(error),
        repr(error.args),
        json.dumps(error.body),
        "".join(traceback.format_exception(type(error), error, error.__traceback__)),
    ]
    for form in (ESCAPED_KEY, quote(ESCAPED_KEY, safe=""), ESCAPED_KEY.replace("/", "\\/")):
        assert_nowhere([form], *shown)
    assert "***" in json.dumps(error.body)


def test_the_token_request_has_the_bounds_of_the_request_it_is_for() -> None:
    authorizer = IAMAuthorizer(SecretStr(IBM_KEY), clock=Clock())
    flow = authorizer.authorize(Send("https://h/r", b"{}", {}, httpx.Timeout(0.4), limit=0.7))
    token_request = next(flow)
    assert isinstance(token_request, Send)
    assert (token_request.timeout, token_request.limit) == (httpx.Timeout(0.4), 0.7)


def test_one_token_request_is_in_flight_and_the_others_wait_for_it() -> None:
    authorizer = IAMAuthorizer(SecretStr(IBM_KEY), clock=Clock())
    probe = Send("https://h/r", b"{}", {}, httpx.Timeout(5), limit=3.0)
    first, second = authorizer.authorize(probe), authorizer.authorize(probe)
    assert isinstance(next(first), Send)
    waiting = next(second)
    assert isinstance(waiting, Wait) and waiting.seconds == 3.0
    assert not waiting.latch.wait(0)
    with pytest.raises(StopIteration):
        first.send(token_answer("t-1"))
    assert waiting.latch.wait(0)
    with pytest.raises(StopIteration) as done:
        second.send(True)
    assert done.value.value.headers["Authorization"] == "Bearer t-1"
    # A refusal is shared; a waiter whose time runs out says why.
    third, fourth = IAMAuthorizer(SecretStr(IBM_KEY), clock=Clock()), None
    fetching, fourth = third.authorize(probe), third.authorize(probe)
    next(fetching)
    assert isinstance(next(fourth), Wait)
    with pytest.raises(AuthenticationError):
        fetching.send(iam_error(400, {"errorMessage": IAM_UNKNOWN_KEY}))
    with pytest.raises(AuthenticationError, match=IAM_UNKNOWN_KEY):
        fourth.send(True)
    late = IAMAuthorizer(SecretStr(IBM_KEY), clock=Clock())
    fetching, waiter = late.authorize(probe), late.authorize(probe)
    next(fetching)
    next(waiter)
    with pytest.raises(APITimeoutError, match="still in flight"):
        waiter.send(False)


# -- IBM Cloud IAM over the wire --------------------------------------------------------------


@pytest.fixture
def watsonx() -> Iterator[ScriptedServer]:
    server = ScriptedServer("watsonx", api_key=IBM_KEY)
    yield server
    server.close()


def watsonx_client(server: ScriptedServer, **kwargs: Any) -> RerankClient:
    return RerankClient(
        server.base_url,
        api_key=IBM_KEY,
        model="cross-encoder/ms-marco-minilm-l-12-v2",
        dialect="watsonx",
        auth_url=server.token_url,
        extra_body={"project_id": "test-project"},
        timeout=10,
        **{"max_retries": 0, **kwargs},
    )


def test_a_refused_token_is_replaced_once(
    mode: str, watsonx: ScriptedServer, log: pytest.LogCaptureFixture
) -> None:
    client = watsonx_client(watsonx)
    assert [r.index for r in rerank(mode, client).results] == BEST
    watsonx.revoke_tokens()  # expired or revoked on the server's side
    assert [r.index for r in rerank(mode, client).results] == BEST
    assert len(watsonx.token_requests) == 2
    assert len(watsonx.received) == 3  # one refused with 401, then the retry
    assert any("token refused (HTTP 401)" in record.getMessage() for record in log.records)
    issued = [f"iam-token-{n}-{IBM_KEY[-6:]}" for n in (1, 2)]
    assert_nowhere([IBM_KEY, *issued], log.text, repr(client), repr(client.settings))


class _Forgetful(set[str]):
    def add(self, item: str) -> None:  # the server never accepts a token it issued
        pass


def test_a_token_refused_twice_raises_after_one_refresh(
    mode: str, watsonx: ScriptedServer, log: pytest.LogCaptureFixture
) -> None:
    watsonx.tokens = _Forgetful()
    client = watsonx_client(watsonx, max_retries=3)
    with pytest.raises(AuthenticationError, match="expired token") as info:
        rerank(mode, client)
    assert len(watsonx.token_requests) == 2 and len(watsonx.received) == 2
    issued = [f"iam-token-{n}-{IBM_KEY[-6:]}" for n in (1, 2)]
    assert_nowhere([IBM_KEY, *issued], str(info.value), log.text)


def test_a_wrong_key_is_refused_by_iam_before_any_rerank_request(
    mode: str, watsonx: ScriptedServer, log: pytest.LogCaptureFixture
) -> None:
    wrong = "ibm-wrong-CANARY-key"
    client = RerankClient(
        watsonx.base_url,
        api_key=wrong,
        model="m",
        dialect="watsonx",
        auth_url=watsonx.token_url,
        max_retries=2,
    )
    with pytest.raises(AuthenticationError, match=IAM_UNKNOWN_KEY) as info:
        rerank(mode, client)
    assert watsonx.received == [] and len(watsonx.token_requests) == 1  # not retried
    assert_nowhere([wrong], str(info.value), log.text, repr(info.value.body))


def test_tokens_are_shared_by_threads_and_event_loops(watsonx: ScriptedServer) -> None:
    client = watsonx_client(watsonx)
    results: list[int] = []

    def in_thread() -> None:
        results.append(len(client.rerank(QUERY, DOCUMENTS).results))

    client.rerank(QUERY, DOCUMENTS)
    threads = [threading.Thread(target=in_thread) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    asyncio.run(client.arerank(QUERY, DOCUMENTS))
    client.close()
    assert results == [6, 6, 6, 6]
    assert len(watsonx.token_requests) == 1


def timed(function: Any) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        function()
    except Exception as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


@pytest.mark.parametrize("batches", [1, 3], ids=["one-batch", "many-batches"])
def test_a_trickling_token_endpoint_cannot_hold_a_call_past_its_deadline(
    mode: str, watsonx: ScriptedServer, batches: int
) -> None:
    watsonx.queue_token(TrickleBody(interval=0.3, limit=8))
    client = watsonx_client(watsonx, deadline=1, max_documents_per_request=6 // batches)
    elapsed, error = timed(lambda: rerank(mode, client))
    assert isinstance(error, APITimeoutError), error
    assert "deadline of 1s" in str(error)
    assert elapsed < 2.5
    assert watsonx.received == []


def test_the_token_request_counts_against_the_deadline(mode: str, watsonx: ScriptedServer) -> None:
    watsonx.queue_token(Stall(0.6))
    watsonx.queue(Stall(0.6))
    client = watsonx_client(watsonx, deadline=1)
    elapsed, error = timed(lambda: rerank(mode, client))
    assert isinstance(error, APITimeoutError), error
    assert "deadline of 1s" in str(error)
    assert elapsed < 1.5


def test_concurrent_calls_on_a_new_client_share_one_token_request(
    watsonx: ScriptedServer,
) -> None:
    watsonx.queue_token(Stall(0.2))  # the others arrive while the first is answered
    client = watsonx_client(watsonx)

    async def many() -> list[RerankResponse]:
        try:
            return list(
                await asyncio.gather(*(client.arerank(QUERY, DOCUMENTS) for _ in range(40)))
            )
        finally:
            await client.aclose()

    answers = asyncio.run(many())
    assert all([r.index for r in answer.results] == BEST for answer in answers)
    assert len(watsonx.token_requests) == 1 and len(watsonx.received) == 40

    watsonx.reset()
    watsonx.queue_token(Stall(0.2))
    threaded = watsonx_client(watsonx)
    results: list[list[int]] = []

    def in_thread() -> None:
        results.append([r.index for r in threaded.rerank(QUERY, DOCUMENTS).results])

    threads = [threading.Thread(target=in_thread) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    threaded.close()
    assert results == [BEST] * 8
    assert len(watsonx.token_requests) == 1


def test_concurrent_calls_share_the_refusal_of_a_wrong_key(
    mode: str, watsonx: ScriptedServer
) -> None:
    watsonx.queue_token(Stall(0.2))
    client = RerankClient(
        watsonx.base_url,
        api_key="ibm-wrong-CANARY-key",
        model="m",
        dialect="watsonx",
        auth_url=watsonx.token_url,
        max_retries=0,
    )

    async def many() -> list[Any]:
        try:
            calls = (client.arerank(QUERY, DOCUMENTS) for _ in range(6))
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            await client.aclose()

    def threaded() -> list[Any]:
        errors: list[Any] = []

        def in_thread() -> None:
            try:
                client.rerank(QUERY, DOCUMENTS)
            except Exception as exc:
                errors.append(exc)

        threads = [threading.Thread(target=in_thread) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return errors

    errors = run_mode(mode, threaded, many)
    client.close()
    assert len(errors) == 6
    assert all(isinstance(e, AuthenticationError) and IAM_UNKNOWN_KEY in str(e) for e in errors)
    assert len({id(error) for error in errors}) == 6
    assert len(watsonx.token_requests) == 1 and watsonx.received == []


def test_a_secret_echoed_by_the_server_is_scrubbed(
    make_client: Any, mock_api: MockAPI, log: pytest.LogCaptureFixture
) -> None:
    token = "iam-token-CANARY-echoed"
    mock_api.queue(
        httpx.Response(200, json={"access_token": token, "expires_in": 3600}),
        lambda request: httpx.Response(
            400,
            json={
                "errors": [
                    {"code": "x", "message": f"{request.headers['authorization']} {IBM_KEY}"}
                ]
            },
        ),
    )
    client = make_client(
        base_url="https://us-south.ml.cloud.ibm.com",
        dialect="watsonx",
        api_key=IBM_KEY,
        model="m",
        auth_url="https://iam.test/identity/token",
    )
    with pytest.raises(BadRequestError) as info:
        client.rerank("q", ["a"])
    assert "Bearer ***" in str(info.value)
    assert_nowhere([token, IBM_KEY], str(info.value), json.dumps(info.value.body), log.text)
    assert mock_api.requests[0].url == "https://iam.test/identity/token"


def test_watsonx_needs_a_key_and_sends_none_in_its_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="IBM Cloud API key") as info:
        RerankClient("https://h", dialect="watsonx")
    assert info.value.setting == "api_key"
    client = RerankClient("https://h", dialect="watsonx", api_key=IBM_KEY)
    assert "authorization" not in {name.lower() for name in client.settings.headers}
    assert client.settings.auth_url == DEFAULT_IAM_URL
    with pytest.raises(ConfigurationError, match="auth_url"):
        RerankClient("https://h", dialect="watsonx", api_key="k", auth_url="ftp://x")
    with pytest.warns(UserWarning, match="unencrypted"):
        RerankClient("https://h", dialect="watsonx", api_key="k", auth_url="http://iam.corp/t")


def test_a_bearer_header_of_the_callers_own_skips_the_exchange(
    make_client: Any, mock_api: MockAPI
) -> None:
    client = make_client(
        base_url="https://h",
        dialect="watsonx",
        model="m",
        headers={"Authorization": "Bearer mine"},
    )
    mock_api.queue(httpx.Response(200, json={"results": [{"index": 0, "score": 1.0}]}))
    client.rerank("q", ["a"])
    assert [str(r.url) for r in mock_api.requests] == [
        "https://h/ml/v1/text/rerank?version=2024-05-01"
    ]
    assert mock_api.requests[0].headers["authorization"] == "Bearer mine"


def test_adapters_never_dump_the_key() -> None:
    pytest.importorskip("langchain_core")
    from rerank_integrations.langchain import RerankCompressor

    compressor = RerankCompressor(
        base_url="https://h", api_key=IBM_KEY, dialect="watsonx", auth_url=DEFAULT_IAM_URL
    )
    dumps = [repr(compressor), str(compressor.model_dump()), compressor.model_dump_json()]
    assert_nowhere([IBM_KEY], *dumps)
    assert compressor.model_dump()["auth_url"] == DEFAULT_IAM_URL


def test_cloud_credentials_are_never_dumped(no_aws_config: None) -> None:
    pytest.importorskip("botocore")
    pytest.importorskip("llama_index.core")
    from rerank_integrations.llama_index import RerankPostprocessor

    credentials = {
        "aws_access_key_id": AWS_KEY,
        "aws_secret_access_key": AWS_SECRET,
        "aws_session_token": SESSION_TOKEN,
    }
    postprocessor = RerankPostprocessor(
        dialect="bedrock", credentials=credentials, location="us-east-1", model="m"
    )
    dumps = [
        repr(postprocessor),
        str(postprocessor.to_dict()),
        postprocessor.to_json(),
        postprocessor.model_dump_json(),
        repr(postprocessor.rerank_client),
        repr(postprocessor.rerank_client.settings),
    ]
    assert_nowhere([AWS_SECRET, SESSION_TOKEN], *dumps)
    assert postprocessor.to_dict()["location"] == "us-east-1"


# -- Google ---------------------------------------------------------------------------------


@pytest.fixture
def google_auth() -> Any:
    """google-auth, or the test is skipped."""
    return pytest.importorskip("google.auth")


@pytest.fixture
def metadata(google_auth: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[MetadataServer]:
    """A fake metadata server, where google-auth's Compute Engine credentials look."""
    from google.auth.compute_engine import _metadata

    server = MetadataServer()
    if not hasattr(_metadata, "_GCE_METADATA_HOST"):
        pytest.skip("this google-auth finds its metadata server elsewhere")
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", server.host)
    yield server
    server.close()


@pytest.fixture
def vertex() -> Iterator[ScriptedServer]:
    server = ScriptedServer("vertex", api_key="ya29.metadata-token-1")
    yield server
    server.close()


def test_compute_engine_credentials_from_a_metadata_server(
    mode: str, metadata: MetadataServer, vertex: ScriptedServer, log: pytest.LogCaptureFixture
) -> None:
    from google.auth import compute_engine

    client = RerankClient(
        vertex.base_url,
        dialect="vertex",
        credentials=compute_engine.Credentials(),
        project="test-project",
        max_retries=0,
    )
    assert [r.index for r in rerank(mode, client).results] == BEST
    assert [r.index for r in rerank(mode, client).results] == BEST
    assert metadata.tokens == ["ya29.metadata-token-1"]  # cached for both calls
    vertex.api_key = "ya29.metadata-token-2"  # the first one is refused from now on
    assert [r.index for r in rerank(mode, client).results] == BEST
    assert metadata.tokens == ["ya29.metadata-token-1", "ya29.metadata-token-2"]
    assert_nowhere(metadata.tokens, log.text, repr(client), repr(client.settings))


def test_application_default_credentials_name_the_project(
    google_auth: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[Any] = []

    class Fake:
        token, valid, quota_project_id = "t", True, None

        def refresh(self, request: Any) -> None:
            pass

        def apply(self, headers: dict[str, str]) -> None:
            headers["authorization"] = "Bearer t"

    def default(scopes: Any = None, **kwargs: Any) -> tuple[Any, str]:
        asked.append(scopes)
        return Fake(), "adc-project"

    monkeypatch.setattr(google_auth, "default", default)
    client = RerankClient(dialect="vertex")
    assert "/projects/adc-project/locations/global/" in client.endpoint
    assert asked == [["https://www.googleapis.com/auth/cloud-platform"]]
    assert "/projects/mine/" in RerankClient(dialect="vertex", project="mine").endpoint


def test_no_application_default_credentials_is_a_configuration_error(
    google_auth: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def default(**kwargs: Any) -> Any:
        raise google_auth.exceptions.DefaultCredentialsError("nothing here")

    monkeypatch.setattr(google_auth, "default", default)
    with pytest.raises(ConfigurationError, match="nothing here") as info:
        RerankClient(dialect="vertex", project="p")
    assert info.value.setting == "credentials"


def test_a_refresh_that_fails_is_an_authentication_error(
    mode: str, vertex: ScriptedServer, google_auth: Any
) -> None:
    from google.auth.exceptions import RefreshError
    from google.oauth2.credentials import Credentials

    def refuse(request: Any, scopes: Any) -> Any:
        raise RefreshError("the refresh token was revoked")

    credentials = Credentials(token=None, refresh_handler=refuse)
    client = RerankClient(vertex.base_url, dialect="vertex", credentials=credentials, project="p")
    with pytest.raises(AuthenticationError, match="revoked"):
        rerank(mode, client)
    assert vertex.received == []


def test_a_token_passed_in_needs_no_google_auth(
    mode: str, vertex: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("google.auth", "google.auth.transport", "google.auth.exceptions"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigurationError, match=r"rerank-integrations\[google\]"):
        RerankClient(dialect="vertex", project="test-project")
    client = RerankClient(
        vertex.base_url, dialect="vertex", api_key=vertex.api_key, project="test-project"
    )
    assert [r.index for r in rerank(mode, client).results] == BEST


# -- AWS SigV4 ------------------------------------------------------------------------------

AWS_KEY = "AKIDCANARYTEST"
AWS_SECRET = "aws-secret-CANARY-9b3e"
SESSION_TOKEN = "aws-session-CANARY-token"


@pytest.fixture
def no_aws_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials but the test's own: no files, no instance or container metadata."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))


@pytest.fixture
def bedrock(no_aws_config: None) -> Iterator[ScriptedServer]:
    pytest.importorskip("botocore")
    server = ScriptedServer("bedrock", aws_secrets={AWS_KEY: AWS_SECRET})
    yield server
    server.close()


def test_requests_are_signed_with_the_credentials_given(
    mode: str, bedrock: ScriptedServer, log: pytest.LogCaptureFixture
) -> None:
    credentials = {
        "aws_access_key_id": AWS_KEY,
        "aws_secret_access_key": AWS_SECRET,
        "aws_session_token": SESSION_TOKEN,
    }
    client = RerankClient(
        bedrock.base_url,
        dialect="bedrock",
        model="amazon.rerank-v1:0",
        credentials=credentials,
        location="us-west-2",
    )
    assert [r.index for r in rerank(mode, client).results] == BEST
    headers = bedrock.received[0].headers
    assert headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY}/")
    assert "/us-west-2/bedrock/aws4_request" in headers["authorization"]
    assert headers["x-amz-security-token"] == SESSION_TOKEN
    assert_nowhere([AWS_SECRET, SESSION_TOKEN], log.text, repr(client), repr(client.settings))


def test_the_usual_chain_and_region_come_from_the_environment(
    mode: str, bedrock: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    client = RerankClient(bedrock.base_url, dialect="bedrock", model="m")
    assert client.settings.location == "eu-central-1"
    assert [r.index for r in rerank(mode, client).results] == BEST
    asked = bedrock.received[0].asked
    assert asked is not None and asked.model == ("arn:aws:bedrock:eu-central-1::foundation-model/m")


def test_temporary_credentials_are_refreshed_off_the_event_loop(
    mode: str, bedrock: ScriptedServer
) -> None:
    import datetime

    from botocore.credentials import RefreshableCredentials

    threads: list[str] = []

    def fetch() -> dict[str, str]:
        threads.append(threading.current_thread().name)
        # Due for botocore's advisory refresh (15 min before expiry) on every request.
        soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=12)
        return {
            "access_key": AWS_KEY,
            "secret_key": AWS_SECRET,
            "token": SESSION_TOKEN,
            "expiry_time": soon.isoformat(),
        }

    credentials = RefreshableCredentials.create_from_metadata(
        metadata=fetch(), refresh_using=fetch, method="test"
    )
    threads.clear()
    client = RerankClient(
        bedrock.base_url,
        dialect="bedrock",
        model="m",
        credentials=credentials,
        location="us-east-1",
    )
    assert [r.index for r in rerank(mode, client).results] == BEST
    assert threads
    if mode == "async":
        assert threading.main_thread().name not in threads


def test_a_wrong_secret_is_refused_by_the_signature_check(
    mode: str, bedrock: ScriptedServer, log: pytest.LogCaptureFixture
) -> None:
    credentials = {"aws_access_key_id": AWS_KEY, "aws_secret_access_key": "wrong-CANARY"}
    client = RerankClient(
        bedrock.base_url,
        dialect="bedrock",
        model="m",
        credentials=credentials,
        location="us-east-1",
    )
    with pytest.raises(AuthenticationError, match="signature we calculated") as info:
        rerank(mode, client)
    assert info.value.status_code == 403
    assert_nowhere(["wrong-CANARY"], str(info.value), log.text)


def test_no_aws_credentials_is_a_configuration_error(no_aws_config: None) -> None:
    pytest.importorskip("botocore")
    with pytest.raises(ConfigurationError, match="no AWS credentials") as info:
        RerankClient(dialect="bedrock", location="us-east-1")
    assert info.value.setting == "credentials"


def test_the_region_comes_from_the_endpoint_or_must_be_given(no_aws_config: None) -> None:
    pytest.importorskip("botocore")
    credentials = {"aws_access_key_id": AWS_KEY, "aws_secret_access_key": AWS_SECRET}
    url = "https://bedrock-agent-runtime.ap-southeast-2.amazonaws.com"
    client = RerankClient(url, dialect="bedrock", credentials=credentials)
    assert client.settings.location == "ap-southeast-2"
    assert client.endpoint == f"{url}/rerank"
    default = RerankClient(dialect="bedrock", credentials=credentials, location="us-east-1")
    assert default.endpoint == "https://bedrock-agent-runtime.us-east-1.amazonaws.com/rerank"
    with pytest.raises(ConfigurationError, match="AWS region") as info:
        RerankClient("http://127.0.0.1:9", dialect="bedrock", credentials=credentials)
    assert info.value.setting == "location"
    with pytest.raises(ConfigurationError, match="not an API key"):
        RerankClient(url, dialect="bedrock", api_key="k", credentials=credentials)


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://bedrock-agent-runtime.us-east-1.amazonaws.com", "us-east-1"),
        ("https://bedrock-agent-runtime-fips.us-gov-west-1.amazonaws.com/rerank", "us-gov-west-1"),
        ("https://bedrock-agent-runtime.cn-north-1.amazonaws.com.cn", "cn-north-1"),
        ("https://vpce-0a1b.bedrock-agent-runtime.eu-west-3.vpce.amazonaws.com", None),
        ("http://127.0.0.1:8080", None),
    ],
)
def test_region_from_host(url: str, region: str | None) -> None:
    assert region_from_host(url) == region


def test_a_session_token_echoed_by_the_server_is_scrubbed(
    make_client: Any, mock_api: MockAPI, no_aws_config: None
) -> None:
    pytest.importorskip("botocore")
    mock_api.queue(
        lambda request: httpx.Response(
            400, json={"message": f"bad token {request.headers['x-amz-security-token']}"}
        )
    )
    credentials = {
        "aws_access_key_id": AWS_KEY,
        "aws_secret_access_key": AWS_SECRET,
        "aws_session_token": SESSION_TOKEN,
    }
    client = make_client(
        base_url="https://bedrock-agent-runtime.us-east-1.amazonaws.com",
        api_key=None,
        dialect="bedrock",
        model="m",
        credentials=credentials,
    )
    with pytest.raises(BadRequestError, match=r"bad token \*\*\*") as info:
        client.rerank("q", ["a"])
    assert SESSION_TOKEN not in json.dumps(info.value.body)


def test_without_botocore_bedrock_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("botocore", "botocore.auth", "botocore.session", "botocore.credentials"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigurationError, match=r"rerank-integrations\[aws\]"):
        RerankClient(dialect="bedrock", location="us-east-1")


# -- OCI request signatures ------------------------------------------------------------------

COMPARTMENT = "ocid1.compartment.oc1..aaaaaaaacanarytest"
OCI_PASSPHRASE = "oci-passphrase-CANARY-31c7"


@pytest.fixture
def no_oci_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No OCI configuration but the test's own: ``~`` and ``OCI_CONFIG_FILE`` point into
    ``tmp_path`` (returned), where nothing is written yet."""
    pytest.importorskip("oci")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("OCI_CONFIG_FILE", str(tmp_path / "oci-config"))
    monkeypatch.delenv("OCI_REGION", raising=False)
    return tmp_path


@pytest.fixture
def oci_server(no_oci_config: Path) -> Iterator[ScriptedServer]:
    keys = [oci_test_key(), oci_test_key("encrypted", OCI_PASSPHRASE)]
    server = ScriptedServer("oci", oci_keys={key.key_id: key.public_key for key in keys})
    yield server
    server.close()


def oci_client(server: ScriptedServer, key: OCITestKey, **kwargs: Any) -> RerankClient:
    settings = {
        "credentials": key.config,
        "model": "cohere.rerank.v3-5",
        "project": COMPARTMENT,
        "max_retries": 0,
        **kwargs,
    }
    return RerankClient(server.base_url, dialect="oci", **settings)


def oci_secrets(key: OCITestKey) -> list[str]:
    """What may never be shown: the private key (whole, and a line of it), the fingerprint
    and the key's passphrase."""
    line = key.private_pem.splitlines()[3]
    return [key.private_pem, line, key.fingerprint, OCI_PASSPHRASE]


def test_oci_requests_carry_a_valid_signature(
    mode: str, oci_server: ScriptedServer, log: pytest.LogCaptureFixture
) -> None:
    key = oci_test_key()
    client = oci_client(oci_server, key)
    assert [r.index for r in rerank(mode, client).results] == BEST
    received = oci_server.received[0]
    authorization = received.headers["authorization"]
    assert authorization.startswith("Signature ")
    assert 'version="1"' in authorization and 'algorithm="rsa-sha256"' in authorization
    assert f'keyId="{key.key_id}"' in authorization
    assert (
        'headers="date (request-target) host content-length content-type x-content-sha256"'
        in authorization
    )
    # Checked again here, with the public key: the signature covers this very body.
    keys = {key.key_id: key.public_key}
    target, headers, body = received.path, received.headers, received.raw
    assert verify_oci_signature("POST", target, headers, body, keys) is None
    assert verify_oci_signature("POST", target, headers, body + b" ", keys) is not None
    tampered = {**headers, "date": "Thu, 01 Jan 1970 00:00:00 GMT"}
    assert verify_oci_signature("POST", target, tampered, body, keys) == OCI_UNAUTHENTICATED
    other = oci_test_key("other")
    assert verify_oci_signature("POST", target, headers, body, {key.key_id: other.public_key})
    asked = json.loads(body)
    assert asked["compartmentId"] == COMPARTMENT
    assert asked["servingMode"] == {"servingType": "ON_DEMAND", "modelId": "cohere.rerank.v3-5"}
    views = [log.text, repr(client), repr(client.settings), str(client.settings)]
    assert_nowhere(oci_secrets(key), *views)


def test_oci_signs_each_retry_afresh(mode: str, oci_server: ScriptedServer) -> None:
    oci_server.queue(json_reply(503, {"code": "ServiceUnavailable", "message": "busy"}))
    client = oci_client(oci_server, oci_test_key(), max_retries=1)
    assert [r.index for r in rerank(mode, client).results] == BEST
    first, second = (r.headers for r in oci_server.received)
    assert first["x-content-sha256"] == second["x-content-sha256"]
    assert len(oci_server.received) == 2  # the second attempt was signed and taken


def test_a_key_with_a_passphrase_signs_and_a_wrong_one_is_refused(
    mode: str, oci_server: ScriptedServer, log: pytest.LogCaptureFixture
) -> None:
    key = oci_test_key("encrypted", OCI_PASSPHRASE)
    assert [r.index for r in rerank(mode, oci_client(oci_server, key)).results] == BEST
    wrong = {**key.config, "pass_phrase": "not-the-CANARY-phrase"}
    with pytest.raises(ConfigurationError, match="signing key could not be loaded") as info:
        oci_client(oci_server, key, credentials=wrong)
    assert info.value.setting == "credentials"
    texts = [str(info.value), log.text, "".join(traceback.format_exception(info.value))]
    assert_nowhere([*oci_secrets(key), "not-the-CANARY-phrase"], *texts)


def test_an_unknown_key_is_refused_with_the_server_message(
    mode: str, oci_server: ScriptedServer, log: pytest.LogCaptureFixture
) -> None:
    stranger = oci_test_key("stranger")
    with pytest.raises(AuthenticationError, match="NotAuthenticated") as info:
        rerank(mode, oci_client(oci_server, stranger))
    assert info.value.status_code == 401
    assert OCI_UNAUTHENTICATED in str(info.value)
    assert_nowhere(oci_secrets(stranger), str(info.value), log.text)


def test_the_oci_configuration_file_and_its_region_are_read(
    mode: str, oci_server: ScriptedServer, no_oci_config: Path
) -> None:
    key = oci_test_key()
    key_file = no_oci_config / "oci_api_key.pem"
    key_file.write_text(key.private_pem)
    config = {**key.config, "key_file": str(key_file), "region": "eu-frankfurt-1"}
    del config["key_content"]
    lines = "".join(f"{name}={value}\n" for name, value in config.items())
    (no_oci_config / "oci-config").write_text(f"[DEFAULT]\n{lines}")
    client = oci_client(oci_server, key, credentials=None)
    assert client.settings.location == "eu-frankfurt-1"
    assert [r.index for r in rerank(mode, client).results] == BEST
    default = RerankClient(dialect="oci", project=COMPARTMENT)
    assert default.endpoint == (
        "https://inference.generativeai.eu-frankfurt-1.oci.oraclecloud.com"
        "/20231130/actions/rerankText"
    )


def test_a_pickled_oci_client_loads_its_key_again_and_signs(
    mode: str, oci_server: ScriptedServer
) -> None:
    import pickle

    key = oci_test_key("encrypted", OCI_PASSPHRASE)
    client = pickle.loads(pickle.dumps(oci_client(oci_server, key)))
    assert [r.index for r in rerank(mode, client).results] == BEST
    assert f'keyId="{key.key_id}"' in oci_server.received[0].headers["authorization"]


def test_an_sdk_signer_is_used_as_given_and_may_block_off_the_loop(
    mode: str, oci_server: ScriptedServer
) -> None:
    import oci

    threads: list[str] = []

    class RecordingSigner(oci.signer.Signer):  # type: ignore[misc]
        """A signer that might fetch a token first, as instance principals' does."""

        def do_request_sign(self, request: Any, enforce_content_headers: bool = True) -> Any:
            threads.append(threading.current_thread().name)
            return super().do_request_sign(request, enforce_content_headers)

    key = oci_test_key()
    config = key.config
    signer = RecordingSigner(
        config["tenancy"],
        config["user"],
        config["fingerprint"],
        None,
        private_key_content=config["key_content"],
    )
    client = oci_client(oci_server, key, credentials=signer, location="us-ashburn-1")
    assert [r.index for r in rerank(mode, client).results] == BEST
    assert threads
    if mode == "async":
        assert threading.main_thread().name not in threads


def test_a_security_token_signs_and_is_never_shown(
    mode: str, oci_server: ScriptedServer, log: pytest.LogCaptureFixture
) -> None:
    import oci

    key = oci_test_key()
    token = "oci-security-token-CANARY-7a41e2"
    oci_server.oci_keys = {f"ST${token}": key.public_key}
    private_key = oci.signer.load_private_key(key.private_pem, None)
    signer = oci.auth.signers.SecurityTokenSigner(token, private_key)
    client = oci_client(oci_server, key, credentials=signer, location="us-chicago-1")
    assert [r.index for r in rerank(mode, client).results] == BEST
    assert f'keyId="ST${token}"' in oci_server.received[0].headers["authorization"]
    oci_server.queue(json_reply(400, {"code": "InvalidParameter", "message": f"bad {token}"}))
    with pytest.raises(BadRequestError, match=r"bad \*\*\*") as info:
        rerank(mode, oci_client(oci_server, key, credentials=signer, location="us-chicago-1"))
    assert_nowhere([token], str(info.value), json.dumps(info.value.body), log.text, repr(client))


def test_a_fingerprint_echoed_by_the_server_is_scrubbed(
    make_client: Any, mock_api: MockAPI, no_oci_config: Path
) -> None:
    key = oci_test_key()
    mock_api.queue(
        lambda request: httpx.Response(
            400,
            json={
                "code": "InvalidParameter",
                "message": f"bad key {request.headers['authorization']}",
            },
        )
    )
    client = make_client(
        base_url="https://inference.generativeai.us-chicago-1.oci.oraclecloud.com",
        api_key=None,
        dialect="oci",
        model="cohere.rerank.v3-5",
        project=COMPARTMENT,
        credentials=key.config,
    )
    with pytest.raises(BadRequestError, match=r"bad key") as info:
        client.rerank("q", ["a"])
    assert key.fingerprint not in str(info.value)
    assert key.fingerprint not in json.dumps(info.value.body)


def test_the_oci_settings_are_checked_when_the_client_is_built(no_oci_config: Path) -> None:
    key = oci_test_key()
    with pytest.raises(ConfigurationError, match="no OCI configuration") as info:
        RerankClient(dialect="oci", project=COMPARTMENT, location="us-chicago-1")
    assert info.value.setting == "credentials"
    with pytest.raises(ConfigurationError, match="compartment") as info:
        RerankClient(dialect="oci", credentials=key.config)
    assert info.value.setting == "project"
    with pytest.raises(ConfigurationError, match="not an API key") as info:
        RerankClient(dialect="oci", api_key="k", project=COMPARTMENT, credentials=key.config)
    assert info.value.setting == "api_key"
    no_region = {k: v for k, v in key.config.items() if k != "region"}
    with pytest.raises(ConfigurationError, match="OCI region") as info:
        RerankClient(dialect="oci", project=COMPARTMENT, credentials=no_region)
    assert info.value.setting == "location"
    url = "https://inference.generativeai.ap-osaka-1.oci.oraclecloud.com"
    from_url = RerankClient(url, dialect="oci", project=COMPARTMENT, credentials=no_region)
    assert from_url.settings.location == "ap-osaka-1"
    missing = {k: v for k, v in key.config.items() if k != "fingerprint"}
    with pytest.raises(ConfigurationError, match="fingerprint") as info:
        RerankClient(dialect="oci", project=COMPARTMENT, credentials=missing)
    assert_nowhere(oci_secrets(key), str(info.value))
    with pytest.raises(TypeError, match="oci signer or an OCI configuration"):
        RerankClient(dialect="oci", project=COMPARTMENT, credentials="DEFAULT")
    client = RerankClient(dialect="oci", project=COMPARTMENT, credentials=key.config)
    with pytest.raises(ConfigurationError, match="needs a model"):
        client.rerank("q", ["a"])


def test_a_dedicated_endpoint_is_named_by_its_ocid(mode: str, oci_server: ScriptedServer) -> None:
    endpoint = "ocid1.generativeaiendpoint.oc1.us-chicago-1.amaaaaaacanary"
    client = oci_client(oci_server, oci_test_key(), model=None)
    assert [r.index for r in rerank(mode, client, model=endpoint).results] == BEST
    mode_sent = json.loads(oci_server.received[0].raw)["servingMode"]
    assert mode_sent == {"servingType": "DEDICATED", "endpointId": endpoint}


def test_oci_credentials_are_never_dumped(no_oci_config: Path) -> None:
    pytest.importorskip("llama_index.core")
    from rerank_integrations.llama_index import RerankPostprocessor

    key = oci_test_key("encrypted", OCI_PASSPHRASE)
    postprocessor = RerankPostprocessor(
        dialect="oci", credentials=key.config, project=COMPARTMENT, model="m"
    )
    dumps = [
        repr(postprocessor),
        str(postprocessor.to_dict()),
        postprocessor.to_json(),
        postprocessor.model_dump_json(),
        repr(postprocessor.rerank_client),
        repr(postprocessor.rerank_client.settings),
        repr(postprocessor.rerank_client._engine.authorizer),
        repr(postprocessor.rerank_client.settings.credentials),
    ]
    assert_nowhere(oci_secrets(key), *dumps)
    assert postprocessor.to_dict()["project"] == COMPARTMENT


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://inference.generativeai.us-chicago-1.oci.oraclecloud.com", "us-chicago-1"),
        ("https://inference.generativeai.eu-frankfurt-2.oci.oraclecloud.eu/x", "eu-frankfurt-2"),
        ("https://inference.generativeai.uk-gov-london-1.oci.oraclegovcloud.uk", "uk-gov-london-1"),
        ("https://inference.generativeai.{location}.oci.oraclecloud.com", None),
        ("http://127.0.0.1:8080", None),
    ],
)
def test_oci_region_from_host(url: str, region: str | None) -> None:
    assert oci_region_from_host(url) == region


def test_without_the_oci_sdk_the_dialect_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("oci", "oci.signer", "oci.config", "oci.exceptions"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ConfigurationError, match=r"rerank-integrations\[oci\]") as info:
        RerankClient(dialect="oci", project=COMPARTMENT, location="us-chicago-1")
    assert info.value.setting == "credentials"


# -- optional stays optional ----------------------------------------------------------------


def test_the_core_imports_without_the_optional_packages() -> None:
    script = """
import sys
for name in ("google", "google.auth", "botocore", "oci"):
    sys.modules[name] = None
import rerank_integrations
from rerank_integrations import RerankClient
RerankClient("https://h", dialect="watsonx", api_key="k")
RerankClient("https://h", dialect="vertex", api_key="token", project="p")
try:
    RerankClient("https://h", dialect="bedrock", location="us-east-1")
except rerank_integrations.ConfigurationError as error:
    print(error)
try:
    RerankClient(dialect="oci", project="ocid1.compartment.oc1..c", location="us-chicago-1")
except rerank_integrations.ConfigurationError as error:
    print(error)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert "rerank-integrations[aws]" in done.stdout
    assert "rerank-integrations[oci]" in done.stdout
