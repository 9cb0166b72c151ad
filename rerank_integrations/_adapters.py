"""What the LangChain and LlamaIndex adapters share: their settings and the client they build.

The adapters themselves only translate documents or nodes to texts and results back.
"""

from __future__ import annotations

import copy
import logging
import operator
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError, PydanticUndefined

from ._client import RerankClient
from ._constants import LOGGER_NAME
from ._exceptions import ConfigurationError, RerankError
from ._retry import RetryPolicy
from ._secrets import HiddenHeaders, redact_url
from ._settings import CLIENT_SETTINGS, SETTINGS, settings_section, suggestion
from ._trace import Describe, described_documents
from ._types import NOT_GIVEN, NotGiven, RerankResponse, RerankResult
from ._usage import Price, score_threshold_set

#: The metadata key that carries the relevance score on returned documents and nodes.
SCORE_KEY = "relevance_score"
#: The metadata key of ``[start, end]``: the part of a cut document that scored best.
SPAN_KEY = "relevance_span"
#: The metadata key set to ``False`` on documents and nodes passed through unranked.
RERANKED_KEY = "reranked"
#: The metadata key naming the error (its class) that made a call pass documents through.
ERROR_KEY = "rerank_error"

logger = logging.getLogger(LOGGER_NAME)

ModelT = TypeVar("ModelT", bound=BaseModel)


class _CallOptions(TypedDict):
    """The keyword arguments an adapter's settings give each ``rerank``/``arerank`` call."""

    top_n: int | None
    model: str | None
    rank_fields: list[str] | None


class SecretKey:
    """How type checkers see the ``api_key`` field: it takes a ``str`` (or a ``SecretStr``)
    and holds a ``SecretStr``. At run time the field is pydantic's own."""

    @overload
    def __get__(self, instance: None, owner: Any) -> SecretKey: ...
    @overload
    def __get__(self, instance: object, owner: Any) -> SecretStr | None: ...
    def __get__(self, instance: object, owner: Any) -> Any:
        raise NotImplementedError  # pragma: no cover - never at run time

    def __set__(self, instance: object, value: str | SecretStr | None) -> None:
        raise NotImplementedError  # pragma: no cover - never at run time


def setting_field(name: str, default: Any = NOT_GIVEN, **constraints: Any) -> Any:
    """The pydantic field of setting ``name``: its declared default and one-line
    description (:mod:`._settings`), hidden from ``repr`` and serialization when it may
    hold a secret; ``constraints`` as ``Field`` takes them (``ge=1``, ``strict=True``).

    ``default`` is for a default that only the adapter's framework can build
    (``MetadataMode.EMBED``); it must equal the declared one.
    """
    setting = SETTINGS[name]
    if isinstance(default, NotGiven):
        default = setting.default
    elif default != setting.default:
        raise ValueError(f"{name}: default {default!r} is not the declared {setting.default!r}")
    if setting.hidden:
        constraints = {"exclude": True, "repr": False, **constraints}
    return Field(default=default, description=setting.description, **constraints)


class RerankSettings(BaseModel):
    """Settings common to both framework adapters, each declared once in
    :mod:`rerank_integrations._settings`: the field descriptions, ``help()`` and the
    README's settings table come from there.

    ``on_error`` takes ``"raise"`` or ``"passthrough"`` here, where the batch job's takes
    ``"record"``, ``"skip"`` or ``"stop"``: a pipeline step must hand its documents on or
    fail, whereas the job decides what becomes of one row among many."""

    model_config = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        protected_namespaces=(),
        hide_input_in_errors=True,  # inputs may hold the key
        validate_assignment=True,  # a bad value fails when set, not at the next call
    )

    # Numbers and switches are strict: pydantic's lax mode would take True as 1 and "3" as 3.
    model: str | None = setting_field("model")
    top_n: int | None = setting_field("top_n", ge=1, strict=True)
    score_threshold: float | None = setting_field("score_threshold", strict=True)
    on_error: Literal["raise", "passthrough"] = setting_field("on_error")
    base_url: str | None = setting_field("base_url")
    if TYPE_CHECKING:  # a str is taken, a SecretStr is kept (see SecretKey)
        api_key: SecretKey = SecretKey()
    else:
        api_key: SecretStr | None = setting_field("api_key")
    dialect: str | None = setting_field("dialect")
    timeout: float | None = setting_field("timeout", gt=0, strict=True)
    max_retries: int | None = setting_field("max_retries", ge=0, strict=True)
    retry: SkipJsonSchema[RetryPolicy | None] = setting_field("retry")
    max_documents_per_request: int | None = setting_field(
        "max_documents_per_request", ge=1, strict=True
    )
    max_concurrency: int = setting_field("max_concurrency", ge=1, strict=True)
    deadline: float | None = setting_field("deadline", gt=0, strict=True)
    score_transform: Literal["none", "sigmoid"] | None = setting_field("score_transform")
    extra_body: dict[str, Any] | None = setting_field("extra_body")
    instruction: str | None = setting_field("instruction")
    instruction_template: SkipJsonSchema[Any] = setting_field("instruction_template")
    max_response_bytes: int = setting_field("max_response_bytes", ge=1, strict=True)
    max_request_bytes: int | None = setting_field("max_request_bytes", ge=1, strict=True)
    max_tokens_per_request: int | None = setting_field("max_tokens_per_request", ge=1, strict=True)
    max_tokens_per_document: int | None = setting_field(
        "max_tokens_per_document", ge=1, strict=True
    )
    long_documents: Literal["server", "truncate", "chunk", "error"] | None = setting_field(
        "long_documents"
    )
    chunk_overlap: int = setting_field("chunk_overlap", ge=0, strict=True)
    chunk_aggregate: Literal["max", "mean"] = setting_field("chunk_aggregate")
    rate_limit: SkipJsonSchema[Any] = setting_field("rate_limit")
    adaptive_concurrency: bool = setting_field("adaptive_concurrency", strict=True)
    cache: SkipJsonSchema[Any] = setting_field("cache")
    fallbacks: SkipJsonSchema[list[Any] | None] = setting_field("fallbacks")
    trace_content: bool = setting_field("trace_content", strict=True)
    rank_fields: list[str] | None = setting_field("rank_fields")
    async_transport: Literal["httpx", "aiohttp"] = setting_field("async_transport")
    tokenizer: SkipJsonSchema[Any] = setting_field("tokenizer")
    headers: dict[str, str] | None = setting_field("headers")
    auth_url: str | None = setting_field("auth_url")
    credentials: SkipJsonSchema[Any] = setting_field("credentials")
    project: str | None = setting_field("project")
    location: str | None = setting_field("location")
    client: SkipJsonSchema[RerankClient | None] = setting_field("client")
    price: SkipJsonSchema[Price | None] = setting_field("price")

    _rerank_client: RerankClient | None = PrivateAttr(default=None)
    _owns_client: bool = PrivateAttr(default=False)  # built here, not passed as client=
    _built_from: tuple[Any, ...] | None = PrivateAttr(default=None)

    if not TYPE_CHECKING:  # type checkers keep the signature built from the fields

        def __init__(self, /, **data: Any) -> None:
            """Validate the settings and build the client.

            Raises:
                ConfigurationError: the settings cannot work (e.g. no base URL anywhere).
                pydantic.ValidationError: a field has a wrong type or value, or is unknown.
            """
            # Secrets leave this frame's locals at once: error trackers record them.
            if isinstance(data.get("api_key"), str):
                data["api_key"] = SecretStr(data["api_key"])
            if isinstance(data.get("headers"), Mapping):
                data["headers"] = HiddenHeaders(data["headers"])
            try:
                super().__init__(**data)
            except ValidationError as exc:
                # pydantic wraps every ValueError raised while validating, our
                # ConfigurationError included; hand callers the package's own error.
                for detail in exc.errors():
                    error = detail.get("ctx", {}).get("error")
                    if isinstance(error, ConfigurationError):
                        raise error from None
                raise

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Give each of the package's adapters a docstring section on its settings,
        generated from their declaration, for ``help()``."""
        super().__pydantic_init_subclass__(**kwargs)
        doc = cls.__dict__.get("__doc__")
        if cls.__module__.startswith("rerank_integrations.") and doc:
            names = [name for name in cls.model_fields if name in SETTINGS]
            cls.__doc__ = f"{doc.rstrip()}\n\n{settings_section(names)}"

    @model_validator(mode="before")
    @classmethod
    def _refuse_near_misses(cls, data: Any) -> Any:
        """Refuse a misspelt setting with the one it was probably meant to be (``topn`` →
        ``top_n``, ``api_base`` → ``base_url``), as the client refuses a misspelt argument;
        an unknown name like no other is left to ``extra="forbid"``."""
        if isinstance(data, Mapping):
            known = cls.model_fields.keys()
            for name in data:
                meant = None if name in known else suggestion(str(name), known)
                if meant is not None:
                    raise _near_miss(str(name), meant)
        return data

    if not TYPE_CHECKING:  # type checkers keep refusing unknown attributes themselves

        def __setattr__(self, name: str, value: Any) -> None:
            # A misspelt setting set later names the one meant too (pydantic refuses it
            # anyway, without a suggestion).
            fields = type(self).model_fields
            if name not in fields and not name.startswith("_") and not hasattr(type(self), name):
                meant = suggestion(name, fields)
                if meant is not None:
                    raise ValidationError.from_exception_data(
                        type(self).__name__,
                        [{"type": _near_miss(name, meant), "loc": (name,), "input": None}],
                        hide_input=True,
                    )
            super().__setattr__(name, value)

    @field_serializer("base_url")
    def _serialize_base_url(self, base_url: str | None) -> str | None:
        return redact_url(base_url)

    @field_serializer("price")
    def _serialize_price(self, price: Price | None) -> dict[str, str | None] | None:
        # Amounts as decimal text: JSON has no Decimal, and a float would round them.
        if price is None:
            return None
        amounts = {
            "per_search_unit": price.per_search_unit,
            "per_million_tokens": price.per_million_tokens,
            "per_request": price.per_request,
        }
        shown = {name: None if value is None else str(value) for name, value in amounts.items()}
        return {**shown, "currency": price.currency}

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "base_url" else value

    def model_post_init(self, context: Any, /) -> None:
        """Build the client now, so that settings that cannot work fail at construction."""
        super().model_post_init(context)
        self._connect()

    def _client_settings(self) -> tuple[Any, ...]:
        """What the client is built from, as it is now (see :meth:`_client_is_current`)."""
        return _SETTINGS_OF(self.__dict__)  # type: ignore[no-any-return]

    def _client_is_current(self, built_from: tuple[Any, ...] | None) -> bool:
        """Whether the settings are those the client was built from: a dict setting
        compares by value with the copy kept at build time (a change in place is seen), a
        cache by identity (a dict of scores grows)."""
        if built_from is None:
            return False
        settings = self._client_settings()
        return settings[_CACHE_AT] is built_from[_CACHE_AT] and settings == built_from

    def _connect(self) -> RerankClient:
        settings = self._client_settings()
        if self.client is not None:
            clashing = sorted(self.model_fields_set & set(CLIENT_SETTINGS) - {"model"})
            if clashing:
                raise ConfigurationError(
                    f"pass either client=... or connection settings, not both: "
                    f"{', '.join(clashing)} would be ignored; set them on the RerankClient"
                )
        replaced = self._rerank_client if self._owns_client else None
        client = self.client or RerankClient(
            **{name: getattr(self, name) for name in CLIENT_SETTINGS}
        )
        self._rerank_client, self._built_from = client, _snapshot(settings)
        self._owns_client = self.client is None
        if replaced is not None and replaced is not client:
            replaced.close()
        return client

    @property
    def rerank_client(self) -> RerankClient:
        """The ``RerankClient`` that sends this adapter's requests.

        Rebuilt when a setting has been changed since it was built (the one it replaces is
        closed), or after unpickling.
        """
        # Read from pydantic's dict of private attributes: its __getattr__ costs more than
        # the whole check, which runs on every call.
        private = self.__pydantic_private__ or {}
        client: RerankClient | None = private.get("_rerank_client")
        if client is None or not self._client_is_current(private.get("_built_from")):
            client = self._connect()
        return client

    def close(self) -> None:
        """Release the connections of the client this adapter built (not a ``client=``)."""
        if self._owns_client and self._rerank_client is not None:
            self._rerank_client.close()

    async def aclose(self) -> None:
        """The async twin of :meth:`close`, which also closes this event loop's pool."""
        if self._owns_client and self._rerank_client is not None:
            await self._rerank_client.aclose()

    # -- ranking --------------------------------------------------------------------------

    def rank(
        self,
        query: str,
        texts: Sequence[Any],
        *,
        top_n: int | NotGiven | None = NOT_GIVEN,
        rank_fields: Sequence[str] | None = None,
    ) -> list[RerankResult]:
        """The results for ``texts`` (strings, images or mappings of fields) that pass
        ``score_threshold``, best first.

        ``top_n``: how many to keep; left out, the ``top_n`` field; ``None``: all.
        ``rank_fields``: the fields of mappings to rank on.
        """
        with score_threshold_set(self.score_threshold is not None):
            response = self.rerank_client.rerank(
                query, texts, top_n=self._top_n(top_n), model=self.model, rank_fields=rank_fields
            )
        return self.kept(response)

    async def arank(
        self,
        query: str,
        texts: Sequence[Any],
        *,
        top_n: int | NotGiven | None = NOT_GIVEN,
        rank_fields: Sequence[str] | None = None,
    ) -> list[RerankResult]:
        """The async twin of :meth:`rank`."""
        with score_threshold_set(self.score_threshold is not None):
            response = await self.rerank_client.arerank(
                query, texts, top_n=self._top_n(top_n), model=self.model, rank_fields=rank_fields
            )
        return self.kept(response)

    def rank_or_pass(
        self, query: str, texts: Sequence[Any], describe: Describe | None = None
    ) -> RerankResponse | RerankError:
        """The client's answer for ``texts`` (strings, images or records), or the error of
        a failed call when ``on_error="passthrough"``; ``describe`` gives the documents' ids
        and retrieval scores to traces."""
        try:
            with (
                described_documents(describe),
                score_threshold_set(self.score_threshold is not None),
            ):
                return self.rerank_client.rerank(query, texts, **self._call_options())
        except RerankError as error:
            return self._pass_through_or_raise(error, len(texts))

    async def arank_or_pass(
        self, query: str, texts: Sequence[Any], describe: Describe | None = None
    ) -> RerankResponse | RerankError:
        """The async twin of :meth:`rank_or_pass`."""
        try:
            with (
                described_documents(describe),
                score_threshold_set(self.score_threshold is not None),
            ):
                return await self.rerank_client.arerank(query, texts, **self._call_options())
        except RerankError as error:
            return self._pass_through_or_raise(error, len(texts))

    def _call_options(self) -> _CallOptions:
        """What the adapter's settings pass to each call of the client."""
        return {"top_n": self.top_n, "model": self.model, "rank_fields": self.fields_ranked()}

    def currency(self) -> str | None:
        """The currency of the client's ``price``, for usage events; ``None`` without one.

        Asked after a call, it reads the client that made it (no check of the settings,
        which :attr:`rerank_client` makes on every call)."""
        private = self.__pydantic_private__ or {}
        client: RerankClient | None = private.get("_rerank_client")
        price = (client or self.rerank_client).settings.price
        return None if price is None else price.currency

    def fields_ranked(self) -> list[str] | None:
        """The fields a structured document is ranked on: ``rank_fields``, with the
        content's ``text`` last unless it is listed."""
        fields = self.rank_fields
        if not fields:
            return None
        return list(fields) if "text" in fields else [*fields, "text"]

    def record(self, content: str, metadata: Mapping[str, Any]) -> dict[str, Any] | str:
        """One document as sent: with ``rank_fields``, its chosen metadata fields and the
        content as ``text``; without, the content alone."""
        fields = self.rank_fields
        if not fields:
            return content
        record = {name: metadata[name] for name in fields if name != "text" and name in metadata}
        record["text"] = content
        return record

    def results_of(self, outcome: RerankResponse | RerankError) -> list[RerankResult] | RerankError:
        """The kept results of an answer (:meth:`kept`), or the error passed through."""
        return outcome if isinstance(outcome, RerankError) else self.kept(outcome)

    def kept(self, response: RerankResponse) -> list[RerankResult]:
        """The results of ``response`` that pass ``score_threshold``, best first."""
        threshold = self.score_threshold
        if threshold is None:
            return response.results
        return [result for result in response.results if result.relevance_score >= threshold]

    def passthrough_count(self, count: int) -> int:
        """How many inputs a pass-through returns: the first ``top_n``."""
        return count if self.top_n is None else min(self.top_n, count)

    def _top_n(self, top_n: int | NotGiven | None) -> int | None:
        return self.top_n if isinstance(top_n, NotGiven) else top_n

    def _pass_through_or_raise(self, error: RerankError, count: int) -> RerankError:
        # A setting that cannot work is the caller's to fix, whatever on_error says.
        if self.on_error == "raise" or isinstance(error, ConfigurationError):
            raise error
        self.rerank_client._connection.counters.add(passthroughs=1)
        logger.warning(
            "reranking failed, passing %d documents through in their original order: %s: %s",
            count,
            type(error).__name__,
            error,
        )
        return error

    def passthrough_metadata(self, error: RerankError) -> dict[str, Any]:
        """What a document or node passed through unranked carries in its metadata."""
        return {RERANKED_KEY: False, ERROR_KEY: type(error).__name__}


def copy_with(model: ModelT, update: dict[str, Any]) -> ModelT:
    """``model.model_copy(update=update)`` for an ``update`` of fields, built directly: a
    new instance of the same class sharing every value but those updated, with the same
    fields set (and the updated ones), extra and private attributes. pydantic's generic
    copy costs about three times as much, and the adapters make one per document they
    return. A class that copies itself its own way is left to do so."""
    cls = type(model)
    if cls.__copy__ is not BaseModel.__copy__ or cls.model_copy is not BaseModel.model_copy:
        return model.model_copy(update=update)
    copied = cls.__new__(cls)
    extra = model.__pydantic_extra__
    private = getattr(model, "__pydantic_private__", None)
    _set(copied, "__dict__", {**model.__dict__, **update})
    _set(copied, "__pydantic_extra__", None if extra is None else dict(extra))
    _set(copied, "__pydantic_fields_set__", model.__pydantic_fields_set__ | update.keys())
    _set(
        copied,
        "__pydantic_private__",
        None
        if private is None
        else {name: value for name, value in private.items() if value is not PydanticUndefined},
    )
    return copied


_set = object.__setattr__


def _near_miss(name: str, meant: str) -> PydanticCustomError:
    """The error for a setting ``name`` that was probably meant to be ``meant``."""
    return PydanticCustomError(
        "unexpected_argument",
        "unexpected argument '{name}': did you mean {meant}=?",
        {"name": name, "meant": meant},
    )


def usage_of(
    outcome: RerankResponse | RerankError, currency: str | None = None
) -> dict[str, Any] | None:
    """What a call used and cost, for framework events: tokens and billed units when the
    server reported them, the requests sent, the model and the endpoint that answered; then
    the documents sent, the search units (as reported or computed), the input tokens, the
    cost (a ``Decimal``, ``None`` without a price) in ``currency``, and the model asked for."""
    if isinstance(outcome, RerankError):
        return None
    usage = outcome.usage
    return {
        "total_tokens": None if usage is None else usage.total_tokens,
        "billed_units": None if usage is None else usage.billed_units,
        "requests": outcome.requests,
        "model": outcome.model,
        "endpoint": outcome.endpoint,
        "documents": None if usage is None else usage.documents,
        "search_units": None if usage is None else usage.search_units,
        "input_tokens": None if usage is None else usage.input_tokens,
        "cost": outcome.cost,
        "currency": currency if outcome.cost is not None else None,
        "requested_model": outcome.requested_model,
    }


#: Reads ``client`` and every setting of :data:`CLIENT_SETTINGS` at once from an adapter's
#: ``__dict__`` (where pydantic keeps the fields).
_SETTINGS_OF = operator.itemgetter("client", *CLIENT_SETTINGS)
_CACHE_AT = 1 + CLIENT_SETTINGS.index("cache")


def _snapshot(settings: tuple[Any, ...]) -> tuple[Any, ...]:
    """``settings`` with each dict copied as it is now, so that a later change in place
    is seen; the cache is kept as it is (it is compared by identity)."""
    return tuple(
        copy.deepcopy(value) if isinstance(value, dict) and position != _CACHE_AT else value
        for position, value in enumerate(settings)
    )
