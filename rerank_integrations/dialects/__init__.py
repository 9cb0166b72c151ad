"""Wire dialects: how each family of rerank APIs spells requests, answers, errors and
credentials, looked up by name in :data:`DIALECTS`.

A dialect is data plus pure functions (:class:`Dialect`); the client's HTTP, retry and
batching code is the same for every dialect. Each vendor family has a module of its own
holding its wire format, its parser and, for the clouds, its credential flow (watsonx with
the IBM Cloud IAM exchange, vertex with Google credentials, bedrock with AWS SigV4, oci with
OCI's HTTP signature); the
generic (Jina) format and the services that speak it are in one module.

:data:`DIALECTS` is read-only; :func:`register_dialect` adds a dialect of your own::

    from dataclasses import replace
    from rerank_integrations import RerankClient, register_dialect
    from rerank_integrations.dialects import GENERIC

    register_dialect(replace(GENERIC, name="acme", default_path="/api/rank", description="..."))
    client = RerankClient(base_url="https://acme.example", dialect="acme")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._answers import ParsedRanking
from ._base import (
    LIMIT_NAMES,
    AuthScheme,
    BillingRule,
    CredentialSetup,
    Dialect,
    ImageFormat,
    RankingRequest,
    api_key_auth,
    bearer_auth,
    document_text,
    generic_body,
    is_version_segment,
)
from ._cohere import COHERE, VERCEL
from ._dashscope import DASHSCOPE
from ._deepinfra import DEEPINFRA
from ._generic import GENERIC, PRESETS
from ._instructions import (
    QWEN3_RERANKER,
    InstructionStyle,
    PromptTemplate,
    register_prompt_template,
)
from ._mixedbread import MIXEDBREAD
from ._nim import NIM
from ._pinecone import PINECONE
from ._registry import DIALECTS, defer_dialect, get_dialect, register_dialect
from ._tei import TEI
from ._voyage import VOYAGE

if TYPE_CHECKING:
    from ._bedrock import BEDROCK
    from ._oci import OCI
    from ._vertex import VERTEX
    from ._watsonx import WATSONX

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
    "OCI",
    "PINECONE",
    "PRESETS",
    "QWEN3_RERANKER",
    "TEI",
    "VERCEL",
    "VERTEX",
    "VOYAGE",
    "WATSONX",
    "AuthScheme",
    "BillingRule",
    "CredentialSetup",
    "Dialect",
    "ImageFormat",
    "InstructionStyle",
    "ParsedRanking",
    "PromptTemplate",
    "RankingRequest",
    "api_key_auth",
    "bearer_auth",
    "document_text",
    "flat_body",
    "generic_body",
    "get_dialect",
    "is_version_segment",
    "register_dialect",
    "register_prompt_template",
]

# Cloud dialects (watsonx, vertex, bedrock, oci) are deferred: their modules, with the
# credential flows, are imported at their first use (a lookup by name, a read of
# DIALECTS, or their public name from this package, through __getattr__ below), so that
# importing the package or an adapter does not pay for them. A new cloud dialect follows
# the same pattern: an entry in _CLOUD (public name -> dialect name, module), in its place
# in the order of DIALECTS, and its public name in __all__ and under TYPE_CHECKING.
_CLOUD = {
    "WATSONX": ("watsonx", "._watsonx"),
    "VERTEX": ("vertex", "._vertex"),
    "BEDROCK": ("bedrock", "._bedrock"),
    "OCI": ("oci", "._oci"),
}

for _dialect in (GENERIC, COHERE, VOYAGE, TEI, NIM, MIXEDBREAD, PINECONE, DASHSCOPE):
    register_dialect(_dialect)
for _attribute, (_name, _module) in _CLOUD.items():
    defer_dialect(_name, _module, _attribute)
for _dialect in (DEEPINFRA, *PRESETS, VERCEL):
    register_dialect(_dialect)
del _dialect, _attribute, _name, _module


def __getattr__(name: str) -> Any:
    cloud = _CLOUD.get(name)
    if cloud is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return get_dialect(cloud[0])
