"""Runs stopped at once by a CancelTask that reached another replica (``server.event_relay``).

CancelTask on a replica that does not run the task writes CANCELED to the task store (a2a-sdk's
handler) and publishes that status through the relay. Without more, the replica running the task
would notice at its next write only (``hector.stores.tasks`` refuses to overwrite a canceled
task), after the tool call in progress, however long, has finished. So the relay also names each
canceled task on one channel, ``hector:task-cancels``; every replica listens there and cancels its
run of that task, if it has one, at once. The run then ends its own stream with CANCELED
(``HectorAgentExecutor._publish``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("hector.a2a.cancels")

CHANNEL = "hector:task-cancels"
RETRY_SECONDS = 1.0
"""Pause before listening again after Redis failed."""


class CancelWatch:
    """The task runs of this process, and a Redis listener that cancels those canceled elsewhere."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._runs: dict[str, asyncio.Task[Any]] = {}
        self._stopped: set[str] = set()
        self._listener: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def track(self, task_id: str) -> AsyncIterator[None]:
        """The current asyncio task runs *task_id* for the block: a cancel notice cancels it."""
        # The first run starts listening (the server's event loop); so does a run after the
        # listener died of an error it could not retry.
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen(), name="hector-task-cancels")
        run = asyncio.current_task()
        assert run is not None
        self._runs[task_id] = run
        try:
            yield
        finally:
            if self._runs.get(task_id) is run:
                del self._runs[task_id]

    def running(self, task_id: str) -> bool:
        """Whether a run of *task_id* is going on in this process."""
        return task_id in self._runs

    def stopped(self, task_id: str) -> bool:
        """Whether this watch canceled the run of *task_id* (asked once, by the run)."""
        if task_id in self._stopped:
            self._stopped.discard(task_id)
            return True
        return False

    def release(self, task_id: str) -> None:
        """*task_id* is being canceled here, by a2a-sdk: its own notice must not cancel it twice."""
        self._runs.pop(task_id, None)

    async def announce(self, task_id: str) -> None:
        await self.redis.publish(CHANNEL, task_id)

    def _stop(self, task_id: str) -> None:
        run = self._runs.pop(task_id, None)
        if run is not None and not run.done():
            log.info("task canceled on another replica: stopping its run", extra={"task": task_id})
            self._stopped.add(task_id)
            run.cancel()

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub()
                try:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._stop(message["data"].decode(errors="replace"))
                finally:
                    await pubsub.aclose()
            except RedisError as exc:  # runs still stop at their next write (see above)
                log.warning("listening for task cancels failed: %s", type(exc).__name__)
                await asyncio.sleep(RETRY_SECONDS)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
