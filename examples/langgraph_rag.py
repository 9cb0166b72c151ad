"""A LangGraph RAG graph with a reranking step and a score gate instead of an LLM grader.

    retrieve -> rerank -> grade --(best score >= min_score)--> generate -> END
                                \\--(otherwise)-------------> decline  -> END

``retrieve`` takes 20 candidates from a vector store, ``rerank`` keeps the best few with a
:class:`~rerank_integrations.langchain.RerankCompressor`, ``grade`` routes on the best
relevance score (no LLM call spent on grading), and ``generate`` asks the chat model to answer
from the kept passages. Each node has a sync and an async body, so ``graph.invoke`` and
``graph.ainvoke`` both work, and the reranker's usage reaches the graph's callback handlers
as the ``"rerank_usage"`` event of the ``rerank`` node's run.

Run it offline (the embedded rerank server, the demo corpus, a scripted chat model)::

    python examples/langgraph_rag.py "What water temperature should I use to brew coffee?"

Needs ``pip install "rerank-integrations[langchain,server]" langgraph``.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import Any, TypedDict

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from rerank_integrations.langchain import SCORE_KEY, RerankCompressor

DECLINED = "I found nothing relevant enough to answer that."


class RAGState(TypedDict, total=False):
    """What flows through the graph."""

    question: str
    candidates: list[Document]
    documents: list[Document]
    answer: str


def build_graph(
    retriever: BaseRetriever,
    reranker: RerankCompressor,
    model: BaseChatModel,
    *,
    min_score: float,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """retrieve -> rerank -> grade -> generate (or decline), compiled."""

    def retrieve(state: RAGState) -> RAGState:
        return {"candidates": retriever.invoke(state["question"])}

    async def aretrieve(state: RAGState) -> RAGState:
        return {"candidates": await retriever.ainvoke(state["question"])}

    def rerank(state: RAGState) -> RAGState:
        kept = reranker.compress_documents(state["candidates"], state["question"])
        return {"documents": list(kept)}

    async def arerank(state: RAGState) -> RAGState:
        kept = await reranker.acompress_documents(state["candidates"], state["question"])
        return {"documents": list(kept)}

    def grade(state: RAGState) -> str:
        documents = state.get("documents") or []
        best = documents[0].metadata.get(SCORE_KEY) if documents else None
        return "generate" if best is not None and best >= min_score else "decline"

    def generate(state: RAGState) -> RAGState:
        reply = model.invoke(_prompt(state["question"], state["documents"]))
        return {"answer": reply.text}

    async def agenerate(state: RAGState) -> RAGState:
        reply = await model.ainvoke(_prompt(state["question"], state["documents"]))
        return {"answer": reply.text}

    def decline(state: RAGState) -> RAGState:
        return {"answer": DECLINED}

    builder = StateGraph(RAGState)
    builder.add_node("retrieve", RunnableLambda(retrieve, afunc=aretrieve))
    builder.add_node("rerank", RunnableLambda(rerank, afunc=arerank))
    builder.add_node("generate", RunnableLambda(generate, afunc=agenerate))
    builder.add_node("decline", decline)
    builder.add_edge(START, "retrieve")
    builder.add_edge("retrieve", "rerank")
    builder.add_conditional_edges("rerank", grade, ["generate", "decline"])
    builder.add_edge("generate", END)
    builder.add_edge("decline", END)
    return builder.compile()


def _prompt(question: str, documents: Sequence[Document]) -> list[Any]:
    passages = "\n\n".join(f"[{n}] {d.page_content}" for n, d in enumerate(documents, 1))
    return [
        SystemMessage(f"Answer from these passages, citing them by number:\n\n{passages}"),
        HumanMessage(question),
    ]


def main() -> None:  # pragma: no cover - run by hand; the tests call build_graph
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.vectorstores import InMemoryVectorStore

    from rerank_integrations.demo import langchain_embeddings, load_passages
    from rerank_integrations.server import serve_in_thread

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "question", nargs="?", default="What water temperature should I use to brew coffee?"
    )
    parser.add_argument("--min-score", type=float, default=0.1)
    arguments = parser.parse_args()

    passages = load_passages()
    store = InMemoryVectorStore(langchain_embeddings())
    store.add_documents([Document(id=p.id, page_content=p.text) for p in passages])
    model = GenericFakeChatModel(messages=iter([AIMessage("(the model's answer, citing [1])")]))
    with serve_in_thread() as server:
        reranker = RerankCompressor(base_url=server.base_url, top_n=3)
        graph = build_graph(
            store.as_retriever(search_kwargs={"k": 20}),
            reranker,
            model,
            min_score=arguments.min_score,
        )
        state = asyncio.run(graph.ainvoke({"question": arguments.question}))
        reranker.close()
    for document in state["documents"]:
        print(f"{document.metadata[SCORE_KEY]:.3f}  {document.page_content[:80]}")
    print(state["answer"])


if __name__ == "__main__":
    main()
