"""The agent loop, driven by scripted models, with in-memory and SQLite session stores."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from hector.agent import Agent
from hector.agent.loop import LoopState
from hector.agent.memory import BufferWindowMemory, SummaryBufferMemory, estimate_tokens
from hector.errors import AgentRunError
from hector.messages import AgentEvent, ChatMessage, ModelResponse, ToolCall, ToolCallEvent, ToolSpec, Usage
from hector.providers import FunctionModel, TestModel
from hector.stores.checkpoints import Checkpoint
from hector.stores.db import create_engine, migrate, sqlite_url
from hector.stores.sessions import MemorySessionStore, SessionAccessError, SessionStore, SQLSessionStore
from hector.tools import FunctionTool


class Script:
    """Answers from a list, recording what the model was shown each time."""

    def __init__(self, *answers: ModelResponse) -> None:
        self.answers = list(answers)
        self.seen: list[list[ChatMessage]] = []

    async def __call__(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> ModelResponse:
        self.seen.append(list(messages))
        return self.answers.pop(0)


def make_agent(model: FunctionModel | TestModel, sessions: SessionStore | None = None, **kw: object) -> Agent:
    return Agent(
        id="a",
        name="a",
        description="",
        model=model,
        sessions=sessions or MemorySessionStore(),
        memory=kw.pop("memory", BufferWindowMemory(50)),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def add(a: int, b: int) -> int:
    """Adds two numbers."""
    return a + b


def explode() -> str:
    """Always fails."""
    raise RuntimeError("disk on fire")


async def test_tool_round_trip_and_errors_become_results() -> None:
    script = Script(
        ModelResponse(
            "",
            (ToolCall("1", "add", {"a": 2, "b": 3}), ToolCall("2", "explode", {}), ToolCall("3", "nope", {})),
        ),
        ModelResponse("five", usage=Usage(3, 1)),
    )
    agent = make_agent(FunctionModel(script), tools=[FunctionTool(add), FunctionTool(explode)])
    events = [e async for e in agent.run_stream("2+3?", context_id="c")]
    kinds = [e.kind for e in events]
    assert kinds == ["tool_call", "tool_result"] * 3 + ["text_delta", "final"]
    results = [e for e in events if e.kind == "tool_result"]
    assert results[0].content == "5" and not results[0].is_error
    assert results[1].is_error and "disk on fire" in results[1].content
    assert results[2].is_error and "unknown tool 'nope'" in results[2].content
    tool_messages = [m for m in script.seen[1] if m.role == "tool"]
    assert [(m.tool_call_id, m.content[:5]) for m in tool_messages] == [
        ("1", "5"),
        ("2", "ERROR"),
        ("3", "ERROR"),
    ]
    assert events[-1].kind == "final" and events[-1].text == "five"


async def test_max_iterations_guard() -> None:
    async def forever(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> ModelResponse:
        return ModelResponse("", (ToolCall(str(len(messages)), "add", {"a": 1, "b": 1}),))

    agent = make_agent(FunctionModel(forever), tools=[FunctionTool(add)], max_iterations=3)
    with pytest.raises(AgentRunError, match="after 3 iterations"):
        _ = [e async for e in agent.run_stream("loop", context_id="c")]


async def test_history_is_kept_per_context_and_instruction_first(tmp_path: Path) -> None:
    engine = create_engine(sqlite_url(tmp_path))
    await migrate(engine)
    script = Script(ModelResponse("hi Ann"), ModelResponse("you are Ann"), ModelResponse("who?"))
    agent = make_agent(FunctionModel(script), SQLSessionStore(engine), instruction="Be brief.")
    await agent.run("I am Ann", context_id="c1")
    await agent.run("who am I?", context_id="c1")
    await agent.run("who am I?", context_id="c2")
    assert [(m.role, m.content) for m in script.seen[1]] == [
        ("system", "Be brief."),
        ("user", "I am Ann"),
        ("assistant", "hi Ann"),
        ("user", "who am I?"),
    ]
    assert [m.content for m in script.seen[2]] == ["Be brief.", "who am I?"]
    # A fresh store on the same database sees the same conversation (nothing lives in memory).
    stored = await SQLSessionStore(engine).load("a", "c1", "anonymous")
    assert [m.content for m in stored.messages] == ["I am Ann", "hi Ann", "who am I?", "you are Ann"]
    await engine.dispose()


@pytest.mark.parametrize("kind", ["memory", "sql"])
async def test_conversation_belongs_to_its_user(tmp_path: Path, kind: str) -> None:
    if kind == "sql":
        engine = create_engine(sqlite_url(tmp_path))
        await migrate(engine)
        store: SessionStore = SQLSessionStore(engine)
    else:
        store = MemorySessionStore()
    agent = make_agent(TestModel(), store)
    await agent.run("secret plan", context_id="shared", user="alice")
    with pytest.raises(SessionAccessError):
        await agent.run("what was said?", context_id="shared", user="mallory")
    await agent.run("again", context_id="shared", user="alice")
    history = await store.load("a", "shared", "alice")
    assert [m.content for m in history.messages if m.role == "user"] == ["secret plan", "again"]


def test_buffer_window_never_splits_a_tool_exchange() -> None:
    history = [
        ChatMessage("user", "q1"),
        ChatMessage("assistant", "", (ToolCall("1", "t", {}),)),
        ChatMessage("tool", "r", tool_call_id="1"),
        ChatMessage("assistant", "a1"),
        ChatMessage("user", "q2"),
        ChatMessage("assistant", "a2"),
    ]
    view = asyncio.run(BufferWindowMemory(4).view(history, None, 0))
    assert [m.content for m in view.messages] == ["q2", "a2"], "must not start at a tool result"
    view = asyncio.run(BufferWindowMemory(6).view(history, None, 0))
    assert len(view.messages) == 6


async def test_summary_buffer_summarizes_old_turns_once(tmp_path: Path) -> None:
    summaries: list[str] = []

    async def model(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> ModelResponse:
        if messages[0].content.startswith("Summarize"):
            summaries.append(messages[1].content)
            return ModelResponse("User is Ann; likes tea.")
        return ModelResponse("ok " + "x" * 40)

    fm = FunctionModel(model)
    engine = create_engine(sqlite_url(tmp_path))
    await migrate(engine)
    store = SQLSessionStore(engine)
    agent = make_agent(fm, store, memory=SummaryBufferMemory(fm, budget=100, threshold=0.8, target=0.5))
    for i in range(6):
        await agent.run(f"message number {i} " + "y" * 40, context_id="c")
    assert summaries, "history over the budget must be summarised"
    session = await store.load("a", "c", "anonymous")
    assert session.summary == "User is Ann; likes tea." and session.summarized_upto > 0
    kept = session.messages[session.summarized_upto :]
    assert kept[0].role == "user"
    assert estimate_tokens(kept) <= 100
    await engine.dispose()


async def test_structured_output_is_parsed() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "n": {"type": "integer"}}}
    agent = make_agent(TestModel(), settings={"output_schema": schema})
    events = [e async for e in agent.run_stream("give me json", context_id="c")]
    final = events[-1]
    assert final.kind == "final" and final.structured == {"city": "test", "n": 0}


async def test_cancellation_keeps_the_user_message() -> None:
    started = asyncio.Event()

    async def slow(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> ModelResponse:
        started.set()
        await asyncio.sleep(30)
        return ModelResponse("late")

    store = MemorySessionStore()
    agent = make_agent(FunctionModel(slow), store, streaming=False)
    run = asyncio.create_task(agent.run("hello?", context_id="c"))
    await asyncio.wait_for(started.wait(), 5)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert [m.content for m in (await store.load("a", "c", "anonymous")).messages] == ["hello?"]


def narrations(events: Sequence[AgentEvent]) -> list[tuple[str, str]]:
    """(call id, narration) of each tool call event."""
    return [(e.call.id, e.narration) for e in events if isinstance(e, ToolCallEvent)]


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "request"])
async def test_a_steps_text_goes_with_its_first_call_once(streaming: bool) -> None:
    two = (ToolCall("1", "add", {"a": 1, "b": 2}), ToolCall("2", "add", {"a": 3, "b": 4}))
    script = Script(
        ModelResponse("Adding both.", two),
        ModelResponse("", (ToolCall("3", "add", {"a": 0, "b": 0}),)),  # a step that says nothing
        ModelResponse("3, 7 and 0"),
    )
    agent = make_agent(FunctionModel(script), tools=[FunctionTool(add)], streaming=streaming)
    events = [e async for e in agent.run_stream("add them", context_id="c")]
    assert narrations(events) == [("1", "Adding both."), ("2", ""), ("3", "")]


async def test_a_step_continued_after_a_crash_does_not_say_its_text_again() -> None:
    # The server died while call 1 ran: its call event, with the step's text, went out then.
    step = ChatMessage(
        "assistant",
        "Adding both.",
        tool_calls=(ToolCall("1", "add", {"a": 1, "b": 2}), ToolCall("2", "add", {"a": 3, "b": 4})),
    )
    state = LoopState(0, [ChatMessage("user", "add them")], step, running="1")
    checkpoint = Checkpoint("t", "a", "c", "anonymous", state, 0.0)
    agent = make_agent(FunctionModel(Script(ModelResponse("3 and 7"))), tools=[FunctionTool(add)])
    events = [e async for e in agent.continue_stream(checkpoint, "retry")]
    assert narrations(events) == [("1", ""), ("2", "")]
    assert events[-1].kind == "final" and events[-1].text == "3 and 7"
