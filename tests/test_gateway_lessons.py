"""What real servers taught (LiteLLM, Infinity, Xinference), each checked on both paths
against a loopback server answering as they do."""

from __future__ import annotations

import http
import json
import logging
from typing import Any

import pytest
from support import Reply, ScriptedServer, json_reply, run_mode

from rerank_integrations import (
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    GatewayTimeoutError,
    RateLimitError,
    RequestTimeoutError,
    RerankClient,
    RetryPolicy,
    ServerError,
)
from rerank_integrations._answers import extract_error_message
from rerank_integrations.cli import advice_for
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor


def call(mode: str, client: RerankClient, *args: Any, **kwargs: Any) -> Any:
    return run_mode(
        mode, lambda: client.rerank(*args, **kwargs), lambda: client.arerank(*args, **kwargs)
    )


def nested(upstream: str, group: str = "bm25") -> dict[str, Any]:
    """LiteLLM's envelope around an upstream's body."""
    message = f"{upstream}. Received Model Group={group}\nAvailable Model Group Fallbacks=None"
    return {"error": {"message": message, "type": "None", "param": "None", "code": "413"}}


# -- LiteLLM nests the upstream error ---------------------------------------------------------

UPSTREAM_JSON = json.dumps({"error": {"message": "Too many documents: got 12, the limit is 8."}})


@pytest.mark.parametrize(
    ("upstream", "own"),
    [
        (UPSTREAM_JSON, "Too many documents: got 12, the limit is 8."),
        ("400: {'error': '/rerank: Invalid model name passed in model=x'}", "Invalid model name"),
        ("<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", "502 Bad"),
        ("upstream said no", "upstream said no"),
    ],
)
def test_the_upstreams_own_message_is_unwrapped(upstream: str, own: str) -> None:
    message = extract_error_message(nested(upstream))
    assert message is not None
    assert own in message
    assert message.endswith("(model group bm25)")
    assert "Received Model Group" not in message
    assert '{"error"' not in message


def test_an_unwrapped_message_heads_the_error(mode: str, scripted_server: ScriptedServer) -> None:
    scripted_server.queue(json_reply(413, nested(UPSTREAM_JSON)))
    client = RerankClient(scripted_server.base_url, max_retries=0)
    with pytest.raises(BadRequestError) as caught:
        call(mode, client, "q", ["a"])
    head = str(caught.value).split(" | body: ")[0]
    # The scripted server's status line carries http.HTTPStatus's phrase: "Request Entity Too
    # Large" up to Python 3.12, "Content Too Large" from 3.13. The error quotes what was sent.
    sent = http.HTTPStatus(413).phrase
    assert head.startswith(f"HTTP 413 {sent}: Too many documents: got 12")
    assert scripted_server.base_url in head  # every error names the URL
    client.close()


# -- a gateway timeout is a timeout ----------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kinds"),
    [(408, (RequestTimeoutError, APIStatusError)), (504, (GatewayTimeoutError, ServerError))],
)
def test_408_and_504_are_caught_as_timeouts(
    mode: str, scripted_server: ScriptedServer, status: int, kinds: tuple[type, ...]
) -> None:
    body = {"error": {"message": "litellm.Timeout: Connection timed out."}}
    scripted_server.queue(json_reply(status, body), json_reply(status, body))
    client = RerankClient(scripted_server.base_url, max_retries=1)
    with pytest.raises(APITimeoutError) as caught:
        call(mode, client, "q", ["a"])
    assert isinstance(caught.value, kinds)
    assert caught.value.status_code == status  # type: ignore[attr-defined]
    assert len(scripted_server.received) == 2  # retried like any timeout
    client.close()


# -- a wait stated in the message (read as tests/test_refusals.py says) ---------------------


def test_a_stated_wait_is_honoured_when_no_header_gives_one(
    mode: str, scripted_server: ScriptedServer, sleeps: list[float]
) -> None:
    limited = {"error": {"message": "Rate limit exceeded. Please retry after 5 seconds."}}
    scripted_server.queue(json_reply(429, limited))
    client = RerankClient(scripted_server.base_url)
    assert call(mode, client, "apple", ["pear", "apple"]).results[0].index == 1
    assert sleeps == [5.0]
    client.close()


def test_a_stated_wait_is_bounded_by_the_cap_and_yields_to_a_header(
    mode: str, scripted_server: ScriptedServer, sleeps: list[float]
) -> None:
    long_wait = {"error": {"message": "Please try again in 600 seconds"}}
    scripted_server.queue(
        json_reply(429, long_wait), json_reply(429, long_wait, {"Retry-After": "2"})
    )
    client = RerankClient(scripted_server.base_url, retry=RetryPolicy(max_retry_after=30))
    call(mode, client, "apple", ["pear", "apple"])
    assert sleeps == [30.0, 2.0]
    client.close()


def test_a_stated_wait_does_not_make_a_404_retryable(
    mode: str, scripted_server: ScriptedServer
) -> None:
    cached = {"detail": "Model not found in the model list (cached, retry after 10.0s)"}
    scripted_server.queue(json_reply(404, cached))
    client = RerankClient(scripted_server.base_url, model="nope")
    with pytest.raises(BadRequestError, match="Model not found"):
        call(mode, client, "q", ["a"])
    assert len(scripted_server.received) == 1  # neither retried nor sent to another path
    client.close()


# -- the other common path -------------------------------------------------------------------


@pytest.mark.parametrize("base", ["", "/v1"])
def test_a_derived_path_that_404s_tries_the_other_once_and_remembers(
    mode: str, start_server: Any, base: str
) -> None:
    server = start_server(routes=("/rerank",))  # as Infinity serves
    client = RerankClient(server.base_url + base)
    assert call(mode, client, "apple", ["pear", "apple"]).results[0].index == 1
    assert call(mode, client, "apple", ["pear", "apple"]).results[0].index == 1
    assert server.paths == ["/v1/rerank", "/rerank", "/rerank"]
    assert client.endpoint.endswith("/v1/rerank")  # the setting stays as it was resolved
    client.close()


def test_a_full_endpoint_given_is_never_changed(mode: str, start_server: Any) -> None:
    server = start_server(routes=("/rerank",))
    client = RerankClient(server.base_url + "/v1/rerank")
    with pytest.raises(BadRequestError) as caught:
        call(mode, client, "q", ["a"])
    assert f"{server.base_url}/v1/rerank" in str(caught.value)  # the 404 names the URL
    assert server.paths == ["/v1/rerank"]
    client.close()


def test_when_neither_path_answers_the_first_404_is_raised(mode: str, start_server: Any) -> None:
    server = start_server(routes=("/api/rerank",))
    client = RerankClient(server.base_url)
    with pytest.raises(BadRequestError, match="/v1/rerank"):
        call(mode, client, "q", ["a"])
    with pytest.raises(BadRequestError):
        call(mode, client, "q", ["a"])
    assert server.paths == ["/v1/rerank", "/rerank", "/v1/rerank"]  # the other tried once
    client.close()


# -- no model, no rerank ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        json_reply(500, {"error": {"message": "'model'"}}),
        Reply(500, b"1 validation error for RerankRequest\nmodel\n  field required"),
    ],
)
def test_a_5xx_for_a_missing_model_is_not_retried(
    mode: str, scripted_server: ScriptedServer, answer: Reply
) -> None:
    scripted_server.queue(answer, answer, answer)
    client = RerankClient(scripted_server.base_url)
    with pytest.raises(ServerError) as caught:
        call(mode, client, "q", ["a"])
    assert "pass model=... or set RERANK_MODEL" in str(caught.value)
    assert len(scripted_server.received) == 1
    assert "--model NAME or set RERANK_MODEL" in advice_for(caught.value)
    client.close()


# -- extra body fields from the adapters ------------------------------------------------------


@pytest.mark.parametrize("adapter_class", [RerankCompressor, RerankPostprocessor])
def test_adapters_send_vendor_fields(
    mode: str, scripted_server: ScriptedServer, adapter_class: Any
) -> None:
    adapter = adapter_class(
        base_url=scripted_server.base_url, extra_body={"raw_scores": False, "return_len": True}
    )
    scripted_server.queue(scored(0.1, 0.9))  # this server's generic format has no such fields
    run_mode(
        mode,
        lambda: adapter.rank("apple", ["pear", "apple"]),
        lambda: adapter.arank("apple", ["pear", "apple"]),
    )
    body = scripted_server.bodies[0]
    assert (body["raw_scores"], body["return_len"]) == (False, True)
    adapter.close()


# -- scores off their scale ------------------------------------------------------------------


def scored(*scores: float) -> Reply:
    results = [{"index": i, "relevance_score": score} for i, score in enumerate(scores)]
    return json_reply(200, {"results": results})


@pytest.mark.parametrize(
    ("settings", "answer", "wanted"),
    [
        ({}, scored(2.5, -1.2, 0.3), "not 0..1 probabilities"),
        ({"score_transform": "sigmoid"}, scored(0.9, 0.4, 0.1), "squash them twice"),
        ({"dialect": "nim", "model": "m"}, None, None),
        ({}, scored(0.9, 0.4, 0.1), None),
    ],
)
def test_scores_off_their_scale_warn_once_per_client(
    mode: str,
    start_server: Any,
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any],
    answer: Reply | None,
    wanted: str | None,
) -> None:
    server = start_server(settings.get("dialect", "generic"))
    client = RerankClient(server.base_url, **settings)
    caplog.set_level(logging.WARNING, "rerank_integrations")
    for _ in range(3):
        if answer is not None:
            server.queue(answer)
        call(mode, client, "apple", ["a", "b", "c"])
    warnings = [r.getMessage() for r in caplog.records if "rerank scores from" in r.getMessage()]
    if wanted is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert wanted in warnings[0]
    client.close()


# -- a wrong key without a database ----------------------------------------------------------


def test_a_gateway_without_a_key_database_refusing_the_key_gets_key_advice(
    mode: str, scripted_server: ScriptedServer
) -> None:
    scripted_server.queue(
        json_reply(400, {"error": {"message": "No connected db.", "code": "400"}})
    )
    client = RerankClient(scripted_server.base_url, api_key="sk-wrong")
    with pytest.raises(BadRequestError) as caught:
        call(mode, client, "q", ["a"])
    assert "the gateway refused the key" in advice_for(caught.value)
    client.close()


# -- usage in another envelope ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "tokens"),
    [
        ({"meta": None}, None),
        ({"meta": {"billed_units": {"total_tokens": 12}, "tokens": {}}}, 12),
        ({"meta": {"tokens": {"input_tokens": 7, "output_tokens": 0}}}, 7),
    ],
)
def test_usage_from_every_envelope(
    mode: str, scripted_server: ScriptedServer, extra: dict[str, Any], tokens: int | None
) -> None:
    results = [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}]
    scripted_server.queue(json_reply(200, {"results": results, "id": None, **extra}))
    client = RerankClient(scripted_server.base_url)
    response = call(mode, client, "apple", ["pear", "apple"])
    assert (None if response.usage is None else response.usage.total_tokens) == tokens
    client.close()


def test_check_notes_when_no_model_is_set(
    capsys: pytest.CaptureFixture[str], scripted_server: ScriptedServer
) -> None:
    from rerank_integrations.cli import main

    assert main(["check", "--base-url", scripted_server.base_url]) == 0
    assert "no model is set" in capsys.readouterr().out
    assert main(["check", "--base-url", scripted_server.base_url, "--model", "m"]) == 0
    assert "no model is set" not in capsys.readouterr().out


def test_rate_limit_errors_still_retry_by_backoff(
    mode: str, scripted_server: ScriptedServer, sleeps: list[float]
) -> None:
    scripted_server.queue(json_reply(429, {"error": "slow"}))
    client = RerankClient(scripted_server.base_url)
    call(mode, client, "apple", ["pear", "apple"])
    assert len(sleeps) == 1
    assert 0.375 <= sleeps[0] <= 0.5
    assert RateLimitError  # the class for an exhausted 429
    client.close()
