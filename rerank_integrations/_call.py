"""Setting up one call: every argument checked (once, here), the budget, the plan, the clock.

:func:`start_call` is the edge: what it hands on (a :class:`Call`) holds only checked values,
and nothing further down checks them again. :func:`plan_again` plans a started call anew
with a limit just learned, within what is left of its deadline.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ._budget import counter_for
from ._cache import ScoreCache, ScoreLookup
from ._checks import (
    check_extra_body,
    check_extra_fields,
    check_instruction,
    check_model,
    check_query,
    check_top_n,
)
from ._codec import encode_request, merge_fields
from ._config import ClientSettings, check_deadline
from ._constants import LOGGER_NAME
from ._documents import check_rank_fields, prepare_documents
from ._exceptions import APITimeoutError
from ._plan import Batch, Budget, PlanStream, RerankPlan, plan_rerank, stream_plan
from ._state import Connection
from ._types import NOT_GIVEN, NotGiven
from ._usage import RequestUsage
from .dialects._instructions import CarriedInstruction, carry_instruction
from .dialects._registry import split_provider

__all__ = ["Arguments", "Call", "budget_for", "plan_again", "start_call"]

logger = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True, slots=True)
class Arguments:
    """A call's arguments once checked: what a plan, a fresh plan or a fallback is made of."""

    query: str
    documents: Any  # the caller's documents, as passed (a fallback gets them as they are)
    top_n: int | None
    extra_body: Mapping[str, Any]
    rank_fields: tuple[str, ...] | None
    instruction: str | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """One rerank call in progress: its plan, model, extra body fields and deadline."""

    plan: RerankPlan
    model: str | None
    extra_body: Mapping[str, Any]
    deadline: float | None
    expires: float | None  # time.monotonic() by which the call must end
    lookup: ScoreLookup | None = None  # the cache keys of the plan's texts, with a cache
    arguments: Arguments | None = None  # as checked, to plan again or fall back with
    carried: CarriedInstruction | None = None  # how the instruction goes, when there is one
    plans_again: int = 0  # times planned again with a limit learned on the way
    #: What each answered request used, kept across plans (a call planned again still paid
    #: for the requests answered before); appended to by the batches as they are answered.
    spent: list[RequestUsage] = field(default_factory=list)
    stream: PlanStream | None = None  # long documents cut as the batches are sent

    def batch_label(self, number: int) -> str:
        """How batch ``number`` is named in logs and errors."""
        stream = self.stream
        if stream is not None and not stream.done:
            return f"batch {number + 1}"  # how many there are is not known yet
        return f"batch {number + 1}/{len(self.plan.batches)}"

    def time_left(self) -> float | None:
        """Seconds left before the deadline, ``None`` without one."""
        return None if self.expires is None else self.expires - time.monotonic()

    def deadline_error(self, attempts: int = 0) -> APITimeoutError:
        """The error raised when the deadline has run out."""
        after = f" after {attempts} attempts" if attempts > 1 else ""
        return APITimeoutError(f"the call's deadline of {self.deadline:g}s ran out{after}")


def start_call(
    settings: ClientSettings,
    connection: Connection,
    query: object,
    documents: object,
    top_n: object,
    model: str | NotGiven | None,
    deadline: float | NotGiven | None,
    extra_body: object,
    fields: Mapping[str, Any],
    rank_fields: object = None,
    instruction: object = NOT_GIVEN,
) -> Call:
    """Check the arguments, plan the batches and start the clock, before anything is sent.

    The request's extra fields are the client's ``extra_body``, then the call's, then the
    call's keyword fields, each merged one level deep over the one before. Images and
    mappings among the documents are prepared for the dialect (:mod:`._documents`).
    ``instruction`` left out is the client's; ``None`` is none for this call; a model
    string ``"<dialect>:<model>"`` naming the client's own dialect sends ``<model>``.
    """
    check_extra_fields(fields)
    extra = settings.extra_body
    for more in (check_extra_body(extra_body), check_extra_body(fields, "extra fields")):
        if more:
            extra = merge_fields(extra, more)
    seconds = check_deadline(settings.deadline if deadline is NOT_GIVEN else deadline)
    chosen = check_model(model, settings.model)
    if chosen is not None and chosen is not settings.model:
        chosen = split_provider(chosen, settings.dialect.name)[1]
    arguments = Arguments(
        check_query(query),
        documents,
        check_top_n(top_n),
        extra,
        check_rank_fields(rank_fields),
        settings.instruction if instruction is NOT_GIVEN else check_instruction(instruction),
    )
    expires = None if seconds is None else time.monotonic() + seconds
    return _planned(settings, connection, arguments, chosen, seconds, expires)


def plan_again(settings: ClientSettings, connection: Connection, call: Call) -> Call:
    """``call`` planned again with a limit just learned, within what is left of its
    deadline (its arguments were checked when it started)."""
    if call.expires is not None:
        left = call.time_left()
        if left is not None and left <= 0:
            raise call.deadline_error()
    assert call.arguments is not None
    again = _planned(settings, connection, call.arguments, call.model, call.deadline, call.expires)
    return replace(again, plans_again=call.plans_again + 1, spent=call.spent)


def _planned(
    settings: ClientSettings,
    connection: Connection,
    arguments: Arguments,
    model: str | None,
    deadline: float | None,
    expires: float | None,
) -> Call:
    """The call of checked ``arguments``: documents prepared, budget set, batches planned."""
    dialect = settings.dialect
    query, extra, fields_ranked = arguments.query, arguments.extra_body, arguments.rank_fields
    prepared, originals = prepare_documents(
        arguments.documents,
        dialect.name,
        dialect.image_format is not None,
        dialect.accepts_objects(connection.path),
        fields_ranked,
    )
    carried = carry_instruction(
        dialect, query, arguments.instruction, model, settings.instruction_template
    )
    budget = budget_for(settings, connection, carried, model, extra)
    lookup = None
    if connection.scores is not None:
        lookup = _lookup(
            settings, connection, connection.scores, query, model, extra, fields_ranked, carried
        )
    if lookup is None and isinstance(budget, Budget) and budget.cuts_documents():
        # Planned with nothing cut, to be cut as the batches are sent when that is worth it.
        whole = plan_rerank(
            carried.query,
            prepared,
            arguments.top_n,
            budget.max_documents,
            None,
            originals,
            fields_ranked,
            instruction=carried.field,
            wrapper=carried.wrapper,
        )
        stream = stream_plan(whole, budget)
        if stream is not None:
            plan = stream.plan
            return Call(
                plan, model, extra, deadline, expires, None, arguments, carried, stream=stream
            )
    plan = plan_rerank(
        carried.query,
        prepared,
        arguments.top_n,
        budget,
        lookup,
        originals,
        fields_ranked,
        instruction=carried.field,
        wrapper=carried.wrapper,
    )
    return Call(plan, model, extra, deadline, expires, lookup, arguments, carried)


#: Models whose scores depend on which documents share a batch: a cache misleads them.
_LISTWISE = re.compile(r"jina-reranker-v3|listwise", re.IGNORECASE)


def _lookup(
    settings: ClientSettings,
    connection: Connection,
    scores: ScoreCache,
    query: str,
    model: str | None,
    extra: Mapping[str, Any],
    rank_fields: tuple[str, ...] | None,
    carried: CarriedInstruction | None = None,
) -> ScoreLookup:
    """The cache lookup of one call: keyed on what decides a score, scoped by the client's
    credentials (as a keyed hash) unless the cache is shared."""
    if model and not connection.listwise_warned and _LISTWISE.search(model):
        connection.listwise_warned = True
        logger.warning(
            "rerank: %r is a listwise model (its scores depend on the other documents of a "
            "batch) and a cache is on; scores kept from one batch may not fit another: "
            "turn the cache off for this model",
            model,
        )
    context: tuple[Any, ...] = (
        settings.dialect.name,
        scores.endpoint_key(settings.endpoint),
        model or None,
        settings.location,
        extra,
        rank_fields,
    )
    if carried is not None and carried.how != "none":
        # The instruction decides the scores; calls without one keep their earlier keys.
        context = (*context, ("instruction", carried.how, carried.instruction))
    return scores.lookup(context, query)


def budget_for(
    settings: ClientSettings,
    connection: Connection,
    carried: CarriedInstruction,
    model: str | None,
    extra: Mapping[str, Any],
) -> Budget | int:
    """What one request of a call may hold: the settings' limits (a dialect's own where it
    knows them), tightened by what the server has taught this client. The query counts as
    sent (``carried.query``, a template's query side included), and a template's
    per-document wrapper counts with each document."""
    learned = connection.learned
    documents = settings.max_documents_per_request
    if learned.documents is not None:
        documents = min(documents, learned.documents)
    max_bytes = _smaller(settings.max_request_bytes, learned.bytes)
    per_document = _smaller(settings.max_tokens_per_document, learned.document_tokens)
    long_documents = settings.long_documents
    sized = max_bytes is not None or settings.max_tokens_per_request is not None
    if not sized and (
        long_documents == "server"
        or (per_document is None and not (settings.max_characters_per_document))
    ):
        return documents  # only the count to keep to: no text is measured
    body_bytes = document_bytes = 0
    if max_bytes is not None:
        body_bytes, document_bytes = _body_sizes(settings, connection, carried, model, extra)
    wrapper_tokens = 0
    if carried.wrapper is not None:
        wrapper_tokens = (connection.counter or counter_for(None)).count("".join(carried.wrapper))
    return Budget(
        max_documents=documents,
        max_bytes=max_bytes,
        max_tokens=settings.max_tokens_per_request,
        max_document_tokens=per_document,
        max_document_characters=settings.max_characters_per_document,
        long_documents=long_documents,
        overlap=settings.chunk_overlap,
        aggregate=settings.chunk_aggregate,
        counter=connection.counter,
        body_bytes=body_bytes,
        document_bytes=document_bytes,
        cuts=connection.cuts,
        wrapper_tokens=wrapper_tokens,
    )


def _smaller(first: int | None, second: int | None) -> int | None:
    return second if first is None else first if second is None else min(first, second)


def _body_sizes(
    settings: ClientSettings,
    connection: Connection,
    carried: CarriedInstruction,
    model: str | None,
    extra: Mapping[str, Any],
) -> tuple[int, int]:
    """``(bytes of a body with one empty document, bytes each further one adds)``, measured
    on the dialect's own bodies, with the longest ``top_n`` a batch may carry."""
    sizes = []
    top_n = settings.max_documents_per_request
    for texts in ([""], ["", ""]):
        plan = RerankPlan(
            carried.query,
            texts,
            texts,
            None,
            {},
            [],
            None,
            instruction=carried.field,
            wrapper=carried.wrapper,
        )
        body = encode_request(
            settings.dialect,
            plan,
            Batch(0, texts, top_n),
            model,
            extra,
            connection.path,
            settings.location,
            settings.project,
        )
        sizes.append(len(body))
    return sizes[0], sizes[1] - sizes[0]


# -- one batch --------------------------------------------------------------------------------
