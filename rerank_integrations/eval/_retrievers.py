"""A LangChain or LlamaIndex retriever as the first stage: each query retrieved once, its
documents' ids, texts and scores (else their order) kept as the candidates."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from .._exceptions import EvalInputError
from ._data import FirstStage, _ranked

__all__ = ["afirst_stage_from_retriever", "first_stage_from_retriever"]


def _is_llama_index(retriever: object) -> bool:
    return callable(getattr(retriever, "retrieve", None))


def _candidates(
    found: Sequence[Any], query_id: str, id_key: str, corpus: dict[str, str]
) -> list[tuple[str, float]]:
    """``(id, score)`` of each retrieved document, its text added to ``corpus``."""
    scored: list[tuple[str, float]] = []
    for place, item in enumerate(found):
        node = getattr(item, "node", None)
        if node is not None:  # LlamaIndex: NodeWithScore
            metadata = getattr(node, "metadata", None) or {}
            identifier = metadata.get(id_key) or node.node_id
            text = node.get_content()
            score = getattr(item, "score", None)
        else:  # LangChain: Document
            metadata = getattr(item, "metadata", None) or {}
            identifier = metadata.get(id_key) or getattr(item, "id", None)
            text = item.page_content
            score = None
        if identifier is None:
            raise EvalInputError(
                f"query {query_id!r}: retrieved document {place} has no id (set Document.id "
                f"or metadata[{id_key!r}])"
            )
        document_id = str(identifier)
        corpus.setdefault(document_id, text)
        value = float(score) if isinstance(score, (int, float)) else float(len(found) - place)
        scored.append((document_id, value))
    return _ranked(dict(scored).items())


def first_stage_from_retriever(
    retriever: Any, queries: Mapping[str, str], *, id_key: str = "id"
) -> tuple[FirstStage, dict[str, str]]:
    """Retrieve every query with a LangChain (``invoke``) or LlamaIndex (``retrieve``)
    retriever: the first stage, and the corpus of the documents it returned (id to text).

    A document's id is ``metadata[id_key]``, else its own id (``Document.id``,
    ``node_id``); its score is the retriever's (LlamaIndex), else its rank.

    Raises:
        EvalInputError: a retrieved document has no id.
    """
    corpus: dict[str, str] = {}
    candidates: dict[str, list[tuple[str, float]]] = {}
    for query_id, query in queries.items():
        found = retriever.retrieve(query) if _is_llama_index(retriever) else retriever.invoke(query)
        candidates[query_id] = _candidates(found, query_id, id_key, corpus)
    return FirstStage(candidates, name=type(retriever).__name__), corpus


async def afirst_stage_from_retriever(
    retriever: Any, queries: Mapping[str, str], *, id_key: str = "id", concurrency: int = 8
) -> tuple[FirstStage, dict[str, str]]:
    """The async twin of :func:`first_stage_from_retriever` (``ainvoke``/``aretrieve``),
    ``concurrency`` queries at once."""
    limit = asyncio.Semaphore(concurrency)

    async def one(query: str) -> Sequence[Any]:
        async with limit:
            if _is_llama_index(retriever):
                return list(await retriever.aretrieve(query))
            return list(await retriever.ainvoke(query))

    ids = list(queries)
    found = await asyncio.gather(*(one(queries[query_id]) for query_id in ids))
    corpus: dict[str, str] = {}
    candidates = {
        query_id: _candidates(items, query_id, id_key, corpus)
        for query_id, items in zip(ids, found, strict=True)
    }
    return FirstStage(candidates, name=type(retriever).__name__), corpus
