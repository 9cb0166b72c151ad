"""Google Vertex AI ranking (Discovery Engine): its wire format (records with ids, answers
mapped back by id), and Google credentials (application default, or given) refreshed by
``google-auth`` shortly before they expire and once after a 401.

``google-auth`` is optional (extra ``google``): it is imported only when such a client is
built, and a missing one is a :class:`~rerank_integrations.ConfigurationError` naming the
extra. An access token passed as the API key needs none of it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from .._actions import Flow, Run, Send
from .._answers import ParsedRanking, ResponseShapeError, parse_ranking
from .._auth import (
    Authorizer,
    AuthSettings,
    bearer_token,
    has_authorization,
    optional_module,
    with_headers,
)
from .._constants import ENV_API_KEY
from .._exceptions import APIConnectionError, AuthenticationError, ConfigurationError
from ._base import CredentialSetup, RankingRequest, document_text, optional, scored_pairs, top_n
from ._cloud import cloud_dialect, import_sdk

__all__ = ["GOOGLE_SCOPE", "VERTEX", "GoogleAuthorizer", "google_credentials"]

#: The OAuth scope Google's ranking API needs.
GOOGLE_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


# -- the wire format --------------------------------------------------------------------------


def _body(request: RankingRequest) -> dict[str, Any]:
    # Records carry their position as their id: answers are mapped back by id.
    records = [
        {"id": str(position), "content": document_text(d)}
        for position, d in enumerate(request.documents)
    ]
    body = {**optional(model=request.model), "query": request.query, "records": records}
    return {**body, **optional(topN=top_n(request)), "ignoreRecordDetailsInResponse": True}


def _record_position(record: Mapping[str, Any], position: int) -> int:
    record_id = record.get("id")
    if isinstance(record_id, str) and record_id.isdigit():
        return int(record_id)
    raise ResponseShapeError(f"records[{position}] has id {record_id!r}, not one we sent")


def _answer(body: Any) -> ParsedRanking:
    """Vertex AI ranking: ``records[{id, score}]``, mapped back to positions by ``id``."""
    pairs = scored_pairs(body, "records", "score", index=_record_position)
    return parse_ranking(body) if pairs is None else ParsedRanking(pairs=pairs)


# -- Google credentials -----------------------------------------------------------------------

_GOOGLE_HINT = (
    "install the optional Google support (pip install 'rerank-integrations[google]') for "
    "application default credentials, pass credentials=..., or pass an access token as "
    f"api_key=... (or {ENV_API_KEY})"
)


def _import_google_auth() -> Any:
    return import_sdk(
        "google.auth",
        ("exceptions", "transport"),
        f"the vertex dialect needs Google credentials: {_GOOGLE_HINT}",
    )


def google_credentials(credentials: object) -> tuple[Any, str | None]:
    """The credentials to use and the project they name: ``credentials`` as given (any
    ``google.auth`` credentials), else the application default credentials.

    Raises:
        ConfigurationError: ``google-auth`` is not installed, or no credentials are found.
    """
    if credentials is not None:
        if not callable(getattr(credentials, "refresh", None)) or not hasattr(credentials, "apply"):
            raise TypeError(
                "credentials for the vertex dialect must be google.auth credentials, got "
                f"{type(credentials).__name__}"
            )
        project = getattr(credentials, "project_id", None) or getattr(
            credentials, "quota_project_id", None
        )
        return credentials, project if isinstance(project, str) else None
    google_auth = _import_google_auth()
    try:
        found, project = google_auth.default(scopes=[GOOGLE_SCOPE])
    except google_auth.exceptions.DefaultCredentialsError as exc:
        raise ConfigurationError(
            f"no Google application default credentials were found ({exc}); "
            "run 'gcloud auth application-default login', set GOOGLE_APPLICATION_CREDENTIALS, "
            "pass credentials=..., or pass an access token as api_key=...",
            setting="credentials",
        ) from None
    return found, project if isinstance(project, str) and project else None


def _google_request(timeout: httpx.Timeout) -> Any:
    """A ``google.auth.transport.Request`` that sends with httpx (no ``requests`` needed)."""
    transport = optional_module("google.auth.transport")
    exceptions = optional_module("google.auth.exceptions")
    response_base: Any = transport.Response
    request_base: Any = transport.Request

    class _Response(response_base):  # type: ignore[misc]
        def __init__(self, response: httpx.Response) -> None:
            self._response = response

        @property
        def status(self) -> int:
            return self._response.status_code

        @property
        def headers(self) -> Mapping[str, str]:
            return self._response.headers

        @property
        def data(self) -> bytes:
            return self._response.content

    class _Request(request_base):  # type: ignore[misc]
        def __call__(
            self,
            url: str,
            method: str = "GET",
            body: bytes | None = None,
            headers: Mapping[str, str] | None = None,
            timeout: float | None = None,
            **kwargs: Any,
        ) -> _Response:
            limit = httpx.Timeout(timeout) if timeout is not None else default_timeout
            try:
                with httpx.Client(timeout=limit, follow_redirects=False) as client:
                    answer = client.request(method, url, content=body, headers=headers)
            except httpx.TransportError as exc:
                raise exceptions.TransportError(str(exc)) from exc
            return _Response(answer)

    default_timeout = timeout
    return _Request()


class GoogleAuthorizer(Authorizer):
    """Google credentials (application default, or given): a bearer token refreshed by
    ``google-auth`` shortly before it expires, and once after a 401."""

    refreshable = True

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GoogleAuthorizer({type(self._credentials).__name__})"

    def authorize(self, send: Send) -> Flow[Send]:
        with self._lock:
            valid = bool(self._credentials.valid)
        if not valid:
            failure = yield Run(lambda: self._refresh(send.timeout))
            if isinstance(failure, BaseException):
                raise failure
        headers: dict[str, str] = {}
        with self._lock:
            self._credentials.apply(headers)  # authorization, and a quota project if set
        return with_headers(send, headers)

    def invalidate(self, sent: Send) -> None:
        used = bearer_token(sent)
        with self._lock:
            if used and self._credentials.token == used:
                self._credentials.token = None  # not valid any more: refreshed next time

    def secrets(self) -> list[str]:
        token = getattr(self._credentials, "token", None)
        return [token] if isinstance(token, str) and token else []

    def _refresh(self, timeout: httpx.Timeout) -> None:
        exceptions = optional_module("google.auth.exceptions")
        with self._lock:
            if self._credentials.valid:  # another batch refreshed it meanwhile
                return
            try:
                self._credentials.refresh(_google_request(timeout))
            except exceptions.TransportError as exc:
                raise APIConnectionError(f"no Google access token: {exc}") from None
            except exceptions.GoogleAuthError as exc:
                raise AuthenticationError(
                    f"Google credentials could not be refreshed: {exc}", status_code=401
                ) from None


# -- building a client ------------------------------------------------------------------------


def _setup(setup: CredentialSetup) -> CredentialSetup:
    """Google credentials and their project, unless a token is given; location ``global``."""
    if setup.api_key is None and not setup.user_authorization:
        credentials, project = google_credentials(setup.credentials)
        setup = replace(setup, credentials=credentials, project=setup.project or project)
    return replace(setup, location=setup.location or "global")


def _authorizer(settings: AuthSettings, user_agent: str) -> Authorizer | None:
    if settings.api_key is not None or has_authorization(settings.headers):
        return None  # an access token the caller passed, sent as a bearer token
    return GoogleAuthorizer(settings.credentials)


#: Google Vertex AI ranking (Discovery Engine): records with ids, answers by id.
VERTEX = cloud_dialect(
    "vertex",
    "/v1/projects/{project}/locations/{location}/rankingConfigs/default_ranking_config:rank",
    (
        "Google Vertex AI ranking API (Discovery Engine): records with ids, topN, answers "
        "mapped back by id; Google credentials; 200 records a request."
    ),
    base_url="https://discoveryengine.googleapis.com",
    max_documents_per_request=200,
    build_body=_body,
    parse_body=_answer,
    model_required=False,  # without one, the API ranks with its default model
    auth="google",
    reads=("credentials", "project", "location"),
    setup=_setup,
    authorizer=_authorizer,
)
