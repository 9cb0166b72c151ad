"""What the LangChain and LlamaIndex agent tools share, with no framework imported.

``RerankCompressor.as_tool()`` and ``RerankPostprocessor.as_tool()`` wrap a
:class:`RerankToolRunner` in their framework's tool class. Everything else lives here, so
both tools take the same arguments (:class:`RerankToolInput`), refuse bad ones with the
same messages (:class:`ToolInputError`) and answer with the same JSON text (:func:`render`).
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ._adapters import RerankSettings
from ._constants import DEFAULT_TOOL_NAME
from ._exceptions import RerankError, ToolInputError
from ._types import NOT_GIVEN, NotGiven, RerankResult

__all__ = [
    "DEFAULT_TOOL_NAME",
    "PassedPassage",
    "RankedPassage",
    "RerankToolInput",
    "RerankToolRunner",
    "ToolAnswer",
    "arender",
    "check_tool_naming",
    "content_and_artifact",
    "default_description",
    "describe_validation_error",
    "ranked_passages",
    "render",
]

# What the OpenAI, Anthropic and Gemini tool APIs all accept as a function name.
_NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_tool_naming(name: object, description: object) -> None:
    """A ``ValueError`` unless ``name`` is what LLM tool APIs accept and ``description`` is a
    non-empty string or ``None``."""
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(
            "tool name must be 1 to 64 letters, digits, '_' or '-' (what LLM tool APIs "
            f"accept), got {name!r}"
        )
    if description is not None and (not isinstance(description, str) or not description):
        raise ValueError(f"description must be a non-empty string or None, got {description!r}")


_MAX_PROBLEMS = 5
_PREVIEW_CHARACTERS = 40
_PREVIEWER = reprlib.Repr()  # keyword arguments need Python 3.12
_PREVIEWER.maxlevel, _PREVIEWER.maxlist, _PREVIEWER.maxdict = 2, 3, 3
_PREVIEWER.maxstring = _PREVIEWER.maxother = _PREVIEW_CHARACTERS
_USAGE = 'Expected {"query": string, "passages": list of strings, "top_n": optional integer >= 1}.'


class RerankToolInput(BaseModel):
    """The arguments of the rerank tool, as the LLM sees them in the tool's JSON schema."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1,
        pattern=r"\S",  # not only white space
        description="The question or search query to rank the passages for.",
    )
    passages: list[str] = Field(
        description=(
            "The candidate passages, as plain text. Results refer to each passage by its "
            "0-based position in this list."
        ),
    )
    top_n: int | None = Field(
        default=None,
        ge=1,
        description="How many passages to return, best first. Leave out for the tool's default.",
    )


class RankedPassage(TypedDict):
    """One passage of the tool's answer."""

    index: int
    """Position of the passage in the ``passages`` argument."""
    relevance_score: float
    """The reranker's score; higher is more relevant. Compare scores within one call only."""
    text: str
    """The passage itself."""


class PassedPassage(TypedDict):
    """One passage of the answer when reranking failed and the adapter passes inputs through
    (``on_error="passthrough"``): in its original position, with no score."""

    index: int
    """Position of the passage in the ``passages`` argument."""
    text: str
    """The passage itself."""
    reranked: Literal[False]
    """Always ``False``: the passages were not reranked."""
    rerank_error: str
    """The class of the error that made the call pass the passages through."""


#: What a tool call answers: ranked passages, or passages passed through unranked.
ToolAnswer = list[RankedPassage] | list[PassedPassage]


class RerankToolRunner:
    """The tool's behaviour, bound to an adapter's settings: check the arguments, rerank,
    shape the answer.

    The adapter is read at every call, so later changes to its settings (``top_n``,
    ``score_threshold``, connection settings) apply to the tool as well.

    Args:
        settings: the adapter (a ``RerankCompressor`` or ``RerankPostprocessor``).
        name: the tool's name; letters, digits, ``_`` and ``-``, at most 64 characters.
        description: what the LLM is told about the tool; ``None`` for a description
            built from the adapter's ``top_n`` and ``score_threshold``.

    Raises:
        ValueError: the name or the description cannot be used.
    """

    def __init__(
        self, settings: RerankSettings, *, name: str, description: str | None = None
    ) -> None:
        check_tool_naming(name, description)
        self._settings = settings
        self.name = name
        """The tool's name."""
        self.description = description or default_description(settings)
        """What the LLM is told about the tool."""

    def parse(self, arguments: Mapping[str, Any]) -> RerankToolInput:
        """The checked arguments.

        Raises:
            ToolInputError: an argument is missing, unknown or of the wrong type or value.
        """
        try:
            return RerankToolInput.model_validate(dict(arguments))
        except ValidationError as exc:
            raise ToolInputError(describe_validation_error(exc, self.name)) from None

    def run(self, **arguments: Any) -> ToolAnswer:
        """Rerank ``passages`` for ``query``: the best ones first, with index and score.

        With the adapter's ``on_error="passthrough"``, a failed call answers the first
        ``top_n`` passages in their original order, marked ``reranked: false``.

        Raises:
            ToolInputError: bad arguments, before any request.
            RerankError: the API call failed (a subclass says how) and ``on_error`` is
                ``"raise"``.
        """
        call = self.parse(arguments)
        if not call.passages:
            return []
        try:
            results = self._settings.rank(call.query, call.passages, top_n=_top_n(call))
        except RerankError as error:
            return self._passed_through(call, error)
        return ranked_passages(call.passages, results)

    async def arun(self, **arguments: Any) -> ToolAnswer:
        """The async twin of :meth:`run`, awaiting the client's async API."""
        call = self.parse(arguments)
        if not call.passages:
            return []
        try:
            results = await self._settings.arank(call.query, call.passages, top_n=_top_n(call))
        except RerankError as error:
            return self._passed_through(call, error)
        return ranked_passages(call.passages, results)

    def _passed_through(self, call: RerankToolInput, error: RerankError) -> list[PassedPassage]:
        """The first ``top_n`` passages unranked, or ``error`` raised when the adapter's
        ``on_error`` says so."""
        self._settings._pass_through_or_raise(error, len(call.passages))
        top_n = self._settings.top_n if call.top_n is None else call.top_n
        kept = call.passages if top_n is None else call.passages[:top_n]
        name = type(error).__name__
        return [
            PassedPassage(index=index, text=text, reranked=False, rerank_error=name)
            for index, text in enumerate(kept)
        ]

    def describe_validation_error(self, error: ValidationError) -> str:
        """The message for invalid arguments (for LangChain's ``handle_validation_error``)."""
        return describe_validation_error(error, self.name)


def _top_n(call: RerankToolInput) -> int | NotGiven:
    """The call's ``top_n``; left out, the adapter's."""
    return NOT_GIVEN if call.top_n is None else call.top_n


def default_description(settings: RerankSettings) -> str:
    """The tool description used when none is given, stating the adapter's defaults."""
    count = "all of them" if settings.top_n is None else f"at most {settings.top_n}"
    description = (
        "Rerank candidate text passages by how well they answer a query, using a reranking "
        "model. Use it to pick the passages worth reading or quoting before answering. "
        'Returns a JSON list, best first, of {"index": position in passages, '
        '"relevance_score": higher is more relevant, "text": the passage}; '
        f"{count} unless top_n is given."
    )
    if settings.score_threshold is not None:
        description += f" Passages scoring below {settings.score_threshold:g} are left out."
    return description


def ranked_passages(
    passages: Sequence[str], results: Sequence[RerankResult]
) -> list[RankedPassage]:
    """The tool's answer: each result with its index, score and text, in the given order."""
    return [
        RankedPassage(
            index=result.index, relevance_score=result.relevance_score, text=passages[result.index]
        )
        for result in results
    ]


def render(results: Sequence[RankedPassage] | Sequence[PassedPassage]) -> str:
    """The answer as the LLM reads it: one line of JSON, non-ASCII text kept as is."""
    return json.dumps(list(results), ensure_ascii=False)


async def arender(results: Sequence[RankedPassage] | Sequence[PassedPassage]) -> str:
    """:func:`render` for async callers (a LlamaIndex tool's ``async_callback``)."""
    return render(results)


def content_and_artifact(
    runner: RerankToolRunner,
) -> tuple[
    Callable[..., tuple[str, ToolAnswer]],
    Callable[..., Coroutine[Any, Any, tuple[str, ToolAnswer]]],
]:
    """The sync and async functions of a LangChain tool that answers as
    ``content_and_artifact``: the LLM reads :func:`render`'s line, code gets the list.

    Defined here, where their annotations resolve: LangGraph's ``ToolNode`` reads them
    (``typing.get_type_hints``), and the adapter module imports this one only in
    ``as_tool()``.
    """

    def rerank_passages(**arguments: Any) -> tuple[str, ToolAnswer]:
        results = runner.run(**arguments)
        return render(results), results

    async def arerank_passages(**arguments: Any) -> tuple[str, ToolAnswer]:
        results = await runner.arun(**arguments)
        return render(results), results

    return rerank_passages, arerank_passages


def describe_validation_error(error: ValidationError, tool_name: str) -> str:
    """A short message naming each bad argument, for the LLM to correct its call.

    Input values are shown only as a type and a short excerpt, so a long passage does not
    flood the message.
    """
    problems: list[str] = []
    details = error.errors(include_url=False)
    for detail in details[:_MAX_PROBLEMS]:
        where = _location(detail["loc"])
        kind = detail["type"]
        if kind == "missing":
            problems.append(f"{where} is missing")
        elif kind == "extra_forbidden":
            problems.append(f"unknown argument {where}")
        elif kind == "model_type":
            problems.append(f"the arguments must be an object, got {_preview(detail['input'])}")
        else:
            message = str(detail["msg"]).rstrip(".")
            message = message[0].lower() + message[1:] if message else "invalid value"
            problems.append(f"{where}: {message}, got {_preview(detail['input'])}")
    if len(details) > _MAX_PROBLEMS:
        problems.append(f"and {len(details) - _MAX_PROBLEMS} more")
    return f"Invalid arguments for {tool_name}: {'; '.join(problems)}. {_USAGE}"


def _location(loc: Sequence[int | str]) -> str:
    """``("passages", 2)`` as ``passages[2]``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "arguments"


def _preview(value: object) -> str:
    """The type of ``value`` and the start of its text."""
    text = _PREVIEWER.repr(value)
    if len(text) > _PREVIEW_CHARACTERS:
        text = text[: _PREVIEW_CHARACTERS - 3] + "..."
    return f"{type(value).__name__} {text}"
