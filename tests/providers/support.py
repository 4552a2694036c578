"""What the provider tests share: a key, a tool, a conversation, and a stream collector."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from hector.config.schema import LLMConfig
from hector.messages import (
    ChatMessage,
    ModelResponse,
    ModelStreamEvent,
    ResponseDone,
    TextDelta,
    ToolCall,
    ToolSpec,
)
from hector.providers import Model, build_model
from tests.llm_server import ScriptedLLMServer

API_KEY = "sk-test-secret-0123456789"

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            # Nested on purpose: some SDKs flatten nested object schemas.
            "units": {
                "type": "object",
                "properties": {"system": {"type": "string", "enum": ["metric", "imperial"]}},
            },
        },
        "required": ["city"],
    },
)

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def conversation(question: str = "What is the weather in Paris?") -> list[ChatMessage]:
    return [ChatMessage("system", "You are terse."), ChatMessage("user", question)]


def after_tool(
    call: ToolCall, result: str = "18°C and sunny", *, is_error: bool = False
) -> list[ChatMessage]:
    """The conversation once the model has asked for *call* and the tool has answered."""
    return [
        *conversation(),
        ChatMessage("assistant", "", tool_calls=(call,)),
        ChatMessage("tool", result, tool_call_id=call.id, name=call.name, is_error=is_error),
    ]


async def collect(events: AsyncIterator[ModelStreamEvent]) -> tuple[list[str], ModelResponse]:
    """The text deltas and the one final response of a stream, checking the stream's shape."""
    deltas: list[str] = []
    done: list[ModelResponse] = []
    async for event in events:
        assert not done, "nothing may follow ResponseDone"
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        else:
            assert isinstance(event, ResponseDone)
            done.append(event.response)
    assert len(done) == 1, "a stream ends with exactly one ResponseDone"
    return deltas, done[0]


ModelFactory = Callable[..., Model]


@asynccontextmanager
async def model_factory(base: dict[str, Any]) -> AsyncIterator[ModelFactory]:
    """Yields ``make(**overrides)`` building models from *base*; closes them all afterwards."""
    made: list[Model] = []

    def make(**overrides: Any) -> Model:
        model = build_model("default", LLMConfig.model_validate({**base, **overrides}))
        made.append(model)
        return model

    yield make
    for model in made:
        await model.aclose()


def scripted_llm(provider: str, server: ScriptedLLMServer, **tls: object) -> LLMConfig:
    """An llms entry of *provider* pointing at the scripted server, failing fast (no retries)."""
    return LLMConfig.model_validate(
        {
            "type": provider,
            "model": "m",
            "host": f"{server.url}/v1" if provider == "openai" else server.url,
            "api_key": None if provider == "ollama" else "k",
            "max_retries": 0,
            "timeout": 5,
            **tls,
        }
    )
