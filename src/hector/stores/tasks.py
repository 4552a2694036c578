"""a2a-sdk's SQL task store with a leaner write and read path.

The SDK's ``DatabaseTaskStore`` saves through an ORM ``merge`` (a SELECT, then an UPDATE or
INSERT, plus unit-of-work bookkeeping) and reads through an ORM session. A task is saved several
times per request, so those costs dominate a request's time. This keeps the SDK's table, schema
and ownership rules, and only replaces the two hot statements: one UPSERT per save and one Core
SELECT per read.
"""

from __future__ import annotations

from typing import Any, cast

import sqlalchemy as sa
from a2a.server.context import ServerCallContext
from a2a.server.tasks import DatabaseTaskStore
from a2a.types.a2a_pb2 import Task
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import class_mapper


class LeanDatabaseTaskStore(DatabaseTaskStore):
    def _columns(self) -> list[tuple[str, Any]]:
        """(ORM attribute, table column) pairs of the task model, e.g. task_metadata → metadata."""
        mapper = class_mapper(self.task_model)
        return [(attr.key, attr.columns[0]) for attr in mapper.column_attrs]

    def table(self) -> sa.Table:
        return cast(sa.Table, self.task_model.__table__)

    async def save(self, task: Task, context: ServerCallContext) -> None:
        await self._ensure_initialized()
        model = self._to_orm(task, self.owner_resolver(context))
        table = self.table()
        values = {column.name: getattr(model, key) for key, column in self._columns()}
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            insert: Any = postgresql.insert(table)
        elif dialect == "sqlite":
            insert = sqlite.insert(table)
        else:  # other databases keep the SDK's portable ORM path
            await super().save(task, context)
            return
        updates = {name: value for name, value in values.items() if name != "id"}
        statement = insert.values(**values).on_conflict_do_update(index_elements=["id"], set_=updates)
        async with self.engine.begin() as conn:
            await conn.execute(statement)

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        await self._ensure_initialized()
        columns = self._columns()
        table = self.table()
        query = sa.select(*(column.label(key) for key, column in columns)).where(
            table.c.id == task_id, table.c.owner == self.owner_resolver(context)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        # _from_orm only reads attributes, so a detached model built from the row serves.
        return self._from_orm(self.task_model(**row._asdict()))
