"""AnthropicModel against the scripted server's Messages endpoint, over a real socket."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from hector.errors import ProviderError, ProviderHTTPError, ProviderTimeoutError
from hector.messages import ChatMessage, ToolCall
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
        "type": "anthropic",
        "model": "claude-test",
        "host": llm_server.url,
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
    assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 3)
    assert response.finish_reason == "stop"
    sent = llm_server.last
    assert sent.path == "/v1/messages"
    # The SDK has sent the key as `x-api-key`; version 2 sends it as a bearer token.
    assert API_KEY in (
        sent.headers.get("x-api-key"),
        sent.headers.get("authorization", "").removeprefix("Bearer "),
    )
    assert "anthropic-version" in sent.headers
    assert sent.body["system"] == "You are terse."
    assert sent.body["messages"] == [{"role": "user", "content": "What is the weather in Paris?"}]
    assert sent.body["max_tokens"] == 4096  # required by the API; the default when none is configured


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


async def test_tool_call_round_trip(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    model = make()
    llm_server.reply("Let me look.", tool_calls=[ScriptedCall("get_weather", {"city": "Paris"})])

    first = await model.request(conversation(), [WEATHER], {})

    assert first.text == "Let me look."
    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    assert llm_server.last.body["tools"] == [
        {"name": "get_weather", "description": WEATHER.description, "input_schema": WEATHER.parameters}
    ]

    llm_server.reply("18°C and sunny in Paris.")
    second = await model.request(after_tool(call), [WEATHER], {})

    assert second.text == "18°C and sunny in Paris."
    assistant, results = llm_server.last.body["messages"][-2:]
    assert assistant == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Paris"}}],
    }
    assert results == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18°C and sunny"}],
    }


async def test_consecutive_tool_results_share_one_user_message(
    make: ModelFactory, llm_server: ScriptedLLMServer
) -> None:
    paris = ToolCall("toolu_1", "get_weather", {"city": "Paris"})
    oslo = ToolCall("toolu_2", "get_weather", {"city": "Oslo"})
    messages = [
        *conversation(),
        ChatMessage("assistant", "Checking both.", tool_calls=(paris, oslo)),
        ChatMessage("tool", "18°C", tool_call_id="toolu_1", name="get_weather"),
        ChatMessage("tool", "no data", tool_call_id="toolu_2", name="get_weather", is_error=True),
    ]

    await make().request(messages, [WEATHER], {})

    assistant, results = llm_server.last.body["messages"][-2:]
    assert [b["type"] for b in assistant["content"]] == ["text", "tool_use", "tool_use"]
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no data", "is_error": True},
        ],
    }


async def test_streamed_tool_input_is_assembled(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply(
        "Checking.",
        tool_calls=[
            ScriptedCall("get_weather", {"city": "Paris", "units": {"system": "metric"}}),
            ScriptedCall("get_weather", {"city": "Oslo"}),
        ],
        usage=(40, 12),
    )

    deltas, response = await collect(make().stream(conversation(), [WEATHER], {}))

    assert "".join(deltas) == response.text == "Checking."
    assert [(c.name, c.arguments) for c in response.tool_calls] == [
        ("get_weather", {"city": "Paris", "units": {"system": "metric"}}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert all(c.id.startswith("toolu_") for c in response.tool_calls)
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (40, 12)


async def test_invalid_streamed_tool_input_is_passed_on_raw(
    make: ModelFactory, llm_server: ScriptedLLMServer
) -> None:
    llm_server.reply(tool_calls=[ScriptedCall("get_weather", '{"city": "Par')])

    _, response = await collect(make().stream(conversation(), [WEATHER], {}))

    assert response.tool_calls[0].arguments == {"_raw": '{"city": "Par'}


async def test_temperature_and_max_tokens_are_forwarded(
    make: ModelFactory, llm_server: ScriptedLLMServer
) -> None:
    model = make(temperature=0.2, max_tokens=64)

    await model.request(conversation(), [], {})
    assert (llm_server.last.body["temperature"], llm_server.last.body["max_tokens"]) == (0.2, 64)

    await model.request(conversation(), [], {"temperature": 0.9, "max_tokens": 8})
    assert (llm_server.last.body["temperature"], llm_server.last.body["max_tokens"]) == (0.9, 8)


async def test_unset_temperature_is_not_sent(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    await make().request(conversation(), [], {})
    assert "temperature" not in llm_server.last.body


async def test_structured_output_goes_into_the_system_prompt(
    make: ModelFactory, llm_server: ScriptedLLMServer
) -> None:
    llm_server.reply('{"answer": "sunny"}')

    response = await make().request(conversation(), [], {"output_schema": ANSWER_SCHEMA})

    assert json.loads(response.text) == {"answer": "sunny"}
    system = llm_server.last.body["system"]
    assert system.startswith("You are terse.")
    assert json.dumps(ANSWER_SCHEMA) in system


@pytest.mark.parametrize("status", [500, 429, 529])
async def test_retries_then_succeeds(make: ModelFactory, llm_server: ScriptedLLMServer, status: int) -> None:
    llm_server.fail(status, "try again", retry_after="0.01")
    llm_server.reply("Recovered.")

    response = await make().request(conversation(), [], {})

    assert response.text == "Recovered."
    assert len(llm_server.requests) == 2


async def test_stream_retries_before_first_event(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(529, "overloaded", retry_after="0.01")
    llm_server.reply("Recovered.")

    _, response = await collect(make().stream(conversation(), [], {}))

    assert response.text == "Recovered."
    assert len(llm_server.requests) == 2


async def test_persistent_500_raises_http_error(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(500, "the model is on fire", retry_after="0.01", times=3)

    with pytest.raises(ProviderHTTPError) as caught:
        await make(max_retries=2).request(conversation(), [], {})

    assert caught.value.status_code == 500
    assert "anthropic (default) answered HTTP 500: the model is on fire" in str(caught.value)
    assert len(llm_server.requests) == 3


async def test_timeout(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply("too late", delay=3)

    with pytest.raises(ProviderTimeoutError):
        await make(timeout=0.3, max_retries=0).request(conversation(), [], {})


async def test_api_key_never_in_error_text(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(401, f"invalid x-api-key {API_KEY}")

    with pytest.raises(ProviderHTTPError) as caught:
        await make().request(conversation(), [], {})

    assert caught.value.status_code == 401
    assert API_KEY not in str(caught.value)


async def test_unreachable_host_names_the_host(make: ModelFactory) -> None:
    with pytest.raises(ProviderError) as caught:
        await make(host="http://127.0.0.1:9", max_retries=0).request(conversation(), [], {})

    assert "127.0.0.1:9" in str(caught.value)
    assert API_KEY not in str(caught.value)
