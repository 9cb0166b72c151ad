"""Helpers shared by the tests: example data, in-process fakes, a loopback rerank server that
speaks every dialect, and local stand-ins for cloud credentials.

Import from here (``from support import ...``); ``conftest.py`` holds only fixtures.
"""

from .cloud import (
    OCI_UNAUTHENTICATED,
    MetadataServer,
    OCITestKey,
    oci_test_key,
    verify_oci_signature,
    verify_sigv4,
)
from .cloud_services import IAM_UNKNOWN_KEY
from .data import (
    API_KEY,
    SEED_DOCUMENTS,
    SEED_QUERY,
    SEED_RESPONSE,
    keyword_score,
    rank_body,
)
from .fixtures import FIXTURES, Exchange, fixture_names, load_fixture
from .mock_api import MockAPI, MockReply, Sleeps, run_mode
from .rows import make_rows, rankings, read_jsonl, write_jsonl
from .server import (
    DROP,
    Drop,
    HugeBody,
    Received,
    Reply,
    ScriptedReply,
    ScriptedServer,
    Stall,
    TrickleBody,
    TrickleHeaders,
    json_reply,
)
from .services import SERVICES
from .wire import Asked, Reject, Service, TokenEndpoint, as_logit, limit_message, served_score

__all__ = [
    "API_KEY",
    "DROP",
    "FIXTURES",
    "IAM_UNKNOWN_KEY",
    "OCI_UNAUTHENTICATED",
    "SEED_DOCUMENTS",
    "SEED_QUERY",
    "SEED_RESPONSE",
    "SERVICES",
    "Asked",
    "Drop",
    "Exchange",
    "HugeBody",
    "MetadataServer",
    "MockAPI",
    "MockReply",
    "OCITestKey",
    "Received",
    "Reject",
    "Reply",
    "ScriptedReply",
    "ScriptedServer",
    "Service",
    "Sleeps",
    "Stall",
    "TokenEndpoint",
    "TrickleBody",
    "TrickleHeaders",
    "as_logit",
    "fixture_names",
    "json_reply",
    "keyword_score",
    "limit_message",
    "load_fixture",
    "make_rows",
    "oci_test_key",
    "rank_body",
    "rankings",
    "read_jsonl",
    "run_mode",
    "served_score",
    "verify_oci_signature",
    "verify_sigv4",
    "write_jsonl",
]
