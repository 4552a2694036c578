"""TestModel: the deterministic ``type: test`` model and its rules, in order."""

from __future__ import annotations

import json
import time

import pytest

from hector.config.schema import LLMConfig
from hector.messages import ChatMessage, ToolCall, ToolSpec
from hector.providers import TestModel, build_model
from hector.providers.test import sample_from_schema
from tests.providers.support import ANSWER_SCHEMA, WEATHER, after_tool, collect

CLOCK = ToolSpec(
    "clock", "The time", {"type": "object", "properties": {"zone": {"type": "string", "default": "UTC"}}}
)


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage("system", "ignored"), ChatMessage("user", text)]


def test_build_model_gives_a_test_model() -> None:
    model = build_model("demo", LLMConfig(type="test"))
    assert isinstance(model, TestModel)
    assert (model.provider, model.model_name) == ("test", "test")


# ---- rule 1: after tool results ---------------------------------------------------------------


async def test_reports_tool_results() -> None:
    call = ToolCall("call_0_get_weather", "get_weather", {"city": "Paris"})

    response = await TestModel().request(after_tool(call, "18°C"), [WEATHER], {})

    assert response.text == "Tool get_weather returned: 18°C"
    assert response.tool_calls == ()
    assert response.finish_reason == "stop"


async def test_reports_every_trailing_tool_result_in_order() -> None:
    a, b = ToolCall("id-a", "get_weather", {}), ToolCall("id-b", "clock", {})
    messages = [
        ChatMessage("tool", "old", tool_call_id="id-old", name="get_weather"),
        ChatMessage("user", "get_weather and clock please"),
        ChatMessage("assistant", "", tool_calls=(a, b)),
        ChatMessage("tool", "18°C", tool_call_id="id-a", name="get_weather"),
        ChatMessage("tool", "12:00", tool_call_id="id-b"),  # no name: the call id stands in
    ]

    response = await TestModel().request(messages, [WEATHER, CLOCK], {})

    assert response.text == "Tool get_weather returned: 18°C\nTool id-b returned: 12:00"


async def test_tool_results_win_over_an_output_schema() -> None:
    call = ToolCall("id-a", "get_weather", {})
    response = await TestModel().request(
        after_tool(call, "18°C"), [WEATHER], {"output_schema": ANSWER_SCHEMA}
    )
    assert response.text == "Tool get_weather returned: 18°C"


# ---- rule 2: a tool named in the user's message -----------------------------------------------


async def test_calls_a_named_tool_with_the_json_in_the_message() -> None:
    response = await TestModel().request(user('please get_weather {"city": "Oslo"} thanks'), [WEATHER], {})

    assert response.text == ""
    assert response.tool_calls == (ToolCall("call_0_get_weather", "get_weather", {"city": "Oslo"}),)
    assert response.finish_reason == "tool_calls"


async def test_without_json_the_arguments_come_from_the_schema() -> None:
    response = await TestModel().request(user("what does clock say?"), [WEATHER, CLOCK], {})

    assert response.tool_calls == (ToolCall("call_0_clock", "clock", {"zone": "UTC"}),)


async def test_calls_every_named_tool() -> None:
    response = await TestModel().request(user("use get_weather, then clock"), [WEATHER, CLOCK], {})

    assert [(c.id, c.name) for c in response.tool_calls] == [
        ("call_0_get_weather", "get_weather"),
        ("call_1_clock", "clock"),
    ]


@pytest.mark.parametrize("text", ["get_weathers", "my-get_weather", "clockwork", "GET_WEATHER"])
async def test_a_tool_name_must_stand_as_a_whole_word(text: str) -> None:
    response = await TestModel().request(user(text), [WEATHER, CLOCK], {})

    assert response.tool_calls == ()
    assert response.text == f"[test model] You said: {text}"


async def test_only_available_tools_are_called() -> None:
    response = await TestModel().request(user("get_weather please"), [CLOCK], {})
    assert response.tool_calls == ()


async def test_a_named_tool_wins_over_an_output_schema() -> None:
    response = await TestModel().request(user("clock"), [CLOCK], {"output_schema": ANSWER_SCHEMA})
    assert [c.name for c in response.tool_calls] == ["clock"]


# ---- rule 3: an output schema -----------------------------------------------------------------


async def test_answers_json_matching_the_output_schema() -> None:
    response = await TestModel(reply="ignored").request(user("hi"), [], {"output_schema": ANSWER_SCHEMA})
    assert json.loads(response.text) == {"answer": "test"}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"const": 7}, 7),
        ({"enum": ["b", "a"]}, "b"),
        ({"type": "integer", "default": 3}, 3),
        ({"type": "integer"}, 0),
        ({"type": "number"}, 0.0),
        ({"type": "boolean"}, False),
        ({"type": ["null", "string"]}, "test"),
        ({"type": "array", "items": {"type": "string"}}, []),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 1}, [0]),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "object", "properties": {"b": {"type": "boolean"}}}},
            },
            {"a": {"b": False}},
        ),
    ],
)
def test_sample_from_schema(schema: dict[str, object], expected: object) -> None:
    assert sample_from_schema(schema) == expected


# ---- rule 4: otherwise ------------------------------------------------------------------------


async def test_echoes_the_user() -> None:
    response = await TestModel().request(user("hello there"), [], {})

    assert response.text == "[test model] You said: hello there"
    assert response.finish_reason == "stop"
    # Usage counts words: 1 ("ignored") + 2 in, 6 out.
    assert (response.usage.input_tokens, response.usage.output_tokens) == (3, 6)


async def test_a_fixed_reply() -> None:
    response = await TestModel(reply="Always this.").request(user("hello"), [], {})
    assert response.text == "Always this."


async def test_no_messages() -> None:
    response = await TestModel().request([], [], {})
    assert response.text == "[test model] You said: "


# ---- streaming and delay ----------------------------------------------------------------------


async def test_stream_deltas_make_up_the_answer() -> None:
    deltas, response = await collect(TestModel().stream(user("one two  three"), [], {}))

    assert len(deltas) > 1
    assert "".join(deltas) == response.text == "[test model] You said: one two  three"


async def test_stream_of_a_tool_call_has_no_text() -> None:
    deltas, response = await collect(TestModel().stream(user("clock"), [CLOCK], {}))

    assert deltas == []
    assert [c.name for c in response.tool_calls] == ["clock"]


async def test_delay() -> None:
    started = time.monotonic()
    await TestModel(delay=0.2).request(user("hi"), [], {})
    assert time.monotonic() - started >= 0.2
