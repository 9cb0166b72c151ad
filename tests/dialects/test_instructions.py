"""Instructions: how every dialect carries one on the wire (its own field, the model's prompt
template, a prefix before the query) or refuses it before sending; the client's default,
the call's own and the adapters'; the cache key, the budgets and the prompt templates."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from support import SERVICES, ScriptedServer, oci_test_key, run_mode

from rerank_integrations import ConfigurationError, PromptTemplate, RerankCache, RerankClient
from rerank_integrations._budget import estimate_tokens
from rerank_integrations.dialects import (
    DIALECTS,
    QWEN3_RERANKER,
    _instructions,
    register_prompt_template,
)

QUERY = "how do I descale an espresso machine"
DOCUMENTS = ["Run citric acid through the boiler.", "Espresso tastes bitter.", "Descale monthly."]
INSTRUCTION = "Prefer maintenance guides."
MODEL = "test-reranker"
QWEN = "Qwen/Qwen3-Reranker-0.6B"

#: How each dialect carries an instruction: ``prefix`` before the query; ``field`` in its own
#: body field (where, as a path into the body); ``refuse``. ``templates``: dialects whose
#: servers take a model's prompt template (Qwen3-Reranker).
CARRIED: dict[str, str] = {
    "generic": "prefix",
    "cohere": "prefix",
    "voyage": "prefix",
    "tei": "prefix",
    "nim": "refuse",
    "mixedbread": "prefix",
    "pinecone": "refuse",
    "dashscope": "field:parameters.instruct",
    "watsonx": "refuse",
    "vertex": "refuse",
    "bedrock": "refuse",
    "oci": "refuse",
    "deepinfra": "field:instruction",
    "zhipu": "prefix",
    "qianfan": "prefix",
    "siliconflow": "prefix",
    "together": "prefix",
    "fireworks": "prefix",
    "zeroentropy": "prefix",
    "contextual": "field:instruction",
    "scaleway": "prefix",
    "jina": "prefix",
    "vllm": "prefix",
    "infinity": "prefix",
    "sglang": "prefix",
    "openrouter": "prefix",
    "vercel": "prefix",
}
TEMPLATES = {"generic", "vllm", "tei", "sglang", "infinity"}
SIGNED = {"bedrock", "oci"}  # requests signed with cloud credentials, never an API key
SENDING = sorted(name for name, how in CARRIED.items() if how != "refuse")


def test_the_table_covers_every_dialect() -> None:
    assert set(CARRIED) == set(DIALECTS)
    assert {name for name, d in DIALECTS.items() if d.prompt_templates} == TEMPLATES
    for name, how in CARRIED.items():
        assert DIALECTS[name].instruction == how.split(":")[0], name


class Recorder:
    """A ``MockTransport`` handler answering as the dialect's test service does, keeping
    each request's body and what the service read from it."""

    def __init__(self, dialect: str) -> None:
        self.service = SERVICES[dialect]
        self.bodies: list[Any] = []
        self.asked: list[Any] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        asked = self.service.read(body, request.url.path)
        self.asked.append(asked)
        return httpx.Response(200, json=self.service.answer(asked))


@pytest.fixture
def clients() -> Iterator[Callable[..., tuple[RerankClient, Recorder]]]:
    built: list[RerankClient] = []

    def make(dialect: str, **kwargs: Any) -> tuple[RerankClient, Recorder]:
        recorder = Recorder(dialect)
        transport = httpx.MockTransport(recorder)
        kwargs.setdefault("model", MODEL)
        client = RerankClient(
            "https://rerank.test",
            api_key="sk-test",
            dialect=dialect,
            max_retries=0,
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            **kwargs,
        )
        built.append(client)
        return client, recorder

    yield make
    for client in built:
        client.close()


def call(mode: str, client: RerankClient, **kwargs: Any) -> Any:
    return run_mode(
        mode,
        lambda: client.rerank(QUERY, DOCUMENTS, top_n=2, **kwargs),
        lambda: client.arerank(QUERY, DOCUMENTS, top_n=2, **kwargs),
    )


def _at(body: Any, path: str) -> Any:
    for part in path.split("."):
        body = body.get(part) if isinstance(body, dict) else None
    return body


@pytest.mark.parametrize("name", SENDING)
def test_the_instruction_on_the_wire(
    name: str, mode: str, clients: Callable[..., tuple[RerankClient, Recorder]]
) -> None:
    client, recorder = clients(name, instruction=INSTRUCTION)
    response = call(mode, client)
    assert len(response.results) == 2
    (body,), (asked,) = recorder.bodies, recorder.asked
    how = CARRIED[name]
    if how == "prefix":
        assert asked.query == f"{INSTRUCTION}\n{QUERY}"
    else:
        assert asked.query == QUERY
        assert _at(body, how.split(":")[1]) == INSTRUCTION
    assert asked.documents == DOCUMENTS
    assert INSTRUCTION not in json.dumps(body.get("documents", ""))


@pytest.mark.parametrize("name", SENDING)
def test_no_instruction_leaves_the_request_as_it_was(
    name: str, mode: str, clients: Callable[..., tuple[RerankClient, Recorder]]
) -> None:
    client, recorder = clients(name)
    call(mode, client)
    assert recorder.asked[0].query == QUERY
    assert "instruction" not in json.dumps(recorder.bodies[0])
    assert "instruct" not in json.dumps(recorder.bodies[0])


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_qwen3_reranker_gets_its_prompt_template(
    name: str, mode: str, clients: Callable[..., tuple[RerankClient, Recorder]]
) -> None:
    client, recorder = clients(name, model=QWEN)
    call(mode, client, instruction=INSTRUCTION)
    asked = recorder.asked[0]
    assert asked.query == (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the "
        'Query and the Instruct provided. Note that the answer can only be "yes" or "no".'
        "<|im_end|>\n<|im_start|>user\n"
        f"<Instruct>: {INSTRUCTION}\n<Query>: {QUERY}\n"
    )
    suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert asked.documents == [f"<Document>: {text}{suffix}" for text in DOCUMENTS]


@pytest.mark.parametrize("name", sorted(set(SENDING) - TEMPLATES))
def test_other_servers_never_get_the_template(
    name: str, mode: str, clients: Callable[..., tuple[RerankClient, Recorder]]
) -> None:
    client, recorder = clients(name, model=QWEN)
    call(mode, client, instruction=INSTRUCTION)
    assert recorder.asked[0].documents == DOCUMENTS
    assert "<Instruct>" not in recorder.asked[0].query


@pytest.mark.parametrize("name", sorted(n for n, how in CARRIED.items() if how == "refuse"))
def test_a_dialect_that_cannot_carry_one_refuses_it_before_sending(
    name: str, mode: str, clients: Callable[..., tuple[RerankClient, Recorder]]
) -> None:
    settings: dict[str, Any] = {}
    if name == "watsonx":
        settings = {"auth_url": "https://iam.test/identity/token"}
    elif name == "vertex":
        settings = {"project": "p"}
    elif name in SIGNED:
        settings = {
            "location": "us-east-1",
            "credentials": {"aws_access_key_id": "AKID", "aws_secret_access_key": "s"},
        }
        if name == "oci":
            settings = {"project": "ocid1.compartment.oc1..c", "credentials": oci_test_key().config}
        with pytest.raises(ConfigurationError):  # signed requests take no key: built without
            clients(name, **settings)
        transport = httpx.MockTransport(lambda request: pytest.fail("nothing is sent"))
        client = RerankClient(
            "https://rerank.test",
            dialect=name,
            model=MODEL,
            http_client=httpx.Client(transport=transport),
            async_http_client=httpx.AsyncClient(transport=transport),
            **settings,
        )
        recorder = Recorder(name)
    if name not in SIGNED:
        client, recorder = clients(name, **settings)
    with pytest.raises(ConfigurationError, match=f"the {name} dialect cannot carry an instruction"):
        call(mode, client, instruction=INSTRUCTION)
    assert recorder.bodies == []
    key = {} if name in SIGNED else {"api_key": "sk-test"}
    with pytest.raises(ConfigurationError, match=f"the {name} dialect") as info:
        RerankClient(
            "https://rerank.test", dialect=name, instruction=INSTRUCTION, **key, **settings
        )
    assert info.value.setting == "instruction"
    client.close()


# -- the client's, the call's, the environment's ---------------------------------------------


def test_the_call_overrides_the_client(
    mode: str, clients: Callable[..., tuple[RerankClient, Recorder]]
) -> None:
    client, recorder = clients("generic", instruction="client's")
    call(mode, client)
    call(mode, client, instruction="call's")
    call(mode, client, instruction=None)
    assert [asked.query for asked in recorder.asked] == [
        f"client's\n{QUERY}",
        f"call's\n{QUERY}",
        QUERY,
    ]
    assert client.settings.instruction == "client's"


def test_the_environment_gives_the_default(
    mode: str,
    monkeypatch: pytest.MonkeyPatch,
    clients: Callable[..., tuple[RerankClient, Recorder]],
) -> None:
    monkeypatch.setenv("RERANK_INSTRUCTION", "from the environment")
    client, recorder = clients("generic")
    call(mode, client)
    assert recorder.asked[0].query == f"from the environment\n{QUERY}"


@pytest.mark.parametrize("bad", [3, b"x", ["x"]])
def test_an_instruction_that_is_not_text_is_refused(
    bad: Any, mode: str, clients: Callable[..., tuple[RerankClient, Recorder]]
) -> None:
    client, recorder = clients("generic")
    with pytest.raises(TypeError, match="instruction must be a string"):
        call(mode, client, instruction=bad)
    with pytest.raises(ValueError, match="instruction"):
        call(mode, client, instruction="broken \udcff text")
    assert recorder.bodies == []


# -- templates ------------------------------------------------------------------------------


@pytest.fixture
def templates() -> Iterator[None]:
    before = list(_instructions._TEMPLATES)
    yield
    _instructions._TEMPLATES[:] = before


ACME = PromptTemplate(name="acme", query="[{instruction}] {query}", document="doc: {document}")


def test_a_template_setting_wins_and_none_turns_templates_off(
    mode: str, clients: Callable[..., tuple[RerankClient, Recorder]], templates: None
) -> None:
    client, recorder = clients("vllm", model=QWEN, instruction_template=ACME)
    call(mode, client, instruction="x")
    assert recorder.asked[0].query == f"[x] {QUERY}"
    assert recorder.asked[0].documents == [f"doc: {text}" for text in DOCUMENTS]
    plain, recorded = clients("vllm", model=QWEN, instruction_template="none")
    call(mode, plain, instruction="x")
    assert recorded.asked[0].query == f"x\n{QUERY}"
    assert recorded.asked[0].documents == DOCUMENTS


def test_a_registered_template_is_chosen_by_the_model_name_or_its_own(
    mode: str, clients: Callable[..., tuple[RerankClient, Recorder]], templates: None
) -> None:
    register_prompt_template(r"^acme-", ACME)
    client, recorder = clients("generic", model="acme-reranker")
    call(mode, client, instruction="x")
    assert recorder.asked[0].query == f"[x] {QUERY}"
    named, recorded = clients("tei", model="other", instruction_template="acme")
    call(mode, named, instruction="y")
    assert recorded.asked[0].query == f"[y] {QUERY}"


def test_bad_template_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="names no prompt template"):
        RerankClient("https://h", instruction_template="nonesuch")
    with pytest.raises(ConfigurationError, match="PromptTemplate"):
        RerankClient("https://h", instruction_template=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must name"):
        PromptTemplate(name="bad", query="{query}", document="{document}")
    with pytest.raises(TypeError, match="PromptTemplate"):
        register_prompt_template("x", "not a template")  # type: ignore[arg-type]


def test_the_qwen3_template_is_the_documented_one() -> None:
    assert _instructions.template_for("Qwen/Qwen3-Reranker-8B") is QWEN3_RERANKER
    assert _instructions.template_for("qwen3-reranker:0.6b") is QWEN3_RERANKER
    assert _instructions.template_for("BAAI/bge-reranker-v2-m3") is None
    assert QWEN3_RERANKER.default_instruction == (
        "Given a web search query, retrieve relevant passages that answer the query"
    )


# -- budgets and the cache -------------------------------------------------------------------


def test_long_document_budgets_count_the_template(
    mode: str, clients: Callable[..., tuple[RerankClient, Recorder]]
) -> None:
    long_text = " ".join(f"word{i}" for i in range(150))
    # Room for the query and the text with ten tokens to spare: not for a template's.
    limit = estimate_tokens(QUERY) + estimate_tokens(long_text) + 3 + 10
    client, recorder = clients(
        "vllm", model=QWEN, max_tokens_per_document=limit, long_documents="chunk"
    )
    run_mode(
        mode,
        lambda: client.rerank(QUERY, [long_text], instruction=INSTRUCTION),
        lambda: client.arerank(QUERY, [long_text], instruction=INSTRUCTION),
    )
    asked = recorder.asked[0]
    assert len(asked.documents) > 1  # the template's tokens made the document too long
    for document in asked.documents:
        # The query side and each wrapped document together stay within the model's limit.
        assert estimate_tokens(asked.query) + estimate_tokens(document) + 3 <= limit
    plain, recorded = clients(
        "vllm", model=QWEN, max_tokens_per_document=limit, long_documents="chunk"
    )
    run_mode(
        mode,
        lambda: plain.rerank(QUERY, [long_text]),
        lambda: plain.arerank(QUERY, [long_text]),
    )
    assert len(recorded.asked[0].documents) == 1  # the same document fits without them


def test_the_instruction_is_part_of_the_cache_key(
    mode: str, clients: Callable[..., tuple[RerankClient, Recorder]]
) -> None:
    client, recorder = clients("generic", cache=RerankCache())
    call(mode, client, instruction="a")
    call(mode, client, instruction="a")  # answered from the cache
    call(mode, client, instruction="b")
    call(mode, client)
    call(mode, client)
    assert [asked.query for asked in recorder.asked] == [f"a\n{QUERY}", f"b\n{QUERY}", QUERY]
    assert client.stats().cache_hits == 2 * len(DOCUMENTS)


# -- the adapters ----------------------------------------------------------------------------


def test_the_langchain_adapter_sends_its_instruction(
    mode: str, scripted_server: ScriptedServer
) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    from rerank_integrations.langchain import RerankCompressor

    compressor = RerankCompressor(base_url=scripted_server.base_url, instruction=INSTRUCTION)
    documents = [Document(page_content=text) for text in DOCUMENTS]
    try:
        run_mode(
            mode,
            lambda: compressor.compress_documents(documents, QUERY),
            lambda: compressor.acompress_documents(documents, QUERY),
        )
    finally:
        compressor.close()
    assert [r.asked.query for r in scripted_server.received if r.asked] == [
        f"{INSTRUCTION}\n{QUERY}"
    ]


def test_the_llama_index_adapter_sends_its_instruction(
    mode: str, scripted_server: ScriptedServer
) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import NodeWithScore, TextNode

    from rerank_integrations.llama_index import RerankPostprocessor

    postprocessor = RerankPostprocessor(base_url=scripted_server.base_url, instruction=INSTRUCTION)
    nodes = [NodeWithScore(node=TextNode(text=text)) for text in DOCUMENTS]
    try:
        run_mode(
            mode,
            lambda: postprocessor.postprocess_nodes(nodes, query_str=QUERY),
            lambda: postprocessor.apostprocess_nodes(nodes, query_str=QUERY),
        )
    finally:
        postprocessor.close()
    assert [r.asked.query for r in scripted_server.received if r.asked] == [
        f"{INSTRUCTION}\n{QUERY}"
    ]


def test_a_fallback_gets_the_call_s_instruction(
    mode: str, clients: Callable[..., tuple[RerankClient, Recorder]]
) -> None:
    fallback, recorder = clients("contextual", instruction="fallback's own")
    transport = httpx.MockTransport(lambda request: httpx.Response(503, json={"error": "down"}))
    primary = RerankClient(
        "https://primary.test",
        max_retries=0,
        fallbacks=[fallback],
        http_client=httpx.Client(transport=transport),
        async_http_client=httpx.AsyncClient(transport=transport),
    )
    try:
        call(mode, primary, instruction="the call's")
        call(mode, primary)  # none from the call: the fallback keeps its own
    finally:
        primary.close()
    assert [body["instruction"] for body in recorder.bodies] == ["the call's", "fallback's own"]
