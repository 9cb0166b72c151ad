"""Settings: arguments first, then the environment, then defaults, resolved and checked once.

The environment is read through the settings' declaration (:mod:`._settings`), here only.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import ipaddress
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from ._auth import has_authorization
from ._budget import LONG_DOCUMENT_MODES, counter_for
from ._cache import check_cache
from ._checks import check_extra_body, check_instruction, check_score_transform
from ._constants import DEFAULT_CHUNK_OVERLAP, DEFAULT_CONNECT_TIMEOUT, ENV_BASE_URL
from ._exceptions import ConfigurationError
from ._plan import CHUNK_AGGREGATES
from ._ratelimit import limiter_for
from ._retry import RetryPolicy
from ._secrets import HiddenHeaders, as_secret, is_secret_header
from ._settings import env_name, environment
from ._text import display_url
from .dialects import CredentialSetup, Dialect, get_dialect, is_version_segment
from .dialects._instructions import check_instruction_template, refusal
from .dialects._registry import check_cloud_settings, split_provider

ENV_DIALECT = env_name("dialect")
ENV_LONG_DOCUMENTS = env_name("long_documents")

TimeoutTypes = float | int | httpx.Timeout | None


@dataclass(frozen=True)
class ClientSettings:
    """Everything a client needs to send requests, resolved and checked once."""

    endpoint: str
    #: The other common rerank path (``/rerank`` for ``/v1/rerank`` and back), tried once on
    #: a 404 when the endpoint was derived from a base URL; ``None`` for a full endpoint given.
    alternate_endpoint: str | None
    api_key: SecretStr | None
    model: str | None
    dialect: Dialect
    timeout: httpx.Timeout
    retry: RetryPolicy
    max_documents_per_request: int
    max_concurrency: int
    deadline: float | None
    score_transform: str | None
    extra_body: Mapping[str, Any]
    max_response_bytes: int
    #: Every request's headers; those that carry credentials are ``SecretStr``.
    headers: Mapping[str, str | SecretStr] = field(repr=False)
    auth_url: str | None = None
    credentials: Any = field(default=None, repr=False)  # cloud credentials: never shown
    project: str | None = None
    location: str | None = None
    max_request_bytes: int | None = None
    max_tokens_per_request: int | None = None
    max_tokens_per_document: int | None = None
    max_characters_per_document: int | None = None
    long_documents: str = "server"
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP
    chunk_aggregate: str = "max"
    tokenizer: Any = field(default=None, repr=False)
    rate_limit: Any = None
    adaptive_concurrency: bool = False
    cache: Any = field(default=None, repr=False)
    #: Clients tried in order when a call fails after its retries (``RerankClient``s).
    fallbacks: tuple[Any, ...] = field(default=(), repr=False)
    trace_content: bool = False
    #: What the client's own async pools send with: ``"httpx"`` (httpcore) or ``"aiohttp"``.
    async_transport: str = "httpx"
    #: Every call's instruction, unless the call gives its own; ``None``: none.
    instruction: str | None = None
    #: The prompt template setting (``None``: chosen by the model name; ``"none"``: never).
    instruction_template: Any = None

    def __repr__(self) -> str:
        # The endpoint without credentials; secret header values are SecretStr anyway.
        values = {item.name: getattr(self, item.name) for item in fields(self) if item.repr}
        values["endpoint"] = display_url(self.endpoint)
        shown = ", ".join(f"{name}={value!r}" for name, value in values.items())
        return f"ClientSettings({shown})"

    @property
    def attempt_seconds(self) -> float | None:
        """How long one attempt may take in all, connect to last byte: the longest phase of
        ``timeout``; ``None`` when a phase is unbounded."""
        phases = (self.timeout.connect, self.timeout.read, self.timeout.write, self.timeout.pool)
        finite = [phase for phase in phases if phase is not None]
        return max(finite) if len(finite) == len(phases) else None

    def wire_headers(self) -> HiddenHeaders:
        """The headers as sent, secrets in the clear (in a mapping whose repr hides them)."""
        return HiddenHeaders(
            (name, value.get_secret_value() if isinstance(value, SecretStr) else value)
            for name, value in self.headers.items()
        )

    def __getstate__(self) -> dict[str, Any]:
        # A dialect holds functions; it travels by name and is looked up again.
        state = {item.name: getattr(self, item.name) for item in fields(self)}
        state["dialect"] = self.dialect.name
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, get_dialect(value) if name == "dialect" else value)


def _env(name: str) -> str | None:
    """The text of setting ``name``'s environment variable (see :mod:`._settings`)."""
    value = environment(name)
    assert value is None or isinstance(value, str)  # counts are read by _limit
    return value


def resolve_endpoint(
    base_url: str, dialect: Dialect, fill: Mapping[str, str | None] | None = None
) -> str:
    """The full endpoint URL for a base URL, by this rule:

    - a URL whose path ends with a ranking endpoint (a last segment containing ``rank``:
      ``.../rerank``, ``.../reranks``, ``.../reranking``, ``.../ranking``), or that goes on
      past the fixed start of a path naming the model (``/v1/inference/BAAI/...``), is used
      as is;
    - a URL whose path ends with a version segment (``https://h/v1``) gets the rest of the
      dialect's path after its version (``/rerank``);
    - any other URL (a host root such as ``https://h``, or a prefix) gets the dialect's whole
      default path (``/v1/rerank``).

    Settings the default path names (``{project}``, ``{location}``) are filled from
    ``fill``; ``{model}`` stays for each call to fill. The dialect's query parameters are
    added unless the URL sets them.

    Raises:
        ConfigurationError: the URL is malformed, or a setting the path needs is missing.
    """
    if not isinstance(base_url, str):
        raise ConfigurationError(
            f"base_url must be a string, got {type(base_url).__name__}", setting="base_url"
        )
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"base_url {base_url!r} is not an http(s) URL with a host, "
            "e.g. 'https://api.example.com' or 'http://127.0.0.1:8080/v1'",
            setting="base_url",
        )
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ConfigurationError(
            f"base_url {base_url!r} has an invalid port", setting="base_url"
        ) from exc
    path = parts.path.rstrip("/")
    default_segments = [segment for segment in dialect.default_path.split("/") if segment]
    segments = [segment for segment in path.split("/") if segment]
    fixed_start = dialect.default_path.split("{", 1)[0] if "{model}" in dialect.default_path else ""
    if segments and (segments[-1] == default_segments[-1] or "rank" in segments[-1].lower()):
        full_path = path
    elif fixed_start and path.endswith(fixed_start.rstrip("/")):
        full_path = path + dialect.default_path[len(fixed_start) - 1 :]
    elif fixed_start and fixed_start in path + "/":
        full_path = path
    elif segments and is_version_segment(segments[-1]):
        versions = [i for i, seg in enumerate(default_segments) if is_version_segment(seg)]
        rest = default_segments[versions[0] + 1 :] if versions else default_segments
        full_path = "/".join([path, *rest])
    else:
        full_path = "/".join([path, *default_segments])
    if not full_path.startswith("/"):
        full_path = "/" + full_path
    full_path = _fill_path(full_path, dialect, fill or {})
    query = parts.query
    given = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    missing = {k: v for k, v in dialect.query_params.items() if k not in given}
    if missing:
        query = "&".join(filter(None, [query, urlencode(missing)]))
    return urlunsplit((parts.scheme, parts.netloc, full_path, query, ""))


def _fill_path(path: str, dialect: Dialect, fill: Mapping[str, str | None]) -> str:
    for name in sorted(dialect.path_settings() - {"model"}):
        placeholder = "{" + name + "}"
        if placeholder not in path:
            continue
        value = fill.get(name)
        if not value:
            raise ConfigurationError(
                f"the {dialect.name} dialect needs {name}=... (its endpoint names the {name}), "
                f"or the full endpoint as base_url",
                setting=name,
            )
        path = path.replace(placeholder, value.strip("/"))
    return path


def _plain(url: str) -> str:
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") or "/", parts.query, ""))


def alternate_endpoint(endpoint: str) -> str | None:
    """``endpoint`` with ``/v1/rerank`` and ``/rerank`` swapped (servers differ: Infinity and
    TEI serve ``/rerank``, gateways ``/v1/rerank``); ``None`` for any other path."""
    parts = urlsplit(endpoint)
    path = parts.path
    if path.endswith("/v1/rerank"):
        other = path[: -len("/v1/rerank")] + "/rerank"
    elif path.endswith("/rerank"):
        other = path[: -len("/rerank")] + "/v1/rerank"
    else:
        return None
    return urlunsplit((parts.scheme, parts.netloc, other, parts.query, ""))


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_if_key_in_clear(endpoint: str, has_key: bool) -> None:
    """Warn when an API key would travel over plain ``http://`` to another machine."""
    parts = urlsplit(endpoint)
    if has_key and parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
        warnings.warn(
            f"the API key will be sent unencrypted over http:// to {parts.hostname}; "
            "use an https:// base URL",
            UserWarning,
            stacklevel=4,
        )


def make_timeout(timeout: TimeoutTypes) -> httpx.Timeout:
    """An ``httpx.Timeout`` from seconds (``None``: wait forever) or an ``httpx.Timeout``."""
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is None:
        return httpx.Timeout(None)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return httpx.Timeout(float(timeout), connect=min(float(timeout), DEFAULT_CONNECT_TIMEOUT))


def check_deadline(deadline: object) -> float | None:
    """``deadline`` if it is ``None`` or a positive number of seconds; else an error naming it."""
    if deadline is None:
        return None
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        raise TypeError(f"deadline must be a number of seconds or None, got {deadline!r}")
    if not math.isfinite(deadline) or deadline <= 0:
        raise ValueError(f"deadline must be a positive number of seconds, got {deadline!r}")
    return float(deadline)


def shorten_timeout(timeout: httpx.Timeout, seconds: float) -> httpx.Timeout:
    """``timeout`` with every phase cut to at most ``seconds``."""

    def cut(value: float | None) -> float:
        return seconds if value is None else min(value, seconds)

    return httpx.Timeout(
        connect=cut(timeout.connect),
        read=cut(timeout.read),
        write=cut(timeout.write),
        pool=cut(timeout.pool),
    )


def _positive_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _retry_policy(retry: object, max_retries: object) -> RetryPolicy:
    """``retry`` (default: the default policy), with ``max_retries`` in place when given."""
    if retry is None:
        retry = RetryPolicy()
    elif not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a RetryPolicy or None, got {type(retry).__name__}")
    if max_retries is None:
        return retry
    return dataclasses.replace(retry, max_retries=_positive_int("max_retries", max_retries, 0))


def resolve_settings(
    *,
    base_url: str | None,
    api_key: str | SecretStr | None,
    model: str | None,
    dialect: str | None,
    timeout: TimeoutTypes,
    max_retries: int | None,
    retry: RetryPolicy | None,
    max_documents_per_request: int | None,
    max_concurrency: int,
    deadline: float | None,
    score_transform: str | None,
    extra_body: Mapping[str, Any] | None,
    max_response_bytes: int,
    headers: Mapping[str, str] | None,
    user_agent: str,
    instruction: str | None = None,
    instruction_template: object = None,
    auth_url: str | None = None,
    credentials: object = None,
    project: str | None = None,
    location: str | None = None,
    max_request_bytes: int | None = None,
    max_tokens_per_request: int | None = None,
    max_tokens_per_document: int | None = None,
    long_documents: str | None = None,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
    chunk_aggregate: str = "max",
    tokenizer: object = None,
    rate_limit: object = None,
    adaptive_concurrency: bool = False,
    cache: object = None,
    fallbacks: tuple[Any, ...] = (),
    trace_content: bool = False,
    async_transport: str = "httpx",
) -> ClientSettings:
    """Merge arguments, the ``RERANK_*`` environment and defaults into checked settings.

    For the cloud dialects this also finds the credentials (Google application default
    credentials, the AWS chain) and the project and region they name, so that a client that
    cannot work fails here, when it is built.
    """
    if model is None:
        model = _env("model")
    elif not isinstance(model, str):
        raise TypeError(f"model must be a string or None, got {type(model).__name__}")
    explicit = dialect or _env("dialect")
    named, model = split_provider(model, explicit)
    resolved_dialect = get_dialect(explicit or named or "generic")
    url = base_url if base_url is not None else _env("base_url")
    url = url or resolved_dialect.base_url
    if not url:
        raise ConfigurationError(
            "no base URL: pass base_url=... (e.g. 'https://api.example.com/v1') "
            f"or set the {ENV_BASE_URL} environment variable",
            setting="base_url",
        )
    if not isinstance(url, str):
        raise ConfigurationError(
            f"base_url must be a string, got {type(url).__name__}", setting="base_url"
        )
    for name, value in (("auth_url", auth_url), ("project", project), ("location", location)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ConfigurationError(f"{name} must be a non-empty string or None", setting=name)
    cloud = {"auth_url": auth_url, "credentials": credentials, "project": project}
    check_cloud_settings(resolved_dialect, **cloud, location=location)

    if api_key is None:
        env_key = _env("api_key")
        secret = SecretStr(env_key) if env_key else None
    elif isinstance(api_key, SecretStr):
        secret = api_key if api_key.get_secret_value() else None
    elif isinstance(api_key, str):
        secret = SecretStr(api_key) if api_key.strip() else None
    else:
        raise TypeError(f"api_key must be a string or SecretStr, got {type(api_key).__name__}")

    if resolved_dialect.setup is not None:  # the vendor's credentials, project, region
        found = resolved_dialect.setup(
            CredentialSetup(
                base_url=url,
                api_key=secret,
                api_key_given=api_key is not None,
                user_authorization=has_authorization(headers),
                auth_url=auth_url,
                credentials=credentials,
                project=project,
                location=location,
            )
        )
        secret, auth_url, credentials = found.api_key, found.auth_url, found.credentials
        project, location = found.project, found.location
    if "{location}" in url:
        url = url.replace("{location}", location or "{location}")
    endpoint = resolve_endpoint(url, resolved_dialect, {"project": project, "location": location})
    alternate = None if endpoint == _plain(url) else alternate_endpoint(endpoint)

    limit = _limit("max_documents_per_request", max_documents_per_request, resolved_dialect)
    assert limit is not None  # every dialect knows its count
    merged: dict[str, str | SecretStr] = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "User-Agent": user_agent,
    }
    merged.update(resolved_dialect.static_headers)
    if secret is not None and resolved_dialect.key_in_header:
        auth = resolved_dialect.auth_headers(secret.get_secret_value())
        merged.update((name, SecretStr(value)) for name, value in auth.items())
    if headers:
        if not isinstance(headers, Mapping):
            raise TypeError(f"headers must be a dict of strings, got {type(headers).__name__}")
        for name, value in headers.items():
            if not isinstance(name, str) or not isinstance(value, (str, SecretStr)):
                raise TypeError(f"headers must map strings to strings, got {name!r}: ...")
            secret_value = isinstance(value, SecretStr) or is_secret_header(name)
            merged[name] = as_secret(value) if secret_value else value  # type: ignore[assignment]

    # A dialect that exchanges the key for a token sends it to its auth_url, not the endpoint.
    warn_if_key_in_clear(auth_url or endpoint, secret is not None)
    return ClientSettings(
        endpoint=endpoint,
        alternate_endpoint=alternate,
        api_key=secret,
        model=model or None,
        dialect=resolved_dialect,
        timeout=make_timeout(timeout),
        retry=_retry_policy(retry, max_retries),
        max_documents_per_request=limit,
        max_concurrency=_positive_int("max_concurrency", max_concurrency, 1),
        deadline=check_deadline(deadline),
        score_transform=None if check_score_transform(score_transform) is None else score_transform,
        extra_body=dict(check_extra_body(extra_body)),
        max_response_bytes=_positive_int("max_response_bytes", max_response_bytes, 1),
        headers=merged,
        auth_url=auth_url,
        credentials=credentials,
        project=project,
        location=location,
        max_request_bytes=_limit("max_request_bytes", max_request_bytes, resolved_dialect),
        max_tokens_per_request=_limit(
            "max_tokens_per_request", max_tokens_per_request, resolved_dialect
        ),
        max_tokens_per_document=_limit(
            "max_tokens_per_document", max_tokens_per_document, resolved_dialect
        ),
        max_characters_per_document=resolved_dialect.max_characters_per_document,
        long_documents=_choice(
            "long_documents",
            long_documents or _env("long_documents") or "server",
            LONG_DOCUMENT_MODES,
        ),
        chunk_overlap=_positive_int("chunk_overlap", chunk_overlap, 0),
        chunk_aggregate=_choice("chunk_aggregate", chunk_aggregate, CHUNK_AGGREGATES),
        tokenizer=_checked_tokenizer(tokenizer),
        rate_limit=_checked_rate_limit(rate_limit),
        adaptive_concurrency=bool(adaptive_concurrency),
        cache=None if cache is None else check_cache(cache),
        fallbacks=fallbacks,
        trace_content=bool(trace_content),
        async_transport=_async_transport(async_transport),
        instruction=_instruction(resolved_dialect, instruction),
        instruction_template=check_instruction_template(instruction_template),
    )


def _instruction(dialect: Dialect, instruction: object) -> str | None:
    """The client's instruction: the argument, else ``RERANK_INSTRUCTION``; refused at once
    by a dialect that cannot carry one."""
    value = _env("instruction") if instruction is None else check_instruction(instruction)
    if value and dialect.instruction == "refuse":
        raise refusal(dialect)
    return value or None


def _limit(name: str, value: object, dialect: Dialect) -> int | None:
    """A size limit: the argument, else its ``RERANK_*`` variable, else the dialect's."""
    if value is None:
        value = environment(name)
        if value is None:
            found: int | None = getattr(dialect, name)
            return found
    return _positive_int(name, value, 1)


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        known = ", ".join(repr(choice) for choice in allowed)
        raise ValueError(f"{name} must be one of {known}, got {value!r}")
    return value.strip().lower()


#: The transports the client's own async pools can use (``async_transport=``).
ASYNC_TRANSPORTS = ("httpx", "aiohttp")


def _async_transport(value: object) -> str:
    """The ``async_transport`` setting, checked; ``"aiohttp"`` needs ``httpx-aiohttp``."""
    transport = _choice("async_transport", value, ASYNC_TRANSPORTS)
    if transport == "aiohttp" and importlib.util.find_spec("httpx_aiohttp") is None:
        raise ConfigurationError(
            "async_transport='aiohttp' needs the httpx-aiohttp package: "
            'pip install "rerank-integrations[aiohttp]"',
            setting="async_transport",
        )
    return transport


def _checked_rate_limit(rate_limit: object) -> object:
    limiter_for(rate_limit)  # refuses what cannot hand out a budget
    return rate_limit


def _checked_tokenizer(tokenizer: object) -> object:
    counter_for(tokenizer)  # refuses what cannot count tokens
    return tokenizer
