"""The wire format: reading a rerank request body and writing error answers.

Errors go out in the OpenAI envelope, ``{"error": {"message", "type", "param", "code"}}``,
because that is what OpenAI-compatible gateways send and what clients are written against.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

from starlette.responses import HTMLResponse, JSONResponse

__all__ = [
    "RequestError",
    "RerankRequest",
    "error_response",
    "format_seconds",
    "html_error_page",
    "parse_request",
    "status_code_name",
    "status_phrase",
]


class RequestError(Exception):
    """A request the server refuses; it becomes an OpenAI-style error answer."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str = "invalid_value",
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.param = param

    def response(self) -> JSONResponse:
        """The error answer."""
        return error_response(self.status, self.message, code=self.code, param=self.param)


@dataclass(frozen=True)
class RerankRequest:
    """A request body that passed validation."""

    model: str | None
    query: str
    documents: list[str]
    top_n: int | None
    return_documents: bool
    truncate: bool | None = None
    """Cut too-long documents instead of refusing them; ``None``: the server's default."""


def error_response(
    status: int,
    message: str,
    *,
    error_type: str = "invalid_request_error",
    code: str | int | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An error answer in the OpenAI envelope."""
    body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def status_code_name(status: int) -> str:
    """``status`` as a snake_case code (``"service_unavailable"``), ``"error"`` if unknown."""
    try:
        return HTTPStatus(status).name.lower()
    except ValueError:
        return "error"


def status_phrase(status: int) -> str:
    """The reason phrase of ``status``, ``"Error"`` if unknown."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def format_seconds(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds without a decimal point, else up to 3 decimals."""
    if float(seconds).is_integer():
        return str(int(seconds))
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


_NGINX_PAGE = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def html_error_page(status: int, phrase: str | None = None) -> HTMLResponse:
    """The error page nginx sends in front of an application, byte for byte in its layout."""
    text = _NGINX_PAGE.format(status=status, phrase=phrase or status_phrase(status))
    return HTMLResponse(text, status_code=status)


def parse_request(body: bytes, max_documents: int) -> RerankRequest:
    """Validate a rerank request body.

    Raises:
        RequestError: the body is not a valid request (400), or carries more than
            ``max_documents`` documents (413).
    """
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise RequestError("Request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(payload, dict):
        raise RequestError("Request body must be a JSON object.", code="invalid_type")

    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise RequestError("'model' must be a string.", code="invalid_type", param="model")

    if "query" not in payload:
        raise RequestError(
            "Missing required parameter: 'query'.", code="missing_required_parameter", param="query"
        )
    query = payload["query"]
    if not isinstance(query, str):
        raise RequestError("'query' must be a string.", code="invalid_type", param="query")
    if not query.strip():
        raise RequestError("'query' must not be empty.", code="invalid_value", param="query")

    if "documents" not in payload:
        raise RequestError(
            "Missing required parameter: 'documents'.",
            code="missing_required_parameter",
            param="documents",
        )
    raw_documents = payload["documents"]
    if not isinstance(raw_documents, list):
        raise RequestError(
            "'documents' must be a list of strings.", code="invalid_type", param="documents"
        )
    if len(raw_documents) > max_documents:
        raise RequestError(
            f"Too many documents: got {len(raw_documents)}, "
            f"the limit is {max_documents} per request.",
            status=413,
            code="too_many_documents",
            param="documents",
        )
    documents: list[str] = []
    for index, item in enumerate(raw_documents):
        if isinstance(item, str):
            documents.append(item)
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            documents.append(item["text"])
        else:
            raise RequestError(
                f"'documents[{index}]' must be a string or an object with a string 'text' field.",
                code="invalid_type",
                param=f"documents[{index}]",
            )

    top_n = payload.get("top_n")
    if top_n is not None:
        if not isinstance(top_n, int) or isinstance(top_n, bool):
            raise RequestError(
                "'top_n' must be a positive integer.", code="invalid_type", param="top_n"
            )
        if top_n < 1:
            raise RequestError(
                "'top_n' must be a positive integer.", code="invalid_value", param="top_n"
            )

    return_documents = payload.get("return_documents")
    if return_documents is None:
        return_documents = True
    elif not isinstance(return_documents, bool):
        raise RequestError(
            "'return_documents' must be a boolean.", code="invalid_type", param="return_documents"
        )

    return RerankRequest(
        model, query, documents, top_n, return_documents, _truncate(payload.get("truncate"))
    )


# NIM and Cohere v1 spell the same choice as a string.
_TRUNCATE_WORDS = {"END": True, "NONE": False}


def _truncate(value: object) -> bool | None:
    """The ``truncate`` field: ``true``/``false`` as TEI has it, ``"END"``/``"NONE"`` as NIM
    and Cohere v1 have it, or absent."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.upper() in _TRUNCATE_WORDS:
        return _TRUNCATE_WORDS[value.upper()]
    raise RequestError(
        '\'truncate\' must be a boolean, "END" or "NONE".',
        code="invalid_type",
        param="truncate",
    )
