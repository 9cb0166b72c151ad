"""LangChain helpers for the retriever, middleware and graph tests: a retriever over a fixed
list, a chat model that follows a script and records what it was shown, a tracer that keeps
every run and custom event, and a URL where nothing listens.

Imported as ``from support.lc import ...`` (not re-exported by ``support``: it needs
langchain-core).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import CallbackManagerForLLMRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.retrievers import BaseRetriever
from langchain_core.tracers.base import BaseTracer
from langchain_core.tracers.schemas import Run
from pydantic import Field

from .data import keyword_score

PASSAGES = [
    "Black tea is brewed with water just off the boil.",
    "Green tea tastes best with water at about 80 degrees: hot water makes it bitter.",
    "A cast iron kettle keeps water hot for a long time.",
    "Oolong leaves can be steeped several times.",
    "Green tea leaves are steamed or pan-fired soon after picking.",
    "Espresso needs finely ground coffee and nine bars of pressure.",
]
QUERY = "green tea water"


def passage_documents() -> list[Document]:
    """:data:`PASSAGES` as documents with ids and metadata."""
    return [
        Document(id=f"p{i}", page_content=text, metadata={"source": f"tea/{i}"})
        for i, text in enumerate(PASSAGES)
    ]


def expected_ids(query: str, documents: Sequence[Document], top_n: int) -> list[str | None]:
    """The ids the keyword-scoring servers put first, ties in input order."""
    order = sorted(
        range(len(documents)),
        key=lambda i: (-keyword_score(query, documents[i].page_content), i),
    )
    return [documents[i].id for i in order[:top_n]]


class ListRetriever(BaseRetriever):
    """Returns its documents for any query, recording the queries."""

    documents: list[Document]
    queries: list[str] = Field(default_factory=list)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        self.queries.append(query)
        return list(self.documents)


class ScriptedChatModel(GenericFakeChatModel):
    """``GenericFakeChatModel`` that agents can bind tools to, and that keeps every list of
    messages it was called with (``seen``)."""

    seen: list[list[BaseMessage]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


@dataclass
class CustomEvent:
    """A custom callback event as a handler received it."""

    name: str
    data: Any
    run_id: UUID


class RecordingTracer(BaseTracer):
    """Keeps every finished run and every custom event."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[Run] = []
        self.events: list[CustomEvent] = []

    def _persist_run(self, run: Run) -> None:
        pass

    def _end_trace(self, run: Run) -> None:
        self.runs.append(run)
        super()._end_trace(run)

    def on_custom_event(self, name: str, data: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.events.append(CustomEvent(name, data, run_id))

    def named(self, name: str) -> list[Run]:
        """The finished runs called ``name``, in the order they ended."""
        return [run for run in self.runs if run.name == name]


def closed_url() -> str:
    """A base URL on 127.0.0.1 where nothing listens: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
