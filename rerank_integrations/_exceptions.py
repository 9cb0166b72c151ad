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

    The batch job (``rerank_integrations.batch``, also importable from there):
    RowFailedError                  a row failed and the job was told to stop at it
    CostLimitError                  the job's max_cost would be (or was) passed: it stopped
    InvalidRowError (a ValueError)  a row that cannot be sent: no query, bad documents
    ResumeError                     an OUTPUT the job cannot continue (another input, edited
                                    rows, another job writing it)

    The evaluation (``rerank_integrations.eval``, also importable from there):
    EvalInputError (a ValueError)   inputs that disagree, duplicate ids, an empty split
    EvalRunError (a RuntimeError)   a reranker could not score every query (a rerun carries on)

Messages carry the HTTP status, the server's own message where it sent one and a short
excerpt of the body. They never carry the API key.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "CostLimitError",
    "EvalInputError",
    "EvalRunError",
    "GatewayTimeoutError",
    "InvalidRowError",
    "RateLimitError",
    "RequestTimeoutError",
    "RerankError",
    "ResponseFormatError",
    "ResumeError",
    "RowFailedError",
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


class RowFailedError(Exception):
    """A row failed after its retries and the job was told to stop (``on_error="stop"``), or
    it failed in a way every row would (a refused key).

    Attributes:
        position: the row's place in the input, from 0.
        row_id: the row's id, when it has one.
        error: why it failed (also ``__cause__``).
        row: the row's number as the input counts it, from 1: for a JSON Lines file, its
            line number (what the message says).
    """

    def __init__(
        self, position: int, row_id: object, error: BaseException, row: int | None = None
    ) -> None:
        self.position = position
        self.row_id = row_id
        self.error = error
        self.row = position + 1 if row is None else row
        named = f" (id {row_id!r})" if row_id is not None else ""
        super().__init__(f"row {self.row}{named} failed: {type(error).__name__}: {error}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.position, self.row_id, self.error, self.row))


class CostLimitError(Exception):
    """The batch job stopped at its ``max_cost``: the row it names was not sent because its
    estimated cost would pass the limit, or was the one whose actual cost passed it.

    Attributes:
        max_cost: the limit, in the price's currency.
        spent: what the rows sent in this run cost (as reported, else as estimated).
        estimate: the row's estimated cost (``None`` when it was sent).
        currency: the price's currency.
    """

    def __init__(
        self,
        max_cost: Decimal,
        spent: Decimal,
        estimate: Decimal | None = None,
        currency: str = "USD",
    ) -> None:
        self.max_cost, self.spent, self.estimate, self.currency = (
            max_cost,
            spent,
            estimate,
            currency,
        )
        if estimate is None:
            what = f"the rows sent cost {spent} {currency}, past max_cost {max_cost}"
        else:
            what = (
                f"its estimated cost {estimate} {currency} would take the {spent} spent past "
                f"max_cost {max_cost}; not sent"
            )
        super().__init__(what)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.max_cost, self.spent, self.estimate, self.currency))


class InvalidRowError(ValueError):
    """A row that cannot be sent: no query, documents that are not a list of texts, text
    that is not valid Unicode (a lone surrogate)."""


class ResumeError(Exception):
    """An output file that this job cannot continue: written from another input (or from
    this one before its rows were edited), not JSON Lines, or being written by another job
    right now."""


class EvalInputError(ValueError):
    """Input an evaluation cannot use: files that disagree, duplicate ids, an empty split.

    Raised before any request is sent; the message names the file and what is wrong.
    """


class EvalRunError(RuntimeError):
    """A reranker could not score every query, or the run stopped at its ``max_cost``; what
    was scored is kept, so running the evaluation again carries on from there.

    Attributes:
        scored: ``{reranker: (queries scored, queries to score)}`` for every reranker of the
            run, counted from the scores kept (this run's and earlier runs').
        cost_limit: the :class:`CostLimitError` when the run stopped at its ``max_cost``.
    """

    def __init__(
        self,
        message: str,
        scored: dict[str, tuple[int, int]] | None = None,
        cost_limit: CostLimitError | None = None,
    ) -> None:
        super().__init__(message)
        self.scored: dict[str, tuple[int, int]] = dict(scored or {})
        self.cost_limit = cost_limit

    @property
    def cost_limited(self) -> bool:
        """Whether the run stopped at its ``max_cost`` (a rerun resumes where it stopped)."""
        return self.cost_limit is not None

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.scored, self.cost_limit))
