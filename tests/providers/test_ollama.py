"""OllamaModel against the scripted server's /api/chat endpoint, over a real socket."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest

from hector.errors import ProviderError, ProviderHTTPError, ProviderTimeoutError
from hector.messages import ChatMessage
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.providers.support import (
    ANSWER_SCHEMA,
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
        "type": "ollama",
        "model": "qwen-test",
        "host": llm_server.url,
        "max_retries": 2,
        "retry_delay": 0.01,
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
    assert sent.path == "/api/chat"
    assert sent.body["model"] == "qwen-test"
    assert sent.body["stream"] is False
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ]


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
    llm_server.reply(tool_calls=[ScriptedCall("get_weather", {"city": "Paris"})])

    first = await model.request(conversation(), [WEATHER], {})

    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    # The whole schema arrives, nested object properties included (the SDK's chat() drops them).
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
    asked, answered = llm_server.last.body["messages"][-2:]
    assert asked == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": call.id, "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
    }
    assert answered == {
        "role": "tool",
        "content": "18°C and sunny",
        "tool_name": "get_weather",
        "tool_call_id": call.id,
    }


async def test_streamed_tool_calls(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply(
        "Checking.",
        tool_calls=[
            ScriptedCall("get_weather", {"city": "Paris"}),
            ScriptedCall("get_weather", {"city": "Oslo"}),
        ],
    )

    deltas, response = await collect(make().stream(conversation(), [WEATHER], {}))

    assert "".join(deltas) == response.text == "Checking."
    assert [c.arguments for c in response.tool_calls] == [{"city": "Paris"}, {"city": "Oslo"}]
    assert len({c.id for c in response.tool_calls}) == 2
    assert response.finish_reason == "tool_calls"


async def test_temperature_and_max_tokens_are_forwarded(
    make: ModelFactory, llm_server: ScriptedLLMServer
) -> None:
    model = make(temperature=0.2, max_tokens=64)

    await model.request(conversation(), [], {})
    assert llm_server.last.body["options"] == {"temperature": 0.2, "num_predict": 64}

    await model.request(conversation(), [], {"temperature": 0.9, "max_tokens": 8})
    assert llm_server.last.body["options"] == {"temperature": 0.9, "num_predict": 8}


async def test_unset_options_are_not_sent(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    await make().request(conversation(), [], {})
    assert "options" not in llm_server.last.body
    assert "format" not in llm_server.last.body


async def test_structured_output_request_shape(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply('{"answer": "sunny"}')

    response = await make().request(conversation(), [], {"output_schema": ANSWER_SCHEMA})

    assert json.loads(response.text) == {"answer": "sunny"}
    assert llm_server.last.body["format"] == ANSWER_SCHEMA


@pytest.mark.parametrize("status", [500, 429, 503])
async def test_retries_then_succeeds(make: ModelFactory, llm_server: ScriptedLLMServer, status: int) -> None:
    llm_server.fail(status, "try again")
    llm_server.reply("Recovered.")

    response = await make().request(conversation(), [], {})

    assert response.text == "Recovered."
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("streaming", [False, True])
async def test_retry_after_is_honoured(
    make: ModelFactory, llm_server: ScriptedLLMServer, streaming: bool
) -> None:
    llm_server.fail(429, "slow down", retry_after="0.3")
    llm_server.reply("Recovered.")
    model = make()

    started = time.monotonic()
    if streaming:
        await collect(model.stream(conversation(), [], {}))
    else:
        await model.request(conversation(), [], {})

    assert time.monotonic() - started >= 0.3


async def test_stream_retries_before_first_chunk(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(503, "loading model")
    llm_server.reply("Recovered.")

    _, response = await collect(make().stream(conversation(), [], {}))

    assert response.text == "Recovered."
    assert len(llm_server.requests) == 2


async def test_persistent_500_raises_http_error(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(500, "model runner crashed", times=3)

    with pytest.raises(ProviderHTTPError) as caught:
        await make().request(conversation(), [], {})

    assert caught.value.status_code == 500
    assert "ollama (default) answered HTTP 500: model runner crashed" in str(caught.value)
    assert len(llm_server.requests) == 3


async def test_missing_model_is_not_retried(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(404, "model 'qwen-test' not found, try pulling it first")

    with pytest.raises(ProviderHTTPError, match="try pulling it first"):
        await make().request(conversation(), [], {})

    assert len(llm_server.requests) == 1


@pytest.mark.parametrize("streaming", [False, True])
async def test_timeout(make: ModelFactory, llm_server: ScriptedLLMServer, streaming: bool) -> None:
    llm_server.reply("too late", delay=3)
    model = make(timeout=0.3)

    with pytest.raises(ProviderTimeoutError):
        if streaming:
            await collect(model.stream(conversation(), [], {}))
        else:
            await model.request(conversation(), [], {})

    assert len(llm_server.requests) == 1  # a timeout is not retried


@pytest.mark.parametrize("streaming", [False, True])
async def test_unreachable_host_names_the_host(make: ModelFactory, streaming: bool) -> None:
    model = make(host="http://127.0.0.1:9", max_retries=1)

    with pytest.raises(ProviderError) as caught:
        if streaming:
            await collect(model.stream(conversation(), [], {}))
        else:
            await model.request(conversation(), [], {})

    assert "127.0.0.1:9" in str(caught.value)
