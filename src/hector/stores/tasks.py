"""a2a-sdk's SQL task store with a leaner write and read path.

The SDK's ``DatabaseTaskStore`` saves through an ORM ``merge`` (a SELECT, then an UPDATE or
INSERT, plus unit-of-work bookkeeping) and reads through an ORM session. A task is saved several
times per request (submitted, working, each artifact chunk, completed) and read a few times, so
those costs dominated a request's time. This keeps the SDK's table, schema, row format and
ownership rules, and replaces the two hot operations: one UPSERT per save, one SELECT per read.

On a SQLite file both run on the dedicated connection of ``hector.stores.sqlite`` as plain SQL,
with SQLAlchemy's own column conversions (so the rows are exactly what the SDK would write and
read). On PostgreSQL they are SQLAlchemy statements built once and executed with parameters,
which skips rebuilding and re-hashing a statement per call.

A task canceled in the table stays canceled: a save of any other state leaves its row alone and
raises ``ConcurrentTaskModificationError``. That is how a replica running a task learns that
another replica canceled it (CancelTask on a replica that does not run the task only writes the
table): a2a-sdk's consumer reloads the task on that error, sees it terminal and stops the run.
Likewise a cancel never overwrites a task that completed, failed or was rejected meanwhile (as
a2a-sdk's ``VersionedTaskStore`` contract asks): it raises the same error and the task keeps its end.
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, cast

import sqlalchemy as sa
from a2a.server.cluster import ConcurrentTaskModificationError
from a2a.server.context import ServerCallContext
from a2a.server.models import TaskModel
from a2a.server.tasks import DatabaseTaskStore
from a2a.types.a2a_pb2 import Task, TaskState
from google.protobuf.json_format import MessageToDict
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import class_mapper

from hector.stores.sqlite import bind_processors, result_processors, runner_for, statement

MISSING_SECONDS = 1.0
"""How long a task id found missing is answered from memory (see ``RecentlyMissing``)."""
_HORIZON = 10.0


class RecentlyMissing:
    """Task ids just looked up and not found, answered "missing" again for a second.

    The SDK looks a new task up three times before saving it first (request handler, producer,
    consumer), each a query that finds nothing. The ids of new tasks are UUIDs this server has
    just generated, so nobody else can create them in that second; an id a client sends is one
    it got from a task that exists (and is found). A save of the id forgets the entry, and a
    look-up that overlapped a save of the same id records nothing, so a save is never hidden.
    """

    def __init__(self) -> None:
        self._missing: dict[str, dict[str, float]] = {}  # id → owner → when found missing
        self._touched: dict[str, float] = {}  # id → when a save of it last began or ended
        self._writing: dict[str, int] = {}  # id → saves in flight

    def known(self, task_id: str, owner: str) -> bool:
        found = self._missing.get(task_id, {}).get(owner)
        return found is not None and time.monotonic() - found < MISSING_SECONDS

    def record(self, task_id: str, owner: str, since: float) -> None:
        """The look-up that began at *since* found nothing."""
        now = time.monotonic()
        if (
            self._writing.get(task_id)
            or self._touched.get(task_id, -_HORIZON) >= since
            or now - since > _HORIZON
        ):
            return
        self._missing.setdefault(task_id, {})[owner] = now
        _forget_before(self._missing, now - MISSING_SECONDS, lambda owners: min(owners.values()))

    @contextlib.contextmanager
    def saving(self, task_id: str) -> Iterator[None]:
        self._touch(task_id)
        self._missing.pop(task_id, None)
        self._writing[task_id] = self._writing.get(task_id, 0) + 1
        try:
            yield
        finally:
            left = self._writing.pop(task_id) - 1
            if left:
                self._writing[task_id] = left
            self._touch(task_id)

    def _touch(self, task_id: str) -> None:
        now = time.monotonic()
        self._touched.pop(task_id, None)  # re-inserted last: the dict stays in time order
        self._touched[task_id] = now
        _forget_before(self._touched, now - _HORIZON, lambda at: at)


def _forget_before(entries: dict[str, Any], cutoff: float, when: Callable[[Any], float]) -> None:
    """Drop the oldest entries (insertion order) recorded before *cutoff*, once there are many."""
    if len(entries) < 1024:
        return
    for key in list(itertools.islice(entries, 256)):
        if when(entries[key]) >= cutoff:
            break
        del entries[key]


class LeanDatabaseTaskStore(DatabaseTaskStore):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.missing = RecentlyMissing()
        mapper = class_mapper(self.task_model)
        # (ORM attribute, column) pairs of the task model, e.g. task_metadata → metadata.
        self._columns = [(attr.key, attr.columns[0]) for attr in mapper.column_attrs]
        table = self.table()
        columns = [column for _, column in self._columns]
        dialect = self.engine.dialect
        self.runner = runner_for(self.engine) if dialect.name == "sqlite" else None
        # A single statement needs no BEGIN/COMMIT around it: on PostgreSQL that saves two of
        # the three round trips of each save and read.
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._to_db = bind_processors(columns, dialect)
        self._from_db = result_processors(columns, dialect)
        insert: Any = postgresql.insert(table) if dialect.name == "postgresql" else sqlite.insert(table)
        # Parameter names differ from column names: SQLAlchemy reserves those in an INSERT.
        new = insert.values({column.name: sa.bindparam(f"p_{column.name}") for column in columns})
        changes = {column.name: new.excluded[column.name] for column in columns if column.name != "id"}
        # A cancel never turns a task that ended otherwise into a canceled one (a cancel racing the
        # task's completion); any other write never overwrites a cancel.
        ended = (TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_REJECTED)
        self._cancel_upsert = new.on_conflict_do_update(
            index_elements=["id"], set_=changes, where=_state_not_in(table, dialect.name, ended)
        )
        self._upsert = new.on_conflict_do_update(
            index_elements=["id"],
            set_=changes,
            where=_state_not_in(table, dialect.name, (TaskState.TASK_STATE_CANCELED,)),
        )
        self._get = sa.select(*columns).where(
            table.c.id == sa.bindparam("p_id"), table.c.owner == sa.bindparam("p_owner")
        )
        if self.runner is not None:  # the same statements as SQL text for the sqlite3 connection
            position = {f"p_{column.name}": i for i, column in enumerate(columns)}
            self._upsert_sql, self._upsert_order = _positional(self._upsert, dialect, position)
            self._cancel_upsert_sql, self._cancel_upsert_order = _positional(
                self._cancel_upsert, dialect, position
            )
            self._get_sql = self._get.compile(dialect=dialect).string

    def table(self) -> sa.Table:
        return cast(sa.Table, self.task_model.__table__)

    def _portable(self) -> bool:
        """Databases other than SQLite and PostgreSQL keep the SDK's ORM path."""
        return self.engine.dialect.name not in ("sqlite", "postgresql")

    async def save(self, task: Task, context: ServerCallContext) -> None:
        await self._ensure_initialized()
        if self._portable():
            await super().save(task, context)
            return
        values = self._values(task, self.owner_resolver(context))
        canceling = task.status.state == TaskState.TASK_STATE_CANCELED
        with self.missing.saving(task.id):
            if self.runner is not None:
                converted = [convert(value) for convert, value in zip(self._to_db, values, strict=True)]
                sql, order = (
                    (self._cancel_upsert_sql, self._cancel_upsert_order)
                    if canceling
                    else (self._upsert_sql, self._upsert_order)
                )
                row = tuple(converted[i] for i in order)
                written = await self.runner.run(statement(sql, row), write=True)
            else:
                params = {f"p_{c.name}": value for (_, c), value in zip(self._columns, values, strict=True)}
                async with self._autocommit.connect() as conn:
                    result = await conn.execute(self._cancel_upsert if canceling else self._upsert, params)
                    written = result.rowcount
        if not written:
            raise ConcurrentTaskModificationError(task.id)

    def _values(self, task: Task, owner: str) -> list[Any]:
        """The row of *task*, in ``_columns`` order: what the SDK's ``_to_orm`` puts in its model,
        without building the ORM instance (tests/stores/test_tasks.py checks they agree)."""
        if self.core_to_model_conversion is not None:
            model = self._to_orm(task, owner)
            return [getattr(model, key) for key, _ in self._columns]
        fields = {
            "id": task.id,
            "context_id": task.context_id,
            "kind": "task",
            "owner": owner,
            "last_updated": task.status.timestamp.ToDatetime() if task.status.HasField("timestamp") else None,
            "status": MessageToDict(task.status),
            "artifacts": [MessageToDict(artifact) for artifact in task.artifacts],
            "history": [MessageToDict(message) for message in task.history],
            "protocol_version": "1.0",
            "task_metadata": MessageToDict(task.metadata) if task.metadata.fields else None,
        }
        return [fields[key] for key, _ in self._columns]

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        await self._ensure_initialized()
        if self._portable():
            return await super().get(task_id, context)
        owner = self.owner_resolver(context)
        if self.missing.known(task_id, owner):
            return None
        since = time.monotonic()
        row: Any
        if self.runner is not None:

            def read(conn: sqlite3.Connection) -> Any:
                found = conn.execute(self._get_sql, (task_id, owner)).fetchone()
                if found is None:
                    return None
                return [convert(value) for convert, value in zip(self._from_db, found, strict=True)]

            row = await self.runner.run(read, write=False)
        else:  # SQLAlchemy has converted the values already
            async with self._autocommit.connect() as conn:
                row = (await conn.execute(self._get, {"p_id": task_id, "p_owner": owner})).first()
        if row is None:
            self.missing.record(task_id, owner, since)
            return None
        attrs = {key: value for (key, _), value in zip(self._columns, row, strict=True)}
        # _from_orm only reads attributes, so a plain namespace serves unless the store was
        # given its own conversion, which may expect the real model.
        model = self.task_model(**attrs) if self.model_to_core_conversion else SimpleNamespace(**attrs)
        return self._from_orm(cast(TaskModel, model))


def _positional(insert: Any, dialect: sa.Dialect, position: dict[str, int]) -> tuple[str, list[int]]:
    """*insert* as SQL text for the sqlite3 connection, with the order of its parameters as
    indexes into a row in column order."""
    compiled = insert.compile(dialect=dialect)
    return compiled.string, [position[name] for name in compiled.positiontup or ()]


def _state_not_in(table: sa.Table, dialect: str, states: tuple[int, ...]) -> sa.ColumnElement[bool]:
    """The stored row's state is none of *states*, with its constants inline (the SQLite statement
    is run as text with the row's values only)."""
    state: sa.ColumnElement[Any]
    if dialect == "sqlite":
        state = sa.func.json_extract(table.c.status, sa.literal_column("'$.state'"))
    else:
        state = table.c.status.op("->>")(sa.literal_column("'state'"))
    names: list[sa.ColumnElement[Any]] = [sa.literal_column(f"'{TaskState.Name(s)}'") for s in states]
    return sa.func.coalesce(state, sa.literal_column("''")).not_in(names)
