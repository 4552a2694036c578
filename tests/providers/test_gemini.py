"""GeminiModel against the scripted server's generateContent endpoints, over a real socket."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from typing import Any

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
        "type": "gemini",
        "model": "gemini-2.5-flash",
        "host": llm_server.url,
        "api_key": API_KEY,
        "max_retries": 2,
        "retry_delay": 0.01,
        "timeout": 5,
    }
    async with model_factory(base) as factory:
        yield factory


def field(data: dict[str, Any], camel: str) -> Any:
    """A field in either spelling: the SDK sends some keys camelCase and some snake_case (the API
    takes both)."""
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
    return data[camel] if camel in data else data[snake]


async def test_plain_text(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply("Sunny.", usage=(21, 3))

    response = await make().request(conversation(), [], {})

    assert response.text == "Sunny."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (21, 3)
    assert response.finish_reason == "stop"
    sent = llm_server.last
    assert sent.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert API_KEY not in json.dumps(sent.query)  # the key travels in a header, not the URL
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "What is the weather in Paris?"}]}]
    assert field(sent.body, "systemInstruction")["parts"] == [{"text": "You are terse."}]


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
    assert llm_server.last.path.endswith(":streamGenerateContent")
    assert llm_server.last.query == {"alt": "sse"}


async def test_tool_call_round_trip(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    model = make()
    llm_server.reply(tool_calls=[ScriptedCall("get_weather", {"city": "Paris"})])

    first = await model.request(conversation(), [WEATHER], {})

    assert first.finish_reason == "tool_calls"
    [call] = first.tool_calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    [declaration] = field(llm_server.last.body["tools"][0], "functionDeclarations")
    assert declaration["name"] == "get_weather"
    assert field(declaration, "parametersJsonSchema") == WEATHER.parameters  # nested schema intact

    llm_server.reply("18°C and sunny in Paris.")
    second = await model.request(after_tool(call), [WEATHER], {})

    assert second.text == "18°C and sunny in Paris."
    asked, answered = llm_server.last.body["contents"][-2:]
    assert asked == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
    }
    assert answered == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "18°C and sunny"}}}],
    }


async def test_parallel_results_share_one_turn_and_errors_are_marked(
    make: ModelFactory, llm_server: ScriptedLLMServer
) -> None:
    paris = ToolCall("id-1", "get_weather", {"city": "Paris"})
    oslo = ToolCall("id-2", "get_weather", {"city": "Oslo"})
    messages = [
        *conversation(),
        ChatMessage("assistant", "", tool_calls=(paris, oslo)),
        ChatMessage("tool", "18°C", tool_call_id="id-1", name="get_weather"),
        ChatMessage("tool", "no data", tool_call_id="id-2", is_error=True),  # name found via the call
    ]

    await make().request(messages, [WEATHER], {})

    answered = llm_server.last.body["contents"][-1]
    assert [field(p, "functionResponse") for p in answered["parts"]] == [
        {"id": "id-1", "name": "get_weather", "response": {"output": "18°C"}},
        {"id": "id-2", "name": "get_weather", "response": {"error": "no data"}},
    ]


async def test_thought_signatures_are_sent_back(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    model = make(model="gemini-3-pro")
    llm_server.reply(
        tool_calls=[ScriptedCall("get_weather", {"city": "Paris"}, thought_signature=b"sig-123")]
    )
    [call] = (await model.request(conversation(), [WEATHER], {})).tool_calls

    await model.request(after_tool(call), [WEATHER], {})
    [asked] = llm_server.last.body["contents"][-2]["parts"]
    assert base64.b64decode(field(asked, "thoughtSignature")) == b"sig-123"

    # A call from elsewhere (another process, a stored session) gets Google's documented stand-in.
    await model.request(after_tool(ToolCall("id-9", "get_weather", {})), [WEATHER], {})
    [asked] = llm_server.last.body["contents"][-2]["parts"]
    assert base64.b64decode(field(asked, "thoughtSignature")) == b"skip_thought_signature_validator"


async def test_streamed_tool_call(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply("Checking.", tool_calls=[ScriptedCall("get_weather", {"city": "Oslo"})], usage=(40, 12))

    deltas, response = await collect(make().stream(conversation(), [WEATHER], {}))

    assert "".join(deltas) == response.text == "Checking."
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("get_weather", {"city": "Oslo"})]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (40, 12)


async def test_temperature_and_max_tokens_are_forwarded(
    make: ModelFactory, llm_server: ScriptedLLMServer
) -> None:
    model = make(temperature=0.2, max_tokens=64)

    await model.request(conversation(), [], {})
    config = field(llm_server.last.body, "generationConfig")
    assert (config["temperature"], field(config, "maxOutputTokens")) == (0.2, 64)

    await model.request(conversation(), [], {"temperature": 0.9, "max_tokens": 8})
    config = field(llm_server.last.body, "generationConfig")
    assert (config["temperature"], field(config, "maxOutputTokens")) == (0.9, 8)


async def test_structured_output_request_shape(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.reply('{"answer": "sunny"}')

    response = await make().request(conversation(), [], {"output_schema": ANSWER_SCHEMA})

    assert json.loads(response.text) == {"answer": "sunny"}
    config = field(llm_server.last.body, "generationConfig")
    assert field(config, "responseMimeType") == "application/json"
    assert field(config, "responseJsonSchema") == ANSWER_SCHEMA


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
    llm_server.fail(503, "warming up")
    llm_server.reply("Recovered.")

    _, response = await collect(make().stream(conversation(), [], {}))

    assert response.text == "Recovered."
    assert len(llm_server.requests) == 2


async def test_persistent_500_raises_http_error(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(500, "the model is on fire", times=3)

    with pytest.raises(ProviderHTTPError) as caught:
        await make().request(conversation(), [], {})

    assert caught.value.status_code == 500
    assert "gemini (default) answered HTTP 500: the model is on fire" in str(caught.value)
    assert len(llm_server.requests) == 3


async def test_client_error_is_not_retried(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(400, "bad request")

    with pytest.raises(ProviderHTTPError):
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


async def test_api_key_never_in_error_text(make: ModelFactory, llm_server: ScriptedLLMServer) -> None:
    llm_server.fail(403, f"API key {API_KEY} is not valid")

    with pytest.raises(ProviderHTTPError) as caught:
        await make().request(conversation(), [], {})

    assert caught.value.status_code == 403
    assert API_KEY not in str(caught.value)


async def test_unreachable_host_names_the_host(make: ModelFactory) -> None:
    with pytest.raises(ProviderError) as caught:
        await make(host="http://127.0.0.1:9", max_retries=1).request(conversation(), [], {})

    assert "127.0.0.1:9" in str(caught.value)
    assert API_KEY not in str(caught.value)
