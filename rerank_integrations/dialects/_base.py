"""The dialect type: how one family of rerank APIs spells requests, answers, errors and
credentials, and the pure pieces the vendors' modules build their formats from.

A :class:`Dialect` entry states only how its API differs from Jina's format, the
``generic`` one: every field has that format's value as its default.

Besides the wire format an entry records what the vendor documents about its endpoint: the
public base URL, the path (which may name settings, ``{model}``, ``{project}``,
``{location}``), query parameters, size limits (``None`` where none is documented) and how
credentials are presented: a key in a header, or a flow of the vendor's own (a token
exchange, a refresh, a signature) set up when the client is built and run per request.

Scores are passed through as the server gives them; ``score_scale`` says what to expect.
The package re-exports what a dialect of one's own needs; the rest serves the vendors'
modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol
from urllib.parse import quote

from pydantic import SecretStr

from .._answers import ParsedRanking, ResponseShapeError, extract_error_message, parse_ranking
from .._auth import Authorizer, AuthSettings
from .._constants import ENV_MODEL
from .._documents import Image, Record
from .._exceptions import ConfigurationError
from ._instructions import InstructionStyle

_VERSION_SEGMENT = re.compile(r"v\d+")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


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
        instruction: the call's instruction, for a dialect that carries it in a field of
            its own (``Dialect.instruction == "field"``); ``None`` otherwise.
        project: the cloud project the client is set to, for bodies that name it (an OCI
            compartment); ``None`` when not set.
    """

    query: str
    documents: Sequence[Any]
    top_n: int | None
    model: str | None
    path: str
    location: str | None = None
    rank_fields: Sequence[str] | None = None
    mixed: bool = False
    instruction: str | None = None
    project: str | None = None


# -- pieces of request bodies ----------------------------------------------------------------


def document_text(document: str) -> str:
    """The text a body sends for one document: dialects that take only text get only
    strings (images are refused and records rendered before a body is built)."""
    return document


def texts(request: RankingRequest) -> list[Any]:
    """The batch's documents as a list, each as the body sends it."""
    documents = request.documents
    return documents if isinstance(documents, list) else list(documents)


def top_n(request: RankingRequest) -> int | None:
    """``top_n``, never above the number of documents (some APIs refuse more)."""
    if request.top_n is None:
        return None
    return min(request.top_n, len(request.documents))


def optional(**fields: Any) -> dict[str, Any]:
    """The fields whose value is not ``None``: the optional parts of a body."""
    return {name: value for name, value in fields.items() if value is not None}


def flat_body(
    request: RankingRequest, documents: str = "documents", top: str = "top_n", **fixed: Any
) -> dict[str, Any]:
    """The flat body most APIs take, in this order: ``{model?, query, <documents>: [...],
    <top>?: n}`` and then the ``fixed`` fields; a field whose value is ``None`` is left out."""
    return {
        **optional(model=request.model),
        "query": request.query,
        documents: texts(request),
        **optional(**{top: top_n(request)}),
        **fixed,
    }


def generic_body(request: RankingRequest) -> dict[str, Any]:
    """Jina's body: ``{model?, query, documents, top_n?, return_documents: false}``."""
    return flat_body(request, return_documents=False)


# -- pieces of answers ----------------------------------------------------------------------


def listed(body: Any, name: str) -> list[Any] | None:
    """The list a dialect's own answer holds under ``name``; ``None`` when ``body`` has no
    such field (then it is read the generic way, :func:`parse_ranking`).

    Raises:
        ResponseShapeError: the field is there but is not a list.
    """
    if not isinstance(body, Mapping) or name not in body:
        return None
    found = body[name]
    if not isinstance(found, list):
        raise ResponseShapeError(f"'{name}' is a {type(found).__name__}, not a list")
    return found


def _index(item: Mapping[str, Any], position: int) -> object:
    return item.get("index")


def scored_pairs(
    body: Any,
    name: str,
    score: str,
    index: Callable[[Mapping[str, Any], int], object] = _index,
) -> list[tuple[object, object]] | None:
    """The ``(index, score)`` pairs of the objects a dialect's own answer lists under
    ``name``, each scored under ``score`` and placed by ``index`` (of the object and its
    position; by default its ``index`` field); ``None`` as :func:`listed`.

    Raises:
        ResponseShapeError: the field is not a list, or an item is not an object with a
            ``score``.
    """
    items = listed(body, name)
    if items is None:
        return None
    pairs: list[tuple[object, object]] = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping) or score not in item:
            raise ResponseShapeError(f"{name}[{position}] has no '{score}'")
        pairs.append((index(item, position), item[score]))
    return pairs


# -- auth headers -----------------------------------------------------------------------------


def bearer_auth(api_key: str) -> dict[str, str]:
    """``Authorization: Bearer <key>``, the auth header of most rerank APIs."""
    return {"Authorization": f"Bearer {api_key}"}


def api_key_auth(api_key: str) -> dict[str, str]:
    """``Api-Key: <key>``, Pinecone's auth header."""
    return {"Api-Key": api_key}


# -- images and records ----------------------------------------------------------------------

#: How an API takes images: ``"jina"`` ``{"image": url or base64}`` beside ``{"text": ...}``
#: (jina-reranker-m0); ``"dashscope"`` the same with a ``data:`` URI for bytes
#: (qwen3-vl-rerank); ``"vllm"`` chat-style ``{"content": [{"type": "image_url", ...}]}``
#: beside plain strings (vLLM's multimodal ``/v1/rerank``).
ImageFormat = Literal["jina", "dashscope", "vllm"]
IMAGE_FORMATS: tuple[ImageFormat, ...] = ("jina", "dashscope", "vllm")


def _wired(documents: Sequence[Any], image_format: ImageFormat | None) -> tuple[list[Any], bool]:
    """The documents of a batch as the dialect writes them, and whether any is a record."""
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


def _image(image: Image, image_format: ImageFormat | None) -> Any:
    if image_format == "jina":
        return {"image": image.base64}
    if image_format == "dashscope":
        return {"image": image.data_uri}
    if image_format == "vllm":
        return {"content": [{"type": "image_url", "image_url": {"url": image.data_uri}}]}
    raise ValueError("this dialect takes no images")  # refused before planning; never here


# -- credentials ------------------------------------------------------------------------------

#: How a dialect presents credentials: ``"api_key"`` puts the key in ``auth_headers``; the
#: others are the vendors' own flows, run per request by the dialect's ``authorizer``: IBM
#: Cloud IAM, Google application default credentials, AWS Signature Version 4, OCI's HTTP
#: signature.
AuthScheme = Literal["api_key", "ibm_iam", "google", "aws_sigv4", "oci_signature"]
AUTH_SCHEMES: tuple[AuthScheme, ...] = (
    "api_key",
    "ibm_iam",
    "google",
    "aws_sigv4",
    "oci_signature",
)

#: The client settings only cloud dialects read; each dialect names those it reads in
#: ``cloud_settings``, and any other one given is refused.
CLOUD_SETTINGS = ("auth_url", "credentials", "project", "location")


@dataclass(frozen=True)
class CredentialSetup:
    """The credential settings of a client being built, as a dialect's ``setup`` reads them
    and returns them completed (credentials found, a project or region filled in).

    Attributes:
        base_url: the base URL the client was given (a region may be read from it).
        api_key: the key, from the argument or the environment; ``None`` if none.
        api_key_given: whether ``api_key=`` was passed (not read from the environment).
        user_authorization: whether the caller's ``headers`` set ``Authorization``.
        auth_url: where a key is exchanged for a token.
        credentials: the cloud credentials given (never shown).
        project: the cloud project.
        location: the cloud region or location.
    """

    base_url: str
    api_key: SecretStr | None
    api_key_given: bool
    user_authorization: bool
    auth_url: str | None = None
    credentials: Any = field(default=None, repr=False)
    project: str | None = None
    location: str | None = None


class ClientCredentials(AuthSettings, Protocol):
    """The settings of a client that choosing its authorizer reads."""

    @property
    def dialect(self) -> Dialect: ...


# -- billing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BillingRule:
    """How a vendor counts the billing units of one request, as its pricing page states it,
    to compute them where an answer does not report them.

    A request costs ``ceil(counted / documents_per_unit)`` units (at least one), where each
    document counts once, or, with ``tokens_per_document``, once per started
    ``tokens_per_document`` tokens (the query's tokens added to each document's when
    ``query_in_document``).

    Attributes:
        unit: the vendor's name for the unit (``"search unit"``, ``"rerank unit"``).
        documents_per_unit: documents one unit covers with its query.
        tokens_per_document: tokens one counted document may hold; ``None``: any length.
        query_in_document: whether the query's tokens count towards each document's.
        source: where the rule is stated.
    """

    unit: str
    documents_per_unit: int = 100
    tokens_per_document: int | None = None
    query_in_document: bool = False
    source: str = ""

    def units(self, query_tokens: int, document_tokens: Sequence[int]) -> int:
        """The units of one request of documents with ``document_tokens`` tokens each."""
        per = self.tokens_per_document
        if per is None:
            counted = len(document_tokens)
        else:
            extra = query_tokens if self.query_in_document else 0
            counted = sum(max(1, -(-(tokens + extra) // per)) for tokens in document_tokens)
        return max(1, -(-counted // self.documents_per_unit))


# -- the dialect type -------------------------------------------------------------------------

#: The size limits a dialect can state, by the names the client's budgets use.
LIMIT_NAMES = (
    "max_documents_per_request",
    "max_request_bytes",
    "max_tokens_per_request",
    "max_tokens_per_document",
    "max_characters_per_document",
)


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
        cloud_settings: which of :data:`CLOUD_SETTINGS` the dialect reads; a client given
            another one is refused.
        setup: completes the credential settings when a client is built (finds the
            credentials, a project, a region), refusing what cannot work; ``None``: nothing
            to find.
        authorizer: the per-request credential flow of a client (``None`` from it: the key
            goes in a plain header); ``None``: always a plain header.
        billing: how the vendor counts billing units (:class:`BillingRule`), to compute
            ``usage.search_units`` where an answer does not report them; ``None``: no
            documented rule, so unreported units stay unknown.
        instruction: how a call's instruction is carried: ``"prefix"`` before the query,
            ``"field"`` in a body field ``build_body`` writes from ``request.instruction``,
            or ``"refuse"`` (see :mod:`._instructions`).
        prompt_templates: whether the server hands the texts to the model as they are, so
            that a model's documented prompt template carries the instruction (vLLM, TEI,
            SGLang serving Qwen3-Reranker).
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
    cloud_settings: frozenset[str] = frozenset()
    setup: Callable[[CredentialSetup], CredentialSetup] | None = None
    authorizer: Callable[[AuthSettings, str], Authorizer | None] | None = None
    billing: BillingRule | None = None
    instruction: InstructionStyle = "prefix"
    prompt_templates: bool = False

    @property
    def limits(self) -> dict[str, int | None]:
        """Every size limit by its name in :data:`LIMIT_NAMES`; ``None``: not known."""
        return {name: getattr(self, name) for name in LIMIT_NAMES}

    @property
    def key_in_header(self) -> bool:
        """Whether an API key goes in the request's headers (``auth_headers``): for
        ``"api_key"``, and for ``"google"``, whose key is an access token."""
        return self.auth in ("api_key", "google")

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
