"""The cancel listener of a replica (``server.event_relay``) keeps listening whatever it is sent."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from hector.a2a import cancels
from hector.a2a.cancels import CancelWatch


async def test_a_malformed_notice_does_not_stop_the_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    # A channel of this test's own: every replica on this Redis listens on the real one.
    channel = f"hector:test-task-cancels:{uuid.uuid4().hex}"
    monkeypatch.setattr(cancels, "CHANNEL", channel)
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    watch = CancelWatch(redis)
    started = asyncio.Event()

    async def run() -> None:
        async with watch.track("task-1"):
            started.set()
            await asyncio.Event().wait()

    running = asyncio.create_task(run())
    await started.wait()
    while (await redis.pubsub_numsub(channel))[0][1] == 0:  # the listener has subscribed
        await asyncio.sleep(0.01)
    await redis.publish(channel, b"\xff\xfe not an id")
    await redis.publish(channel, "task-1")
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 10)
    assert watch.stopped("task-1")
    await watch.aclose()
    await redis.aclose()
