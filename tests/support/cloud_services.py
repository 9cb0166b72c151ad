"""The cloud services, whose credentials are more than an API key in a header:

- ``watsonx``: the server also serves IBM Cloud IAM's token endpoint (``/identity/token``).
  It exchanges the server's ``api_key`` for an access token, adds that to ``server.tokens``
  and takes only those tokens on the rerank route; another key is refused with
  :data:`IAM_UNKNOWN_KEY`. ``server.revoke_tokens()`` refuses every token issued so far.
- ``vertex``: the server's ``api_key`` is the one access token it takes.
- ``bedrock``: every request's AWS SigV4 signature is computed again with the secret key of
  its access key in ``server.aws_secrets`` (:func:`~support.cloud.verify_sigv4`); an answer
  holds ``server.page_size`` results, the rest behind a ``nextToken``.
- ``oci``: every request's OCI signature is checked with the public key of its ``keyId`` in
  ``server.oci_keys`` (:func:`~support.cloud.verify_oci_signature`); the body must name a
  compartment and a serving mode.

With no credentials set (no ``api_key``, no ``aws_secrets``, no ``oci_keys``) any request
passes, as for the other services.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from .cloud import verify_oci_signature, verify_sigv4
from .wire import (
    Asked,
    Reject,
    Service,
    TokenEndpoint,
    bearer,
    error_message_only,
    fields,
    flag,
    need,
    optional_count,
    optional_model,
    ranked,
    strings,
    text_objects,
    token_count,
)

if TYPE_CHECKING:
    from .server import Received, ScriptedServer

#: The words IAM refuses a key it does not know with.
IAM_UNKNOWN_KEY = "Provided API key could not be found."
IAM_TOKEN_PATH = "/identity/token"
VERTEX_PATH = (
    "/v1/projects/test-project/locations/global/rankingConfigs/default_ranking_config:rank"
)

# -- watsonx and IBM Cloud IAM -------------------------------------------------------------


def _iam_token(request: Received, server: ScriptedServer) -> tuple[int, bytes]:
    """IAM's answer to a token request: an access token for the server's key."""
    form = parse_qs(request.raw.decode())
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return 400, json.dumps(
            {"errorCode": "BXNIM0109E", "errorMessage": "Form expected"}
        ).encode()
    key = server.api_key
    if form.get("grant_type") != ["urn:ibm:params:oauth:grant-type:apikey"] or (
        key is not None and form.get("apikey") != [key]
    ):
        error = {"errorCode": "BXNIM0415E", "errorMessage": IAM_UNKNOWN_KEY, "context": {}}
        return 400, json.dumps(error).encode()
    token = f"iam-token-{len(server.token_requests)}-{(key or '')[-6:]}"
    server.tokens.add(token)
    answer = {
        "access_token": token,
        "refresh_token": "not_supported",
        "token_type": "Bearer",
        "expires_in": server.token_lifetime,
        "expiration": 1764579600 + server.token_lifetime,
        "scope": "ibm openid",
    }
    return 200, json.dumps(answer).encode()


def _watsonx_auth(request: Received, server: ScriptedServer) -> None:
    if "version" not in parse_qs(urlsplit(request.path).query):
        raise Reject(400, "Missing query parameter: version")
    if server.api_key is None:
        return
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    if token not in server.tokens:
        raise Reject(401, "Failed to authenticate the request due to an expired token", "auth")


def _read_watsonx(body: Any, path: str) -> Asked:
    body = fields(body, {"model_id", "query", "inputs"}, {"parameters", "project_id", "space_id"})
    need(
        "project_id" in body or "space_id" in body,
        "Either 'space_id' or 'project_id' has to be provided",
    )
    parameters = fields(
        body.get("parameters", {}), set(), {"return_options", "truncate_input_tokens"}
    )
    options = fields(parameters.get("return_options", {}), set(), {"top_n", "inputs", "query"})
    model = body["model_id"]
    need(isinstance(model, str) and bool(model), "'model_id' is required")
    return Asked(
        body["query"],
        text_objects(body["inputs"], "inputs"),
        optional_count(options, "top_n"),
        model,
        flag(options, "inputs"),
    )


def _answer_watsonx(asked: Asked) -> Any:
    return {
        "model_id": asked.model,
        "results": [{"index": i, "score": s} for i, s in ranked("watsonx", asked)],
        "created_at": "2026-12-01T08:00:00.000Z",
        "input_token_count": token_count(asked),
    }


def _error_watsonx(reject: Reject) -> bytes:
    codes = {"auth": "authentication_token_expired", "not_found": "not_found"}
    error = {"code": codes.get(reject.kind, "invalid_input_argument"), "message": reject.message}
    return json.dumps({"errors": [error], "trace": "0a1b2c", "status_code": reject.status}).encode()


# -- Vertex AI ranking ----------------------------------------------------------------------


def _read_vertex(body: Any, path: str) -> Asked:
    body = fields(
        body, {"query", "records"}, {"model", "topN", "ignoreRecordDetailsInResponse", "userLabels"}
    )
    records = body["records"]
    need(isinstance(records, list) and len(records) > 0, "'records' must be a non-empty list")
    ids = [record.get("id") if isinstance(record, dict) else None for record in records]
    need(all(isinstance(i, str) and i for i in ids), "every record needs a string id")
    need(len(set(ids)) == len(ids), "record ids must be unique")
    need(all(isinstance(r.get("content"), str) for r in records), "records need content")
    return Asked(
        body["query"],
        [r["content"] for r in records],
        optional_count(body, "topN"),
        optional_model(body),
        body.get("ignoreRecordDetailsInResponse") is not True,
        ids=[str(i) for i in ids],
    )


def _answer_vertex(asked: Asked) -> Any:
    ids = asked.ids or []
    return {"records": [{"id": ids[i], "score": s} for i, s in ranked("vertex", asked)]}


def _error_google(reject: Reject) -> bytes:
    statuses = {"auth": "UNAUTHENTICATED", "not_found": "NOT_FOUND"}
    status = statuses.get(reject.kind, "INVALID_ARGUMENT")
    return json.dumps(
        {"error": {"code": reject.status, "message": reject.message, "status": status}}
    ).encode()


# -- Bedrock --------------------------------------------------------------------------------


def _sigv4_auth(request: Received, server: ScriptedServer) -> None:
    if server.aws_secrets is None:
        return
    url = f"http://{request.headers.get('host', '')}{request.path}"
    wrong = verify_sigv4(request.method, url, request.headers, request.raw, server.aws_secrets)
    if wrong:
        raise Reject(403, wrong, "auth")


def _read_bedrock(body: Any, path: str) -> Asked:
    body = fields(body, {"queries", "sources", "rerankingConfiguration"}, {"nextToken"})
    queries = body["queries"]
    need(isinstance(queries, list) and len(queries) == 1, "queries must hold exactly 1 item")
    query = queries[0]
    need(
        isinstance(query, dict)
        and query.get("type") == "TEXT"
        and isinstance(query.get("textQuery", {}).get("text"), str),
        "a TEXT query",
    )
    sources = body["sources"]
    need(isinstance(sources, list) and len(sources) > 0, "sources must be a non-empty list")
    texts = []
    for source in sources:
        inline = source.get("inlineDocumentSource", {}) if isinstance(source, dict) else {}
        need(
            isinstance(source, dict)
            and source.get("type") == "INLINE"
            and inline.get("type") == "TEXT",
            "INLINE TEXT sources",
        )
        texts.append(inline.get("textDocument", {}).get("text"))
    need(all(isinstance(text, str) for text in texts), "sources need text")
    configuration = body["rerankingConfiguration"]
    need(configuration.get("type") == "BEDROCK_RERANKING_MODEL", "type BEDROCK_RERANKING_MODEL")
    bedrock = configuration.get("bedrockRerankingConfiguration", {})
    arn = bedrock.get("modelConfiguration", {}).get("modelArn")
    need(isinstance(arn, str) and arn.startswith("arn:aws:bedrock:"), "modelArn must be an ARN")
    count = optional_count(bedrock, "numberOfResults")
    return Asked(query["textQuery"]["text"], texts, count, arn, page_token=body.get("nextToken"))


def _answer_bedrock(asked: Asked) -> Any:
    """One page of the ranking: ``page_size`` results from where the page token points (the
    token is the offset, base64-encoded), and a ``nextToken`` while more are left."""
    results = ranked("bedrock", asked)
    start = int(base64.b64decode(asked.page_token)) if asked.page_token else 0
    size = asked.page_size or len(results)
    page = results[start : start + size]
    answer: dict[str, Any] = {"results": [{"index": i, "relevanceScore": s} for i, s in page]}
    if start + size < len(results):
        answer["nextToken"] = base64.b64encode(str(start + size).encode()).decode()
    return answer


# -- OCI Generative AI ------------------------------------------------------------------------

OCI_PATH = "/20231130/actions/rerankText"


def _oci_auth(request: Received, server: ScriptedServer) -> None:
    if server.oci_keys is None:
        return
    wrong = verify_oci_signature(
        request.method, request.path, request.headers, request.raw, server.oci_keys
    )
    if wrong:
        raise Reject(401, wrong, "auth")


def _read_oci(body: Any, path: str) -> Asked:
    body = fields(
        body,
        {"input", "compartmentId", "servingMode", "documents"},
        {"topN", "isEcho", "maxChunksPerDocument", "maxTokensPerDocument"},
    )
    need(isinstance(body["input"], str), "'input' must be a string")
    compartment = body["compartmentId"]
    need(isinstance(compartment, str) and compartment.startswith("ocid1."), "compartmentId")
    mode = body["servingMode"]
    need(isinstance(mode, dict), "'servingMode' must be an object")
    if mode.get("servingType") == "ON_DEMAND":
        model = mode.get("modelId")
    else:
        need(mode.get("servingType") == "DEDICATED", "servingType: ON_DEMAND or DEDICATED")
        model = mode.get("endpointId")
    need(isinstance(model, str) and bool(model), "the serving mode names no model")
    return Asked(
        body["input"],
        strings(body["documents"], "documents"),
        optional_count(body, "topN"),
        model,
        flag(body, "isEcho"),
    )


def _answer_oci(asked: Asked) -> Any:
    ranks = [{"index": i, "relevanceScore": s} for i, s in ranked("oci", asked)]
    if asked.wants_documents:
        for rank in ranks:
            rank["document"] = {"text": asked.documents[rank["index"]]}
    return {
        "id": "5f0c2a1e-0000-4000-8000-000000000001",
        "modelId": asked.model,
        "modelVersion": "3.5",
        "documentRanks": ranks,
    }


def _error_oci(reject: Reject) -> bytes:
    codes = {"auth": "NotAuthenticated", "not_found": "NotAuthorizedOrNotFound"}
    code = codes.get(reject.kind, "InvalidParameter")
    return json.dumps({"code": code, "message": reject.message}).encode()


# -- the table ----------------------------------------------------------------------------

CLOUD_SERVICES: dict[str, Service] = {
    "watsonx": Service(
        ("/ml/v1/text/rerank",),
        1000,
        _read_watsonx,
        _answer_watsonx,
        _error_watsonx,
        _watsonx_auth,
        token_endpoint=TokenEndpoint(IAM_TOKEN_PATH, _iam_token),
    ),
    "vertex": Service((VERTEX_PATH,), 200, _read_vertex, _answer_vertex, _error_google, bearer),
    "bedrock": Service(
        ("/rerank",),
        1000,
        _read_bedrock,
        _answer_bedrock,
        error_message_only,
        _sigv4_auth,
        max_characters=32000,
    ),
    "oci": Service((OCI_PATH,), 1000, _read_oci, _answer_oci, _error_oci, _oci_auth),
}
