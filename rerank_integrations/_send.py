"""The wire: one attempt sent and its whole answer read, on the sync and the async path.

Each attempt is bounded from connect to last byte (``Send.limit``) and its answer capped
while it streams in (:mod:`._transport`); a failed send becomes the package's error
(:func:`transport_error`) and is handed back to the flow, never raised. Each attempt has
its own trace span.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from ._actions import Answer, Send
from ._exceptions import APIConnectionError, APITimeoutError, RerankError, ResponseFormatError
from ._retry import seconds_to_sleep
from ._text import display_url
from ._timeouts import bounded
from ._trace import attempt_span
from ._transport import BodyReader, attempt_deadline

__all__ = ["asend", "asleep", "send", "sleep", "transport_error"]


def send(client: httpx.Client, action: Send) -> Answer | RerankError:
    """One attempt on the sync path, in its own trace span."""
    with attempt_span(action) as span:
        outcome = _send_once(client, action)
        span.answered(outcome)
    return outcome


def _send_once(client: httpx.Client, action: Send) -> Answer | RerankError:
    """One attempt on the sync path: the whole answer by ``action.limit``, read in chunks."""
    url = display_url(action.url)
    expires = None if action.limit is None else time.monotonic() + action.limit
    try:
        with attempt_deadline(expires):
            response = client.send(_request(client, action), stream=True)
            try:
                reader = BodyReader(response, action.max_bytes, expires, url)
                for chunk in response.iter_bytes():
                    if not reader.feed(chunk):
                        break
            finally:
                response.close()
    except httpx.TransportError as exc:
        return transport_error(exc, url)
    except ResponseFormatError as exc:
        return exc
    return Answer(response.status_code, response.reason_phrase, response.headers, reader.content())


async def asend(client: httpx.AsyncClient, action: Send) -> Answer | RerankError:
    """One attempt on the async path, in its own trace span."""
    with attempt_span(action) as span:
        outcome = await _asend_once(client, action)
        span.answered(outcome)
    return outcome


async def _asend_once(client: httpx.AsyncClient, action: Send) -> Answer | RerankError:
    """One attempt on the async path: the whole answer by ``action.limit``."""
    url = display_url(action.url)
    try:
        async with bounded(action.limit):
            return await _attempt(client, action, url)
    except asyncio.TimeoutError:
        return APITimeoutError(f"no complete answer from {url} within {action.limit:g}s")


async def _attempt(client: httpx.AsyncClient, action: Send, url: str) -> Answer | RerankError:
    try:
        response = await client.send(_request(client, action), stream=True)
        try:
            reader = BodyReader(response, action.max_bytes, None, url)
            async for chunk in response.aiter_bytes():
                if not reader.feed(chunk):
                    break
        finally:
            await response.aclose()
    except httpx.TransportError as exc:
        return transport_error(exc, url)
    except ResponseFormatError as exc:
        return exc
    return Answer(response.status_code, response.reason_phrase, response.headers, reader.content())


def _request(client: httpx.Client | httpx.AsyncClient, action: Send) -> httpx.Request:
    """The POST request of ``action`` (building one does no I/O on either client)."""
    return client.build_request(
        "POST", action.url, content=action.content, headers=action.headers, timeout=action.timeout
    )


def sleep(seconds: float) -> None:
    """Wait on the sync path (not at all under the testing switch)."""
    time.sleep(seconds_to_sleep(seconds))


async def asleep(seconds: float) -> None:
    """Wait on the async path (not at all under the testing switch)."""
    await asyncio.sleep(seconds_to_sleep(seconds))


def _timed_out(exc: httpx.TransportError) -> bool:
    """Whether a failed send ran out of time. httpx-aiohttp reports every connection error
    of aiohttp's as a ``ConnectTimeout``; the cause it chains tells a refusal or a hang-up
    (no timeout at all) apart."""
    if not isinstance(exc, httpx.TimeoutException):
        return False
    cause = exc.__cause__
    import httpcore  # imported by then: only a pool that sends with it raises its errors

    timeouts = (TimeoutError, asyncio.TimeoutError, httpcore.TimeoutException)
    return cause is None or isinstance(cause, timeouts) or not _from_aiohttp(cause)


def _from_aiohttp(error: BaseException) -> bool:
    return type(error).__module__.split(".", 1)[0] == "aiohttp"


def transport_error(exc: httpx.TransportError, endpoint: str) -> RerankError:
    """The package's error for a failed send, naming the endpoint, caused by ``exc``."""
    detail = str(exc) or type(exc).__name__
    error: RerankError
    if _timed_out(exc):
        error = APITimeoutError(f"no answer from {endpoint} in time: {detail}")
    else:
        error = APIConnectionError(
            f"connection to {endpoint} failed: {type(exc).__name__}: {detail}"
        )
    error.__cause__ = exc
    error.__suppress_context__ = True
    return error
