"""Every error this package raises.

Class tree::

    RerankError
    ├── ConfigurationError          (also a ValueError) settings that cannot work
    ├── APIStatusError              the server answered with an error status
    │   ├── AuthenticationError     401, 403
    │   ├── BadRequestError         400, 404, 413, 422
    │   ├── RateLimitError          429
    │   ├── RequestTimeoutError     408, also an APITimeoutError
    │   └── ServerError             5xx
    │       └── GatewayTimeoutError 504, also an APITimeoutError
    ├── APIConnectionError          no answer: connection refused, reset or dropped
    │   └── APITimeoutError         no answer in time (a 408 or 504 from a gateway too)
    └── ResponseFormatError         an answer that is not a valid ranking

    ToolInputError (a ValueError)   an agent called a rerank tool with bad arguments

Messages carry the HTTP status, the server's own message where it sent one and a short
excerpt of the body. They never carry the API key.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "GatewayTimeoutError",
    "RateLimitError",
    "RequestTimeoutError",
    "RerankError",
    "ResponseFormatError",
    "ServerError",
    "ToolInputError",
]


class RerankError(Exception):
    """Base class of every error raised by ``rerank_integrations``."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive pickle's default (``cls(*args)``), and
        # errors travel between processes (worker pools, Ray).
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[RerankError], args: tuple[Any, ...], state: dict[str, Any]) -> RerankError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigurationError(RerankError, ValueError):
    """The client's settings cannot work (for example, no base URL was given anywhere).

    Attributes:
        setting: the name of the setting at fault (``"base_url"``, ``"model"``, ...), so that
            a command line can name its own option for it; ``None`` when no one setting is.
    """

    def __init__(self, message: str, *, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


class APIStatusError(RerankError):
    """The server answered with an error status.

    Attributes:
        status_code: the HTTP status of the answer.
        message: the full error message.
        body: the decoded JSON body, or the body text when it is not JSON (secrets scrubbed).
        request_id: the server's request id header, when it sent one.
        url: the URL that answered, without credentials.
        server_message: the server's own words, taken out of its envelope, when it gave any.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        request_id: str | None = None,
        url: str | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body = body
        self.request_id = request_id
        self.url = url
        self.server_message = server_message


class AuthenticationError(APIStatusError):
    """401 or 403: the key is missing, wrong, or not allowed to use this endpoint or model."""


class BadRequestError(APIStatusError):
    """400, 404, 413 or 422: the server refused the request as it stands; retrying won't help."""


class RateLimitError(APIStatusError):
    """429: too many requests; raised once the retries are used up."""


class ServerError(APIStatusError):
    """5xx: the server or a proxy in front of it failed; raised once the retries are used up."""


class APIConnectionError(RerankError):
    """No answer was received: the connection failed, was refused, reset or dropped."""


class APITimeoutError(APIConnectionError):
    """No answer was received within the timeout."""


class ResponseFormatError(RerankError):
    """The server answered, but not with a valid ranking.

    Raised for a body that is not JSON, has no result list, names an index that is out of
    range or repeated, or gives a score that is not a finite number.

    Attributes:
        status_code: the HTTP status of the answer.
        body_excerpt: the start of the body, for diagnosis.
        url: the URL that answered, without credentials.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 200,
        body_excerpt: str = "",
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.body_excerpt = body_excerpt
        self.url = url


class RequestTimeoutError(APIStatusError, APITimeoutError):
    """408: a gateway gave up waiting (LiteLLM's "litellm.Timeout"); caught as a timeout too."""


class GatewayTimeoutError(ServerError, APITimeoutError):
    """504: a gateway's upstream did not answer in time; caught as a timeout too."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: BadRequestError,
    413: BadRequestError,
    408: RequestTimeoutError,
    422: BadRequestError,
    429: RateLimitError,
    504: GatewayTimeoutError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """Return the most specific :class:`APIStatusError` subclass for an HTTP status."""
    found = _STATUS_CLASSES.get(status_code)
    if found is not None:
        return found
    return ServerError if status_code >= 500 else APIStatusError


class ToolInputError(ValueError):
    """An agent called a rerank tool with bad arguments; the message says what to fix.

    Not a :class:`RerankError`: nothing reached the API. LlamaIndex agents hand the message
    back to the LLM as the tool's (error) output; the LangChain tool returns the same message
    as an error ``ToolMessage``.
    """
