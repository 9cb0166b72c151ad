"""JSON encoding and decoding, with ``orjson`` when it is installed.

Both implementations are always defined (``stdlib_dumps``/``stdlib_loads`` and, with
``orjson``, ``orjson_dumps``/``orjson_loads``); ``dumps`` and ``loads`` are the ones in use,
looked up at call time by the callers, so that a test can run the standard library's.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any

JSONDecodeError: tuple[type[Exception], ...]

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def stdlib_dumps(value: Any) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON with the standard library."""
    return _encoder.encode(value).encode("utf-8")


def stdlib_loads(data: bytes | str) -> Any:
    """Decode JSON text with the standard library."""
    return json.loads(data)


if importlib.util.find_spec("orjson") is not None:
    import orjson

    JSONDecodeError = (
        orjson.JSONDecodeError,
        json.JSONDecodeError,
        UnicodeDecodeError,
        RecursionError,
    )

    def orjson_dumps(value: Any) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON with ``orjson``."""
        return orjson.dumps(value)

    def orjson_loads(data: bytes | str) -> Any:
        """Decode JSON text with ``orjson``."""
        return orjson.loads(data)

    dumps = orjson_dumps
    loads = orjson_loads

else:  # pragma: no cover - exercised when the ``fast`` extra is absent
    JSONDecodeError = (json.JSONDecodeError, UnicodeDecodeError, RecursionError)
    dumps = stdlib_dumps
    loads = stdlib_loads
