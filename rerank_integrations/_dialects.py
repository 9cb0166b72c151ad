"""Wire dialects: how one family of rerank APIs spells requests, answers and errors.

A dialect is data plus pure functions, looked up by name in ``DIALECTS``. The client's HTTP,
retry and batching code is the same for every dialect. A :class:`Dialect` entry states only
how its API differs from Jina's format, the ``generic`` one: every field has that format's
value as its default.

Scores are passed through as the server gives them; ``score_scale`` says what to expect.
Raw, unbounded scores also come from llama.cpp servers (``generic``) and from any server
asked for raw scores (TEI, Infinity ``raw_scores=True``, Zhipu ``return_raw_scores=True``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ._answers import ParsedRanking, extract_error_message, parse_ranking
from ._constants import ENV_MODEL
from ._exceptions import ConfigurationError

__all__ = [
    "COHERE",
    "DASHSCOPE",
    "DIALECTS",
    "GENERIC",
    "MIXEDBREAD",
    "NIM",
    "PINECONE",
    "TEI",
    "VOYAGE",
    "Dialect",
    "RankingRequest",
    "api_key_auth",
    "bearer_auth",
    "get_dialect",
    "is_version_segment",
]

_VERSION_SEGMENT = re.compile(r"v\d+")


def is_version_segment(segment: str) -> bool:
    """Whether a URL path segment names an API version (``v1``, ``v2``, ...)."""
    return _VERSION_SEGMENT.fullmatch(segment) is not None


@dataclass(frozen=True, slots=True)
class RankingRequest:
    """What one HTTP request has to ask for.

    Attributes:
        query: the search query.
        documents: the texts of this request (one batch).
        top_n: how many of this batch's best results to return; ``None`` means all.
        model: the model to ask for; ``None`` leaves the choice to the server.
        path: the endpoint's URL path, for dialects whose versions differ by path.
    """

    query: str
    documents: Sequence[str]
    top_n: int | None
    model: str | None
    path: str


# -- request bodies ---------------------------------------------------------------------------


def _texts(request: RankingRequest) -> list[str]:
    documents = request.documents
    return documents if isinstance(documents, list) else list(documents)


def _top_n(request: RankingRequest) -> int | None:
    """``top_n``, never above the number of documents (some APIs refuse more)."""
    if request.top_n is None:
        return None
    return min(request.top_n, len(request.documents))


def _optional(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def generic_body(request: RankingRequest) -> dict[str, Any]:
    """Jina's body: ``{model?, query, documents, top_n?, return_documents: false}``."""
    return {
        **_optional(model=request.model),
        "query": request.query,
        "documents": _texts(request),
        **_optional(top_n=_top_n(request)),
        "return_documents": False,
    }


def _cohere_body(request: RankingRequest) -> dict[str, Any]:
    if _is_cohere_v1(request.path):
        return generic_body(request)
    body = {"model": request.model, "query": request.query, "documents": _texts(request)}
    return {**body, **_optional(top_n=_top_n(request))}


def _voyage_body(request: RankingRequest) -> dict[str, Any]:
    body = {"model": request.model, "query": request.query, "documents": _texts(request)}
    return {**body, **_optional(top_k=_top_n(request)), "return_documents": False}


def _tei_body(request: RankingRequest) -> dict[str, Any]:
    return {"query": request.query, "texts": _texts(request)}


def _nim_body(request: RankingRequest) -> dict[str, Any]:
    return {
        "model": request.model,
        "query": {"text": request.query},
        "passages": [{"text": text} for text in request.documents],
    }


def _mixedbread_body(request: RankingRequest) -> dict[str, Any]:
    body = {**_optional(model=request.model), "query": request.query, "input": _texts(request)}
    return {**body, **_optional(top_k=_top_n(request))}


def _pinecone_body(request: RankingRequest) -> dict[str, Any]:
    body = {
        "model": request.model,
        "query": request.query,
        "documents": [{"text": text} for text in request.documents],
    }
    return {**body, **_optional(top_n=_top_n(request)), "return_documents": False}


def _dashscope_body(request: RankingRequest) -> dict[str, Any]:
    return {
        "model": request.model,
        "input": {"query": request.query, "documents": _texts(request)},
        "parameters": {**_optional(top_n=_top_n(request)), "return_documents": False},
    }


def _is_cohere_v1(path: str) -> bool:
    """Whether the endpoint is Cohere's v1 rerank: its last version segment is ``v1``."""
    versions = [part for part in path.split("/") if is_version_segment(part)]
    return bool(versions) and versions[-1] == "v1"


# -- auth headers -----------------------------------------------------------------------------


def bearer_auth(api_key: str) -> dict[str, str]:
    """``Authorization: Bearer <key>``, the auth header of most rerank APIs."""
    return {"Authorization": f"Bearer {api_key}"}


def api_key_auth(api_key: str) -> dict[str, str]:
    """``Api-Key: <key>``, Pinecone's auth header."""
    return {"Api-Key": api_key}


# -- the dialect type -------------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """One rerank wire format; each default is the ``generic`` (Jina) format's own.

    Attributes:
        name: the name users pass as ``dialect=``.
        default_path: the endpoint path appended to a host root.
        description: who speaks it and how it differs, for help texts and the README.
        max_documents_per_request: documents per request unless the user sets another limit.
        score_scale: ``"probability"`` (0..1) or ``"logit"`` (raw, may be negative).
        build_body: the JSON body of one batch.
        parse_body: a decoded 2xx body as a :class:`ParsedRanking`.
        error_message: the server's own message in a decoded error body.
        auth_headers: the headers that carry an API key.
        static_headers: headers sent with every request.
        model_required: whether a request must name a model: a flag, or a function of the
            endpoint's path for APIs whose versions differ.
    """

    name: str
    default_path: str
    description: str
    max_documents_per_request: int = 1000
    score_scale: Literal["probability", "logit"] = "probability"
    build_body: Callable[[RankingRequest], dict[str, Any]] = generic_body
    parse_body: Callable[[Any], ParsedRanking] = parse_ranking
    error_message: Callable[[Any], str | None] = extract_error_message
    auth_headers: Callable[[str], dict[str, str]] = bearer_auth
    static_headers: Mapping[str, str] = field(default_factory=dict)
    model_required: bool | Callable[[str], bool] = False

    def requires_model(self, path: str) -> bool:
        """Whether a request to ``path`` must name a model."""
        required = self.model_required
        return required(path) if callable(required) else required

    def body(self, request: RankingRequest) -> dict[str, Any]:
        """The JSON body of one batch, after checking that a required model is named.

        Raises:
            ConfigurationError: the API needs a model and none was given.
        """
        if not request.model and self.requires_model(request.path):
            raise ConfigurationError(
                f"the {self.name} dialect needs a model: pass model=... to the client or "
                f"the call, or set {ENV_MODEL}",
                setting="model",
            )
        return self.build_body(request)


# -- the dialects -----------------------------------------------------------------------------

#: Jina's format, which OpenAI-compatible gateways adopted as their standard.
GENERIC = Dialect(
    name="generic",
    default_path="/v1/rerank",
    description=(
        "Jina's format and OpenAI-compatible gateways: New API, one-api, LiteLLM, Jina, vLLM, "
        "Infinity, Xinference, SiliconFlow, Together, llama.cpp (raw logits), Zhipu and "
        "DashScope's compatible mode."
    ),
)

#: Cohere rerank: v2 by default, v1 when the endpoint path is ``/v1/rerank``.
COHERE = Dialect(
    name="cohere",
    default_path="/v2/rerank",
    description=(
        "Cohere rerank: v2 (model required, no return_documents) by default, v1 when the "
        "endpoint is /v1/rerank; billed in search units."
    ),
    build_body=_cohere_body,
    model_required=lambda path: not _is_cohere_v1(path),
)

#: Voyage AI rerank: ``top_k`` and results under ``data``.
VOYAGE = Dialect(
    name="voyage",
    default_path="/v1/rerank",
    description="Voyage AI: model required, top_k, results under data.",
    build_body=_voyage_body,
    model_required=True,
)

#: Hugging Face text-embeddings-inference: ``texts``, a bare list of ``{index, score}``.
TEI = Dialect(
    name="tei",
    default_path="/rerank",
    description=(
        "Hugging Face text-embeddings-inference: texts, no model and no top_n, a bare list "
        "of scores; 32 texts a request."
    ),
    max_documents_per_request=32,
    build_body=_tei_body,
)

#: NVIDIA NIM reranking: ``query: {text}``, ``passages``, raw logits.
NIM = Dialect(
    name="nim",
    default_path="/v1/ranking",
    description=(
        "NVIDIA NIM / NeMo Retriever: model required, query and passages as {text}, raw "
        "logits; 512 passages a request."
    ),
    max_documents_per_request=512,
    score_scale="logit",
    build_body=_nim_body,
    model_required=True,
)

#: Mixedbread reranking: ``input`` and ``top_k``, results under ``data`` with ``score``.
MIXEDBREAD = Dialect(
    name="mixedbread",
    default_path="/v1/reranking",
    description="Mixedbread: input instead of documents, top_k, results under data.",
    build_body=_mixedbread_body,
)

#: Pinecone inference rerank: ``Api-Key`` header, API version header, document objects.
PINECONE = Dialect(
    name="pinecone",
    default_path="/rerank",
    description=(
        "Pinecone inference: Api-Key and API-version headers, model required, documents as "
        "{text}; 100 documents a request (the smallest model limit)."
    ),
    max_documents_per_request=100,
    build_body=_pinecone_body,
    auth_headers=api_key_auth,
    static_headers={"X-Pinecone-Api-Version": "2025-10"},
    model_required=True,
)

#: Alibaba DashScope native text-rerank: ``input`` and ``parameters``, ``output.results``.
DASHSCOPE = Dialect(
    name="dashscope",
    default_path="/api/v1/services/rerank/text-rerank/text-rerank",
    description=(
        "Alibaba DashScope native API: model required, input and parameters, "
        "output.results; 500 documents a request."
    ),
    max_documents_per_request=500,
    build_body=_dashscope_body,
    model_required=True,
)

#: Every dialect by name.
DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (GENERIC, COHERE, VOYAGE, TEI, NIM, MIXEDBREAD, PINECONE, DASHSCOPE)
}


def get_dialect(name: str) -> Dialect:
    """Look a dialect up by name; an unknown name raises a ``ValueError`` listing the known ones."""
    try:
        return DIALECTS[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown dialect {name!r}; known dialects: {known}") from None
