"""The LangChain retriever that reranks: :class:`RerankRetriever`, built on langchain-core
alone, and the steps it shares with the agent middleware (rerank inside a run, tell the
run what it cost, render documents for an LLM).

Re-exported from :mod:`rerank_integrations.langchain`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    BaseCallbackManager,
    CallbackManagerForRetrieverRun,
    Callbacks,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import BaseModel, ConfigDict, Field

from ._adapters import ERROR_KEY, RERANKED_KEY, SCORE_KEY, usage_of
from ._exceptions import RerankError
from ._tools import check_tool_naming
from ._types import RerankResponse
from .langchain import RerankCompressor, _areport_usage, _describer, _report_usage

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = [
    "DEFAULT_RETRIEVER_TOOL_NAME",
    "SCORES_KEY",
    "RerankRetriever",
    "arerank_in_run",
    "render_documents",
    "rerank_in_run",
]

#: The name a retriever's tool gets unless another is given.
DEFAULT_RETRIEVER_TOOL_NAME = "search_passages"
#: The run metadata key of the kept documents' scores, best first (``None`` when passed
#: through unranked). The usage goes under ``"rerank_usage"``, the event's name.
SCORES_KEY = "rerank_scores"
_USAGE_KEY = "rerank_usage"


class RerankRetriever(BaseRetriever):
    """A retriever that reranks what another retriever finds, with a :class:`RerankCompressor`.

    Example::

        from rerank_integrations.langchain import RerankCompressor, RerankRetriever

        reranker = RerankCompressor(base_url="https://api.example.com/v1", top_n=5)
        retriever = RerankRetriever(base_retriever=base, reranker=reranker)
        # or: retriever = reranker.wrap(base)
        for doc in retriever.invoke("organic skincare for sensitive skin"):
            print(doc.id, doc.metadata["relevance_score"], doc.page_content[:60])

    A ``BaseRetriever``, so a Runnable: ``invoke``, ``ainvoke``, ``batch``, ``abatch``,
    ``stream``, ``retriever | next_step`` in LCEL, ``with_config``, a node in LangGraph; each
    call is traced as a retriever run with the base retriever's run inside it. The async
    path awaits the base retriever's ``ainvoke`` and the compressor's async API on the
    running loop, with no worker thread.

    Each call's usage and cost (tokens, billed units, requests, model, endpoint, documents,
    search units, input tokens, cost, currency, the model asked for) reaches the
    callback handlers as the custom event ``"rerank_usage"`` of the retriever's own run,
    with no callbacks passed by hand; tracers also find it, with the kept scores, in that
    run's metadata (``"rerank_usage"``, ``"rerank_scores"``, ``"reranked"``).

    The documents come back as from ``RerankCompressor.compress_documents``: new
    documents, best first, each with ``metadata["relevance_score"]``; with the
    compressor's ``on_error="passthrough"``, a failed call returns the first ``top_n`` in
    their original order, marked ``reranked=False``.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    base_retriever: BaseRetriever
    """The retriever whose documents are reranked (a vector store's, BM25, an ensemble)."""
    reranker: RerankCompressor
    """The compressor that reranks them; its ``top_n`` and ``score_threshold`` apply."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        documents = self.base_retriever.invoke(query, config={"callbacks": run_manager.get_child()})
        return rerank_in_run(self.reranker, documents, query, run_manager)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        documents = await self.base_retriever.ainvoke(
            query, config={"callbacks": run_manager.get_child()}
        )
        return await arerank_in_run(self.reranker, documents, query, run_manager)

    def as_tool(
        self,
        args_schema: type[BaseModel] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        arg_types: dict[str, type] | None = None,
    ) -> BaseTool:
        """This retriever as a LangChain tool that answers a ``query`` with the best passages.

        The LLM reads the kept passages as one line of JSON, best first, each
        ``{"id", "relevance_score", "text"}`` (``"reranked": false`` and no score when the
        reranker passed them through); code gets the documents as ``ToolMessage.artifact``
        (``response_format="content_and_artifact"``). Sync and async; the retriever's run
        is a child of the tool's.

        Args:
            args_schema: not supported: the tool takes one ``query`` string.
            arg_types: not supported either.
            name: the tool's name (1-64 letters, digits, ``_``, ``-``); default
                ``"search_passages"``.
            description: what the LLM is told; default a description of the answer.

        Returns:
            A ``langchain_core.tools.StructuredTool``.

        Raises:
            TypeError: ``args_schema`` or ``arg_types`` was given.
            ValueError: ``name`` or ``description`` cannot be used.
        """
        from langchain_core.tools import StructuredTool

        if args_schema is not None or arg_types is not None:
            raise TypeError(
                "RerankRetriever.as_tool() takes no args_schema or arg_types: "
                "the tool's one argument is the query string"
            )
        name = DEFAULT_RETRIEVER_TOOL_NAME if name is None else name
        check_tool_naming(name, description)

        # StructuredTool passes the tool run's child callbacks to a ``callbacks`` parameter,
        # so the retriever's run nests inside the tool's.
        def search(query: str, callbacks: Callbacks = None) -> tuple[str, list[Document]]:
            documents = self.invoke(query, {"callbacks": callbacks})
            return render_documents(documents), documents

        async def asearch(query: str, callbacks: Callbacks = None) -> tuple[str, list[Document]]:
            documents = await self.ainvoke(query, {"callbacks": callbacks})
            return render_documents(documents), documents

        return StructuredTool.from_function(
            func=search,
            coroutine=asearch,
            name=name,
            description=description or _default_description(self.reranker),
            args_schema=RetrieverToolInput,
            response_format="content_and_artifact",
        )


class RetrieverToolInput(BaseModel):
    """The argument of a :class:`RerankRetriever`'s tool."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1,
        pattern=r"\S",
        description="What to search for: a question or search query in plain words.",
    )


def _default_description(reranker: RerankCompressor) -> str:
    count = "the most relevant" if reranker.top_n is None else f"at most {reranker.top_n}"
    return (
        "Search the knowledge base for passages that answer a query, reranked by relevance. "
        f'Returns {count} passages, best first, as a JSON list of {{"id", '
        '"relevance_score": higher is more relevant, "text"}.'
    )


def render_documents(documents: Sequence[Document]) -> str:
    """Documents as an LLM reads them: one line of JSON, best first, each ``{"id",
    "relevance_score", "text"}``; a document passed through unranked has ``"reranked":
    false`` instead of a score."""
    passages: list[dict[str, Any]] = []
    for document in documents:
        passage: dict[str, Any] = {} if document.id is None else {"id": document.id}
        if SCORE_KEY in document.metadata:
            passage[SCORE_KEY] = document.metadata[SCORE_KEY]
        elif document.metadata.get(RERANKED_KEY) is False:
            passage[RERANKED_KEY] = False
        passage["text"] = document.page_content
        passages.append(passage)
    return json.dumps(passages, ensure_ascii=False, default=str)


# -- reranking inside a run --------------------------------------------------------------


def rerank_in_run(
    reranker: RerankCompressor,
    documents: Sequence[Document],
    query: str,
    run: CallbackManagerForRetrieverRun | BaseCallbackManager | None,
) -> list[Document]:
    """``reranker``'s documents for ``query``, with the usage event and the run metadata
    reported to ``run`` (a run's manager, or the callbacks of the run in progress)."""
    texts = reranker._inputs(documents, query, plain_allowed=False)
    if not texts:
        return []
    outcome = reranker.rank_or_pass(query, texts, _describer(documents))
    scored = reranker._scored_documents(documents, reranker.results_of(outcome))
    if _heard(run):
        currency = reranker.currency()
        _report_usage(_children(run), outcome, currency)
        record_in_run(run, run_metadata(outcome, scored, currency))
    return scored


async def arerank_in_run(
    reranker: RerankCompressor,
    documents: Sequence[Document],
    query: str,
    run: AsyncCallbackManagerForRetrieverRun | BaseCallbackManager | None,
) -> list[Document]:
    """The async twin of :func:`rerank_in_run`, awaiting the client's async API."""
    texts = reranker._inputs(documents, query, plain_allowed=False)
    if not texts:
        return []
    outcome = await reranker.arank_or_pass(query, texts, _describer(documents))
    scored = reranker._scored_documents(documents, reranker.results_of(outcome))
    if _heard(run):
        currency = reranker.currency()
        await _areport_usage(_children(run), outcome, currency)
        record_in_run(run, run_metadata(outcome, scored, currency))
    return scored


def _heard(run: object) -> bool:
    """Whether any handler hears what ``run`` is told: a run's manager or a callback manager
    with handlers (its own or those it hands its children), or a list of handlers. Without
    one, the usage event and the run metadata are not built at all."""
    if run is None or isinstance(run, list):
        return bool(run)
    return bool(getattr(run, "handlers", None) or getattr(run, "inheritable_handlers", None))


def _children(run: Any) -> Any:
    """Callbacks whose parent is ``run``: a run's child manager, or the manager itself."""
    return run.get_child() if hasattr(run, "get_child") else run


def run_metadata(
    outcome: RerankResponse | RerankError,
    documents: Sequence[Document],
    currency: str | None = None,
) -> dict[str, Any]:
    """What a rerank call adds to its run's metadata: usage and cost (in ``currency``), kept
    scores, whether ranked."""
    if isinstance(outcome, RerankError):
        return {
            _USAGE_KEY: None,
            SCORES_KEY: None,
            RERANKED_KEY: False,
            ERROR_KEY: type(outcome).__name__,
        }
    return {
        _USAGE_KEY: usage_of(outcome, currency),
        SCORES_KEY: [document.metadata[SCORE_KEY] for document in documents],
        RERANKED_KEY: True,
    }


def record_in_run(run: Any, metadata: dict[str, Any]) -> None:
    """Add ``metadata`` to the run that ``run`` manages (or is the parent of) in every
    tracer among its handlers, so LangSmith and other tracers record it with the run.

    LangChain has no public way to add metadata to a run once it has started; tracers keep
    their runs in ``run_map`` until the run ends, so the metadata is added there.
    """
    run_id: UUID | None = getattr(run, "run_id", None) or getattr(run, "parent_run_id", None)
    if run_id is None:
        return
    for handler in getattr(run, "handlers", ()):
        run_map = getattr(handler, "run_map", None)
        traced = run_map.get(str(run_id)) if isinstance(run_map, dict) else None
        extra = getattr(traced, "extra", None)
        if isinstance(extra, dict):
            extra.setdefault("metadata", {}).update(metadata)
