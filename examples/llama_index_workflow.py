"""A LlamaIndex workflow that retrieves, reranks and answers, every step awaited.

    StartEvent(query) -> retrieve -> RetrievedEvent -> rerank -> RerankedEvent
                      -> answer -> StopEvent({"answer", "nodes"})

``rerank`` awaits :meth:`RerankPostprocessor.apostprocess_nodes`, which awaits the HTTP call on
the workflow's event loop (no worker thread), so one workflow serves many queries at once.
With OpenInference's LlamaIndex instrumentor on, each rerank is one ``RERANKER`` span.

Run it offline (the embedded rerank server, the demo corpus, LlamaIndex's mock LLM)::

    python examples/llama_index_workflow.py "What water temperature should I use to brew coffee?"

Needs ``pip install "rerank-integrations[llama-index,server]"``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.llms import LLM
from llama_index.core.schema import NodeWithScore
from llama_index.core.workflow import Event, StartEvent, StopEvent, Workflow, step

from rerank_integrations.llama_index import RerankPostprocessor


class RetrievedEvent(Event):
    """The candidates the retriever found for the query."""

    query: str
    nodes: list[NodeWithScore]


class RerankedEvent(Event):
    """The best candidates, best first."""

    query: str
    nodes: list[NodeWithScore]


class RerankWorkflow(Workflow):
    """retrieve -> rerank -> answer; the result is ``{"answer": str, "nodes": [...]}``."""

    def __init__(
        self, retriever: BaseRetriever, reranker: RerankPostprocessor, llm: LLM, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.retriever = retriever
        self.reranker = reranker
        self.llm = llm

    @step
    async def retrieve(self, event: StartEvent) -> RetrievedEvent:
        query = str(event.get("query"))
        return RetrievedEvent(query=query, nodes=await self.retriever.aretrieve(query))

    @step
    async def rerank(self, event: RetrievedEvent) -> RerankedEvent:
        nodes = await self.reranker.apostprocess_nodes(event.nodes, query_str=event.query)
        return RerankedEvent(query=event.query, nodes=nodes)

    @step
    async def answer(self, event: RerankedEvent) -> StopEvent:
        passages = "\n\n".join(
            f"[{number}] {item.node.get_content()}" for number, item in enumerate(event.nodes, 1)
        )
        prompt = f"Answer from these passages:\n\n{passages}\n\nQuestion: {event.query}\nAnswer:"
        response = await self.llm.acomplete(prompt)
        return StopEvent(result={"answer": response.text, "nodes": event.nodes})


async def run(workflow: RerankWorkflow, queries: list[str]) -> list[dict[str, Any]]:
    """The workflow run for each query, all at once."""
    results = await asyncio.gather(*(workflow.run(query=query) for query in queries))
    return list(results)


def main() -> None:  # pragma: no cover - run by hand; the tests build the workflow
    from llama_index.core import VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.schema import TextNode

    from rerank_integrations.demo import llama_index_embedding, load_passages
    from rerank_integrations.server import serve_in_thread

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "question", nargs="?", default="What water temperature should I use to brew coffee?"
    )
    arguments = parser.parse_args()

    nodes = [TextNode(id_=p.id, text=p.text) for p in load_passages()]
    index = VectorStoreIndex(nodes, embed_model=llama_index_embedding())
    with serve_in_thread() as server:
        reranker = RerankPostprocessor(base_url=server.base_url, top_n=3)
        workflow = RerankWorkflow(
            index.as_retriever(similarity_top_k=20), reranker, MockLLM(max_tokens=8), timeout=60
        )

        async def once() -> dict[str, Any]:
            try:
                (result,) = await run(workflow, [arguments.question])
                return result
            finally:
                await reranker.aclose()

        result = asyncio.run(once())
        reranker.close()
    for item in result["nodes"]:
        print(f"{item.score:.3f}  {item.node.get_content()[:80]}")
    print(result["answer"])


if __name__ == "__main__":
    main()
