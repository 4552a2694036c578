"""OpenAIModel against the scripted server's Chat Completions endpoint, over a real socket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from hector.config.schema import LLMConfig
from hector.errors import ConfigError, ProviderError, ProviderHTTPError, ProviderTimeoutError
from hector.messages import ChatMessage, ToolCall
from hector.providers import build_model
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.providers.support import (
    ANSWER_SCHEMA,
    API_KEY,
    WEATHER,
    ModelFactory,
    after_tool,
    collect,
    conversation,
    model_factory,
)


@pytest.fixture
async def make(llm_server: ScriptedLLMServer) -> AsyncIterator[ModelFactory]:
    base = {
        "type": "openai",
        "model": "gpt-test",
        "host": f"{llm_server.url}/v1",
        "api_key": API_KEY,
        "max_retries": 2,
        "timeout": 5,
    }
    async with model_factory(base) as factory:
        yield factory


async def test_plain_text(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply("Sunny.", usage=(21, 3))

    response = await make().request(conversation(), [], {})

    assert response.text == "Sunny."
    assert response.tool_calls == ()
    assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 3)
    assert response.finish_reason == "stop"
    sent = llm_server.last
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.body["model"] == "gpt-test"
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]
    assert "tools" not in sent.body


async def test_echo_without_script(make: ModelFactory) -> None:
    response = await make().request([ChatMessage("user", "ping?")], [], {})
    assert response.text == "ping?"


async def test_stream_text(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply("It is sunny in Paris today.", usage=(30, 7))

    deltas, response = await collect(make().stream(conversation(), [], {}))

    assert len(deltas) > 1
    assert "".join(deltas) == response.text == "It is sunny in Paris today."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (30, 7)
    assert response.finish_reason == "stop"
    assert llm_server.last.body["stream"] is True
    assert llm_server.last.body["stream_options"] == {"include_usage": True}


async def test_tool_call_round_trip(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    model = make()
    llm_server.reply(tool_calls=[ScriptedCall("get_weather", {"city": "Paris"})])

    first = await model.request(conversation(), [WEATHER], {})

    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    assert llm_server.last.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": WEATHER.description,
                "parameters": WEATHER.parameters,
            },
        }
    ]

    llm_server.reply("18°C and sunny in Paris.")
    second = await model.request(after_tool(call), [WEATHER], {})

    assert second.text == "18°C and sunny in Paris."
    assistant, tool = llm_server.last.body["messages"][-2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"] == [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    assert tool == {"role": "tool", "tool_call_id": call.id, "content": "18°C and sunny"}


async def test_streamed_tool_call_fragments_are_assembled(
    make: ModelFactory, llm_server: ScriptedLLMServer
) -> None:
    llm_server.reply(
        "Checking.",
        tool_calls=[
            ScriptedCall("get_weather", {"city": "Paris", "units": {"system": "metric"}}),
            ScriptedCall("get_weather", {"city": "Oslo"}),
        ],
    )

    deltas, response = await collect(make().stream(conversation(), [WEATHER], {}))

    assert "".join(deltas) == response.text == "Checking."
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris", "units": {"system": "metric"}}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert len({c.id for c in response.tool_calls}) == 2
    assert response.finish_reason == "tool_calls"


@pytest.mark.parametrize("streaming", [False, True])
async def test_invalid_tool_arguments_are_passed_on_raw(
    make: ModelFactory, llm_server: ScriptedLLMServer, streaming: bool
) -> None:
    llm_server.reply(tool_calls=[ScriptedCall("get_weather", '{"city": "Par')])
    model = make()

    if streaming:
        _, response = await collect(model.stream(conversation(), [WEATHER], {}))
    else:
        response = await model.request(conversation(), [WEATHER], {})

    assert response.tool_calls[0].arguments == {"_raw": '{"city": "Par'}


async def test_temperature_and_max_tokens_are_forwarded(
    make: ModelFactory, llm_server: ScriptedLLMServer
) -> None:
    model = make(temperature=0.2, max_tokens=64)

    await model.request(conversation(), [], {})
    assert (llm_server.last.body["temperature"], llm_server.last.body["max_tokens"]) == (0.2, 64)

    await model.request(conversation(), [], {"temperature": 0.9, "max_tokens": 8})
    assert (llm_server.last.body["temperature"], llm_server.last.body["max_tokens"]) == (0.9, 8)


async def test_unset_settings_are_not_sent(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    await make().request(conversation(), [], {})
    assert not {"temperature", "max_tokens", "max_completion_tokens", "response_format"} & set(
        llm_server.last.body
    )


async def test_structured_output_request_shape(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply('{"answer": "sunny"}')

    response = await make().request(
        conversation(), [], {"output_schema": ANSWER_SCHEMA, "output_schema_name": "weather"}
    )

    assert json.loads(response.text) == {"answer": "sunny"}
    assert llm_server.last.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": ANSWER_SCHEMA, "strict": True},
    }


@pytest.mark.parametrize("status", [500, 429])
async def test_retries_then_succeeds(make: ModelFactory, llm_server: ScriptedLLMServer, status: int) -> None:
    llm_server.fail(status, "try again", retry_after="0.01")
    llm_server.reply("Recovered.")

    response = await make().request(conversation(), [], {})

    assert response.text == "Recovered."
    assert len(llm_server.requests) == 2


async def test_stream_retries_before_first_chunk(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(503, "warming up", retry_after="0.01")
    llm_server.reply("Recovered.")

    _, response = await collect(make().stream(conversation(), [], {}))

    assert response.text == "Recovered."
    assert len(llm_server.requests) == 2


async def test_persistent_500_raises_http_error(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(500, "the model is on fire", retry_after="0.01", times=3)

    with pytest.raises(ProviderHTTPError) as caught:
        await make(max_retries=2).request(conversation(), [], {})

    assert caught.value.status_code == 500
    assert "the model is on fire" in str(caught.value)
    assert "openai (default)" in str(caught.value)
    assert len(llm_server.requests) == 3


async def test_client_error_is_not_retried(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(400, "bad request")

    with pytest.raises(ProviderHTTPError) as caught:
        await make().request(conversation(), [], {})

    assert caught.value.status_code == 400
    assert len(llm_server.requests) == 1


async def test_timeout(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply("too late", delay=3)

    with pytest.raises(ProviderTimeoutError) as caught:
        await make(timeout=0.3, max_retries=0).request(conversation(), [], {})

    assert "0.3s" in str(caught.value)


async def test_api_key_never_in_error_text(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(401, f"Incorrect API key provided: {API_KEY}")

    with pytest.raises(ProviderHTTPError) as caught:
        await make().request(conversation(), [], {})

    assert caught.value.status_code == 401
    assert API_KEY not in str(caught.value)
    assert "Incorrect API key provided" in str(caught.value)


async def test_unreachable_host_names_the_host(make: ModelFactory) -> None:
    with pytest.raises(ProviderError) as caught:
        await make(host="http://127.0.0.1:9/v1", max_retries=0).request(conversation(), [], {})

    assert "127.0.0.1:9" in str(caught.value)
    assert API_KEY not in str(caught.value)


async def test_compatible_server_without_key_gets_a_placeholder(llm_server: ScriptedLLMServer) -> None:
    model = build_model("local", LLMConfig(type="openai", host=f"{llm_server.url}/v1", model="llama"))
    try:
        await model.request(conversation(), [], {})
    finally:
        await model.aclose()
    assert llm_server.last.headers["authorization"] == "Bearer no-api-key"


def test_openai_itself_still_needs_a_key() -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        build_model("default", LLMConfig(type="openai"))


async def test_tool_error_result_is_sent(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    call = ToolCall("call_1", "get_weather", {"city": "Atlantis"})

    await make().request(after_tool(call, "no such city", is_error=True), [WEATHER], {})

    assert llm_server.last.body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": "no such city",
    }
