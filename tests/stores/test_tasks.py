"""The lean A2A task store writes and reads exactly the SDK's rows, owner by owner."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from a2a.server.cluster import ConcurrentTaskModificationError
from a2a.server.context import ServerCallContext
from a2a.server.tasks import DatabaseTaskStore
from a2a.types.a2a_pb2 import Artifact, ListTasksRequest, Message, Part, Role, Task, TaskState, TaskStatus
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Struct, Value
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.stores.tasks import LeanDatabaseTaskStore, RecentlyMissing


def _ctx(owner: str) -> ServerCallContext:
    return ServerCallContext(state={"owner": owner})


def _owner(context: ServerCallContext) -> str:
    return str(context.state["owner"])


def _task(task_id: str = "t-1", state: TaskState = TaskState.TASK_STATE_COMPLETED) -> Task:
    status = TaskStatus(
        state=state,
        message=Message(message_id="m-2", role=Role.ROLE_AGENT, parts=[Part(text="done ✓")]),
    )
    status.timestamp.FromDatetime(datetime(2026, 11, 23, 12, 30, 1, 250000, tzinfo=UTC))
    metadata = Struct()
    metadata.update({"source": "test", "n": 3})
    return Task(
        id=task_id,
        context_id="ctx-1",
        status=status,
        artifacts=[
            Artifact(
                artifact_id="response",
                name="response",
                parts=[Part(text="the answer"), Part(data=ParseDict({"k": [1, "two"]}, Value()))],
            )
        ],
        history=[Message(message_id="m-1", role=Role.ROLE_USER, parts=[Part(text="question")])],
        metadata=metadata,
    )


async def test_rows_are_the_sdk_mapping(engine: AsyncEngine) -> None:
    store = LeanDatabaseTaskStore(engine, owner_resolver=_owner)
    model = store._to_orm(_task(), "alice")
    assert store._values(_task(), "alice") == [getattr(model, key) for key, _ in store._columns]
    bare = Task(id="t-2", context_id="c", status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED))
    model = store._to_orm(bare, "bob")
    assert store._values(bare, "bob") == [getattr(model, key) for key, _ in store._columns]


async def test_save_then_get_round_trips_and_updates(engine: AsyncEngine) -> None:
    store = LeanDatabaseTaskStore(engine, owner_resolver=_owner)
    assert await store.get("t-1", _ctx("alice")) is None
    working = _task(state=TaskState.TASK_STATE_WORKING)
    await store.save(working, _ctx("alice"))
    assert await store.get("t-1", _ctx("alice")) == working
    done = _task()
    await store.save(done, _ctx("alice"))
    assert await store.get("t-1", _ctx("alice")) == done
    assert await store.get("t-1", _ctx("mallory")) is None  # another owner does not see it


async def test_a_canceled_task_stays_canceled(engine: AsyncEngine) -> None:
    """Another replica's CancelTask wins over the running replica's next save, which is told."""
    store = LeanDatabaseTaskStore(engine, owner_resolver=_owner)
    await store.save(_task(state=TaskState.TASK_STATE_WORKING), _ctx("alice"))
    canceled = _task(state=TaskState.TASK_STATE_CANCELED)
    await store.save(canceled, _ctx("alice"))
    with pytest.raises(ConcurrentTaskModificationError):
        await store.save(_task(state=TaskState.TASK_STATE_WORKING), _ctx("alice"))
    with pytest.raises(ConcurrentTaskModificationError):
        await store.save(_task(), _ctx("alice"))
    assert await store.get("t-1", _ctx("alice")) == canceled
    await store.save(canceled, _ctx("alice"))  # canceling again is harmless
    # A cancel that comes after the task ended otherwise changes nothing: the end stands.
    await store.save(_task("t-2"), _ctx("alice"))
    with pytest.raises(ConcurrentTaskModificationError):
        await store.save(_task("t-2", TaskState.TASK_STATE_CANCELED), _ctx("alice"))
    assert await store.get("t-2", _ctx("alice")) == _task("t-2")
    # Only a cancel comes from outside the run: writes between its other ends are not guarded.
    await store.save(_task("t-3", TaskState.TASK_STATE_FAILED), _ctx("alice"))
    await store.save(_task("t-3"), _ctx("alice"))
    assert await store.get("t-3", _ctx("alice")) == _task("t-3")


async def test_the_sdk_store_reads_what_the_lean_store_wrote_and_back(engine: AsyncEngine) -> None:
    lean = LeanDatabaseTaskStore(engine, owner_resolver=_owner)
    sdk = DatabaseTaskStore(engine, owner_resolver=_owner)
    await lean.save(_task("lean"), _ctx("alice"))
    await sdk.save(_task("sdk"), _ctx("alice"))
    assert await sdk.get("lean", _ctx("alice")) == _task("lean")
    assert await lean.get("sdk", _ctx("alice")) == _task("sdk")
    listed = await sdk.list(ListTasksRequest(), _ctx("alice"))
    assert sorted(t.id for t in listed.tasks) == ["lean", "sdk"]


async def test_a_new_task_looked_up_repeatedly_costs_one_query(engine: AsyncEngine) -> None:
    store = LeanDatabaseTaskStore(engine, owner_resolver=_owner)
    await store.initialize()  # creates the table: not what is counted
    queries = 0

    def count(*_: object) -> None:
        nonlocal queries
        queries += 1

    if store.runner is not None:
        run = store.runner.run

        async def counted(fn: Any, *, write: bool) -> Any:
            count()
            return await run(fn, write=write)

        store.runner.run = counted  # type: ignore[method-assign]
    else:
        sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    for _ in range(3):  # what the SDK does before the first save of a new task
        assert await store.get("new", _ctx("alice")) is None
    assert queries == 1
    await store.save(_task("new"), _ctx("alice"))
    assert await store.get("new", _ctx("alice")) == _task("new")  # the save is seen at once
    assert await store.get("new", _ctx("mallory")) is None


def test_a_look_up_that_overlapped_a_save_records_nothing() -> None:
    missing = RecentlyMissing()
    since = time.monotonic()
    with missing.saving("t"):  # begun after the look-up: its row may have been read too early
        missing.record("t", "alice", since)
        assert not missing.known("t", "alice")
    missing.record("t", "alice", since)
    assert not missing.known("t", "alice")
    missing.record("t", "alice", time.monotonic())  # a look-up begun after the save ended
    assert missing.known("t", "alice") and not missing.known("t", "bob")
    with missing.saving("t"):
        assert not missing.known("t", "alice")
