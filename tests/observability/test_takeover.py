"""A task left running by a server that stopped, continued by the next one: the takeover is a
trace of its own (``task.takeover``) whose child is the continued run, and it is counted.

The stopped server is simulated by what it leaves behind in the shared database: a task that is
still ``working``, last changed a minute ago, without a live lease, and its loop checkpoint.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from a2a.server.context import ServerCallContext
from a2a.types.a2a_pb2 import Message, Part, Role, Task, TaskState, TaskStatus

from hector.agent.loop import LoopState
from hector.messages import ChatMessage
from hector.stores.checkpoints import CheckpointStore
from hector.stores.db import create_engine, migrate, sqlite_url
from hector.stores.tasks import LeanDatabaseTaskStore
from tests.harness import running_hector
from tests.llm_server import ScriptedLLMServer
from tests.observability.collectors import GRPCCollector
from tests.observability.test_metrics import scrape
from tests.security.conftest import V1
from tests.server.test_llm_e2e import llm_config

TASK = "task-left-behind"
CONTEXT = "ctx-left-behind"


async def leave_a_running_task(data_dir: Path) -> None:
    engine = create_engine(sqlite_url(data_dir))
    await migrate(engine)
    tasks = LeanDatabaseTaskStore(engine, owner_resolver=lambda _: "worker/anonymous")
    await tasks.initialize()
    status = TaskStatus(state=TaskState.TASK_STATE_WORKING)
    status.timestamp.FromDatetime(datetime.now(UTC) - timedelta(minutes=1))
    asked = Message(role=Role.ROLE_USER, message_id="m1", parts=[Part(text="count the files")])
    task = Task(id=TASK, context_id=CONTEXT, status=status, history=[asked])
    await tasks.save(task, ServerCallContext())
    record = CheckpointStore(engine).recorder(TASK, "worker", CONTEXT, "anonymous")
    await record(LoopState(1, [ChatMessage("user", "count the files")]))
    await engine.dispose()


async def test_takeover_starts_a_trace_and_is_counted(
    tmp_path: Path, llm_server: ScriptedLLMServer, grpc_collector: GRPCCollector
) -> None:
    await leave_a_running_task(tmp_path / ".hector")
    llm_server.reply("There are 3 files.", usage=(12, 4))
    cfg = {
        "llms": {"main": llm_config(llm_server)},
        "session_stores": {"main": {"backend": "sql"}},
        "agents": {"worker": {"llm": "main"}},
        "server": {
            "task_lease_interval": "0.3s",
            "observability": {
                "metrics": {"enabled": True},
                "tracing": {"enabled": True, "endpoint": grpc_collector.endpoint},
            },
        },
    }
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient(timeout=30) as http:
        # Taken over during start-up; the continued run needs a moment to finish.
        deadline = time.monotonic() + 10
        state = ""
        while state != "TASK_STATE_COMPLETED" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            body = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": TASK}}
            got = (await http.post(f"{url}/agents/worker", json=body, headers=V1)).json()
            state = got["result"]["status"]["state"]
        assert state == "TASK_STATE_COMPLETED", got
        assert got["result"]["status"]["message"]["parts"][0]["text"] == "There are 3 files."
        m = await scrape(http, url)
    assert m.value("hector_task_takeovers_total", agent="worker", outcome="ok") == 1
    assert m.value("hector_agent_calls_total", agent="worker") == 1
    assert m.value("hector_agent_tokens_used_total", agent="worker", type="input") == 12

    takeover = grpc_collector.one("task.takeover")
    assert takeover.parent_id == "", "a new root: the checkpoint keeps no trace context"
    assert takeover.attributes == {
        "agent.name": "worker",
        "task.id": TASK,
        "task.checkpoint.iteration": 1,
    }
    call = grpc_collector.one("agent.call")
    assert (call.trace_id, call.parent_id) == (takeover.trace_id, takeover.span_id)
    model = grpc_collector.one("agent.llm_request")
    assert model.parent_id == call.span_id
    _, trace_id, parent_id, _ = llm_server.last.headers["traceparent"].split("-")
    assert (trace_id, parent_id) == (takeover.trace_id, model.span_id)
