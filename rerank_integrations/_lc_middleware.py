"""Reranking inside LangChain agents: :class:`RerankMiddleware` for
``langchain.agents.create_agent``.

Two jobs, each optional: put the best retrieved passages into the model's context before
every model call (two-step RAG), and cut down what retrieval tools return to the passages
worth reading. Re-exported from :mod:`rerank_integrations.langchain`; requires the ``agents``
extra (``pip install "rerank-integrations[agents]"``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.documents import Document
from langchain_core.messages import AnyMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import ensure_config

from ._adapters import ERROR_KEY, RERANKED_KEY
from ._lc_retriever import arerank_in_run, render_documents, rerank_in_run
from .langchain import RerankCompressor

try:
    from langchain.agents.middleware import (
        AgentMiddleware,
        AgentState,
        ModelRequest,
        ModelResponse,
        ToolCallRequest,
    )
    from langgraph.types import Command
except ImportError as _exc:
    raise ImportError(
        "RerankMiddleware needs langchain 1.x (langchain.agents); install it with: "
        'pip install "rerank-integrations[agents]"'
    ) from _exc

__all__ = ["DEFAULT_CONTEXT_HEADER", "RerankMiddleware"]

#: What precedes the passages put into the model's context.
DEFAULT_CONTEXT_HEADER = (
    "Passages retrieved for the user's latest question, most relevant first. "
    "Use them to answer; say so when they do not contain the answer."
)
_UNRANKED_NOTE = "(These passages could not be reranked; they are in retrieval order.)"

ToolCallResult = ToolMessage | Command[Any]


class RerankMiddleware(AgentMiddleware[AgentState[Any], Any, Any]):
    """Reranks retrieved passages for a ``create_agent`` agent, with a :class:`RerankCompressor`.

    Example::

        from langchain.agents import create_agent
        from rerank_integrations.langchain import RerankCompressor, RerankMiddleware

        reranker = RerankCompressor(base_url="https://api.example.com/v1", top_n=5)
        agent = create_agent(
            model,
            tools=[search_docs],
            middleware=[RerankMiddleware(reranker=reranker, retriever=vector_retriever,
                                         tools=["search_docs"])],
        )

    Args:
        reranker: the compressor that reranks; its ``top_n``, ``score_threshold`` and
            ``on_error`` apply. With ``on_error="passthrough"``, an API failure leaves the
            agent running: the first ``top_n`` passages in their original order, marked
            ``reranked=False`` (and said to be unranked in what the model reads).
        retriever: when given, before each model call the latest user message is the
            query: ``retriever`` retrieves, the reranker keeps the best, and those passages
            go into the model's system message for that call (two-step RAG). The agent's
            messages are not changed; the retrieval is a retriever run of its own, with the
            kept scores and the usage in its metadata and the ``"rerank_usage"`` event.
        tools: the names of the tools whose results are reranked, or ``"*"`` for every
            tool; ``None``: none. A result is reranked when it carries documents as its
            artifact (a ``response_format="content_and_artifact"`` tool returning
            ``Document``s): against the tool call's ``query`` argument (else the latest user
            message), keeping the best ``top_n`` in both what the model reads (one line of
            JSON, best first) and the artifact. Other results pass unchanged.
        context_header: the text put before the passages in the system message.

    Raises:
        TypeError: an argument has the wrong type.

    Sync and async hooks (``invoke`` and ``ainvoke`` of the agent); the async ones await the
    retriever's and the client's async APIs. The middleware keeps no state of its own and
    writes nothing into the agent's state.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> RerankMiddleware:
        # create_agent adds a tools node (and its routing) for a middleware whose class
        # wraps tool calls, and a wrapper to every model call for one whose class wraps
        # model calls: each instance is of a class with the hooks its settings use.
        if cls is RerankMiddleware:
            hooks = (kwargs.get("retriever") is not None, kwargs.get("tools") is not None)
            cls = _WITH_HOOKS.get(hooks, cls)
        return super().__new__(cls)

    def __init__(
        self,
        *,
        reranker: RerankCompressor,
        retriever: BaseRetriever | None = None,
        tools: Sequence[str] | Literal["*"] | None = None,
        context_header: str = DEFAULT_CONTEXT_HEADER,
    ) -> None:
        super().__init__()
        if not isinstance(reranker, RerankCompressor):
            raise TypeError(f"reranker must be a RerankCompressor, got {type(reranker).__name__}")
        if retriever is not None and not isinstance(retriever, BaseRetriever):
            raise TypeError(
                f"retriever must be a langchain-core BaseRetriever or None, "
                f"got {type(retriever).__name__}"
            )
        if not isinstance(context_header, str):
            raise TypeError(f"context_header must be a string, got {type(context_header).__name__}")
        self.reranker = reranker
        """The compressor that reranks."""
        self.retriever = retriever
        """The retriever of the two-step RAG, or ``None``."""
        self.reranked_tools: frozenset[str] | Literal["*"] = _tool_names(tools)
        """The names of the tools whose results are reranked, or ``"*"`` for all."""
        self.context_header = context_header
        """What precedes the passages in the system message."""
        self._rag = None if retriever is None else reranker.wrap(retriever)
        # What create_agent registers as the middleware's own tools: none.
        self.tools = []

    # -- two-step RAG ---------------------------------------------------------------------

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> ModelResponse[Any]:
        """Put the best passages for the latest user message into this model call."""
        query = _latest_user_text(request.messages)
        if self._rag is None or self.retriever is None or query is None:
            return handler(request)
        if _unobserved():  # the same work without a run of ours nobody would see
            found = self.retriever.invoke(query)
            documents = rerank_in_run(self.reranker, found, query, None)
        else:
            documents = self._rag.invoke(query)
        return handler(self._with_context(request, documents))

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        """The async twin of :meth:`wrap_model_call`."""
        query = _latest_user_text(request.messages)
        if self._rag is None or self.retriever is None or query is None:
            return await handler(request)
        if _unobserved():  # the same work without a run of ours nobody would see
            found = await self.retriever.ainvoke(query)
            documents = await arerank_in_run(self.reranker, found, query, None)
        else:
            documents = await self._rag.ainvoke(query)
        return await handler(self._with_context(request, documents))

    def _with_context(
        self, request: ModelRequest[Any], documents: list[Document]
    ) -> ModelRequest[Any]:
        """``request`` with the passages added to its system message (a new request)."""
        if not documents:
            return request
        block = f"{self.context_header}\n\n{_numbered(documents)}"
        if any(document.metadata.get(RERANKED_KEY) is False for document in documents):
            block = f"{block}\n\n{_UNRANKED_NOTE}"
        system = request.system_message
        if system is None:
            message = SystemMessage(content=block)
        elif isinstance(system.content, str):
            message = system.model_copy(update={"content": f"{system.content}\n\n{block}"})
        else:
            content = [*system.content, {"type": "text", "text": block}]
            message = system.model_copy(update={"content": content})
        return request.override(system_message=message)

    # -- tool results ---------------------------------------------------------------------

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolCallResult],
    ) -> ToolCallResult:
        """Keep the best ``top_n`` of the documents a selected tool returned."""
        result = handler(request)
        selected = self._selected(request, result)
        if selected is None:
            return result
        message, documents, query = selected
        kept = rerank_in_run(self.reranker, documents, query, _current_callbacks())
        return _trimmed(message, kept)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolCallResult]],
    ) -> ToolCallResult:
        """The async twin of :meth:`wrap_tool_call`."""
        result = await handler(request)
        selected = self._selected(request, result)
        if selected is None:
            return result
        message, documents, query = selected
        kept = await arerank_in_run(self.reranker, documents, query, _current_callbacks())
        return _trimmed(message, kept)

    def _selected(
        self, request: ToolCallRequest, result: ToolCallResult
    ) -> tuple[ToolMessage, list[Document], str] | None:
        """The tool message, its documents and the query, when this result is reranked."""
        names = self.reranked_tools
        if names != "*" and request.tool_call["name"] not in names:
            return None
        if not isinstance(result, ToolMessage) or result.status == "error":
            return None
        artifact = result.artifact
        if (
            not isinstance(artifact, (list, tuple))
            or not artifact
            or not all(isinstance(item, Document) for item in artifact)
        ):
            return None
        query = request.tool_call.get("args", {}).get("query")
        if not isinstance(query, str) or not query.strip():
            state = request.state if isinstance(request.state, dict) else {}
            query = _latest_user_text(state.get("messages", []))
        if query is None:
            return None
        return result, list(artifact), query


class _RetrievedContextOnly(RerankMiddleware):
    """A :class:`RerankMiddleware` with a retriever and no tools: no tool hooks."""

    # AgentMiddleware's own: create_agent tells by identity that they wrap nothing.
    wrap_tool_call = AgentMiddleware.wrap_tool_call
    awrap_tool_call = AgentMiddleware.awrap_tool_call

    @property
    def name(self) -> str:
        return "RerankMiddleware"


class _ToolResultsOnly(RerankMiddleware):
    """A :class:`RerankMiddleware` with tools and no retriever: no model hooks."""

    # AgentMiddleware's own: create_agent tells by identity that they wrap nothing.
    wrap_model_call = AgentMiddleware.wrap_model_call  # type: ignore[assignment]
    awrap_model_call = AgentMiddleware.awrap_model_call  # type: ignore[assignment]

    @property
    def name(self) -> str:
        return "RerankMiddleware"


class _NoHooks(_RetrievedContextOnly, _ToolResultsOnly):
    """A :class:`RerankMiddleware` with neither: it does nothing."""


#: The class of an instance by (retriever given, tools given); ``RerankMiddleware`` itself
#: for both.
_WITH_HOOKS: dict[tuple[bool, bool], type[RerankMiddleware]] = {
    (True, False): _RetrievedContextOnly,
    (False, True): _ToolResultsOnly,
    (False, False): _NoHooks,
}


def _tool_names(tools: object) -> frozenset[str] | Literal["*"]:
    if tools is None:
        return frozenset()
    if tools == "*":
        return "*"
    if isinstance(tools, str) or not isinstance(tools, (Sequence, set, frozenset)):
        raise TypeError(f'tools must be a list of tool names, "*" or None, got {tools!r}')
    names = list(tools)
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"tools must hold tool names (non-empty strings), got {name!r}")
    return frozenset(names)


def _latest_user_text(messages: Sequence[AnyMessage]) -> str | None:
    """The text of the latest user message, or ``None`` when there is none with text."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            text = message.text.strip()
            return text or None
    return None


def _numbered(documents: Sequence[Document]) -> str:
    return "\n\n".join(
        f"[{number}] {document.page_content}" for number, document in enumerate(documents, 1)
    )


def _trimmed(message: ToolMessage, documents: list[Document]) -> ToolMessage:
    """A copy of ``message`` showing only ``documents`` (the original is left unchanged)."""
    update: dict[str, Any] = {"content": render_documents(documents), "artifact": documents}
    if documents and documents[0].metadata.get(RERANKED_KEY) is False:
        update["response_metadata"] = {
            **message.response_metadata,
            RERANKED_KEY: False,
            ERROR_KEY: documents[0].metadata.get(ERROR_KEY),
        }
    return message.model_copy(update=update)


def _unobserved() -> bool:
    """Whether the run in progress (the agent's model node) has no callback handlers. A
    retriever run of ours inside it would reach none either (LangChain configured the
    node's manager with the environment's tracers and hooks), and costs a callback
    manager, its events and, on the async path, a task for the run's end."""
    callbacks = ensure_config().get("callbacks")
    return isinstance(callbacks, BaseCallbackManager) and not callbacks.handlers


def _current_callbacks() -> BaseCallbackManager | None:
    """The callbacks of the run in progress (the agent's tool node), if any."""
    callbacks = ensure_config().get("callbacks")
    return callbacks if isinstance(callbacks, BaseCallbackManager) else None
