"""LlamaIndex adapter: :class:`RerankPostprocessor`, a node postprocessor backed by any
HTTP rerank API.

Use it wherever LlamaIndex takes ``node_postprocessors``::

    from rerank_integrations.llama_index import RerankPostprocessor

    reranker = RerankPostprocessor(base_url="https://api.example.com/v1", top_n=5)
    engine = index.as_query_engine(similarity_top_k=50, node_postprocessors=[reranker])

It needs the ``llama-index`` extra: ``pip install "rerank-integrations[llama-index]"``.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

try:
    from llama_index.core.callbacks import CBEventType, EventPayload
    from llama_index.core.instrumentation import (  # type: ignore[attr-defined]
        Dispatcher,
        get_dispatcher,
    )
    from llama_index.core.instrumentation.event_handlers import NullEventHandler
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
    from llama_index.core.instrumentation.span_handlers import NullSpanHandler
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import (
        BaseNode,
        ImageNode,
        MetadataMode,
        NodeWithScore,
        QueryBundle,
        TextNode,
    )
    from llama_index.core.tools import FunctionTool
except ImportError as exc:  # pragma: no cover - exercised by a test that hides the package
    raise ImportError(
        "rerank_integrations.llama_index needs llama-index-core; install it with: "
        'pip install "rerank-integrations[llama-index]"'
    ) from exc


from ._adapters import SCORE_KEY, SPAN_KEY, RerankSettings, copy_with, setting_field, usage_of
from ._checks import check_query
from ._documents import Image
from ._exceptions import RerankError
from ._tools import DEFAULT_TOOL_NAME, RerankToolInput, RerankToolRunner, arender, render
from ._trace import Describe, framework_span_boundary, inside_framework_span
from ._types import RerankResponse, RerankResult

__all__ = ["RETRIEVAL_SCORE_KEY", "SCORE_KEY", "RerankPostprocessor"]

#: The metadata key that keeps a node's score from before reranking, when asked for.
RETRIEVAL_SCORE_KEY = "retrieval_score"

dispatcher = get_dispatcher(__name__)


class RerankPostprocessor(RerankSettings, BaseNodePostprocessor):
    """Reorder retrieved nodes by an HTTP rerank API and keep the best ``top_n``.

    Each node's text, ``node.get_content(metadata_mode=metadata_mode)``, is sent with the
    query (an ``ImageNode``'s image to the dialects that take images; with ``rank_fields``,
    the node's chosen metadata fields and its text as a structured document); the client
    batches large calls, retries and raises ``RerankError`` subclasses. The result is a list
    of new ``NodeWithScore`` objects, best first, whose ``score`` is the relevance score.
    Their nodes are copies (same ids) whose metadata also carries ``relevance_score`` (and
    ``retrieval_score`` with ``keep_retrieval_score=True``); those keys are excluded from
    the LLM and embedding views of the node, so they reach neither prompts nor embeddings.
    The nodes passed in are left unchanged.

    Settings not given fall back to the ``RERANK_BASE_URL``, ``RERANK_API_KEY``,
    ``RERANK_MODEL`` and ``RERANK_DIALECT`` environment variables. ``to_dict()`` and
    ``to_json()`` leave out the API key, the headers and any ``client`` passed in.
    """

    metadata_mode: MetadataMode = setting_field("metadata_mode", MetadataMode.EMBED)
    keep_retrieval_score: bool = setting_field("keep_retrieval_score", strict=True)

    @classmethod
    def class_name(cls) -> str:
        """The name LlamaIndex records for this component when it is serialized."""
        return "RerankPostprocessor"

    def postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
        query_str: str | None = None,
    ) -> list[NodeWithScore]:
        """Rerank ``nodes`` for the query; see the class docstring."""
        query_bundle = _query_of(query_bundle, query_str)
        if self._spans_wanted("_postprocess_nodes"):
            with framework_span_boundary():
                return self._postprocess_nodes(nodes, query_bundle)
        return self._reranked_nodes(nodes, query_bundle)

    async def apostprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
        query_str: str | None = None,
    ) -> list[NodeWithScore]:
        """The async twin of :meth:`postprocess_nodes`, awaiting the client's ``arerank``."""
        query_bundle = _query_of(query_bundle, query_str)
        if self._spans_wanted("_apostprocess_nodes"):
            with framework_span_boundary():
                return await self._apostprocess_nodes(nodes, query_bundle)
        return await self._areranked_nodes(nodes, query_bundle)

    @dispatcher.span
    def _postprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        """:meth:`postprocess_nodes` in LlamaIndex's span, for its span handlers."""
        with inside_framework_span():
            return self._reranked_nodes(nodes, query_bundle)

    @dispatcher.span
    async def _apostprocess_nodes(
        self,
        nodes: list[NodeWithScore],
        query_bundle: QueryBundle | None = None,
    ) -> list[NodeWithScore]:
        """:meth:`apostprocess_nodes` in LlamaIndex's span, for its span handlers."""
        with inside_framework_span():
            return await self._areranked_nodes(nodes, query_bundle)

    def _spans_wanted(self, name: str) -> bool:
        """Whether to call the span-wrapped method ``name``: a span handler listens, or a
        subclass overrides it. Without either, LlamaIndex's span is pure cost."""
        if _listened(dispatcher, "span_handlers", NullSpanHandler):
            return True
        for owner in type(self).__mro__:
            if owner is RerankPostprocessor:
                return False
            if name in vars(owner):
                return True
        return False

    def _reranked_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None
    ) -> list[NodeWithScore]:
        query, texts = self._inputs(nodes, query_bundle)
        if not texts:
            return []
        with self._reranking(query, nodes) as reranked:
            outcome = self.rank_or_pass(query.query_str, texts, _describer(nodes))
            reranked.answered(outcome)
            reranked.nodes += self._rebuild(nodes, self.results_of(outcome))
        return reranked.nodes

    async def _areranked_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None
    ) -> list[NodeWithScore]:
        query, texts = self._inputs(nodes, query_bundle)
        if not texts:
            return []
        with self._reranking(query, nodes) as reranked:
            outcome = await self.arank_or_pass(query.query_str, texts, _describer(nodes))
            reranked.answered(outcome)
            reranked.nodes += self._rebuild(nodes, self.results_of(outcome))
        return reranked.nodes

    # -- agent tool ----------------------------------------------------------------------

    def as_tool(
        self, *, name: str = DEFAULT_TOOL_NAME, description: str | None = None
    ) -> FunctionTool:
        """This reranker as a LlamaIndex ``FunctionTool`` for agents (``call`` and ``acall``).

        The tool ranks the ``passages`` it is given for a ``query`` (and an optional
        ``top_n``) with this postprocessor's settings; ``metadata_mode`` plays no part. The
        ``ToolOutput``'s ``raw_output`` is the best passages, ``[{"index",
        "relevance_score", "text"}]``, and its ``content`` that list as one line of JSON,
        the same text the LangChain tool gives (LlamaIndex would otherwise show the LLM a
        Python ``repr``). Bad arguments raise ``ToolInputError`` naming each, which agents
        hand back to the LLM; API failures raise ``RerankError``.

        Raises:
            ValueError: ``name`` (1-64 letters, digits, ``_``, ``-``) or ``description``
                cannot be used.
        """
        runner = RerankToolRunner(self, name=name, description=description)
        return FunctionTool.from_defaults(
            fn=runner.run,
            async_fn=runner.arun,
            name=runner.name,
            description=runner.description,
            fn_schema=RerankToolInput,
            callback=render,
            async_callback=arender,
        )

    # -- helpers shared by both paths -----------------------------------------------------

    def _inputs(
        self, nodes: object, query_bundle: QueryBundle | None
    ) -> tuple[QueryBundle, list[str]]:
        """The query and the text sent for each node, after checking both."""
        query = _require_query(query_bundle)
        check_query(query.query_str)
        return query, self._texts(nodes)

    def _texts(self, nodes: object) -> list[Any]:
        """What is sent for each node, after checking that each is a ``NodeWithScore``: its
        text (or its record, with ``rank_fields``), or the image of an ``ImageNode``."""
        if self.rank_fields:
            return [
                _image_of(item.node)
                or self.record(item.node.get_content(MetadataMode.NONE), item.node.metadata)
                for item in _checked_nodes(nodes)
            ]
        checked = _node_sequence(nodes)
        plain = _plain_texts(checked)
        if plain is not None:
            return plain
        mode = self.metadata_mode
        texts: list[Any] = []
        # Each node checked as it is read, in one pass.
        for position, item in enumerate(checked):
            # isinstance() goes through pydantic's ABC machinery; a NodeWithScore is told
            # by its class alone.
            if type(item) is not NodeWithScore and not isinstance(item, NodeWithScore):
                raise _not_a_node(position, item)
            node = item.node
            # A plain TextNode without metadata renders as its text in every mode; reading
            # it directly skips LlamaIndex's formatting, the adapter's main cost.
            if type(node) is TextNode and not node.metadata:
                texts.append(node.text)
            else:
                texts.append(_image_of(node) or node.get_content(metadata_mode=mode))
        return texts

    @contextmanager
    def _reranking(self, query: QueryBundle, nodes: list[NodeWithScore]) -> Iterator[_Reranked]:
        """The events around one rerank, the same on both paths: the instrumentation start
        and end events and the legacy ``CBEventType.RERANKING`` callback event, each made
        only when a handler listens for it. The block tells what it is given the answer and
        fills its ``nodes``; the end event's ``tags["usage"]`` carries what the call cost."""
        events = _listened(dispatcher, "event_handlers", NullEventHandler)
        if events:
            dispatcher.event(self._start_event(query, nodes))
        reranked = _Reranked()
        if self.callback_manager.handlers:
            with self.callback_manager.event(
                CBEventType.RERANKING, payload=self._callback_payload(query, nodes)
            ) as event:
                yield reranked
                event.on_end(payload={EventPayload.NODES: reranked.nodes})
        else:
            yield reranked
        if events:
            outcome = reranked.outcome
            usage = None if outcome is None else usage_of(outcome, self.currency())
            tags = {} if usage is None else {"usage": usage}
            dispatcher.event(ReRankEndEvent(nodes=reranked.nodes, tags=tags))

    def _model_name(self) -> str:
        """The model named in events: the one asked for, else none (``""``)."""
        return self.model or self.rerank_client.model or ""

    def _start_event(self, query: QueryBundle, nodes: list[NodeWithScore]) -> ReRankStartEvent:
        """The instrumentation event that opens a rerank call."""
        top_n = self.top_n if self.top_n is not None else len(nodes)
        return ReRankStartEvent(
            query=query, nodes=nodes, top_n=top_n, model_name=self._model_name()
        )

    def _callback_payload(self, query: QueryBundle, nodes: list[NodeWithScore]) -> dict[str, Any]:
        """The payload of the legacy ``CBEventType.RERANKING`` start event."""
        return {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self._model_name(),
            EventPayload.QUERY_STR: query.query_str,
            EventPayload.TOP_K: self.top_n,
        }

    def _rebuild(
        self, nodes: Sequence[NodeWithScore], results: list[RerankResult] | RerankError
    ) -> list[NodeWithScore]:
        """New scored copies of the nodes the response keeps, best first; for an error (a
        failed call passed through), copies of the first ``top_n`` in their original order
        with their scores, marked unranked."""
        if isinstance(results, RerankError):
            marks = self.passthrough_metadata(results)
            return [
                NodeWithScore(node=_with_metadata(item.node, marks), score=item.score)
                for item in nodes[: self.passthrough_count(len(nodes))]
            ]
        return [self._rescored(nodes[result.index], result) for result in results]

    def _rescored(self, item: NodeWithScore, result: RerankResult) -> NodeWithScore:
        """A copy of ``item`` scored by ``result``, the input node left as it was."""
        node = item.node
        added: dict[str, Any] = {SCORE_KEY: result.relevance_score}
        if result.span is not None:
            added[SPAN_KEY] = list(result.span)
        if self.keep_retrieval_score:
            added[RETRIEVAL_SCORE_KEY] = item.score
        return NodeWithScore(node=_with_metadata(node, added), score=result.relevance_score)


class _Reranked:
    """One rerank in progress: the client's answer (or the error passed through) and the
    nodes it gives."""

    __slots__ = ("nodes", "outcome")

    def __init__(self) -> None:
        self.nodes: list[NodeWithScore] = []
        self.outcome: RerankResponse | RerankError | None = None

    def answered(self, outcome: RerankResponse | RerankError) -> None:
        self.outcome = outcome


def _describer(nodes: Sequence[NodeWithScore]) -> Describe:
    """The nodes' ids and retrieval scores for traces."""
    return lambda: ([item.node.node_id for item in nodes], [item.score for item in nodes])


def _image_of(node: BaseNode) -> Image | None:
    """The image of an ``ImageNode`` (its URL, its base64 ``image`` or the file at its
    ``image_path``); ``None`` for any other node, or an ImageNode with no image."""
    if not isinstance(node, ImageNode):
        return None
    if node.image_url:
        return Image(url=node.image_url)
    if node.image:
        try:
            data = base64.b64decode(node.image, validate=True)
        except ValueError:
            raise ValueError(f"ImageNode {node.node_id!r}: image is not valid base64") from None
        return Image(data=data, mime_type=node.image_mimetype)
    if node.image_path:
        path = Path(node.image_path)
        guessed = node.image_mimetype or mimetypes.guess_type(path.name)[0]
        return Image(data=path.read_bytes(), mime_type=guessed)
    return None


def _query_of(query_bundle: QueryBundle | None, query_str: str | None) -> QueryBundle | None:
    """The query of a ``postprocess_nodes`` call, as LlamaIndex's own method takes it."""
    if query_str is not None and query_bundle is not None:
        raise ValueError("Cannot specify both query_str and query_bundle")
    return QueryBundle(query_str) if query_str is not None else query_bundle


def _listened(start: Dispatcher, kind: str, null: type) -> bool:
    """Whether a handler other than LlamaIndex's null one gets what ``start`` dispatches:
    its ``kind`` handlers (``"event_handlers"``, ``"span_handlers"``) and those of its
    parents, as far as it propagates."""
    current: Dispatcher | None = start
    while current is not None:
        for handler in getattr(current, kind):  # no any(): this runs twice a call
            if not isinstance(handler, null):
                return True
        current = current.parent if current.propagate else None
    return False


def _require_query(query_bundle: QueryBundle | None) -> QueryBundle:
    """``query_bundle``, or a ``ValueError`` when there is none."""
    if query_bundle is None:
        raise ValueError(
            "RerankPostprocessor needs a query: pass query_bundle=QueryBundle(...) or "
            "query_str=... to postprocess_nodes()"
        )
    return query_bundle


def _checked_nodes(nodes: object) -> Sequence[NodeWithScore]:
    """``nodes``, if it is a list of ``NodeWithScore``; otherwise a ``TypeError`` naming the
    first that is not."""
    checked = _node_sequence(nodes)
    for position, item in enumerate(checked):
        if not isinstance(item, NodeWithScore):
            raise _not_a_node(position, item)
    return cast("Sequence[NodeWithScore]", checked)


def _node_sequence(nodes: object) -> Sequence[object]:
    """``nodes``, if it is a sequence (but not a string); otherwise a ``TypeError``."""
    if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Sequence):
        raise TypeError(f"nodes must be a list of NodeWithScore, got {type(nodes).__name__}")
    return nodes


def _plain_texts(nodes: Sequence[object]) -> list[Any] | None:
    """The texts of ``nodes`` when every one is a ``NodeWithScore`` of a plain ``TextNode``
    without metadata (whose text every metadata mode renders as it is), read in one
    comprehension (a quarter less than the loop of ``_texts``, which reads anything else);
    else ``None``."""
    texts = [
        node.text
        for item in nodes
        if type(item) is NodeWithScore and type(node := item.node) is TextNode and not node.metadata
    ]
    return texts if len(texts) == len(nodes) else None


def _not_a_node(position: int, item: object) -> TypeError:
    """The error for ``nodes[position]``, which is not a ``NodeWithScore``."""
    hint = " (wrap it: NodeWithScore(node=...))" if isinstance(item, BaseNode) else ""
    return TypeError(f"nodes[{position}] must be a NodeWithScore, got {type(item).__name__}{hint}")


def _with_metadata(node: BaseNode, added: dict[str, Any]) -> BaseNode:
    """A copy of ``node`` with ``added`` in new metadata, hidden from LLM and embedding text."""
    return copy_with(
        node,
        {
            "metadata": {**node.metadata, **added},
            "excluded_llm_metadata_keys": _with_keys(node.excluded_llm_metadata_keys, added),
            "excluded_embed_metadata_keys": _with_keys(node.excluded_embed_metadata_keys, added),
        },
    )


def _with_keys(keys: Sequence[str], added: dict[str, Any]) -> list[str]:
    """A new list: ``keys`` followed by those of ``added`` that it lacks."""
    if not keys:
        return list(added)
    return [*keys, *(key for key in added if key not in keys)]
