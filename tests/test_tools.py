"""The agent tools: ``RerankCompressor.as_tool()`` and ``RerankPostprocessor.as_tool()``,
called the way each framework's agents call them, on the sync and the async path."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from llama_index.core.agent.workflow import FunctionAgent, ToolCallResult
from llama_index.core.base.llms.types import ToolCallBlock
from llama_index.core.llms import ChatMessage, MessageRole
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.tools import FunctionTool, ToolOutput
from support import API_KEY, MockAPI, keyword_score, run_mode

from rerank_integrations import AuthenticationError, RerankClient
from rerank_integrations._tools import DEFAULT_TOOL_NAME, ToolInputError
from rerank_integrations.demo import load_passages, load_queries
from rerank_integrations.langchain import RerankCompressor
from rerank_integrations.llama_index import RerankPostprocessor

MakeClient = Callable[..., RerankClient]

QUERY = "how hot should the water be for green tea"
PASSAGES = [
    "Black tea is brewed with water just off the boil.",
    "Green tea tastes best with water at about 80 degrees: hot water makes it bitter.",
    "A cast iron kettle keeps water hot for a long time.",
    "Oolong leaves can be steeped several times.",
    "Grüner Tee: das Wasser sollte nicht kochen, etwa 80 Grad.",
]
FRAMEWORKS = ["langchain", "llama_index"]
EXPECTED_PROPERTIES = {"query", "passages", "top_n"}


def expected_order(query: str, texts: Sequence[str]) -> list[int]:
    """The mock API's ranking of ``texts``, best first, ties in input order."""
    return sorted(range(len(texts)), key=lambda i: (-keyword_score(query, texts[i]), i))


def make_tool(framework: str, **settings: Any) -> BaseTool | FunctionTool:
    """The tool of ``framework``'s adapter, built with ``settings``."""
    if framework == "langchain":
        return RerankCompressor(**settings).as_tool()
    return RerankPostprocessor(**settings).as_tool()


def call_tool(mode: str, tool: BaseTool | FunctionTool, arguments: dict[str, Any]) -> Any:
    """The tool called as its framework calls it directly: LangChain ``invoke`` /
    ``ainvoke`` with a dict, LlamaIndex ``call`` / ``acall`` with keyword arguments."""
    if isinstance(tool, BaseTool):
        return run_mode(mode, lambda: tool.invoke(arguments), lambda: tool.ainvoke(arguments))
    return run_mode(mode, lambda: tool.call(**arguments), lambda: tool.acall(**arguments))


def ranked(mode: str, tool: BaseTool | FunctionTool, arguments: dict[str, Any]) -> Any:
    """The decoded JSON text the LLM would read."""
    answer = call_tool(mode, tool, arguments)
    text = answer if isinstance(tool, BaseTool) else answer.content
    assert isinstance(text, str)
    return json.loads(text)


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    """Runs a test once with the LangChain tool and once with the LlamaIndex tool."""
    return str(request.param)


# -- the tool as the LLM sees it --------------------------------------------------------


def test_langchain_tool_schema(make_client: MakeClient) -> None:
    tool = RerankCompressor(client=make_client(), top_n=4).as_tool()

    assert isinstance(tool, StructuredTool)
    assert tool.name == DEFAULT_TOOL_NAME
    assert tool.func is not None
    assert tool.coroutine is not None
    assert set(tool.args) == EXPECTED_PROPERTIES
    assert tool.args["passages"]["type"] == "array"
    assert tool.args["passages"]["items"] == {"type": "string"}
    assert "at most 4" in tool.description
    function = convert_to_openai_tool(tool)["function"]
    assert function["name"] == "rerank_passages"
    assert function["description"] == tool.description
    parameters = function["parameters"]
    assert parameters["type"] == "object"
    assert set(parameters["properties"]) == EXPECTED_PROPERTIES
    assert sorted(parameters["required"]) == ["passages", "query"]
    assert parameters["properties"]["query"]["type"] == "string"
    for spec in parameters["properties"].values():
        assert spec["description"]


def test_llama_index_tool_schema(make_client: MakeClient) -> None:
    tool = RerankPostprocessor(client=make_client(), top_n=None, score_threshold=0.25).as_tool()

    assert isinstance(tool, FunctionTool)
    parameters = tool.metadata.get_parameters_dict()
    assert parameters["type"] == "object"
    assert set(parameters["properties"]) == EXPECTED_PROPERTIES
    assert sorted(parameters["required"]) == ["passages", "query"]
    assert parameters["properties"]["passages"]["items"] == {"type": "string"}
    openai_tool = tool.metadata.to_openai_tool()
    assert openai_tool["function"]["name"] == "rerank_passages"
    assert openai_tool["function"]["parameters"] == parameters
    description = openai_tool["function"]["description"]
    assert "all of them" in description
    assert "below 0.25" in description
    assert len(description) <= 1024


def test_same_schema_for_both_frameworks(make_client: MakeClient) -> None:
    langchain_tool = RerankCompressor(client=make_client()).as_tool()
    llama_tool = RerankPostprocessor(client=make_client()).as_tool()

    langchain_parameters = convert_to_openai_tool(langchain_tool)["function"]["parameters"]
    llama_parameters = llama_tool.metadata.get_parameters_dict()
    for parameters in (langchain_parameters, llama_parameters):
        for spec in parameters["properties"].values():
            spec.pop("title", None)
    assert langchain_parameters["properties"] == llama_parameters["properties"]
    assert langchain_tool.description == llama_tool.metadata.description


def test_name_and_description_can_be_set(framework: str, make_client: MakeClient) -> None:
    adapter: Any = (RerankCompressor if framework == "langchain" else RerankPostprocessor)(
        client=make_client()
    )
    tool = adapter.as_tool(name="rank-docs_2", description="Order documents for a question.")

    metadata = tool if isinstance(tool, BaseTool) else tool.metadata
    assert metadata.name == "rank-docs_2"
    assert metadata.description == "Order documents for a question."


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"name": "has space"}, "tool name"),
        ({"name": ""}, "tool name"),
        ({"name": "x" * 65}, "tool name"),
        ({"description": ""}, "description"),
    ],
)
def test_unusable_name_or_description(
    framework: str, make_client: MakeClient, arguments: dict[str, Any], problem: str
) -> None:
    adapter: Any = (RerankCompressor if framework == "langchain" else RerankPostprocessor)(
        client=make_client()
    )
    with pytest.raises(ValueError, match=problem):
        adapter.as_tool(**arguments)


# -- what the tool answers --------------------------------------------------------------


def test_ranks_passages_best_first(
    framework: str, mode: str, mock_api: MockAPI, make_client: MakeClient
) -> None:
    tool = make_tool(framework, client=make_client())

    answer = ranked(mode, tool, {"query": QUERY, "passages": PASSAGES, "top_n": 2})

    order = expected_order(QUERY, PASSAGES)[:2]
    assert answer == [
        {"index": i, "relevance_score": keyword_score(QUERY, PASSAGES[i]), "text": PASSAGES[i]}
        for i in order
    ]
    (body,) = mock_api.bodies
    assert body["query"] == QUERY
    assert body["documents"] == PASSAGES
    assert body["top_n"] == 2


def test_langchain_invoke_returns_the_json_text(mode: str, make_client: MakeClient) -> None:
    tool = RerankCompressor(client=make_client()).as_tool()

    text = call_tool(mode, tool, {"query": QUERY, "passages": PASSAGES, "top_n": 1})

    assert isinstance(text, str)
    assert "\n" not in text
    (best,) = json.loads(text)
    assert set(best) == {"index", "relevance_score", "text"}


def test_non_ascii_text_is_kept_readable(
    framework: str, mode: str, make_client: MakeClient
) -> None:
    tool = make_tool(framework, client=make_client())
    passages = ["Grüner Tee, 80 Grad", "绿茶 80 度"]

    answer = call_tool(mode, tool, {"query": "Grüner Tee", "passages": passages})

    text = answer if isinstance(answer, str) else answer.content
    assert "Grüner Tee, 80 Grad" in text
    assert "绿茶 80 度" in text


def test_langchain_tool_call_gives_a_tool_message(
    mode: str, mock_api: MockAPI, make_client: MakeClient
) -> None:
    tool = RerankCompressor(client=make_client()).as_tool()
    call = {
        "name": "rerank_passages",
        "args": {"query": QUERY, "passages": PASSAGES, "top_n": 2},
        "id": "call_1",
        "type": "tool_call",
    }

    message = run_mode(mode, lambda: tool.invoke(call), lambda: tool.ainvoke(call))

    assert isinstance(message, ToolMessage)
    assert message.tool_call_id == "call_1"
    assert message.name == "rerank_passages"
    assert message.status == "success"
    assert isinstance(message.content, str)
    assert json.loads(message.content) == message.artifact
    assert [r["index"] for r in message.artifact] == expected_order(QUERY, PASSAGES)[:2]
    assert len(mock_api.requests) == 1


def test_llama_index_tool_output(mode: str, make_client: MakeClient) -> None:
    tool = RerankPostprocessor(client=make_client()).as_tool()

    output = call_tool(mode, tool, {"query": QUERY, "passages": PASSAGES, "top_n": 2})

    assert isinstance(output, ToolOutput)
    assert output.tool_name == "rerank_passages"
    assert output.is_error is False
    assert json.loads(output.content) == output.raw_output
    assert [r["index"] for r in output.raw_output] == expected_order(QUERY, PASSAGES)[:2]
    assert output.raw_input["kwargs"]["query"] == QUERY


def test_top_n_left_out_uses_the_adapter_setting(
    framework: str, mode: str, mock_api: MockAPI, make_client: MakeClient
) -> None:
    tool = make_tool(framework, client=make_client(), top_n=3)

    answer = ranked(mode, tool, {"query": QUERY, "passages": PASSAGES})

    assert len(answer) == 3
    assert mock_api.bodies[0]["top_n"] == 3


def test_top_n_none_and_large_return_all(
    framework: str, mode: str, make_client: MakeClient
) -> None:
    tool = make_tool(framework, client=make_client())

    explicit_none = ranked(mode, tool, {"query": QUERY, "passages": PASSAGES, "top_n": None})
    too_many = ranked(mode, tool, {"query": QUERY, "passages": PASSAGES, "top_n": 50})

    assert len(explicit_none) == 3  # None means "the tool's default", here 3
    assert [r["index"] for r in too_many] == expected_order(QUERY, PASSAGES)


def test_score_threshold_applies(framework: str, mode: str, make_client: MakeClient) -> None:
    tool = make_tool(framework, client=make_client(), top_n=None, score_threshold=0.3)

    answer = ranked(mode, tool, {"query": QUERY, "passages": PASSAGES})

    assert answer
    assert all(r["relevance_score"] >= 0.3 for r in answer)
    assert len(answer) < len(PASSAGES)


def test_later_setting_changes_apply(framework: str, mode: str, make_client: MakeClient) -> None:
    adapter: Any = (RerankCompressor if framework == "langchain" else RerankPostprocessor)(
        client=make_client(), top_n=1
    )
    tool = adapter.as_tool()
    adapter.top_n = 2

    assert len(ranked(mode, tool, {"query": QUERY, "passages": PASSAGES})) == 2


def test_no_passages_sends_nothing(
    framework: str, mode: str, mock_api: MockAPI, make_client: MakeClient
) -> None:
    tool = make_tool(framework, client=make_client())

    assert ranked(mode, tool, {"query": QUERY, "passages": []}) == []
    assert mock_api.requests == []


def test_duplicate_passages_each_come_back(
    framework: str, mode: str, mock_api: MockAPI, make_client: MakeClient
) -> None:
    tool = make_tool(framework, client=make_client(), top_n=None)
    passages = ["green tea water", "coffee", "green tea water"]

    answer = ranked(mode, tool, {"query": "green tea", "passages": passages})

    assert sorted(r["index"] for r in answer) == [0, 1, 2]
    assert answer[0]["text"] == answer[1]["text"] == "green tea water"
    assert mock_api.bodies[0]["documents"] == ["green tea water", "coffee"]


# -- bad input: an answer the agent can read, no request --------------------------------

BAD_ARGUMENTS = [
    pytest.param({"query": QUERY, "passages": "one long passage"}, "passages", id="str-passages"),
    pytest.param({"query": QUERY, "passages": ["ok", 7]}, "passages[1]", id="int-passage"),
    pytest.param({"query": QUERY, "passages": [{"text": "a"}]}, "passages[0]", id="dict-passage"),
    pytest.param({"passages": ["a"]}, "query is missing", id="no-query"),
    pytest.param({"query": "", "passages": ["a"]}, "query", id="empty-query"),
    pytest.param({"query": QUERY}, "passages is missing", id="no-passages"),
    pytest.param({"query": QUERY, "passages": ["a"], "top_n": 0}, "top_n", id="top-n-0"),
    pytest.param({"query": QUERY, "passages": ["a"], "top_n": "many"}, "top_n", id="top-n-str"),
    pytest.param({"query": QUERY, "passages": ["a"], "k": 3}, "unknown argument k", id="extra"),
]


@pytest.mark.parametrize(("arguments", "named"), BAD_ARGUMENTS)
def test_langchain_bad_input_is_an_error_tool_message(
    mode: str,
    mock_api: MockAPI,
    make_client: MakeClient,
    arguments: dict[str, Any],
    named: str,
) -> None:
    tool = RerankCompressor(client=make_client()).as_tool()
    call = {"name": "rerank_passages", "args": arguments, "id": "call_9", "type": "tool_call"}

    message = run_mode(mode, lambda: tool.invoke(call), lambda: tool.ainvoke(call))

    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert message.tool_call_id == "call_9"
    assert isinstance(message.content, str)
    assert message.content.startswith("Invalid arguments for rerank_passages: ")
    assert named in message.content
    assert '"passages": list of strings' in message.content
    assert mock_api.requests == []


@pytest.mark.parametrize(("arguments", "named"), BAD_ARGUMENTS)
def test_llama_index_bad_input_raises_a_readable_error(
    mode: str,
    mock_api: MockAPI,
    make_client: MakeClient,
    arguments: dict[str, Any],
    named: str,
) -> None:
    tool = RerankPostprocessor(client=make_client()).as_tool()

    with pytest.raises(ToolInputError) as caught:
        call_tool(mode, tool, arguments)

    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("Invalid arguments for rerank_passages: ")
    assert named in str(caught.value)
    assert mock_api.requests == []


def test_error_message_stays_short(make_client: MakeClient) -> None:
    tool = RerankPostprocessor(client=make_client()).as_tool()

    with pytest.raises(ToolInputError) as caught:
        tool.call(query=QUERY, passages=[None] * 50 + ["x" * 10_000])

    message = str(caught.value)
    assert "and 45 more" in message
    assert len(message) < 600


def test_langchain_plain_invoke_with_bad_input_returns_the_message(
    make_client: MakeClient,
) -> None:
    tool = RerankCompressor(client=make_client()).as_tool()

    answer = tool.invoke({"query": 42, "passages": "abc"})

    assert isinstance(answer, str)
    assert "query: input should be a valid string, got int 42" in answer
    assert "passages: input should be a valid list, got str 'abc'" in answer


def test_api_errors_are_raised(
    framework: str, mode: str, mock_api: MockAPI, make_client: MakeClient
) -> None:
    body = {"error": {"message": "invalid api key", "type": "authentication_error"}}
    mock_api.queue(httpx.Response(401, json=body))
    tool = make_tool(framework, client=make_client())

    with pytest.raises(AuthenticationError) as caught:
        call_tool(mode, tool, {"query": QUERY, "passages": PASSAGES})

    assert API_KEY not in str(caught.value)


# -- one agent turn with a scripted LLM -------------------------------------------------


def test_langchain_agent_turn_with_a_scripted_model(make_client: MakeClient) -> None:
    """The loop every LangChain agent runs: the model asks for the tool, each tool call is
    invoked, the ``ToolMessage`` goes back to the model. The first call is malformed and
    the model sees why."""
    tool = RerankCompressor(client=make_client()).as_tool()
    script = iter(
        [
            AIMessage(
                content="",
                tool_calls=[
                    {"name": tool.name, "args": {"query": QUERY, "passages": "x"}, "id": "c1"}
                ],
            ),
            AIMessage(
                content="",
                tool_calls=[
                    {
                        "name": tool.name,
                        "args": {"query": QUERY, "passages": PASSAGES, "top_n": 1},
                        "id": "c2",
                    }
                ],
            ),
            AIMessage(content="Use water at about 80 degrees."),
        ]
    )
    model = GenericFakeChatModel(messages=script)
    messages: list[BaseMessage] = [HumanMessage(QUERY)]
    tools = {tool.name: tool}

    while True:
        reply = model.invoke(messages)
        messages.append(reply)
        assert isinstance(reply, AIMessage)
        if not reply.tool_calls:
            break
        messages.extend(tools[call["name"]].invoke(call) for call in reply.tool_calls)

    first, second = (m for m in messages if isinstance(m, ToolMessage))
    assert first.status == "error"
    assert "passages: input should be a valid list" in str(first.content)
    assert second.status == "success"
    best = expected_order(QUERY, PASSAGES)[0]
    assert json.loads(str(second.content)) == [
        {
            "index": best,
            "relevance_score": keyword_score(QUERY, PASSAGES[best]),
            "text": PASSAGES[best],
        }
    ]
    assert second.artifact == json.loads(str(second.content))
    assert messages[-1].content == "Use water at about 80 degrees."


# FunctionAgent's workflow machinery inspects its own pydantic fields, which pydantic warns
# about; that is LlamaIndex's business, not this package's.
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")
@pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211")
def test_llama_index_function_agent_turn(make_client: MakeClient) -> None:
    """A ``FunctionAgent`` run with a mock function-calling LLM: a malformed call comes
    back as an error output the LLM reads, the corrected one as the JSON ranking."""
    tool = RerankPostprocessor(client=make_client()).as_tool()
    calls: Iterator[dict[str, Any]] = iter(
        [
            {"query": QUERY, "passages": "x"},
            {"query": QUERY, "passages": PASSAGES, "top_n": 1},
        ]
    )
    seen_by_llm: list[str] = []

    def respond(messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        tool_messages = [m for m in messages if m.role == MessageRole.TOOL]
        if tool_messages:
            seen_by_llm.append(str(tool_messages[-1].content))
        arguments = next(calls, None)
        if arguments is None:
            return ChatMessage(role=MessageRole.ASSISTANT, content="About 80 degrees.")
        block = ToolCallBlock(
            tool_call_id=f"call_{len(seen_by_llm)}",
            tool_name=tool.metadata.name or "",
            tool_kwargs=arguments,
        )
        return ChatMessage(role=MessageRole.ASSISTANT, blocks=[block])

    agent = FunctionAgent(tools=[tool], llm=MockFunctionCallingLLM(response_generator=respond))

    async def run() -> tuple[list[ToolOutput], str]:
        handler = agent.run(user_msg=QUERY)
        outputs = [
            event.tool_output
            async for event in handler.stream_events()
            if isinstance(event, ToolCallResult)
        ]
        return outputs, str(await handler)

    outputs, final = asyncio.run(run())

    assert [output.is_error for output in outputs] == [True, False]
    assert seen_by_llm[0].startswith("Invalid arguments for rerank_passages: passages:")
    best = expected_order(QUERY, PASSAGES)[0]
    assert json.loads(seen_by_llm[1]) == outputs[1].raw_output
    assert [r["index"] for r in outputs[1].raw_output] == [best]
    assert final == "About 80 degrees."


# -- over a real HTTP connection to the local BM25 server -------------------------------


@pytest.fixture(scope="module")
def local_server_url() -> Iterator[str]:
    """The package's local rerank server on 127.0.0.1."""
    try:
        from rerank_integrations.server import serve_in_thread
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"rerank_integrations.server is not available: {exc}")
    with serve_in_thread() as server:
        yield server.base_url


def demo_candidates() -> tuple[str, list[str], str]:
    """A demo query, ten candidate passages from the corpus and the relevant one."""
    passages = {passage.id: passage for passage in load_passages()}
    labelled = next(q for q in load_queries() if q.id == "q01")
    relevant = passages[labelled.relevant[0]]
    others = [p for p in passages.values() if p.id not in labelled.relevant][:9]
    texts = [p.text for p in others[:5]] + [relevant.text] + [p.text for p in others[5:]]
    return labelled.query, texts, relevant.text


def test_over_http(framework: str, mode: str, local_server_url: str) -> None:
    query, texts, relevant = demo_candidates()
    tool = make_tool(framework, base_url=local_server_url, top_n=2)

    answer = ranked(mode, tool, {"query": query, "passages": texts})

    assert len(answer) == 2
    assert answer[0]["text"] == relevant
    assert answer[0]["index"] == texts.index(relevant)
    assert answer[0]["relevance_score"] > answer[1]["relevance_score"]


# -- on_error="passthrough": the API down, the agent goes on ------------------------------


def test_passthrough_answers_the_passages_unranked(
    framework: str, mode: str, mock_api: MockAPI, make_client: MakeClient
) -> None:
    for _ in range(3):
        mock_api.queue(httpx.ConnectError("connection refused"))
    tool = make_tool(framework, client=make_client(max_retries=0), on_error="passthrough")

    answer = ranked(mode, tool, {"query": QUERY, "passages": PASSAGES})
    shorter = ranked(mode, tool, {"query": QUERY, "passages": PASSAGES, "top_n": 1})

    assert answer == [
        {"index": i, "text": PASSAGES[i], "reranked": False, "rerank_error": "APIConnectionError"}
        for i in range(3)  # the adapter's top_n, in the original order
    ]
    assert shorter == answer[:1]


def test_passthrough_artifact_is_the_same_list(mock_api: MockAPI, make_client: MakeClient) -> None:
    mock_api.queue(httpx.ConnectError("connection refused"))
    tool = RerankCompressor(client=make_client(max_retries=0), on_error="passthrough").as_tool()
    call = {"type": "tool_call", "id": "c1", "name": tool.name}

    message = tool.invoke({**call, "args": {"query": QUERY, "passages": PASSAGES}})

    assert isinstance(message, ToolMessage)
    assert message.status == "success"
    assert message.artifact == json.loads(str(message.content))
    assert all(item["reranked"] is False for item in message.artifact)


# -- import cost ----------------------------------------------------------------------------


def test_langchain_tools_are_imported_when_as_tool_is_called() -> None:
    code = (
        "import sys\n"
        "import rerank_integrations.langchain as lc\n"
        "assert 'langchain_core.tools' not in sys.modules, 'imported at module import'\n"
        "assert 'langchain_core.retrievers' not in sys.modules\n"
        "assert 'langchain' not in sys.modules\n"
        "lc.RerankCompressor(base_url='http://127.0.0.1:9/v1').as_tool()\n"
        "assert 'langchain_core.tools' in sys.modules\n"
        "assert lc.RerankRetriever.__name__ == 'RerankRetriever'\n"
        "assert 'langchain' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=False
    )

    assert result.returncode == 0, result.stderr


def _env() -> dict[str, str]:
    """This environment, with the repository first on the import path."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not path else f"{root}{os.pathsep}{path}"}
