"""LangChain adapter: :class:`RerankCompressor`, a document compressor backed by any HTTP
rerank API, and what builds on it.

- :class:`RerankRetriever` (``compressor.wrap(retriever)``): a retriever that reranks what
  another finds; a Runnable for LCEL, LangGraph nodes and agent tools, with langchain-core
  alone.
- :class:`RerankMiddleware`: reranking in ``langchain.agents.create_agent`` agents, for
  retrieved context and for what retrieval tools return (extra ``agents``).
- ``RerankCompressor`` also plugs into langchain-classic's ``ContextualCompressionRetriever``
  and ``DocumentCompressorPipeline`` like any other ``BaseDocumentCompressor``.

The ``RerankClient`` behind them does the HTTP, the batching and the retries, in both the
sync and the async path. Requires the ``langchain`` extra:
``pip install "rerank-integrations[langchain]"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ._adapters import SCORE_KEY, SPAN_KEY, RerankSettings, copy_with, usage_of
from ._checks import check_query
from ._constants import DEFAULT_TOOL_NAME
from ._documents import Image
from ._exceptions import RerankError
from ._trace import Describe
from ._types import NOT_GIVEN, NotGiven, RerankResponse, RerankResult

try:
    from langchain_core.callbacks import (
        AsyncCallbackManager,
        BaseCallbackManager,
        CallbackManager,
        Callbacks,
    )
    from langchain_core.documents import BaseDocumentCompressor, Document
except ImportError as _exc:
    raise ImportError(
        "rerank_integrations.langchain needs langchain-core; install it with: "
        'pip install "rerank-integrations[langchain]"'
    ) from _exc

if TYPE_CHECKING:
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.tools import BaseTool

    from ._lc_middleware import RerankMiddleware
    from ._lc_retriever import RerankRetriever

__all__ = [
    "IMAGE_KEY",
    "SCORE_KEY",
    "USAGE_EVENT",
    "RerankCompressor",
    "RerankMiddleware",
    "RerankRetriever",
]

# Imported on first use: the retriever brings langchain-core's runnables, the middleware
# the ``langchain`` package (extra ``agents``); neither is needed to rerank documents.
_LAZY = {
    "RerankRetriever": "._lc_retriever",
    "RerankMiddleware": "._lc_middleware",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __package__), name)
    globals()[name] = value
    return value


#: The metadata key of a ``Document`` that stands for an image: an ``Image`` or its URL.
#: LangChain has no image document class; such documents rank as images in the dialects
#: that take them.
IMAGE_KEY = "rerank_image"


class RerankCompressor(RerankSettings, BaseDocumentCompressor):
    """Reorders LangChain documents by relevance to the query with an HTTP rerank API.

    Example::

        from rerank_integrations.langchain import RerankCompressor

        compressor = RerankCompressor(base_url="https://api.example.com/v1", top_n=5)
        retriever = compressor.wrap(base)  # a RerankRetriever
        for doc in retriever.invoke("organic skincare for sensitive skin"):
            print(doc.id, doc.metadata["relevance_score"], doc.page_content[:60])

    A document whose ``metadata["rerank_image"]`` holds an ``Image`` (or an image URL) is
    ranked as that image by the dialects that take images; with ``rank_fields``, documents
    go as structured documents (those metadata fields and the content as ``text``).

    The returned documents are new ``Document`` objects (of the same class as the input),
    best first, with the same ``id``, ``page_content`` and metadata plus
    ``metadata["relevance_score"]``; the documents passed in, and their metadata dicts, are
    left unchanged. At most ``top_n`` come back (``None``: all), and none that scores below
    ``score_threshold``.

    Each setting is a keyword argument, documented on its field: the call's (``model``,
    ``top_n``, ``score_threshold``, ``on_error``), the connection's (``base_url``,
    ``api_key``, ``dialect``, ``timeout``, ``deadline``, ``retry``, ``score_transform``,
    ``extra_body``, ...) or a ready ``client``. Unknown ones are refused. Connection
    settings left out are read from the ``RERANK_*`` environment variables; with no base
    URL anywhere, construction raises :class:`~rerank_integrations.ConfigurationError`.
    The API key is never serialized or shown.

    ``acompress_documents`` and :meth:`arerank` are truly asynchronous: they await the
    client's async API on the running event loop, with no worker thread.
    """

    # -- BaseDocumentCompressor ----------------------------------------------------------

    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Rerank ``documents`` against ``query``: the best ``top_n``, best first.

        Args:
            documents: the retrieved documents.
            query: the search query.
            callbacks: LangChain callbacks; each handler gets a custom event
                ``"rerank_usage"`` with what the call used and cost (tokens, billed
                units, requests, model, endpoint, documents, search units, input tokens,
                cost and its currency, the model asked for). Left out inside a run (a
                LangGraph node, an LCEL step), the event goes to that run's handlers.

        Returns:
            New documents, best first, each with ``metadata["relevance_score"]``; ``[]`` for
            no documents, without a request.

        Raises:
            TypeError: ``query`` is not a string or an element is not a ``Document``.
            RerankError: the API call failed (a subclass says how).
        """
        texts = self._inputs(documents, query, plain_allowed=False)
        if not texts:
            return []
        outcome = self.rank_or_pass(query, texts, _describer(documents))
        _report_usage(callbacks, outcome, self.currency())
        return self._scored_documents(documents, self.results_of(outcome))

    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """The async twin of :meth:`compress_documents`, awaiting the client's async API."""
        texts = self._inputs(documents, query, plain_allowed=False)
        if not texts:
            return []
        outcome = await self.arank_or_pass(query, texts, _describer(documents))
        await _areport_usage(callbacks, outcome, self.currency())
        return self._scored_documents(documents, self.results_of(outcome))

    # -- plain ranking -------------------------------------------------------------------

    def rerank(
        self,
        documents: Sequence[Document | str | Mapping[str, Any]],
        query: str,
        *,
        top_n: int | NotGiven | None = NOT_GIVEN,
        rank_fields: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        r"""Rank ``documents`` against ``query`` and return positions and scores.

        Args:
            documents: ``Document`` objects, plain strings, ``Image``\ s or mappings of
                fields (they may be mixed).
            query: the search query.
            top_n: how many results to return; left out, the ``top_n`` field; ``None``: all.
            rank_fields: the fields of mappings to rank on; left out, the field of the
                same name (which also turns ``Document``\ s into structured documents).

        Returns:
            ``[{"index": i, "relevance_score": s}, ...]`` best first, where ``i`` is the
            position in ``documents``; results below ``score_threshold`` are left out.

        Raises:
            TypeError, ValueError: bad arguments, before any request.
            RerankError: the API call failed (a subclass says how).
        """
        texts = self._inputs(documents, query, plain_allowed=True)
        if not texts:
            return []
        fields = rank_fields if rank_fields is not None else self.fields_ranked()
        return _scored_indexes(self.rank(query, texts, top_n=top_n, rank_fields=fields))

    async def arerank(
        self,
        documents: Sequence[Document | str | Mapping[str, Any]],
        query: str,
        *,
        top_n: int | NotGiven | None = NOT_GIVEN,
        rank_fields: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The async twin of :meth:`rerank`, awaiting the client's async API."""
        texts = self._inputs(documents, query, plain_allowed=True)
        if not texts:
            return []
        fields = rank_fields if rank_fields is not None else self.fields_ranked()
        return _scored_indexes(await self.arank(query, texts, top_n=top_n, rank_fields=fields))

    # -- agent tool ----------------------------------------------------------------------

    def as_tool(self, *, name: str = DEFAULT_TOOL_NAME, description: str | None = None) -> BaseTool:
        """This reranker as a LangChain ``StructuredTool`` for agents (sync and async).

        The tool ranks the ``passages`` it is given for a ``query`` (and an optional
        ``top_n``) with this compressor's settings. The LLM reads the best passages as one
        line of JSON, ``[{"index", "relevance_score", "text"}]``; code gets the list as
        ``ToolMessage.artifact``. Bad arguments send nothing and come back to the LLM as an
        error ``ToolMessage`` naming each. API failures raise ``RerankError``; with
        ``on_error="passthrough"`` the tool answers the first ``top_n`` passages in their
        original order instead, each ``{"index", "text", "reranked": false,
        "rerank_error"}``, so an agent keeps running.

        ``langchain_core.tools`` (and the tool's own module) is imported here, at the first
        call, not with this module.

        Raises:
            ValueError: ``name`` (1-64 letters, digits, ``_``, ``-``) or ``description``
                cannot be used.
        """
        from langchain_core.tools import StructuredTool

        from ._tools import RerankToolInput, RerankToolRunner, content_and_artifact

        runner = RerankToolRunner(self, name=name, description=description)
        rerank_passages, arerank_passages = content_and_artifact(runner)
        return StructuredTool.from_function(
            func=rerank_passages,
            coroutine=arerank_passages,
            name=runner.name,
            description=runner.description,
            args_schema=RerankToolInput,
            response_format="content_and_artifact",
            handle_validation_error=runner.describe_validation_error,
        )

    def wrap(self, retriever: BaseRetriever) -> RerankRetriever:
        """A :class:`RerankRetriever` that reranks what ``retriever`` finds with this
        compressor: ``RerankRetriever(base_retriever=retriever, reranker=self)``."""
        from ._lc_retriever import RerankRetriever

        return RerankRetriever(base_retriever=retriever, reranker=self)

    # -- translation ---------------------------------------------------------------------

    def _inputs(self, documents: object, query: object, *, plain_allowed: bool) -> list[Any]:
        """What is sent for each document, after checking the query and every document:
        a ``Document``'s content (or its record, with ``rank_fields``), or the image under
        ``metadata["rerank_image"]``; with ``plain_allowed``, strings, images and mappings
        as they are."""
        check_query(query)
        expected = "Document objects or strings" if plain_allowed else "Document objects"
        if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
            raise TypeError(
                f"documents must be a list of {expected}, got {type(documents).__name__}"
            )
        structured = bool(self.rank_fields)
        if not structured:
            plain = _plain_contents(documents)
            if plain is not None:
                return plain
        texts: list[Any] = []
        for position, document in enumerate(documents):
            # A plain Document is told by its class alone: isinstance() goes through
            # pydantic's ABC machinery, once per document.
            if type(document) is Document or isinstance(document, Document):
                # Most documents name no image: one lookup, no call, for those.
                metadata = document.metadata
                image = _image_of(document) if metadata and IMAGE_KEY in metadata else None
                if image is not None:
                    texts.append(image)
                elif structured:
                    texts.append(self.record(document.page_content, metadata))
                else:
                    texts.append(document.page_content)
            elif plain_allowed and isinstance(document, (str, Image, Mapping)):
                texts.append(document)
            else:
                wanted = "a Document or a string" if plain_allowed else "a Document"
                raise TypeError(
                    f"documents[{position}] must be {wanted}, got {type(document).__name__}"
                )
        return texts

    def _scored_documents(
        self, documents: Sequence[Document], results: list[RerankResult] | RerankError
    ) -> list[Document]:
        """New documents for the kept results, best first; for an error (a failed call
        passed through), the first ``top_n`` in their original order, marked unranked."""
        if isinstance(results, RerankError):
            marks = self.passthrough_metadata(results)
            return [
                copy_with(document, {"metadata": {**document.metadata, **marks}})
                for document in documents[: self.passthrough_count(len(documents))]
            ]
        scored: list[Document] = []
        for result in results:
            document = documents[result.index]
            metadata = {**document.metadata, SCORE_KEY: result.relevance_score}
            if result.span is not None:
                metadata[SPAN_KEY] = list(result.span)
            scored.append(copy_with(document, {"metadata": metadata}))
        return scored


#: The name of the custom callback event that carries a call's usage.
USAGE_EVENT = "rerank_usage"


def _describer(documents: Sequence[Document]) -> Describe:
    """The documents' ids for traces (LangChain documents carry no retrieval score)."""
    return lambda: ([document.id for document in documents], ())


def _report_usage(
    callbacks: Callbacks | None,
    outcome: RerankResponse | RerankError,
    currency: str | None = None,
) -> None:
    """Tell the callbacks what the call used and cost, as a custom event of the retriever's
    run."""
    callbacks = callbacks or _current_callbacks()
    usage = usage_of(outcome, currency) if _reach_handlers(callbacks) else None
    if usage is not None:
        manager = CallbackManager.configure(inheritable_callbacks=callbacks)
        manager.on_custom_event(USAGE_EVENT, usage, run_id=manager.parent_run_id)


async def _areport_usage(
    callbacks: Callbacks | None,
    outcome: RerankResponse | RerankError,
    currency: str | None = None,
) -> None:
    """The async twin of :func:`_report_usage`."""
    callbacks = callbacks or _current_callbacks()
    usage = usage_of(outcome, currency) if _reach_handlers(callbacks) else None
    if usage is not None:
        manager = AsyncCallbackManager.configure(inheritable_callbacks=callbacks)
        await manager.on_custom_event(USAGE_EVENT, usage, run_id=manager.parent_run_id)


def _reach_handlers(callbacks: Callbacks | None) -> bool:
    """Whether ``callbacks`` reach any handler. A run's manager without handlers has nobody
    to tell: LangChain configured it with the environment's tracers and hooks already, so
    configuring another from it (tens of microseconds) would find none either."""
    if isinstance(callbacks, BaseCallbackManager):
        return bool(callbacks.handlers)
    return bool(callbacks)


def _current_callbacks() -> Callbacks | None:
    """The callbacks of the run in progress (a LangGraph node, an LCEL step), if any: where
    the usage event goes when a call is given no callbacks."""
    global _child_config
    if _child_config is None:  # langchain-core's runnables, imported on first use only
        from langchain_core.runnables.config import var_child_runnable_config

        _child_config = var_child_runnable_config
    config = _child_config.get()
    return None if config is None else config.get("callbacks")


_child_config: ContextVar[Any] | None = None


def _plain_contents(documents: Sequence[object]) -> list[Any] | None:
    """The contents of ``documents`` when every one is a plain ``Document`` that names no
    image, read in one comprehension (a quarter less than the loop of
    :meth:`RerankCompressor._inputs`, which reads anything else); else ``None``."""
    contents = [
        document.page_content
        for document in documents
        if type(document) is Document and IMAGE_KEY not in (document.metadata or ())
    ]
    return contents if len(contents) == len(documents) else None


def _scored_indexes(results: list[RerankResult]) -> list[dict[str, Any]]:
    return [{"index": result.index, SCORE_KEY: result.relevance_score} for result in results]


def _image_of(document: Document) -> Image | None:
    """The image a document stands for, under ``metadata["rerank_image"]``, if any."""
    value = document.metadata.get(IMAGE_KEY)
    if value is None:
        return None
    if isinstance(value, Image):
        return value
    if isinstance(value, str):
        return Image(url=value)
    raise TypeError(
        f"metadata[{IMAGE_KEY!r}] must be an Image or an image URL, got {type(value).__name__}"
    )
