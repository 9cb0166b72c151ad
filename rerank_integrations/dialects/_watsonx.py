"""IBM watsonx.ai text rerank: its wire format, and the IBM Cloud IAM exchange of the API
key for a bearer token (cached, shared by every thread and both paths, fetched again once
after a 401). One token request is in flight at a time: concurrent calls wait for it, within
their own deadlines."""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from pydantic import SecretStr

from .. import _json
from .._actions import Answer, Flow, Latch, Send, Wait
from .._answers import ParsedRanking, extract_error_message, parse_ranking, usage_parts
from .._auth import Authorizer, AuthSettings, bearer_token, has_authorization, with_headers
from .._constants import ENV_API_KEY, LOGGER_NAME
from .._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    RateLimitError,
    RerankError,
    ResponseFormatError,
    ServerError,
)
from .._secrets import Scrubber
from ._base import CredentialSetup, RankingRequest, document_text, top_n
from ._cloud import cloud_dialect

__all__ = ["DEFAULT_IAM_URL", "WATSONX", "IAMAuthorizer", "resolve_token_url"]

logger = logging.getLogger(LOGGER_NAME)

#: IBM Cloud's token endpoint; ``auth_url=`` points elsewhere (private clouds, tests).
DEFAULT_IAM_URL = "https://iam.cloud.ibm.com/identity/token"
IAM_GRANT_TYPE = "urn:ibm:params:oauth:grant-type:apikey"
#: A token is used for this share of its lifetime, then exchanged again (IBM's SDKs do so).
TOKEN_USE_SHARE = 0.8
#: The lifetime assumed for a token whose answer gives none (IAM tokens last an hour).
DEFAULT_TOKEN_LIFETIME = 3600.0


# -- the wire format --------------------------------------------------------------------------


def _body(request: RankingRequest) -> dict[str, Any]:
    # project_id or space_id come from extra_body; parameters merge one level deep.
    body: dict[str, Any] = {
        "model_id": request.model,
        "query": request.query,
        "inputs": [{"text": document_text(d)} for d in request.documents],
    }
    wanted = top_n(request)
    if wanted is not None:
        body["parameters"] = {"return_options": {"top_n": wanted}}
    return body


def _answer(body: Any) -> ParsedRanking:
    """watsonx.ai: ``results[{index, score}]``, ``model_id`` and ``input_token_count``."""
    parsed = parse_ranking(body)
    if not isinstance(body, Mapping):
        return parsed
    tokens = body.get("input_token_count")
    model = body.get("model_id")
    return replace(
        parsed,
        model=parsed.model or (model if isinstance(model, str) and model else None),
        total_tokens=parsed.total_tokens
        if not isinstance(tokens, int) or isinstance(tokens, bool)
        else tokens,
        input_tokens=parsed.input_tokens
        if not isinstance(tokens, int) or isinstance(tokens, bool)
        else tokens,
        usage=usage_parts(body, "input_token_count"),
    )


def _error(body: Any) -> str | None:
    """watsonx.ai errors: ``{errors: [{code, message, more_info}], trace, status_code}``."""
    if isinstance(body, Mapping) and isinstance(body.get("errors"), list):
        found = extract_error_message(body["errors"])
        if found:
            return found
    return extract_error_message(body)


# -- the IAM token exchange -------------------------------------------------------------------


class _Fetch:
    """A token request in flight: the latch its waiters wait on, opened when it ends, and
    the refusal it ended with, if any (not a timeout or a lost connection: those are its
    own call's, whose deadline may be shorter)."""

    __slots__ = ("error", "latch")

    def __init__(self) -> None:
        self.latch = Latch()
        self.error: RerankError | None = None


class _TokenCache:
    """One bearer token and the moment it stops being used, and the request for a new one
    in flight, behind a lock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._token: SecretStr | None = None
        self._use_until = 0.0
        self._fetch: _Fetch | None = None

    def get(self) -> str | None:
        with self._lock:
            return self._usable()

    def _usable(self) -> str | None:
        if self._token is None or self._clock() >= self._use_until:
            return None
        return self._token.get_secret_value()

    def claim(self) -> str | _Fetch | None:
        """The token to use; else the request for one already in flight, to wait for; else
        ``None``: the caller requests one, and reports the end with :meth:`fetched`."""
        with self._lock:
            token = self._usable()
            if token is not None:
                return token
            if self._fetch is not None:
                return self._fetch
            self._fetch = _Fetch()
            return None

    def fetched(self, error: RerankError | None) -> None:
        """The request in flight has ended (refused with ``error``): its waiters go on."""
        with self._lock:
            fetch, self._fetch = self._fetch, None
        if fetch is not None:
            fetch.error = error
            fetch.latch.open()

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
    # The rerank path's scrubber: the key echoed as is, JSON-escaped or form-encoded.
    scrubber = Scrubber(secrets)
    content = scrubber.bytes(answer.content)
    try:
        body: Any = scrubber.value(_json.loads(content)) if content else ""
    except _json.JSONDecodeError:
        body = scrubber.text(content.decode("utf-8", errors="replace"))
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
    after a 401.

    One token request is in flight at a time: concurrent calls (threads, tasks of any event
    loop) wait for it rather than make their own, each for at most its request's ``limit``
    (what is left of its deadline), and share its refusal. The request itself is bounded
    like the rerank request it is made for: each phase by ``timeout``, the whole by
    ``limit``."""

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
        while True:
            found = self._cache.claim()
            if isinstance(found, str):
                token = found
                break
            if found is None:  # this call requests the token; concurrent ones wait for it
                refused: RerankError | None = None
                try:
                    token = yield from self._exchange(send)
                except RerankError as error:
                    if not isinstance(error, APIConnectionError):
                        refused = error
                    raise
                finally:  # a failure, a cancellation too: the waiters go on
                    self._cache.fetched(refused)
                break
            opened = yield Wait(found.latch, send.limit)
            if not opened:
                raise APITimeoutError(
                    f"no IAM token from {self.url} within {send.limit or 0:g}s: the request "
                    "for one made by another call is still in flight"
                )
            if found.error is not None:
                raise copy.copy(found.error)  # the server's refusal, with a traceback of ours
            # Otherwise the token is cached now, or the request failed on the way (a
            # timeout of its own call's): then one of the waiters requests it again.
        return with_headers(send, {"Authorization": f"Bearer {token}"})

    def invalidate(self, sent: Send) -> None:
        self._cache.drop(bearer_token(sent))

    def secrets(self) -> list[str]:
        token = self._cache.peek()
        return [self._api_key.get_secret_value(), *([token] if token else [])]

    def _token_request(self, timeout: httpx.Timeout, limit: float | None) -> Send:
        form = {"grant_type": IAM_GRANT_TYPE, "apikey": self._api_key.get_secret_value()}
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        return Send(self.url, urlencode(form).encode(), headers, timeout, limit, label="token")

    def _exchange(self, send: Send) -> Flow[str]:
        # The key goes straight into the request (whose repr hides its body): no frame of a
        # traceback holds it as text. The request has the bounds of the one it is made for.
        logger.debug("POST %s: IAM token request", self.url)
        outcome = yield self._token_request(send.timeout, send.limit)
        if not isinstance(outcome, Answer):
            raise outcome  # the RerankError the request failed with
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


# -- building a client ------------------------------------------------------------------------


def resolve_token_url(auth_url: str) -> str:
    """``auth_url`` checked as an http(s) URL with a host.

    Raises:
        ConfigurationError: it is not one.
    """
    parts = urlsplit(auth_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"auth_url {auth_url!r} is not an http(s) URL with a host", setting="auth_url"
        )
    return auth_url.strip()


def _setup(setup: CredentialSetup) -> CredentialSetup:
    """The token endpoint: ``auth_url``, else IBM Cloud's."""
    return replace(setup, auth_url=resolve_token_url(setup.auth_url or DEFAULT_IAM_URL))


def _authorizer(settings: AuthSettings, user_agent: str) -> Authorizer | None:
    if has_authorization(settings.headers):
        return None  # a bearer token the caller manages
    if settings.api_key is None:
        raise ConfigurationError(
            "the watsonx dialect needs an IBM Cloud API key to exchange for a token: pass "
            f"api_key=... or set {ENV_API_KEY}",
            setting="api_key",
        )
    return IAMAuthorizer(settings.api_key, settings.auth_url or DEFAULT_IAM_URL, user_agent)


#: IBM watsonx.ai text rerank: an IAM token exchanged for the API key, raw scores.
WATSONX = cloud_dialect(
    "watsonx",
    "/ml/v1/text/rerank",
    (
        "IBM watsonx.ai: model_id, inputs as {text}, return_options.top_n, raw scores; "
        "the API key is exchanged for an IAM token; project_id or space_id in extra_body."
    ),
    query_params={"version": "2024-05-01"},
    score_scale="logit",
    build_body=_body,
    parse_body=_answer,
    error_message=_error,
    auth="ibm_iam",
    reads=("auth_url",),
    setup=_setup,
    authorizer=_authorizer,
)
