"""Documents that are not plain text: images, and structured documents (records).

A document is a string, an :class:`Image` or a mapping of fields. Images go only to the
dialects that take them (``jina``, ``vllm``, ``dashscope``); any other refuses them before
anything is sent, naming itself. A mapping goes as an object to the dialects that rank
objects (Cohere v1, ``together``, ``mixedbread``, ``pinecone``), with ``rank_fields``
choosing the fields; every other dialect gets it as text, one ``field: value`` line per
field (the fields of ``rank_fields`` in their order, else all of them), the way Cohere
recommends sending structured data to its v2 API as YAML.

Inside a call an image or a mapping is one hashable value with a key, so that repeated
documents are sent once, the cache knows them, and batches are sized by what they add to a
body: images and records are never cut into windows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from . import _json

__all__ = [
    "IMAGE_TOKENS",
    "Document",
    "Image",
    "Record",
    "check_unicode",
    "document_key",
    "document_label",
    "prepare_documents",
]

#: Tokens one image is counted as in token budgets: the most a common multimodal reranker
#: spends on one (Qwen3-VL downscales to 1,310,720 pixels, one token per 32x32 block).
IMAGE_TOKENS = 1280

#: The first bytes of the image formats we recognise, and their MIME types.
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def _sniffed(data: bytes) -> str | None:
    for magic, mime_type in _MAGIC:
        if data.startswith(magic):
            return mime_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True, slots=True)
class Image:
    """An image document: a URL (``https://...`` or a ``data:`` URI), or the image's bytes.

    ``Image(url="https://example.com/cat.jpg")`` or ``Image(data=png_bytes,
    mime_type="image/png")``; without ``mime_type`` the bytes' own header names it (PNG,
    JPEG, GIF, WebP, BMP).
    """

    url: str | None = None
    data: bytes | None = field(default=None, repr=False)
    mime_type: str | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.data is None):
            raise ValueError("an Image needs exactly one of url=... or data=...")
        if self.url is not None:
            if not isinstance(self.url, str) or not self.url.startswith(
                ("http://", "https://", "data:")
            ):
                raise ValueError(
                    f"Image url must be an http(s) URL or a data: URI, got {self.url!r:.80}"
                )
            return
        if not isinstance(self.data, (bytes, bytearray, memoryview)) or not self.data:
            raise TypeError(f"Image data must be non-empty bytes, got {type(self.data).__name__}")
        object.__setattr__(self, "data", bytes(self.data))
        if self.mime_type is None:
            sniffed = _sniffed(self.data)
            if sniffed is None:
                raise ValueError(
                    "Image data is in no format recognised (PNG, JPEG, GIF, WebP, BMP): "
                    "pass mime_type=..."
                )
            object.__setattr__(self, "mime_type", sniffed)
        elif not isinstance(self.mime_type, str) or not self.mime_type.startswith("image/"):
            raise ValueError(f"Image mime_type must be image/..., got {self.mime_type!r}")

    def __repr__(self) -> str:
        if self.url is not None:
            shown = self.url if len(self.url) <= 80 else self.url[:77] + "..."
            return f"Image(url={shown!r})"
        assert self.data is not None
        return f"Image(data=<{len(self.data):,} bytes>, mime_type={self.mime_type!r})"

    @property
    def base64(self) -> str:
        """The bytes in base64 (for a URL: the URL itself)."""
        if self.data is None:
            return self.url or ""
        return base64.b64encode(self.data).decode("ascii")

    @property
    def data_uri(self) -> str:
        """The image as a URL: the one given, or a ``data:`` URI of its bytes."""
        if self.data is None:
            return self.url or ""
        return f"data:{self.mime_type};base64,{self.base64}"

    @property
    def key(self) -> str:
        """What tells this image apart from others: its URL, or a digest of its bytes."""
        if self.data is None:
            return f"image:url:{self.url}"
        return f"image:sha256:{hashlib.sha256(self.data).hexdigest()}"

    def wire_size(self) -> int:
        """About the bytes it adds to a request body."""
        if self.data is None:
            return len(self.url or "") + 16
        return (len(self.data) + 2) // 3 * 4 + len(self.mime_type or "") + 32


@dataclass(frozen=True, slots=True, eq=False)
class Record:
    """A structured document inside a call: its fields, and their canonical JSON as its key."""

    fields: Mapping[str, Any]
    key: str

    @classmethod
    def of(cls, document: Mapping[Any, Any], position: int) -> Record:
        """The record of the caller's mapping ``document`` (at ``position``), checked."""
        for name in document:
            if not isinstance(name, str) or not name:
                raise TypeError(
                    f"documents[{position}] has a field named {name!r}: field names must be "
                    "non-empty strings"
                )
        try:
            key = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError) as exc:
            raise TypeError(f"documents[{position}] cannot be sent as JSON: {exc}") from None
        return cls(dict(document), "record:" + key)

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and other.key == self.key

    def wire(self) -> dict[str, str]:
        """The object sent to a dialect that ranks objects: every value as text (Cohere
        takes only strings), a string as it is and anything else as JSON."""
        return {name: _text_of(value) for name, value in self.fields.items()}

    def rendered(self, rank_fields: Sequence[str] | None) -> str:
        """The record as text for the other dialects: ``field: value`` lines."""
        names = list(rank_fields) if rank_fields else list(self.fields)
        return "\n".join(
            f"{name}: {_text_of(self.fields[name])}" for name in names if name in self.fields
        )

    def wire_size(self) -> int:
        return len(self.key.encode("utf-8")) + 16


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


#: One document of a call, as the planner sees it.
Document = str | Image | Record


def document_key(document: Document) -> str:
    """The text that identifies a document to the cache: a string is its own key."""
    return document if isinstance(document, str) else document.key


def document_label(document: Document) -> str:
    """A document as shown in traces: its text, an image's URL, a record's JSON."""
    if isinstance(document, str):
        return document
    if isinstance(document, Image):
        return repr(document)
    return document.key.removeprefix("record:")


def check_unicode(text: str, name: str) -> None:
    """Refuse ``text`` if it cannot be sent: a lone surrogate (``"\\udcff"``, as text
    decoded with ``surrogateescape`` or a broken PDF extraction holds) has no UTF-8 form, and
    every JSON encoder fails on it. Costs nothing for ASCII text.

    Raises:
        ValueError: naming ``name`` and where the surrogate is.
    """
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{name} holds a lone surrogate ({text[exc.start]!r} at character {exc.start}), "
            "which has no UTF-8 form and cannot be sent; clean the text first, e.g. "
            "text.encode('utf-8', 'replace').decode('utf-8')"
        ) from None


def _check_texts(texts: Sequence[str]) -> None:
    # Only texts with something beyond ASCII can hold a surrogate; str.isascii() reads a
    # flag, so a call of ASCII documents pays one pass of map().
    if all(map(str.isascii, texts)):
        return
    if _json.dumps is not _json.stdlib_dumps:
        try:
            # orjson: one pass in C. CPython keeps each text's UTF-8 form, which the
            # requests' encoding then reuses: the check moves that cost, it does not add it.
            _json.dumps(texts)
            return
        except (TypeError, ValueError):
            pass  # a surrogate (or a sequence orjson does not take): find which text
    for position, text in enumerate(texts):
        check_unicode(text, f"documents[{position}]")


def check_rank_fields(rank_fields: object) -> tuple[str, ...] | None:
    """``rank_fields`` as a tuple of names, ``None`` for none; else an error naming it."""
    if rank_fields is None:
        return None
    if isinstance(rank_fields, (str, bytes)) or not isinstance(rank_fields, Sequence):
        raise TypeError(
            f"rank_fields must be a list of field names, got {type(rank_fields).__name__}"
        )
    names = tuple(rank_fields)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"rank_fields must be non-empty field names, got {rank_fields!r}")
    return names


_STR = repeat(str)


def prepare_documents(
    documents: object,
    dialect_name: str,
    takes_images: bool,
    takes_objects: bool,
    rank_fields: tuple[str, ...] | None,
) -> tuple[Sequence[Document], Sequence[Any] | None]:
    """The documents as the planner takes them, and the caller's own when they differ.

    Strings pass through untouched (the usual case costs two quick scans: the types, then
    whether any text is more than ASCII, the only texts looked at for lone surrogates). An
    :class:`Image` is kept for a dialect that takes images and refused for any other; a
    mapping becomes a :class:`Record` for a dialect that ranks objects and its
    ``field: value`` text for the rest.

    Raises:
        TypeError: a document is neither a string, an Image nor a mapping.
        ValueError: an image for a dialect that takes none; a record with none of the
            ``rank_fields``; a text, URL or field holding a lone surrogate (no UTF-8 form).
    """
    if isinstance(documents, (str, bytes)) or not isinstance(documents, Sequence):
        raise TypeError(f"documents must be a list of strings, got {type(documents).__name__}")
    if all(map(isinstance, documents, _STR)):  # in C: no Python frame per document
        _check_texts(documents)
        return documents, None
    prepared: list[Document] = []
    for position, document in enumerate(documents):
        if isinstance(document, str):
            check_unicode(document, f"documents[{position}]")
            prepared.append(document)
        elif isinstance(document, Image):
            if document.url is not None:
                check_unicode(document.url, f"documents[{position}] (its url)")
            if not takes_images:
                raise ValueError(
                    f"documents[{position}] is an image, and the {dialect_name} dialect takes "
                    "text only; the dialects that take images are jina, vllm and dashscope"
                )
            prepared.append(document)
        elif isinstance(document, Mapping):
            record = Record.of(document, position)
            check_unicode(record.key, f"documents[{position}]")
            if rank_fields and not any(name in record.fields for name in rank_fields):
                raise ValueError(
                    f"documents[{position}] has none of the rank_fields "
                    f"{list(rank_fields)}: its fields are {sorted(record.fields)}"
                )
            prepared.append(record if takes_objects else record.rendered(rank_fields))
        else:
            raise TypeError(
                f"documents[{position}] must be a string, an Image or a mapping of fields, "
                f"got {type(document).__name__}"
            )
    return prepared, documents
