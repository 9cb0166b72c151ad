"""Wire dialects: how one family of rerank APIs spells requests, answers and errors.

A dialect is data plus pure functions, looked up by name in ``DIALECTS``. The client's HTTP,
retry and batching code is the same for every dialect. A :class:`Dialect` entry states only
how its API differs from Jina's format, the ``generic`` one: every field has that format's
value as its default.

Besides the wire format an entry records what the vendor documents about its endpoint: the
public base URL, the path (which may name settings, ``{model}``, ``{project}``, ``{location}``),
query parameters, size limits (``None`` where none is documented) and how credentials are
presented (``auth``: a key in a header, or a token exchange or signature done by ``_auth``).

Scores are passed through as the server gives them; ``score_scale`` says what to expect.
Raw, unbounded scores also come from llama.cpp servers (``generic``) and from any server
asked for raw scores (TEI, Infinity ``raw_scores=True``, Zhipu ``return_raw_scores=True``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import quote

from ._answers import ParsedRanking, ResponseShapeError, extract_error_message, parse_ranking
from ._constants import ENV_MODEL
from ._exceptions import ConfigurationError

__all__ = [
    "BEDROCK",
    "COHERE",
    "DASHSCOPE",
    "DEEPINFRA",
    "DIALECTS",
    "GENERIC",
    "LIMIT_NAMES",
    "MIXEDBREAD",
    "NIM",
    "PINECONE",
    "PRESETS",
    "TEI",
    "VERTEX",
    "VOYAGE",
    "WATSONX",
    "AuthScheme",
    "Dialect",
    "ImageFormat",
    "RankingRequest",
    "api_key_auth",
    "bearer_auth",
    "document_text",
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
        documents: the documents of this request (one batch); builders read each one with
            :func:`document_text`, so that other kinds of documents need one change there.
        top_n: how many of this batch's best results to return; ``None`` means all.
        model: the model to ask for; ``None`` leaves the choice to the server.
        path: the endpoint's URL path, for dialects whose versions differ by path.
        location: the cloud region or location the client is set to, for bodies that name
            it (a Bedrock model ARN); ``None`` when not known.
        rank_fields: the fields of structured documents to rank on, when the call names them.
        mixed: whether some documents are images or records rather than strings; then
            :meth:`Dialect.body` writes each one in the dialect's form before building.
    """

    query: str
    documents: Sequence[Any]
    top_n: int | None
    model: str | None
    path: str
    location: str | None = None
    rank_fields: Sequence[str] | None = None
    mixed: bool = False


# -- request bodies ---------------------------------------------------------------------------


def document_text(document: str) -> str:
    """The text a body sends for one document: dialects that take only text get only
    strings (images are refused and records rendered before a body is built)."""
    return document


def _texts(request: RankingRequest) -> list[Any]:
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
        "documents": [
            {"text": document} if isinstance(document, str) else document
            for document in request.documents
        ],
    }
    return {**body, **_optional(top_n=_top_n(request)), "return_documents": False}


def _dashscope_body(request: RankingRequest) -> dict[str, Any]:
    return {
        "model": request.model,
        "input": {"query": request.query, "documents": _texts(request)},
        "parameters": {**_optional(top_n=_top_n(request)), "return_documents": False},
    }


def _watsonx_body(request: RankingRequest) -> dict[str, Any]:
    # project_id or space_id come from extra_body; parameters merge one level deep.
    body: dict[str, Any] = {
        "model_id": request.model,
        "query": request.query,
        "inputs": [{"text": document_text(d)} for d in request.documents],
    }
    top_n = _top_n(request)
    if top_n is not None:
        body["parameters"] = {"return_options": {"top_n": top_n}}
    return body


def _vertex_body(request: RankingRequest) -> dict[str, Any]:
    # Records carry their position as their id: answers are mapped back by id.
    records = [
        {"id": str(position), "content": document_text(d)}
        for position, d in enumerate(request.documents)
    ]
    body = {**_optional(model=request.model), "query": request.query, "records": records}
    return {**body, **_optional(topN=_top_n(request)), "ignoreRecordDetailsInResponse": True}


#: How Bedrock names a foundation model given by its id alone.
_BEDROCK_ARN = "arn:aws:bedrock:{location}::foundation-model/{model}"


def _bedrock_model_arn(model: str | None, location: str | None) -> str | None:
    """``model`` as a Bedrock model ARN: an ARN as given, a bare model id
    (``amazon.rerank-v1:0``) in the client's region."""
    if model is None or model.startswith("arn:") or not location:
        return model
    return _BEDROCK_ARN.format(location=location, model=model)


def _bedrock_body(request: RankingRequest) -> dict[str, Any]:
    configuration: dict[str, Any] = {
        "modelConfiguration": {"modelArn": _bedrock_model_arn(request.model, request.location)}
    }
    top_n = _top_n(request)
    if top_n is not None:
        configuration["numberOfResults"] = top_n
    return {
        "queries": [{"type": "TEXT", "textQuery": {"text": request.query}}],
        "sources": [
            {
                "type": "INLINE",
                "inlineDocumentSource": {
                    "type": "TEXT",
                    "textDocument": {"text": document_text(d)},
                },
            }
            for d in request.documents
        ],
        "rerankingConfiguration": {
            "type": "BEDROCK_RERANKING_MODEL",
            "bedrockRerankingConfiguration": configuration,
        },
    }


def _deepinfra_body(request: RankingRequest) -> dict[str, Any]:
    # The model is in the path; the API pairs queries[i] with documents[i].
    texts = [document_text(d) for d in request.documents]
    return {"queries": [request.query] * len(texts), "documents": texts}


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


# -- answers and errors of their own ---------------------------------------------------------


def _watsonx_answer(body: Any) -> ParsedRanking:
    """watsonx.ai: ``results[{index, score}]``, ``model_id`` and ``input_token_count``."""
    parsed = parse_ranking(body)
    if not isinstance(body, Mapping):
        return parsed
    tokens = body.get("input_token_count")
    model = body.get("model_id")
    return replace(
        parsed,
        model=parsed.model or (model if isinstance(model, str) and model else None),
        total_tokens=parsed.total_tokens
        if not isinstance(tokens, int) or isinstance(tokens, bool)
        else tokens,
    )


def _watsonx_error(body: Any) -> str | None:
    """watsonx.ai errors: ``{errors: [{code, message, more_info}], trace, status_code}``."""
    if isinstance(body, Mapping) and isinstance(body.get("errors"), list):
        found = extract_error_message(body["errors"])
        if found:
            return found
    return extract_error_message(body)


def _record_position(record_id: object, position: int) -> int:
    if isinstance(record_id, str) and record_id.isdigit():
        return int(record_id)
    raise ResponseShapeError(f"records[{position}] has id {record_id!r}, not one we sent")


def _vertex_answer(body: Any) -> ParsedRanking:
    """Vertex AI ranking: ``records[{id, score}]``, mapped back to positions by ``id``."""
    if not isinstance(body, Mapping) or "records" not in body:
        return parse_ranking(body)
    records = body["records"]
    if not isinstance(records, list):
        raise ResponseShapeError(f"'records' is a {type(records).__name__}, not a list")
    pairs: list[tuple[object, object]] = []
    for position, record in enumerate(records):
        if not isinstance(record, Mapping) or "score" not in record:
            raise ResponseShapeError(f"records[{position}] has no 'score'")
        pairs.append((_record_position(record.get("id"), position), record["score"]))
    return ParsedRanking(pairs=pairs)


def _bedrock_answer(body: Any) -> ParsedRanking:
    """Bedrock: ``results[{index, relevanceScore}]`` and a ``nextToken`` while more remain."""
    if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
        return parse_ranking(body)
    items = [
        {"index": item.get("index"), "relevance_score": item["relevanceScore"]}
        if isinstance(item, Mapping) and "relevanceScore" in item
        else item
        for item in body["results"]
    ]
    parsed = parse_ranking({**body, "results": items})
    token = body.get("nextToken")
    return replace(parsed, next_page=token if isinstance(token, str) and token else None)


def _bedrock_error(body: Any) -> str | None:
    """AWS errors: ``{message}``, or ``{Message}`` from the gateway in front."""
    if isinstance(body, Mapping) and isinstance(body.get("Message"), str):
        return body["Message"].strip() or None
    return extract_error_message(body)


def _deepinfra_answer(body: Any) -> ParsedRanking:
    """DeepInfra: ``scores`` in input order, no ranking (the merge sorts), ``input_tokens``."""
    if not isinstance(body, Mapping) or "scores" not in body:
        return parse_ranking(body)
    scores = body["scores"]
    if not isinstance(scores, list):
        raise ResponseShapeError(f"'scores' is a {type(scores).__name__}, not a list")
    tokens = body.get("input_tokens")
    return ParsedRanking(
        pairs=list(enumerate(scores)),
        total_tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
    )


# -- images and records ----------------------------------------------------------------------

#: How an API takes images: ``"jina"`` ``{"image": url or base64}`` beside ``{"text": ...}``
#: (jina-reranker-m0); ``"dashscope"`` the same with a ``data:`` URI for bytes
#: (qwen3-vl-rerank); ``"vllm"`` chat-style ``{"content": [{"type": "image_url", ...}]}``
#: beside plain strings (vLLM's multimodal ``/v1/rerank``).
ImageFormat = Literal["jina", "dashscope", "vllm"]


def _wired(documents: Sequence[Any], image_format: ImageFormat | None) -> tuple[list[Any], bool]:
    """The documents of a batch as the dialect writes them, and whether any is a record."""
    from ._documents import Image, Record  # the one place bodies meet non-text documents

    has_image = any(isinstance(document, Image) for document in documents)
    texts_as_objects = has_image and image_format in ("jina", "dashscope")
    wired: list[Any] = []
    records = False
    for document in documents:
        if isinstance(document, str):
            wired.append({"text": document} if texts_as_objects else document)
        elif isinstance(document, Image):
            wired.append(_image(document, image_format))
        else:
            assert isinstance(document, Record)
            records = True
            wired.append(document.wire())
    return wired, records


def _image(image: Any, image_format: ImageFormat | None) -> Any:
    if image_format == "jina":
        return {"image": image.base64}
    if image_format == "dashscope":
        return {"image": image.data_uri}
    if image_format == "vllm":
        return {"content": [{"type": "image_url", "image_url": {"url": image.data_uri}}]}
    raise ValueError("this dialect takes no images")  # refused before planning; never here


# -- the dialect type -------------------------------------------------------------------------


#: How a dialect presents credentials: ``"api_key"`` puts the key in ``auth_headers``; the
#: others are token exchanges or signatures done per request by ``_auth``: IBM Cloud IAM,
#: Google application default credentials, AWS Signature Version 4.
AuthScheme = Literal["api_key", "ibm_iam", "google", "aws_sigv4"]

#: The size limits a dialect can state, by the names the client's budgets use.
LIMIT_NAMES = (
    "max_documents_per_request",
    "max_request_bytes",
    "max_tokens_per_request",
    "max_tokens_per_document",
    "max_characters_per_document",
)

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Dialect:
    """One rerank wire format; each default is the ``generic`` (Jina) format's own.

    Attributes:
        name: the name users pass as ``dialect=``.
        default_path: the endpoint path appended to a host root; it may name settings in
            braces: ``{project}`` and ``{location}`` are filled when the client is built,
            ``{model}`` for each call.
        description: who speaks it and how it differs, for help texts and the README.
        base_url: the vendor's public API root, used when no base URL is given.
        query_params: query parameters every request carries (watsonx's ``version``),
            unless the base URL already sets them.
        max_documents_per_request: documents per request unless the user sets another limit.
        max_request_bytes: the largest request body the API takes; ``None``: not known.
        max_tokens_per_request: the most tokens (query and documents) one request may hold.
        max_tokens_per_document: the most tokens one document may hold.
        max_characters_per_document: the most characters one document may hold.
        score_scale: ``"probability"`` (0..1) or ``"logit"`` (raw, may be negative).
        build_body: the JSON body of one batch.
        parse_body: a decoded 2xx body as a :class:`ParsedRanking`.
        error_message: the server's own message in a decoded error body.
        auth: how credentials are presented (see :data:`AuthScheme`).
        auth_headers: the headers that carry an API key (``auth="api_key"``).
        static_headers: headers sent with every request.
        model_required: whether a request must name a model: a flag, or a function of the
            endpoint's path for APIs whose versions differ.
        explicit_top_n: send the batch's size as ``top_n`` when every result is wanted, for
            servers whose default would cut the answer short or that require the field.
        next_page_field: the request field that asks for the next page of a paged answer
            (Bedrock's ``nextToken``); ``None`` for APIs that answer in one page.
        image_format: how the API takes image documents (see :data:`ImageFormat`);
            ``None``: it takes text only, and images are refused before sending.
        takes_objects: whether the API ranks structured documents as objects (with
            ``rank_fields``): a flag, or a function of the endpoint's path.
    """

    name: str
    default_path: str
    description: str
    base_url: str | None = None
    query_params: Mapping[str, str] = field(default_factory=dict)
    max_documents_per_request: int = 1000
    max_request_bytes: int | None = None
    max_tokens_per_request: int | None = None
    max_tokens_per_document: int | None = None
    max_characters_per_document: int | None = None
    score_scale: Literal["probability", "logit"] = "probability"
    build_body: Callable[[RankingRequest], dict[str, Any]] = generic_body
    parse_body: Callable[[Any], ParsedRanking] = parse_ranking
    error_message: Callable[[Any], str | None] = extract_error_message
    auth: AuthScheme = "api_key"
    auth_headers: Callable[[str], dict[str, str]] = bearer_auth
    static_headers: Mapping[str, str] = field(default_factory=dict)
    model_required: bool | Callable[[str], bool] = False
    explicit_top_n: bool = False
    next_page_field: str | None = None
    image_format: ImageFormat | None = None
    takes_objects: bool | Callable[[str], bool] = False

    @property
    def limits(self) -> dict[str, int | None]:
        """Every size limit by its name in :data:`LIMIT_NAMES`; ``None``: not known."""
        return {name: getattr(self, name) for name in LIMIT_NAMES}

    def path_settings(self) -> frozenset[str]:
        """The settings the default path names in braces (``model``, ``project``, ...)."""
        return frozenset(_PLACEHOLDER.findall(self.default_path))

    def accepts_objects(self, path: str) -> bool:
        """Whether documents that are objects go to ``path`` as objects."""
        takes = self.takes_objects
        return takes(path) if callable(takes) else takes

    def requires_model(self, path: str) -> bool:
        """Whether a request to ``path`` must name a model."""
        if "{model}" in path:
            return True
        required = self.model_required
        return required(path) if callable(required) else required

    def request_url(self, endpoint: str, model: str | None) -> str:
        """The URL of one request: ``endpoint`` with a ``{model}`` in its path filled in.

        Raises:
            ConfigurationError: the path names the model and none was given.
        """
        if "{model}" not in endpoint:
            return endpoint
        if not model:
            raise self._no_model()
        return endpoint.replace("{model}", quote(model, safe="/:@"))

    def body(self, request: RankingRequest) -> dict[str, Any]:
        """The JSON body of one batch, after checking that a required model is named.

        Raises:
            ConfigurationError: the API needs a model and none was given.
        """
        if not request.model and self.requires_model(request.path):
            raise self._no_model()
        if self.explicit_top_n and request.top_n is None:
            request = replace(request, top_n=len(request.documents))
        if not request.mixed:
            return self.build_body(request)
        documents, records = _wired(request.documents, self.image_format)
        body = self.build_body(replace(request, documents=documents))
        if records and request.rank_fields:
            body["rank_fields"] = list(request.rank_fields)
        return body

    def _no_model(self) -> ConfigurationError:
        return ConfigurationError(
            f"the {self.name} dialect needs a model: pass model=... to the client or "
            f"the call, or set {ENV_MODEL}",
            setting="model",
        )


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
    takes_objects=_is_cohere_v1,
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
    description=(
        "Mixedbread: input instead of documents, top_k always sent (a server-side default "
        "could cut the answer), results under data."
    ),
    build_body=_mixedbread_body,
    explicit_top_n=True,
    takes_objects=True,
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
    takes_objects=True,
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
    image_format="dashscope",
)

#: IBM watsonx.ai text rerank: an IAM token exchanged for the API key, raw scores.
WATSONX = Dialect(
    name="watsonx",
    default_path="/ml/v1/text/rerank",
    description=(
        "IBM watsonx.ai: model_id, inputs as {text}, return_options.top_n, raw scores; "
        "the API key is exchanged for an IAM token; project_id or space_id in extra_body."
    ),
    query_params={"version": "2024-05-01"},
    score_scale="logit",
    build_body=_watsonx_body,
    parse_body=_watsonx_answer,
    error_message=_watsonx_error,
    auth="ibm_iam",
    model_required=True,
)

#: Google Vertex AI ranking (Discovery Engine): records with ids, answers by id.
VERTEX = Dialect(
    name="vertex",
    default_path=(
        "/v1/projects/{project}/locations/{location}/rankingConfigs/default_ranking_config:rank"
    ),
    description=(
        "Google Vertex AI ranking API (Discovery Engine): records with ids, topN, answers "
        "mapped back by id; Google credentials; 200 records a request."
    ),
    base_url="https://discoveryengine.googleapis.com",
    max_documents_per_request=200,
    build_body=_vertex_body,
    parse_body=_vertex_answer,
    auth="google",
)

#: AWS Bedrock Agent Runtime rerank: SigV4-signed, sources, paged by nextToken.
BEDROCK = Dialect(
    name="bedrock",
    default_path="/rerank",
    description=(
        "AWS Bedrock Agent Runtime: queries, sources, model ARN, numberOfResults always sent, "
        "nextToken paging; signed with AWS SigV4; 1,000 documents a request."
    ),
    base_url="https://bedrock-agent-runtime.{location}.amazonaws.com",
    max_characters_per_document=32000,
    build_body=_bedrock_body,
    parse_body=_bedrock_answer,
    error_message=_bedrock_error,
    auth="aws_sigv4",
    model_required=True,
    explicit_top_n=True,
    next_page_field="nextToken",
)

#: DeepInfra inference API: the model in the path, scores in input order.
DEEPINFRA = Dialect(
    name="deepinfra",
    default_path="/v1/inference/{model}",
    description=(
        "DeepInfra inference API: the model in the path, queries repeated per document, "
        "scores in input order (sorted on our side)."
    ),
    base_url="https://api.deepinfra.com",
    build_body=_deepinfra_body,
    parse_body=_deepinfra_answer,
    model_required=True,
)


def _plain_body(request: RankingRequest) -> dict[str, Any]:
    """The generic body without ``return_documents``, for APIs that do not document it."""
    body = {**_optional(model=request.model), "query": request.query, "documents": _texts(request)}
    return {**body, **_optional(top_n=_top_n(request))}


#: Services that speak the generic format at their own address, with their own limits and
#: quirks: named so that ``dialect="zhipu"`` gets the right path and limits.
PRESETS: tuple[Dialect, ...] = (
    Dialect(
        name="zhipu",
        default_path="/api/paas/v4/rerank",
        description=(
            "Zhipu AI (BigModel) in the generic format: /api/paas/v4/rerank; 128 documents "
            "of 4,096 characters a request."
        ),
        base_url="https://open.bigmodel.cn",
        max_documents_per_request=128,
        max_characters_per_document=4096,
    ),
    Dialect(
        name="qianfan",
        default_path="/v2/rerankers",
        description=(
            "Baidu Qianfan v2 in the generic format: /v2/rerankers, model required; "
            "64 documents a request."
        ),
        base_url="https://qianfan.baidubce.com",
        max_documents_per_request=64,
        build_body=_plain_body,
        model_required=True,
    ),
    Dialect(
        name="siliconflow",
        default_path="/v1/rerank",
        description="SiliconFlow in the generic format: model required.",
        base_url="https://api.siliconflow.cn",
        model_required=True,
    ),
    Dialect(
        name="together",
        default_path="/v1/rerank",
        description=(
            "Together AI in the generic format: model required; structured documents as "
            "objects with rank_fields."
        ),
        base_url="https://api.together.xyz",
        model_required=True,
        takes_objects=True,
    ),
    Dialect(
        name="fireworks",
        default_path="/inference/v1/rerank",
        description=(
            "Fireworks AI in the generic format: /inference/v1/rerank, model required, "
            "results under data."
        ),
        base_url="https://api.fireworks.ai",
        model_required=True,
    ),
    Dialect(
        name="zeroentropy",
        default_path="/v1/models/rerank",
        description=(
            "ZeroEntropy in the generic format: /v1/models/rerank; 5,000,000 bytes a request."
        ),
        base_url="https://api.zeroentropy.dev",
        max_request_bytes=5_000_000,
        build_body=_plain_body,
    ),
    Dialect(
        name="contextual",
        default_path="/v1/rerank",
        description=(
            "Contextual AI in the generic format: model required, an optional instruction "
            "field (instruction=... on the call)."
        ),
        base_url="https://api.contextual.ai",
        build_body=_plain_body,
        model_required=True,
    ),
    Dialect(
        name="scaleway",
        default_path="/v1/rerank",
        description=(
            "Scaleway Generative APIs in the generic format: top_n always sent (its server "
            "requires it)."
        ),
        base_url="https://api.scaleway.ai",
        explicit_top_n=True,
    ),
    Dialect(
        name="jina",
        default_path="/v1/rerank",
        description=(
            "Jina AI's own API, the generic format at api.jina.ai; image documents for "
            "jina-reranker-m0."
        ),
        base_url="https://api.jina.ai",
        image_format="jina",
    ),
    Dialect(
        name="vllm",
        default_path="/v1/rerank",
        description=(
            "vLLM's /v1/rerank in the generic format, with its multimodal documents "
            "(image_url content parts) for vision-language rerankers."
        ),
        image_format="vllm",
    ),
    Dialect(
        name="infinity",
        default_path="/rerank",
        description=(
            "Infinity (michaelfeil/infinity) in the generic format: /rerank; 2,048 documents "
            "a request."
        ),
        max_documents_per_request=2048,
    ),
    Dialect(
        name="sglang",
        default_path="/v1/rerank",
        description=(
            "SGLang in the generic format: a bare list of raw scores, documents always echoed."
        ),
        score_scale="logit",
        build_body=_plain_body,
    ),
)

#: Every dialect by name.
DIALECTS: dict[str, Dialect] = {
    dialect.name: dialect
    for dialect in (
        GENERIC,
        COHERE,
        VOYAGE,
        TEI,
        NIM,
        MIXEDBREAD,
        PINECONE,
        DASHSCOPE,
        WATSONX,
        VERTEX,
        BEDROCK,
        DEEPINFRA,
        *PRESETS,
    )
}


def get_dialect(name: str) -> Dialect:
    """Look a dialect up by name; an unknown name raises a ``ValueError`` listing the known ones."""
    try:
        return DIALECTS[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown dialect {name!r}; known dialects: {known}") from None
