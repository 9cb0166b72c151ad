"""JSON encoding and decoding, with ``orjson`` when it is installed."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

JSONDecodeError: tuple[type[Exception], ...]

if importlib.util.find_spec("orjson") is not None:
    import orjson

    JSONDecodeError = (orjson.JSONDecodeError, UnicodeDecodeError, RecursionError)

    def dumps(value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON."""
        return orjson.dumps(value)

    def loads(data: bytes | str) -> Any:
        """Decode JSON text."""
        return orjson.loads(data)

else:  # pragma: no cover - exercised when the ``fast`` extra is absent
    JSONDecodeError = (json.JSONDecodeError, UnicodeDecodeError, RecursionError)
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def dumps(value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON."""
        return _encoder.encode(value).encode("utf-8")

    def loads(data: bytes | str) -> Any:
        """Decode JSON text."""
        return json.loads(data)
