"""How text deltas become artifact events: coalesced by time, closed by one replacement."""

from __future__ import annotations

import asyncio
from typing import Any

from a2a.types.a2a_pb2 import Part

from hector.a2a.executor import ResponseArtifact


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, bool, bool]] = []

    async def add_artifact(self, parts: list[Part], artifact_id: str, **kw: Any) -> None:
        self.events.append(("".join(p.text for p in parts), kw["append"], kw["last_chunk"]))


async def test_fast_answer_is_one_event() -> None:
    rec = Recorder()
    response = ResponseArtifact(rec, "r")  # type: ignore[arg-type]
    for word in ("a ", "b ", "c"):
        await response.delta(word)
    await response.finish([Part(text="a b c")])
    assert rec.events == [("a b c", False, True)]


async def test_slow_stream_is_chunked_then_replaced() -> None:
    rec = Recorder()
    response = ResponseArtifact(rec, "r")  # type: ignore[arg-type]
    response.interval = 0.02
    for word in ("one ", "two ", "three ", "four"):
        await asyncio.sleep(0.03)
        await response.delta(word)
    await response.flush()
    await response.finish([Part(text="one two three four")])
    chunks = rec.events[:-1]
    assert len(chunks) >= 2 and chunks[0][1] is False and all(c[1] for c in chunks[1:])
    assert "".join(c[0] for c in chunks) == "one two three four"
    assert rec.events[-1] == ("one two three four", False, True)


async def test_flush_before_other_events_keeps_order() -> None:
    rec = Recorder()
    response = ResponseArtifact(rec, "r")  # type: ignore[arg-type]
    await response.delta("Let me check. ")
    await response.flush()
    assert rec.events == [("Let me check. ", False, False)]
    await response.flush()  # nothing pending: no empty event
    assert len(rec.events) == 1
