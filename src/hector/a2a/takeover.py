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
"""

from __future__ import annotations

import functools

from a2a.auth.user import User
from a2a.server.agent_execution import RequestContext
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types.a2a_pb2 import AgentCard

from hector.a2a.executor import TAKEOVER, HectorAgentExecutor
from hector.a2a.relay import RedisTaskEvents
from hector.agent import Agent
from hector.observability import retrieval as telemetry
from hector.runtime import AgentEntry
from hector.stores.checkpoints import Checkpoint


class _Owner(User):
    """The user who started the task: the continued run acts, and is stored, as theirs."""

    def __init__(self, name: str) -> None:
        self._name = name

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self._name


def build_handler(entry: AgentEntry, card: AgentCard) -> DefaultRequestHandler:
    recovery = entry.leases
    interrupted = recovery.interrupted_calls if recovery is not None else "fail"
    cancels = entry.events.cancels if isinstance(entry.events, RedisTaskEvents) else None
    handler = DefaultRequestHandler(
        agent_executor=HectorAgentExecutor(entry.agent, entry.leases, interrupted, cancels),
        task_store=entry.task_store,
        agent_card=card,
        event_stream=entry.events,
    )
    if recovery is not None and recovery.checkpoints is not None and isinstance(entry.agent, Agent):
        recovery.resumers[entry.agent.id] = functools.partial(resume, handler)
    return handler


async def resume(handler: DefaultRequestHandler, checkpoint: Checkpoint) -> None:
    """Start the checkpointed task again here; returns once it runs."""
    context = ServerCallContext(user=_Owner(checkpoint.owner), state={TAKEOVER: checkpoint})
    # The registry is the SDK's record of the tasks running here (private, but the only way to
    # run a task without a client message and still serve SubscribeToTask for it).
    registry = handler._active_task_registry
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
