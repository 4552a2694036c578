"""An agent's A2A request handler, able to take over the tasks of a replica that died.

The handler is a2a-sdk's, given the cross-replica event stream when one is configured
(``hector.a2a.relay``). When the lease sweeper (``hector.stores.leases``) claims a task with a
checkpoint, ``resume`` starts it again in this handler's registry of running tasks, exactly as a
new message would, but with no message: the executor finds the checkpoint in the call context
(``TAKEOVER``) and continues the loop. The task's events go through the SDK as usual (stored,
streamed to anyone who subscribes here, relayed to the other replicas).

The takeover is traced as a ``task.takeover`` span that starts a trace of its own (the checkpoint
does not keep the trace of the request that started the task); the continued run's spans are
its children, as the run starts while the span is current.

With the relay, SubscribeToTask follows this replica's own run of a task only while the run is
going on here. The SDK keeps a task's ``ActiveTask`` after a run pauses for approval; when the
approval reaches another replica and the task goes on there, that local one never gets another
event, so a subscriber here is given the relayed events instead.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Callable
from typing import Any

from a2a.server.agent_execution import RequestContext
from a2a.server.agent_execution.active_task import TERMINAL_TASK_STATES
from a2a.server.context import ServerCallContext
from a2a.server.events import Event
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.request_handlers.request_handler import validate, validate_request_params
from a2a.types.a2a_pb2 import AgentCard, SubscribeToTaskRequest, TaskState
from a2a.utils.errors import TaskNotFoundError, UnsupportedOperationError

from hector.a2a.executor import TAKEOVER, HectorAgentExecutor, SubjectUser
from hector.a2a.relay import RedisTaskEvents
from hector.agent import Agent
from hector.observability import retrieval as telemetry
from hector.runtime import AgentEntry
from hector.stores.checkpoints import Checkpoint
from hector.stores.leases import TakeoverDeclined


class _Handler(DefaultRequestHandler):
    def __init__(self, *args: Any, runs_here: Callable[[str], bool], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._runs_here = runs_here

    @validate_request_params
    @validate(lambda self: self._agent_card.capabilities.streaming, "Streaming is not supported by the agent")
    async def on_subscribe_to_task(
        self, params: SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Event, None]:
        stream = self._event_stream
        if stream is None or self._runs_here(params.id):
            async for event in super().on_subscribe_to_task(params, context):
                yield event
            return
        # What the SDK does for a task it has no ActiveTask of (see the module docstring).
        stored = await self._versioned_store.get(params.id, context)
        if stored is None:
            raise TaskNotFoundError
        state = stored.task.status.state
        if state in TERMINAL_TASK_STATES:
            raise UnsupportedOperationError(
                message=f"Task {params.id} is in terminal state: {TaskState.Name(state)}"
            )
        async for event in self._subscribe_remote(params.id, stored.task, stored.version, stream):
            yield event


def build_handler(entry: AgentEntry, card: AgentCard) -> DefaultRequestHandler:
    recovery = entry.leases
    interrupted = recovery.interrupted_calls if recovery is not None else "fail"
    cancels = entry.events.cancels if isinstance(entry.events, RedisTaskEvents) else None
    handler = _Handler(
        agent_executor=HectorAgentExecutor(entry.agent, entry.leases, interrupted, cancels),
        task_store=entry.task_store,
        agent_card=card,
        event_stream=entry.events,
        runs_here=cancels.running if cancels is not None else lambda _task_id: True,
    )
    if recovery is not None and recovery.checkpoints is not None and isinstance(entry.agent, Agent):
        recovery.resumers[entry.agent.id] = functools.partial(resume, handler)
    return handler


async def resume(handler: DefaultRequestHandler, checkpoint: Checkpoint) -> None:
    """Start the checkpointed task again here; returns once it runs."""
    context = ServerCallContext(user=SubjectUser(checkpoint.owner), state={TAKEOVER: checkpoint})
    # The registry is the SDK's record of the tasks running here (private, but the only way to
    # run a task without a client message and still serve SubscribeToTask for it).
    registry = handler._active_task_registry
    if registry._closed:  # the server is stopping (its runs drained): not a reason to fail the task
        raise TakeoverDeclined()
    iteration = checkpoint.state.iteration
    with telemetry.takeover(checkpoint.agent_id, checkpoint.task_id, iteration):
        # The SDK starts the run's task in here: it inherits the span (and the telemetry).
        active = await registry.get_or_create(
            checkpoint.task_id, call_context=context, context_id=checkpoint.context_id
        )
        request = RequestContext(
            call_context=context, task_id=checkpoint.task_id, context_id=checkpoint.context_id
        )
        await active.enqueue_request(request)
