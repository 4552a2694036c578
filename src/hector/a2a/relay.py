"""Task events relayed between replicas through Redis pub/sub, for SubscribeToTask on any of them.

a2a-sdk 1.3's request handler runs a task on the replica that received its message and, given a
``TaskEventStream``, publishes every event of it there; a SubscribeToTask that reaches a replica
not running the task gets the stored task, then the events from the stream. The SDK's own
stream (``DatabaseTaskEventStream``) needs its ``VersionedDatabaseTaskStore``: an ORM write plus
a version row and an event row per event, an event log that is never pruned, and subscribers
that poll it every half second. This stream keeps Hector's task store and sends each event
once through a Redis channel per task (``hector:task-events:<id>``), which nothing stores.

Without versions the handler cannot say which events its snapshot already holds, so an event
published between the snapshot read and the subscription can be missed. The final state never
is: the subscriber reads the stored state once subscribed and whenever the channel is quiet, and
a task that has ended (or waits for input) ends the stream with its stored status. The final
answer replaces the streamed text (``ResponseArtifact.finish``), so a missed chunk does not
remain missing either.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import Any

import sqlalchemy as sa
from a2a.server.cluster import TaskEventStream, TaskVersion, VersionedEvent
from a2a.server.events import Event
from a2a.types.a2a_pb2 import StreamResponse, TaskState, TaskStatus, TaskStatusUpdateEvent
from a2a.utils.proto_utils import to_stream_response
from google.protobuf.json_format import ParseDict
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.a2a.cancels import CancelWatch

log = logging.getLogger("hector.a2a.relay")

CHANNEL = "hector:task-events:"
_STOPS = {
    TaskState.TASK_STATE_COMPLETED,
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_REJECTED,
    TaskState.TASK_STATE_INPUT_REQUIRED,
    TaskState.TASK_STATE_AUTH_REQUIRED,
}


def _event(response: StreamResponse) -> Event:
    which = response.WhichOneof("payload")
    if which == "task":
        return response.task
    if which == "message":
        return response.message
    if which == "status_update":
        return response.status_update
    return response.artifact_update


def _ends(event: Event) -> bool:
    status = getattr(event, "status", None)
    return isinstance(status, TaskStatus) and status.state in _STOPS


def _canceled(event: Event) -> bool:
    return isinstance(event, TaskStatusUpdateEvent) and event.status.state == TaskState.TASK_STATE_CANCELED


class RedisTaskEvents(TaskEventStream):
    """The events of the tasks in one task table, shared through one Redis server."""

    def __init__(
        self,
        redis: Redis,
        engine: AsyncEngine,
        tasks: sa.Table,
        cancels: CancelWatch | None = None,
        quiet: float = 2.0,
    ) -> None:
        self.redis = redis
        self.engine = engine
        self.tasks = tasks
        self.cancels = cancels
        """Told of every CANCELED status, so the replica running the task stops it at once."""
        self.quiet = quiet
        """Seconds without an event after which the stored state is checked."""

    async def publish(self, task_id: str, event: VersionedEvent) -> None:
        try:
            await self.redis.publish(CHANNEL + task_id, to_stream_response(event.event).SerializeToString())
            if self.cancels is not None and _canceled(event.event):
                await self.cancels.announce(task_id)
        except RedisError as exc:  # remote subscribers miss it; the task itself goes on
            log.warning("task event not relayed: %s", type(exc).__name__, extra={"task": task_id})

    async def subscribe(self, task_id: str, *, after: TaskVersion) -> AsyncGenerator[VersionedEvent, None]:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(CHANNEL + task_id)
        try:
            stored = await self._stored_end(task_id)
            while stored is None:
                event = await self._next(pubsub, self.quiet)
                if event is None:
                    stored = await self._stored_end(task_id)
                    continue
                yield VersionedEvent(event, TaskVersion.MISSING)
                if _ends(event):
                    return
            # Events sent before the state was stored are delivered before it: take them first.
            while (event := await self._next(pubsub, 0.1)) is not None:
                yield VersionedEvent(event, TaskVersion.MISSING)
                if _ends(event):
                    return
            yield VersionedEvent(stored, TaskVersion.MISSING)
        finally:
            # Closing the connection ends the subscription too: unsubscribe() alone would fail (and
            # leak the connection) when Redis is gone.
            await pubsub.aclose()

    async def _next(self, pubsub: Any, wait: float) -> Event | None:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
        if message is None:
            return None
        response = StreamResponse()
        response.ParseFromString(message["data"])
        return _event(response)

    async def _stored_end(self, task_id: str) -> TaskStatusUpdateEvent | None:
        """The stored status as an event, if it ends a subscription."""
        t = self.tasks
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(t.c.context_id, t.c.status).where(t.c.id == task_id))).first()
        if row is None or not row.status:
            return None
        status = ParseDict(row.status, TaskStatus(), ignore_unknown_fields=True)
        if status.state not in _STOPS:
            return None
        return TaskStatusUpdateEvent(task_id=task_id, context_id=row.context_id, status=status)

    async def destroy(self, task_id: str) -> None:
        """Nothing to release: a channel exists only while someone listens."""
