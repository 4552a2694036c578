"""A plain a2a-sdk agent served over gRPC on loopback, with its card served over HTTP.

The agent (``Streamer``) answers in three streamed chunks and records the gRPC metadata of each
call, so tests can check what reached the server (credentials, trace context, ``agent-name``).
The card lists the gRPC interface only, so a client that finds it must speak gRPC. ``Asker`` asks
a question first (``input-required`` with text only) and answers the reply on the same task;
``Gate`` holds a task open until the test lets it finish.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from a2a.compat.v0_3 import a2a_v0_3_pb2_grpc
from a2a.compat.v0_3.grpc_handler import CompatGrpcHandler
from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler, GrpcHandler
from a2a.server.routes import create_agent_card_routes
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types import a2a_pb2_grpc
from a2a.types.a2a_pb2 import AgentCapabilities, AgentCard, AgentInterface, Part, Task, TaskState, TaskStatus
from starlette.applications import Starlette

from tests.harness import serve_app

CHUNK_PAUSE = 0.2
"""Between chunks: long enough that each one reaches the client as its own event."""


async def submitted(context: RequestContext, event_queue: EventQueue) -> None:
    """The task exists, SUBMITTED: what an agent sends first."""
    assert context.task_id and context.context_id
    await event_queue.enqueue_event(
        Task(
            id=context.task_id,
            context_id=context.context_id,
            status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
        )
    )


@dataclass
class Recorder(AgentExecutor):
    calls: list[dict[str, str]] = field(default_factory=list)
    """The gRPC metadata of each call, in order (keys lower-case; one value per key)."""

    def record(self, context: RequestContext) -> None:
        grpc_context = context.call_context.state.get("grpc_context") if context.call_context else None
        metadata = grpc_context.invocation_metadata() if grpc_context is not None else None
        self.calls.append({k: v for k, v in metadata or () if isinstance(v, str)})

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        return None


@dataclass
class Streamer(Recorder):
    """Answers "<text>" with the chunks "echo: ", "<text>", " (done", ")", then completes."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None and context.task_id and context.context_id
        self.record(context)
        text = "".join(p.text for p in context.message.parts)
        await submitted(context, event_queue)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()
        for n, chunk in enumerate(("echo: ", text, " (done", ")")):
            await updater.add_artifact([Part(text=chunk)], "answer", name="answer", append=n > 0)
            await asyncio.sleep(CHUNK_PAUSE)
        await updater.complete(updater.new_agent_message([Part(text=f"echo: {text} (done)")]))


QUESTION = "Which environment?"


@dataclass
class Asker(Recorder):
    """A new task asks ``QUESTION`` (input-required, no data part); the reply on that task
    completes it with "deploying <request> to <reply>"."""

    requests: dict[str, str] = field(default_factory=dict)
    """Task id → the text of the message that started it."""

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.message is not None and context.task_id and context.context_id
        self.record(context)
        text = "".join(p.text for p in context.message.parts)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        if context.current_task is None:
            self.requests[context.task_id] = text
            await submitted(context, event_queue)
            await updater.requires_input(updater.new_agent_message([Part(text=QUESTION)]))
            return
        await updater.start_work()
        answer = f"deploying {self.requests[context.task_id]} to {text}"
        await updater.complete(updater.new_agent_message([Part(text=answer)]))


@dataclass
class Gate(Recorder):
    """Starts working on a task (SUBMITTED, then WORKING), then waits for ``opened`` before
    completing it with "gate passed"; ``started`` is set once it waits."""

    started: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        assert context.task_id and context.context_id
        self.record(context)
        await submitted(context, event_queue)
        updater = TaskUpdater(event_queue, context.task_id, context.context_id)
        await updater.start_work()
        self.started.set()
        await self.opened.wait()
        await updater.complete(updater.new_agent_message([Part(text="gate passed")]))


@dataclass
class GrpcAgent:
    card_url: str
    """The HTTP base URL whose /.well-known/agent-card.json describes the agent."""
    grpc_target: str
    """host:port of the gRPC server."""
    executor: Recorder


@contextlib.asynccontextmanager
async def grpc_agent(
    *,
    certfile: str | None = None,
    client_ca: str | None = None,
    scheme: str = "",
    protocol_version: str = "1.0",
    executor: Recorder | None = None,
) -> AsyncIterator[GrpcAgent]:
    """Serve a ``Streamer`` over gRPC (TLS with *certfile*, a PEM with key and chain; a client
    certificate required when *client_ca* is given) and its card over plain HTTP. The card's
    interface URL is ``<scheme>127.0.0.1:<port>`` (e.g. ``grpcs://``)."""
    card = AgentCard(
        name="streamer",
        description="Streams an echo over gRPC",
        version="1",
        capabilities=AgentCapabilities(streaming=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
    )
    executor = executor or Streamer()
    handler = DefaultRequestHandler(agent_executor=executor, task_store=InMemoryTaskStore(), agent_card=card)
    server = grpc.aio.server()
    if protocol_version == "0.3":  # the 0.3 service, as an agent built on an older SDK offers it
        a2a_v0_3_pb2_grpc.add_A2AServiceServicer_to_server(CompatGrpcHandler(handler), server)  # type: ignore[no-untyped-call]
    else:
        a2a_pb2_grpc.add_A2AServiceServicer_to_server(GrpcHandler(handler), server)  # type: ignore[no-untyped-call]
    if certfile is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        pem = Path(certfile).read_bytes()
        credentials = grpc.ssl_server_credentials(
            [(pem, pem)],
            root_certificates=Path(client_ca).read_bytes() if client_ca else None,
            require_client_auth=client_ca is not None,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    target = f"127.0.0.1:{port}"
    card.supported_interfaces.append(
        AgentInterface(url=scheme + target, protocol_binding="GRPC", protocol_version=protocol_version)
    )
    try:
        async with serve_app(Starlette(routes=create_agent_card_routes(card))) as url:
            yield GrpcAgent(url, target, executor)
    finally:
        await server.stop(grace=None)
