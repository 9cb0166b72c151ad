"""A failed call's way through its client's fallbacks, the same on both paths.

Which fallback to try next and with how much of the deadline, and the error to raise when
none answers: the last, caused by the one before, back to the primary's. A fallback that
cannot take the call's documents (an image for a dialect of text, an image over its
``max_request_bytes``) refuses them before sending anything; it is skipped, with a warning,
and the next one tried. Whether a failure may fall back at all is decided with the rest of
the outcome (:func:`~._outcome.decide`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from ._call import Call
from ._constants import LOGGER_NAME
from ._exceptions import RerankError
from ._outcome import falls_back
from ._state import Connection
from ._text import display_url
from ._types import NOT_GIVEN, RerankResponse

__all__ = ["Fallbacks"]

logger = logging.getLogger(LOGGER_NAME)


class Fallbacks:
    """The fallbacks (``RerankClient``\\ s) of a call that failed with ``error``."""

    def __init__(
        self, primary: Connection, clients: Sequence[Any], call: Call, error: RerankError
    ) -> None:
        self.primary = primary
        self.clients = clients
        self.call = call
        self.error = error
        self._failed_at = primary.shown_url  # where ``error`` came from
        self._trying = (0, "")  # the fallback being tried: its number and URL

    def __iter__(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Each fallback to try next, with the keyword arguments of its ``rerank()``."""
        arguments = self.call.arguments
        assert arguments is not None
        # A fallback keeps its own instruction when the call has none.
        instruction = (
            {} if arguments.instruction is None else {"instruction": arguments.instruction}
        )
        for number, fallback in enumerate(self.clients, 1):
            if not falls_back(self.error):
                return
            left = self.call.time_left()
            if left is not None and left <= 0:
                return
            self._trying = (number, display_url(fallback.endpoint))
            logger.warning(
                "rerank via %s failed (%s: %s); trying fallback %d of %d, %s",
                self._failed_at,
                type(self.error).__name__,
                self.error,
                number,
                len(self.clients),
                self._trying[1],
            )
            yield (
                fallback,
                {
                    "query": arguments.query,
                    "documents": arguments.documents,
                    "top_n": arguments.top_n,
                    # Without a deadline of the call's own, the fallback keeps its own.
                    "deadline": NOT_GIVEN if left is None else left,
                    "rank_fields": arguments.rank_fields,
                    **instruction,
                },
            )

    def trying(self) -> _Trying:
        """Around one fallback's call: its failure (a :class:`RerankError`) or its refusal
        of the documents before sending (a ``TypeError`` or ``ValueError``) is noted and
        swallowed, so that the next fallback is tried."""
        return _Trying(self)

    def failed(self, error: RerankError) -> None:
        """The fallback just tried failed with ``error`` (caused by the one before)."""
        error.__cause__ = self.error
        self.error = error
        self._failed_at = self._trying[1]

    def cannot_take(self, refusal: Exception) -> None:
        """The fallback just tried refused the documents before sending anything (a
        ``TypeError`` or ``ValueError``): skipped, and the error so far stands."""
        number, url = self._trying
        logger.warning(
            "rerank fallback %d of %d, %s, cannot take these documents (%s: %s); skipped",
            number,
            len(self.clients),
            url,
            type(refusal).__name__,
            refusal,
        )

    def answered(self, response: RerankResponse) -> RerankResponse:
        """A fallback answered: counted, and the answer handed on."""
        self.primary.counters.add(fallbacks=1)
        return response


class _Trying:
    """The context of one fallback's call (see :meth:`Fallbacks.trying`)."""

    __slots__ = ("_fallbacks",)

    def __init__(self, fallbacks: Fallbacks) -> None:
        self._fallbacks = fallbacks

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: object
    ) -> bool:
        if isinstance(error, RerankError):
            self._fallbacks.failed(error)
            return True
        if isinstance(error, (TypeError, ValueError)):  # before sending: not for this one
            self._fallbacks.cannot_take(error)
            return True
        return False
