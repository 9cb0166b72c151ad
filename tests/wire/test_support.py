"""The test support itself: the scripted server's record, its services (the cloud ones' tokens,
signatures and pages too), its reply kinds and its shutdown."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support import (
    DROP,
    IAM_UNKNOWN_KEY,
    OCI_UNAUTHENTICATED,
    SERVICES,
    HugeBody,
    Reply,
    ScriptedServer,
    Stall,
    TrickleBody,
    TrickleHeaders,
    json_reply,
    keyword_score,
    limit_message,
    oci_test_key,
    verify_sigv4,
)

BODY = {"query": "apple pie", "documents": ["pear tart", "apple pie recipe", "bicycle"]}
ORDER = [1, 0, 2]  # no shared word: the longer text goes first


def post(server: ScriptedServer, body: Any = BODY, **kwargs: Any) -> httpx.Response:
    kwargs.setdefault("timeout", 5)
    return httpx.post(server.endpoint, json=body, **kwargs)


def raw_exchange(server: ScriptedServer, body: Any = BODY) -> tuple[bytes, list[float]]:
    """Send one POST over a plain socket and read until the server hangs up: everything it
    sent, and when each piece arrived (seconds after the request went out)."""
    payload = json.dumps(body).encode()
    request = (
        f"POST /v1/rerank HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload
    port = int(server.base_url.rsplit(":", 1)[1])
    received, times = b"", []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(request)
        while piece := sock.recv(65536):
            received += piece
            times.append(time.monotonic() - started)
    return received, times


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    stop = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < stop, "the server did not get there in time"
        time.sleep(0.01)


# -- the record and the service's own answers ----------------------------------------------


def test_every_request_is_recorded(scripted_server: ScriptedServer) -> None:
    response = post(scripted_server, headers={"X-Trace": "t-1"})

    assert response.status_code == 200
    assert [r["index"] for r in response.json()["results"]] == ORDER
    (record,) = scripted_server.received
    assert (record.method, record.path, record.body) == ("POST", "/v1/rerank", BODY)
    assert record.headers["x-trace"] == "t-1"  # names in lower case
    assert json.loads(record.raw) == BODY
    assert record.asked is not None and record.asked.documents == BODY["documents"]
    assert (record.reply, record.complete) == ("service", True)
    assert record.sent > len(response.content)
    assert scripted_server.bodies == [BODY]
    assert scripted_server.paths == ["/v1/rerank"]
    assert scripted_server.headers == [record.headers]
    wait_until(lambda: scripted_server.in_flight == 0)  # counted down after the last byte


def test_scores_follow_the_keyword_rule(scripted_server: ScriptedServer) -> None:
    results = post(scripted_server).json()["results"]

    assert [r["relevance_score"] for r in results] == sorted(
        (keyword_score(BODY["query"], d) for d in BODY["documents"]), reverse=True
    )
    assert results[0]["document"] == {"text": "apple pie recipe"}  # Jina echoes by default


def test_a_key_is_checked_only_when_set(start_server: Callable[..., ScriptedServer]) -> None:
    locked = start_server(api_key="sk-right")

    assert post(locked, headers={"Authorization": "Bearer sk-right"}).status_code == 200
    refused = post(locked, headers={"Authorization": "Bearer sk-wrong"})
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"
    assert post(start_server()).status_code == 200  # no key set: any request will do


def dialect_body(dialect: str, texts: list[str]) -> dict[str, Any]:
    """A valid request body of ``dialect`` for ``texts``."""
    if dialect == "tei":
        return {"query": "q", "texts": texts}
    if dialect == "nim":
        return {"model": "m", "query": {"text": "q"}, "passages": [{"text": t} for t in texts]}
    if dialect == "mixedbread":
        return {"query": "q", "input": texts}
    if dialect == "pinecone":
        return {"model": "m", "query": "q", "documents": [{"text": t} for t in texts]}
    if dialect == "dashscope":
        return {"model": "m", "input": {"query": "q", "documents": texts}}
    if dialect == "watsonx":
        inputs = [{"text": t} for t in texts]
        return {"model_id": "m", "query": "q", "inputs": inputs, "project_id": "p"}
    if dialect == "vertex":
        return {
            "query": "q",
            "records": [{"id": str(i), "content": t} for i, t in enumerate(texts)],
        }
    if dialect == "bedrock":
        model = {"modelArn": "arn:aws:bedrock:us-east-1::foundation-model/m"}
        return {
            "queries": [{"type": "TEXT", "textQuery": {"text": "q"}}],
            "sources": [
                {
                    "type": "INLINE",
                    "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": t}},
                }
                for t in texts
            ],
            "rerankingConfiguration": {
                "type": "BEDROCK_RERANKING_MODEL",
                "bedrockRerankingConfiguration": {"modelConfiguration": model},
            },
        }
    if dialect == "oci":
        return {
            "input": "q",
            "compartmentId": "ocid1.compartment.oc1..c",
            "servingMode": {"servingType": "ON_DEMAND", "modelId": "m"},
            "documents": texts,
        }
    if dialect == "deepinfra":
        return {"queries": ["q"] * len(texts), "documents": texts}
    if dialect == "scaleway":
        return {"model": "m", "query": "q", "documents": texts, "top_n": 1}
    return {"model": "m", "query": "q", "documents": texts}


@pytest.mark.parametrize("dialect", sorted(SERVICES))
def test_each_dialect_answers_at_its_path_up_to_its_limit(
    dialect: str, start_server: Callable[..., ScriptedServer]
) -> None:
    server = start_server(dialect, limit=2)
    headers = {"X-Pinecone-Api-Version": "2025-10"}
    params = {"version": "2024-05-01"}  # watsonx's API version

    def send(path: str, body: Any) -> httpx.Response:
        url = server.base_url + path
        return httpx.post(url, json=body, headers=headers, params=params, timeout=5)

    assert send(server.service.paths[0], dialect_body(dialect, ["a", "b"])).status_code == 200
    refused = send(server.service.paths[0], dialect_body(dialect, ["a", "b", "c"]))
    assert refused.status_code == server.service.limit_status
    assert limit_message(3, 2) in refused.text
    assert send(server.service.paths[0], {"unexpected": True}).status_code == 400
    assert send("/nowhere", dialect_body(dialect, ["a"])).status_code == 404
    assert [len(r.asked.documents) for r in server.received if r.asked] == [2, 3]
    assert SERVICES[dialect].limit > 2  # the service's own limit, unless one is given


def test_more_documents_than_the_limit_get_the_service_envelope(
    start_server: Callable[..., ScriptedServer],
) -> None:
    server = start_server("mixedbread", limit=2)

    response = post(server, {"query": "q", "input": ["a", "b", "c"]})

    assert response.status_code == 422
    assert response.json()["message"] == limit_message(3, 2)
    assert response.json()["type"] == "validation_error"


def test_an_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dialect 'nonesuch'"):
        ScriptedServer("nonesuch")


# -- the cloud services' credentials, paths and limits ---------------------------------------


def test_the_token_endpoint_is_served_apart(start_server: Callable[..., ScriptedServer]) -> None:
    server = start_server("watsonx", api_key="ibm-key-123456")
    server.queue(Reply(503))

    def token(key: str) -> httpx.Response:
        form = {"grant_type": "urn:ibm:params:oauth:grant-type:apikey", "apikey": key}
        return httpx.post(server.token_url, data=form, timeout=5)

    def rerank(bearer: str) -> httpx.Response:
        body = dialect_body("watsonx", ["a", "b"])
        url = server.endpoint + "?version=2024-05-01"
        return httpx.post(url, json=body, headers={"Authorization": bearer}, timeout=5)

    issued = token("ibm-key-123456").json()
    assert (issued["access_token"], issued["expires_in"]) == ("iam-token-1-123456", 3600)
    assert server.tokens == {"iam-token-1-123456"}
    assert (len(server.token_requests), server.received) == (1, [])  # not a rerank request
    assert rerank("Bearer iam-token-1-123456").status_code == 503  # the queued reply waited
    assert rerank("Bearer iam-token-1-123456").status_code == 200
    assert rerank("Bearer not-issued").status_code == 401
    server.revoke_tokens()
    refused = rerank("Bearer iam-token-1-123456")
    assert refused.json()["errors"][0]["code"] == "authentication_token_expired"
    unknown = token("ibm-other-key")
    assert (unknown.status_code, unknown.json()["errorMessage"]) == (400, IAM_UNKNOWN_KEY)
    assert len(server.token_requests) == 2 and server.tokens == set()
    server.reset()
    assert server.token_requests == [] and server.received == []


def test_bedrock_checks_signatures_and_pages(start_server: Callable[..., ScriptedServer]) -> None:
    pytest.importorskip("botocore")
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    server = start_server("bedrock", aws_secrets={"AKIDTEST": "secret"}, page_size=2)
    body = dialect_body("bedrock", ["apple", "pear", "apple pie"])

    def send(secret: str, payload: dict[str, Any]) -> httpx.Response:
        data = json.dumps(payload).encode()
        request = AWSRequest("POST", server.endpoint, data=data)
        request.headers["Content-Type"] = "application/json"
        SigV4Auth(Credentials("AKIDTEST", secret), "bedrock", "us-east-1").add_auth(request)
        return httpx.post(server.endpoint, content=data, headers=dict(request.headers), timeout=5)

    first = send("secret", body).json()
    assert len(first["results"]) == 2 and "nextToken" in first
    second = send("secret", {**body, "nextToken": first["nextToken"]}).json()
    assert len(second["results"]) == 1 and "nextToken" not in second
    refused = send("wrong", body)
    assert refused.status_code == 403
    assert "signature we calculated does not match" in refused.json()["message"]
    assert verify_sigv4("POST", server.endpoint, {}, b"", {}) == "no SigV4 Authorization header"


def test_oci_checks_signatures_made_by_the_sdk(start_server: Callable[..., ScriptedServer]) -> None:
    pytest.importorskip("oci")
    from oci._vendor import requests as oci_requests
    from oci.signer import Signer

    key, stranger = oci_test_key(), oci_test_key("stranger")
    server = start_server("oci", oci_keys={key.key_id: key.public_key})
    body = dialect_body("oci", ["apple", "pear", "apple pie"])

    def send(signer_key: Any, payload: dict[str, Any]) -> httpx.Response:
        config = signer_key.config
        signer = Signer(
            config["tenancy"],
            config["user"],
            config["fingerprint"],
            None,
            private_key_content=config["key_content"],
        )
        request = oci_requests.Request("POST", server.endpoint, json=payload).prepare()
        signer(request)  # the SDK's own signature, as its clients send it
        data = request.body if isinstance(request.body, bytes) else request.body.encode()
        return httpx.post(server.endpoint, content=data, headers=dict(request.headers), timeout=5)

    answer = send(key, body).json()
    texts = body["documents"]
    order = sorted(range(3), key=lambda i: (-keyword_score("q", texts[i]), i))
    assert [rank["index"] for rank in answer["documentRanks"]] == order
    refused = send(stranger, body)
    assert refused.status_code == 401
    assert refused.json() == {"code": "NotAuthenticated", "message": OCI_UNAUTHENTICATED}
    unsigned = httpx.post(server.endpoint, json=body, timeout=5)
    assert unsigned.json()["message"] == "no OCI Signature Authorization header"
    assert send(key, {**body, "servingMode": {"servingType": "X"}}).status_code == 400


def test_paths_by_prefix_and_limits_beyond_the_count(
    start_server: Callable[..., ScriptedServer],
) -> None:
    deepinfra = start_server("deepinfra")
    url = deepinfra.base_url + "/v1/inference/Org/some-reranker"
    assert httpx.post(url, json=dialect_body("deepinfra", ["a"]), timeout=5).status_code == 200
    asked = deepinfra.received[0].asked
    assert asked is not None and asked.model == "Org/some-reranker"

    zhipu = start_server("zhipu")
    long = httpx.post(zhipu.endpoint, json=dialect_body("zhipu", ["x" * 4097]), timeout=5)
    assert long.status_code == 400 and "at most 4096 characters" in long.text

    zeroentropy = start_server("zeroentropy")
    body = dialect_body("zeroentropy", ["x" * 1_000_000] * 5)
    assert httpx.post(zeroentropy.endpoint, json=body, timeout=5).status_code == 413


# -- scripted replies -------------------------------------------------------------------------


def test_queued_replies_answer_in_order_then_the_service(scripted_server: ScriptedServer) -> None:
    scripted_server.queue(Reply(503, b"busy", {"Retry-After": "2"}), json_reply(200, {"ok": 1}))

    first, second, third = (post(scripted_server) for _ in range(3))

    assert (first.status_code, first.content, first.headers["retry-after"]) == (503, b"busy", "2")
    assert second.json() == {"ok": 1}
    assert "results" in third.json()
    assert [r.reply for r in scripted_server.received] == ["Reply", "Reply", "service"]


def test_always_answers_what_no_queued_reply_answers(
    start_server: Callable[..., ScriptedServer],
) -> None:
    server = start_server(always=json_reply(200, {"foo": 1}))
    server.queue(Reply(500))

    assert [post(server).status_code for _ in range(3)] == [500, 200, 200]
    assert post(server).json() == {"foo": 1}
    assert [r.reply for r in server.received] == ["Reply", "always", "always", "always"]


def test_queue_takes_reply_kinds_only(scripted_server: ScriptedServer) -> None:
    with pytest.raises(TypeError, match="not a reply kind"):
        scripted_server.queue((500, {}, b""))  # type: ignore[arg-type]


def test_drop_closes_the_connection_without_an_answer(scripted_server: ScriptedServer) -> None:
    scripted_server.queue(DROP)

    with pytest.raises(httpx.RemoteProtocolError):
        post(scripted_server)
    assert post(scripted_server).status_code == 200
    assert len(scripted_server.bodies) == 2
    assert scripted_server.received[0].sent == 0


def test_stall_answers_late(scripted_server: ScriptedServer) -> None:
    scripted_server.queue(Stall(0.3))

    started = time.monotonic()
    response = post(scripted_server)

    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200 and "results" in response.json()


def test_delay_and_requests_in_flight(scripted_server: ScriptedServer) -> None:
    scripted_server.delay = 1.0  # long enough to overlap on a busy machine
    threads = [threading.Thread(target=post, args=(scripted_server,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    wait_until(lambda: scripted_server.in_flight == 3)
    for thread in threads:
        thread.join(timeout=5)
    wait_until(lambda: scripted_server.in_flight == 0)  # the server counts down after it wrote

    assert (scripted_server.in_flight, scripted_server.max_in_flight) == (0, 3)
    scripted_server.reset()
    assert (scripted_server.received, scripted_server.max_in_flight) == ([], 0)


# -- slow and oversized answers (what a whole-attempt bound has to cope with) ----------------


def test_trickled_headers_stop_by_themselves(scripted_server: ScriptedServer) -> None:
    scripted_server.queue(TrickleHeaders(interval=0.05, limit=0.5))

    received, times = raw_exchange(scripted_server)

    assert 2 <= len(received) <= 11  # a byte each 0.05 s for 0.5 s, never the whole answer
    assert b"HTTP/1.1 200 OK\r\n".startswith(received[:17])
    assert 0.45 <= times[-1] < 3.0
    (record,) = scripted_server.received
    assert (record.reply, record.complete, record.sent) == ("TrickleHeaders", False, len(received))


def test_trickled_body_stops_by_itself(scripted_server: ScriptedServer) -> None:
    scripted_server.queue(TrickleBody(interval=0.05, limit=0.5))

    received, times = raw_exchange(scripted_server)

    head, _, body = received.partition(b"\r\n\r\n")
    headers = dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
    length = int(headers[b"Content-Length"])
    assert 1 <= len(body) <= 11 < length  # the headers promised far more than ever came
    assert 0.45 <= times[-1] < 3.0
    assert scripted_server.received[0].complete is False


@pytest.mark.parametrize(
    "reply",
    [TrickleHeaders(interval=0.05, limit=0.8), TrickleBody(interval=0.05, limit=0.8)],
    ids=["headers", "body"],
)
def test_a_trickle_outlasts_a_read_timeout(
    scripted_server: ScriptedServer, reply: TrickleHeaders | TrickleBody
) -> None:
    scripted_server.queue(reply)

    started = time.monotonic()
    # Every read gets a byte well within 0.3 s: no read times out, the call just goes on.
    with pytest.raises(httpx.RemoteProtocolError):
        post(scripted_server, timeout=0.3)

    assert time.monotonic() - started >= 0.75


def test_a_quick_trickle_is_a_whole_answer(scripted_server: ScriptedServer) -> None:
    scripted_server.queue(TrickleBody(interval=0.0, limit=5.0))

    assert [r["index"] for r in post(scripted_server).json()["results"]] == ORDER
    assert scripted_server.received[0].complete is True


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_body_is_valid_json_of_the_size_asked(
    scripted_server: ScriptedServer, chunked: bool
) -> None:
    size = 3 * 1024 * 1024 + 17
    scripted_server.queue(HugeBody(size, chunked=chunked))

    response = post(scripted_server)

    assert len(response.content) == size
    assert response.headers.get("content-length") == (None if chunked else str(size))
    assert [r["index"] for r in response.json()["results"]] == ORDER
    assert scripted_server.received[0].complete is True


def test_a_huge_body_ends_when_the_client_stops_reading(scripted_server: ScriptedServer) -> None:
    size = 1024 * 1024 * 1024  # far more than the socket buffers hold
    scripted_server.queue(HugeBody(size))

    with httpx.stream("POST", scripted_server.endpoint, json=BODY, timeout=5) as response:
        assert response.headers["content-length"] == str(size)
        next(response.iter_bytes())
    wait_until(lambda: scripted_server.in_flight == 0)

    record = scripted_server.received[0]
    assert record.complete is False
    assert record.sent < size // 4
    assert post(scripted_server).status_code == 200  # and it serves the next request


# -- shutting down ----------------------------------------------------------------------------


def test_close_ends_a_stall_and_frees_the_port() -> None:
    server = ScriptedServer()
    server.queue(Stall(60.0))
    failures: list[BaseException] = []

    def stalled_call() -> None:
        try:
            post(server, timeout=30)
        except httpx.HTTPError as exc:
            failures.append(exc)

    caller = threading.Thread(target=stalled_call)
    caller.start()
    wait_until(lambda: server.in_flight == 1)
    started = time.monotonic()
    server.close()
    caller.join(timeout=5)

    assert time.monotonic() - started < 2.0
    assert not caller.is_alive() and len(failures) == 1
    with pytest.raises(httpx.ConnectError):
        post(server, timeout=1)
    server.close()  # closing twice is harmless


def test_close_hangs_up_idle_keep_alive_connections() -> None:
    with ScriptedServer() as server, httpx.Client(timeout=5) as client:
        assert client.post(server.endpoint, json=BODY).status_code == 200
        started = time.monotonic()
        server.close()
        assert time.monotonic() - started < 2.0
        assert server._connections == {}
