"""Credentials that are exchanged or signed for each request: IBM Cloud IAM, Google, AWS.

An :class:`Authorizer` does no I/O of its own. The batch flow calls
``yield from authorizer.authorize(send)`` before each attempt; the generator may yield
requests of its own (the IAM token exchange, a :class:`~._actions.Send`) or blocking calls
into a credential library (a Google token refresh, an AWS credential refresh, a
:class:`~._actions.Run`), and returns the request to send with its credentials in place.
When the server answers 401 the flow calls :meth:`Authorizer.invalidate` and, if the
authorizer is ``refreshable``, tries once more at once with a fresh token.

Tokens are cached by the authorizer, shared by every thread and by both paths, behind a
lock. They are never logged, and every error message and body is scrubbed of them
(:meth:`Authorizer.secrets`).

The Google and AWS authorizers need optional packages (``google-auth``: extra ``google``;
``botocore``: extra ``aws``); they are imported only when such a client is built, and a
missing one is a :class:`~rerank_integrations.ConfigurationError` naming the extra.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import SecretStr

from . import _json
from ._actions import Answer, Flow, Run, Send
from ._answers import extract_error_message
from ._constants import ENV_API_KEY, LOGGER_NAME
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    ConfigurationError,
    RateLimitError,
    RerankError,
    ResponseFormatError,
    ServerError,
)
from ._secrets import HiddenHeaders

if TYPE_CHECKING:
    from ._config import ClientSettings

__all__ = [
    "DEFAULT_IAM_URL",
    "Authorizer",
    "GoogleAuthorizer",
    "IAMAuthorizer",
    "SigV4Authorizer",
    "authorizer_for",
    "aws_credentials",
    "google_credentials",
    "region_from_host",
]

logger = logging.getLogger(LOGGER_NAME)

#: IBM Cloud's token endpoint; ``auth_url=`` points elsewhere (private clouds, tests).
DEFAULT_IAM_URL = "https://iam.cloud.ibm.com/identity/token"
IAM_GRANT_TYPE = "urn:ibm:params:oauth:grant-type:apikey"
#: A token is used for this share of its lifetime, then exchanged again (IBM's SDKs do so).
TOKEN_USE_SHARE = 0.8
#: The lifetime assumed for a token whose answer gives none (IAM tokens last an hour).
DEFAULT_TOKEN_LIFETIME = 3600.0
#: The OAuth scope Google's ranking API needs.
GOOGLE_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
#: The SigV4 signing name of Bedrock Agent Runtime (its endpoint prefix differs).
AWS_SERVICE = "bedrock"

_REGION_IN_HOST = re.compile(r"\.([a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?:\.cn)?$")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _with_headers(send: Send, extra: Mapping[str, str]) -> Send:
    headers = HiddenHeaders(
        (k, v) for k, v in send.headers.items() if k.lower() not in _lower(extra)
    )
    headers.update(extra)
    return replace(send, headers=headers)


def _lower(headers: Mapping[str, str]) -> set[str]:
    return {key.lower() for key in headers}


class Authorizer:
    """Presents credentials on each request; this base class adds none.

    Attributes:
        refreshable: whether a 401 may be cured by fetching a new token, once.
    """

    refreshable = False

    def authorize(self, send: Send) -> Flow[Send]:
        """``send`` with its credentials in place; may yield requests or blocking calls."""
        yield from ()
        return send

    def invalidate(self, sent: Send) -> None:
        """Forget the token ``sent`` carried, after the server refused it with a 401."""

    def secrets(self) -> list[str]:
        """The secrets in use now, to be scrubbed from every message and body."""
        return []


# -- IBM Cloud IAM ------------------------------------------------------------------------


class _TokenCache:
    """One bearer token and the moment it stops being used, behind a lock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._token: SecretStr | None = None
        self._use_until = 0.0

    def get(self) -> str | None:
        with self._lock:
            if self._token is None or self._clock() >= self._use_until:
                return None
            return self._token.get_secret_value()

    def peek(self) -> str | None:
        with self._lock:
            return None if self._token is None else self._token.get_secret_value()

    def put(self, token: str, lifetime: float) -> None:
        with self._lock:
            self._token = SecretStr(token)
            self._use_until = self._clock() + max(0.0, lifetime) * TOKEN_USE_SHARE

    def drop(self, token: str) -> None:
        with self._lock:  # a newer token fetched meanwhile by another batch stays
            if self._token is not None and self._token.get_secret_value() == token:
                self._token = None


def _token_lifetime(answer: Mapping[str, Any], now: float) -> float:
    """Seconds the token lives: ``expires_in``, else ``expiration`` (epoch) minus now."""
    for value, offset in ((answer.get("expires_in"), 0.0), (answer.get("expiration"), now)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value) and value - offset > 0:
            return float(value - offset)
    return DEFAULT_TOKEN_LIFETIME


def _iam_error(answer: Answer, url: str, secrets: list[str]) -> APIStatusError:
    content = answer.content
    for secret in secrets:
        content = content.replace(secret.encode(), b"***")
    try:
        body: Any = _json.loads(content) if content else ""
    except _json.JSONDecodeError:
        body = content.decode("utf-8", errors="replace")
    message = None
    code = None
    if isinstance(body, Mapping):
        found = body.get("errorMessage")
        message = found if isinstance(found, str) else extract_error_message(body)
        code = body.get("errorCode")
    elif isinstance(body, str):
        message = extract_error_message(body)
    status = answer.status_code
    text = f"IAM token request to {url} failed: HTTP {status} {answer.reason}".rstrip()
    text += f": {message}" if message else " (no message from the server)"
    if isinstance(code, str) and code:
        text += f" [{code}]"
    kind: type[APIStatusError]
    if status == 429:
        kind = RateLimitError
    elif status >= 500:
        kind = ServerError
    else:
        kind = AuthenticationError  # a key IAM refuses, whatever 4xx it answers with
    return kind(text, status_code=status, body=body)


class IAMAuthorizer(Authorizer):
    """IBM Cloud IAM: the API key is exchanged for a bearer token, cached until shortly
    before it expires (:data:`TOKEN_USE_SHARE` of its lifetime) and fetched again once
    after a 401."""

    refreshable = True

    def __init__(
        self,
        api_key: SecretStr,
        url: str = DEFAULT_IAM_URL,
        user_agent: str = "rerank-integrations",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api_key = api_key
        self.url = url
        self._user_agent = user_agent
        self._cache = _TokenCache(clock)

    def __repr__(self) -> str:
        return f"IAMAuthorizer(url={self.url!r}, api_key='***')"

    def authorize(self, send: Send) -> Flow[Send]:
        token = self._cache.get()
        if token is None:
            token = yield from self._exchange(send.timeout)
        return _with_headers(send, {"Authorization": f"Bearer {token}"})

    def invalidate(self, sent: Send) -> None:
        value = _header(sent.headers, "Authorization") or ""
        self._cache.drop(value.removeprefix("Bearer "))

    def secrets(self) -> list[str]:
        token = self._cache.peek()
        return [self._api_key.get_secret_value(), *([token] if token else [])]

    def _token_request(self, timeout: httpx.Timeout) -> Send:
        form = {"grant_type": IAM_GRANT_TYPE, "apikey": self._api_key.get_secret_value()}
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        return Send(self.url, urlencode(form).encode(), headers, timeout, label="token")

    def _exchange(self, timeout: httpx.Timeout) -> Flow[str]:
        # The key goes straight into the request (whose repr hides its body): no frame of a
        # traceback holds it as text.
        logger.debug("POST %s: IAM token request", self.url)
        outcome = yield self._token_request(timeout)
        if isinstance(outcome, RerankError):
            raise outcome
        assert isinstance(outcome, Answer)
        if not 200 <= outcome.status_code < 300:
            raise _iam_error(outcome, self.url, self.secrets())
        try:
            answer = _json.loads(outcome.content)
        except _json.JSONDecodeError:
            answer = None
        token = answer.get("access_token") if isinstance(answer, Mapping) else None
        if not isinstance(token, str) or not token:
            # The body may hold other credentials: it is not quoted.
            raise ResponseFormatError(
                f"IAM token answer from {self.url} (HTTP {outcome.status_code}) has no "
                "access_token",
                status_code=outcome.status_code,
            )
        assert isinstance(answer, Mapping)
        self._cache.put(token, _token_lifetime(answer, time.time()))
        return token


# -- Google --------------------------------------------------------------------------------

_GOOGLE_HINT = (
    "install the optional Google support (pip install 'rerank-integrations[google]') for "
    "application default credentials, pass credentials=..., or pass an access token as "
    f"api_key=... (or {ENV_API_KEY})"
)


def _module(name: str) -> Any:
    """An optional package's module, imported only when a client needs it."""
    return importlib.import_module(name)


def _import_google_auth() -> Any:
    try:
        for name in ("google.auth.exceptions", "google.auth.transport"):
            _module(name)
        return _module("google.auth")
    except ImportError:
        raise ConfigurationError(
            f"the vertex dialect needs Google credentials: {_GOOGLE_HINT}",
            setting="credentials",
        ) from None


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
    transport = _module("google.auth.transport")
    exceptions = _module("google.auth.exceptions")
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
        return _with_headers(send, headers)

    def invalidate(self, sent: Send) -> None:
        used = (_header(sent.headers, "Authorization") or "").removeprefix("Bearer ")
        with self._lock:
            if used and self._credentials.token == used:
                self._credentials.token = None  # not valid any more: refreshed next time

    def secrets(self) -> list[str]:
        token = getattr(self._credentials, "token", None)
        return [token] if isinstance(token, str) and token else []

    def _refresh(self, timeout: httpx.Timeout) -> None:
        exceptions = _module("google.auth.exceptions")
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


# -- AWS Signature Version 4 ---------------------------------------------------------------

_AWS_HINT = "install the optional AWS support: pip install 'rerank-integrations[aws]'"


def _import_botocore() -> Any:
    try:
        for name in ("botocore.auth", "botocore.awsrequest", "botocore.credentials"):
            _module(name)
        _module("botocore.session")
        return _module("botocore")
    except ImportError:
        raise ConfigurationError(
            f"the bedrock dialect signs requests with AWS SigV4: {_AWS_HINT}",
            setting="credentials",
        ) from None


def region_from_host(url: str) -> str | None:
    """The AWS region an ``*.amazonaws.com`` URL names, if any."""
    host = urlsplit(url).hostname or ""
    found = _REGION_IN_HOST.search(host)
    return found.group(1) if found else None


def aws_credentials(credentials: object, location: str | None) -> tuple[Any, str | None]:
    """The AWS credentials and region to sign with: ``credentials`` as given (botocore
    credentials, a botocore session, or a mapping of ``aws_access_key_id``,
    ``aws_secret_access_key`` and ``aws_session_token``), else the usual chain
    (environment, shared files, SSO, container and instance roles); the region is
    ``location``, else the AWS configuration's.

    Raises:
        ConfigurationError: ``botocore`` is not installed, or no credentials are found.
    """
    botocore = _import_botocore()
    session = credentials if isinstance(credentials, botocore.session.Session) else None
    if isinstance(credentials, Mapping):
        try:
            credentials = botocore.credentials.Credentials(
                credentials["aws_access_key_id"],
                credentials["aws_secret_access_key"],
                credentials.get("aws_session_token"),
            )
        except KeyError as exc:
            raise ConfigurationError(
                f"AWS credentials need {exc.args[0]}", setting="credentials"
            ) from None
    elif (
        credentials is not None
        and session is None
        and not callable(getattr(credentials, "get_frozen_credentials", None))
    ):
        raise TypeError(
            "credentials for the bedrock dialect must be botocore credentials, a "
            f"botocore session or a mapping, got {type(credentials).__name__}"
        )
    if credentials is None or session is not None:
        session = session or botocore.session.Session()
        credentials = session.get_credentials()
        if credentials is None:
            raise ConfigurationError(
                "no AWS credentials were found (environment, shared files, SSO, container "
                "or instance role); configure them or pass credentials=...",
                setting="credentials",
            )
    if not location:
        # AWS_REGION is what the current SDKs read first; botocore reads AWS_DEFAULT_REGION
        # and the config file's region.
        region = os.environ.get("AWS_REGION", "").strip()
        location = region or (session or botocore.session.Session()).get_config_variable("region")
    return credentials, location or None


class _NoCanonicalRequests(logging.Filter):
    """Drops botocore's DEBUG record of each canonical request: it holds the session token."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("CanonicalRequest")


_SIGNER_LOG_FILTER = _NoCanonicalRequests()


class SigV4Authorizer(Authorizer):
    """AWS Signature Version 4 over the final URL, headers and body bytes, with botocore's
    signer and credentials (refreshed by botocore when they are temporary)."""

    def __init__(self, credentials: Any, region: str, service: str = AWS_SERVICE) -> None:
        self._botocore = _import_botocore()
        signer_log = logging.getLogger("botocore.auth")
        if _SIGNER_LOG_FILTER not in signer_log.filters:
            signer_log.addFilter(_SIGNER_LOG_FILTER)
        self._credentials = credentials
        self.region = region
        self.service = service
        self._lock = threading.Lock()
        self._session_token: str | None = None

    def __repr__(self) -> str:
        return f"SigV4Authorizer(region={self.region!r}, service={self.service!r})"

    def authorize(self, send: Send) -> Flow[Send]:
        needs_refresh = getattr(self._credentials, "refresh_needed", None)
        if callable(needs_refresh) and needs_refresh():
            frozen = yield Run(self._credentials.get_frozen_credentials)  # may fetch
            if isinstance(frozen, BaseException):
                raise AuthenticationError(
                    f"AWS credentials could not be refreshed: {type(frozen).__name__}",
                    status_code=401,
                ) from None
        else:
            frozen = self._credentials.get_frozen_credentials()
        with self._lock:
            self._session_token = frozen.token
        request = self._botocore.awsrequest.AWSRequest(
            method="POST", url=send.url, data=send.content, headers=dict(send.headers)
        )
        self._botocore.auth.SigV4Auth(frozen, self.service, self.region).add_auth(request)
        return replace(send, headers=HiddenHeaders(request.headers.items()))

    def secrets(self) -> list[str]:
        with self._lock:
            return [self._session_token] if self._session_token else []


# -- choosing one --------------------------------------------------------------------------


def authorizer_for(settings: ClientSettings, user_agent: str) -> Authorizer | None:
    """The authorizer a client with ``settings`` needs; ``None`` when the key (or a header
    the caller set) goes in a plain header.

    Raises:
        ConfigurationError: the dialect needs a key and has none.
    """
    scheme = settings.dialect.auth
    user_authorization = any(name.lower() == "authorization" for name in settings.headers)
    if scheme == "ibm_iam":
        if user_authorization:
            return None  # a bearer token the caller manages
        if settings.api_key is None:
            raise ConfigurationError(
                f"the {settings.dialect.name} dialect needs an IBM Cloud API key to exchange "
                f"for a token: pass api_key=... or set {ENV_API_KEY}",
                setting="api_key",
            )
        return IAMAuthorizer(settings.api_key, settings.auth_url or DEFAULT_IAM_URL, user_agent)
    if scheme == "google":
        if settings.api_key is not None or user_authorization:
            return None  # an access token the caller passed, sent as a bearer token
        return GoogleAuthorizer(settings.credentials)
    if scheme == "aws_sigv4":
        assert settings.location is not None
        return SigV4Authorizer(settings.credentials, settings.location)
    return None
