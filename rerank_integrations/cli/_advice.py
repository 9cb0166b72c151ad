"""What to tell the user about an error: one line of text and one line of advice."""

from __future__ import annotations

import re
from collections.abc import Container

import httpx

from .. import _exceptions as errors
from .._config import ENV_DIALECT
from .._constants import ENV_API_KEY, ENV_BASE_URL, ENV_MODEL
from .._text import display_url
from ..dialects import DIALECTS

_OTHER_DIALECTS_SHOWN = 4

#: How this command takes each setting a ConfigurationError can name: its option and its
#: environment variable. The keys are also the options' argparse dests.
_SETTINGS: dict[str, tuple[str, str | None]] = {
    "base_url": ("--base-url URL", ENV_BASE_URL),
    "api_key": ("--api-key KEY", ENV_API_KEY),
    "model": ("--model NAME", ENV_MODEL),
    "dialect": ("--dialect NAME", ENV_DIALECT),
    "timeout": ("--timeout SECONDS", None),
    "max_retries": ("--max-retries N", None),
    "max_documents_per_request": ("--max-documents-per-request N", None),
    "instruction": ("--instruction TEXT", "RERANK_INSTRUCTION"),
}
_EXAMPLES = {"base_url": "e.g. http://127.0.0.1:8080 for 'rerank-integrations serve'"}

# The library ends a message with the fix in Python terms ("...: pass model=... to the
# client"); that part is replaced by the fix in this command's terms.
_LIBRARY_FIX = re.compile(r"[:;,]\s+(?:pass|set|give)\b.*$", re.DOTALL)


def configuration_message(exc: errors.ConfigurationError, options: Container[str] = ()) -> str:
    """The library's message about a setting, with the fix told as this command's option.

    ``options`` are the argparse dests of the running command: a setting it has no option
    for is offered through its environment variable only.
    """
    message = str(exc)
    if exc.setting not in _SETTINGS:
        return message
    option, variable = _SETTINGS[exc.setting]
    ways = [f"pass {option}"] if exc.setting in options else []
    if variable is not None:
        ways.append(f"set {variable}")
    if not ways:
        return message
    head, replaced = _LIBRARY_FIX.subn("", message)
    if not replaced:
        return f"{message} (check {' / '.join(way.split()[1] for way in ways)})"
    example = _EXAMPLES.get(exc.setting)
    return f"{head}: {' or '.join(ways)}" + (f" ({example})" if example else "")


def _dialect_advice(dialect: str) -> str:
    others = " / ".join([name for name in DIALECTS if name != dialect][:_OTHER_DIALECTS_SHOWN])
    return (
        f"the server answered in another format: try --dialect {others} ... (now {dialect}), "
        "or check that the base URL is the rerank endpoint"
    )


#: How gateways without a key database say that they refused a key (LiteLLM answers a wrong
#: key with 400 "No connected db.").
_REFUSED_KEY = re.compile(r"no connected db|invalid (?:api[ _-]?)?key|incorrect api key", re.I)


def refused_key(exc: errors.RerankError) -> bool:
    """Whether the server refused the key: a 401/403, or a gateway's 400 that says so."""
    if isinstance(exc, errors.AuthenticationError):
        return True
    if not isinstance(exc, errors.APIStatusError) or exc.status_code != 400:
        return False
    return bool(exc.server_message and _REFUSED_KEY.search(exc.server_message))


def advice_for(exc: errors.RerankError, *, dialect: str = "generic", key_sent: bool = True) -> str:
    """One line of concrete advice for an error from the rerank endpoint."""
    if refused_key(exc) and not isinstance(exc, errors.AuthenticationError):
        return f"the gateway refused the key: check {ENV_API_KEY} / --api-key"
    if isinstance(exc, errors.AuthenticationError):
        if not key_sent:
            return f"the server wants an API key: set {ENV_API_KEY} or pass --api-key"
        if exc.status_code == 403:
            return f"check {ENV_API_KEY} / --api-key, and that the key may use this model"
        return f"check {ENV_API_KEY} / --api-key"
    if isinstance(exc, errors.APITimeoutError):
        if connect_failed(exc):
            return "is the host right and reachable from here (firewall, VPN, proxy)?"
        return "the server took too long to answer: raise --timeout, or check the server"
    if isinstance(exc, errors.APIConnectionError):
        if not connect_failed(exc):
            return "the server dropped the connection: check its logs, or retry"
        text = str(exc).lower()
        if "ssl" in text or "certificate" in text:
            return "TLS failed: check http:// versus https:// and the server's certificate"
        return "is the server running? is the base URL right?"
    if isinstance(exc, errors.ResponseFormatError):
        return _dialect_advice(dialect)
    if isinstance(exc, errors.RateLimitError):
        return "the server is rate-limiting: wait and retry, or check the key's quota"
    if isinstance(exc, errors.ServerError):
        if "the server needs a model" in exc.message:
            return f"the server needs a model: pass --model NAME or set {ENV_MODEL}"
        return "the server failed: check its logs, or retry later or with more --max-retries"
    if isinstance(exc, errors.APIStatusError):
        if exc.status_code in (404, 405):
            return "check the base URL path or --dialect"
        return f"the server refused the request: check --dialect (now {dialect}) and --model"
    return "check the connection settings"


def connect_failed(exc: errors.RerankError) -> bool:
    """Whether a connection error happened before a connection was open."""
    cause = exc.__cause__
    return isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError)) or (
        cause is None and not isinstance(exc, errors.APITimeoutError)
    )


def with_advice(exc: errors.RerankError) -> str:
    """The error line of a failed command: what happened, then what to do."""
    text = error_text(exc, limit=400)
    url = failed_url(exc)
    if url is not None:
        text = f"POST {url}: {text}"
    return f"{text} (advice: {advice_for(exc)})"


def failed_url(exc: errors.RerankError) -> str | None:
    """The URL a connection error was about, without credentials, when it is known.

    ``error_text`` tells a connection error by its cause, which does not name the URL; the
    httpx error under it carries the request.
    """
    cause = exc.__cause__
    if not isinstance(exc, errors.APIConnectionError) or not isinstance(cause, httpx.RequestError):
        return None
    try:
        return display_url(str(cause.request.url))
    except RuntimeError:  # raised outside a request: httpx has none to give
        return None


def error_text(exc: errors.RerankError, *, limit: int) -> str:
    """An error message on one line, at most ``limit`` characters.

    A connection error is told by its cause (``connection refused``); a status error that
    carries the server's own message drops the body excerpt that repeats it.
    """
    if isinstance(exc, errors.APIConnectionError) and exc.__cause__ is not None:
        cause = exc.__cause__
        if isinstance(exc, errors.APITimeoutError):
            reason = "no answer in time"
        else:
            reason = re.sub(r"^\[Errno -?\d+\]\s*", "", str(cause)) or "no details"
        text = f"{reason} ({type(cause).__name__})"
    else:
        text = str(exc)
        if isinstance(exc, errors.APIStatusError) and "(no message from the server)" not in text:
            text = text.split(" | body:")[0]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
