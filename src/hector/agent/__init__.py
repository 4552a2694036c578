"""A configured agent: a model, an instruction, tools and a memory of each conversation."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from hector.agent.approval import ApprovalError, Decision, PendingApproval, format_prompt
from hector.agent.loop import LoopSetup, ResumedStep, run_loop
from hector.agent.memory import WorkingMemory
from hector.messages import AgentEvent, ApprovalRequiredEvent, ChatMessage, ToolCall
from hector.providers.base import Model, ModelSettings
from hector.stores.approvals import ApprovalStore
from hector.stores.checkpoints import Checkpoint, CheckpointStore, InterruptedCalls
from hector.stores.quotas import Quotas
from hector.stores.sessions import SessionStore
from hector.tools import Tool, ToolContext

if TYPE_CHECKING:
    from hector.agent.longterm import LongTermMemory
    from hector.rag.retrieval import ContextInjector

Visibility = Literal["public", "internal", "private"]


async def final_text(events: AsyncIterator[AgentEvent]) -> str:
    """The text of a run's final event, once the run is over."""
    final = ""
    async for event in events:
        if event.kind == "final":
            final = event.text
    return final


class AgentLike(Protocol):
    """What the server, agent_call and the cards need of an agent: a native ``Agent`` or an
    external one (``hector.agent.remote.RemoteAgent``)."""

    id: str
    name: str
    description: str
    visibility: Visibility

    def telemetry_labels(self) -> tuple[str, str]:
        """(provider, model) for metrics and spans."""
        ...

    def run_stream(
        self, text: str, *, context_id: str, user: str = ..., task_id: str | None = ...
    ) -> AsyncIterator[AgentEvent]: ...

    def resume_stream(self, *, task_id: str, user: str, decision: Decision) -> AsyncIterator[AgentEvent]: ...

    async def pending_approval(self, task_id: str) -> PendingApproval | None: ...

    async def run(self, text: str, *, context_id: str, user: str = ...) -> str: ...


@dataclass
class Agent:
    id: str
    name: str
    description: str
    model: Model
    sessions: SessionStore
    memory: WorkingMemory
    instruction: str | None = None
    tools: Sequence[Tool] = ()
    settings: ModelSettings = field(default_factory=lambda: ModelSettings())
    max_iterations: int = 100
    streaming: bool = True
    visibility: Visibility = "public"
    approvals: ApprovalStore | None = None
    """Where paused steps wait for approval; without one, calls that need approval are refused."""
    quotas: Quotas | None = None
    """Request and token quotas of the agent's session store, if enabled."""
    checkpoints: CheckpointStore | None = None
    """Where a task's loop state is checkpointed, so another server can continue it."""
    long_term: LongTermMemory | None = None
    """``memory.long_term``: what was said, kept in a vector store and recalled by meaning."""
    context: ContextInjector | None = None
    """``prompt.include_context``: documents for the user's message, put in the prompt."""

    def telemetry_labels(self) -> tuple[str, str]:
        return self.model.provider, self.model.model_name

    async def _prompt(self, context_id: str, user: str, new: list[ChatMessage]) -> list[ChatMessage]:
        """System prompt + what working memory keeps of the stored history + *new* messages."""
        session = await self.sessions.load(self.id, context_id, user)
        history = [*session.messages, *new]
        view = await self.memory.view(history, session.summary, session.summarized_upto)
        if view.summarized_upto != session.summarized_upto and view.summary:
            await self.sessions.set_summary(self.id, context_id, view.summary, view.summarized_upto)
            if self.long_term is not None:
                await self.long_term.remember_summary(context_id, user, view.summary)
        system = self.instruction or ""
        if view.summary:
            system = f"{system}\n\nPrevious conversation summary: {view.summary}".strip()
        extras = await self._extras(context_id, user, history, view.messages)
        system = "\n\n".join(part for part in [system, *extras] if part)
        return ([ChatMessage("system", system)] if system else []) + view.messages

    async def _extras(
        self, context_id: str, user: str, history: Sequence[ChatMessage], visible: Sequence[ChatMessage]
    ) -> list[str]:
        """Recalled memories and documents about the last user message, for the system prompt."""
        query = next((m.content for m in reversed(history) if m.role == "user"), "")
        extras = []
        if self.long_term is not None and self.long_term.cfg.enable_auto_recall:
            # What the model sees anyway is not recalled.
            extras.append(await self.long_term.recall_text(context_id, user, query, visible))
        if self.context is not None:
            extras.append(await self.context.block(query))
        return extras

    async def _loop(
        self,
        prompt: list[ChatMessage],
        ctx: ToolContext,
        resume: ResumedStep | None,
        restored: Checkpoint | None = None,
    ) -> AsyncIterator[AgentEvent]:
        async def save(messages: Sequence[ChatMessage]) -> None:
            await self.sessions.append(self.id, ctx.context_id, ctx.user, messages, ctx.task_id)
            if self.long_term is not None:
                await self.long_term.remember_safely(ctx.context_id, ctx.user, messages)

        async def request_approval(step: ChatMessage, calls: list[ToolCall]) -> ApprovalRequiredEvent:
            assert self.approvals is not None and ctx.task_id is not None
            by_name = {t.name: t for t in self.tools}
            prompt = "\n\n".join(format_prompt(by_name[c.name].approval_prompt, c) for c in calls)
            now = time.time()
            pending = PendingApproval(
                id=uuid.uuid4().hex,
                agent_id=self.id,
                task_id=ctx.task_id,
                context_id=ctx.context_id,
                owner=ctx.user,
                step=step,
                calls=tuple(calls),
                prompt=prompt,
                created_at=now,
                expires_at=now + min(by_name[c.name].approval_timeout for c in calls),
            )
            await self.approvals.save(pending)
            return ApprovalRequiredEvent(pending.id, pending.calls, prompt)

        can_ask = self.approvals is not None and ctx.task_id is not None
        setup = LoopSetup(self.model, self.tools, self.settings, self.max_iterations, self.streaming, self.id)
        checkpoint = None
        if self.checkpoints is not None and ctx.task_id is not None:
            checkpoint = self.checkpoints.recorder(ctx.task_id, self.id, ctx.context_id, ctx.user)
            checkpoint.continued = restored is not None
        state = restored.state if restored is not None else None
        ask = request_approval if can_ask else None
        async for event in run_loop(setup, prompt, ctx, save, ask, resume, checkpoint, state):
            if event.kind == "final" and self.quotas is not None:
                identifier = self.quotas.identifier(self.id, ctx.context_id, ctx.user)
                await self.quotas.charge_tokens(
                    identifier, event.usage.input_tokens + event.usage.output_tokens
                )
            yield event
        if checkpoint is not None:  # not reached when cancelled: a shutdown leaves it to continue
            await checkpoint.finish()

    async def run_stream(
        self, text: str, *, context_id: str, user: str = "anonymous", task_id: str | None = None
    ) -> AsyncIterator[AgentEvent]:
        """Answer *text* in conversation *context_id*, yielding events as they happen.

        The user's message and every completed step are saved as they finish, so a crash or a
        cancellation loses at most the step in flight.
        """
        if self.quotas is not None:
            await self.quotas.admit(self.quotas.identifier(self.id, context_id, user))
        user_message = ChatMessage("user", text)
        prompt = await self._prompt(context_id, user, [user_message])
        await self.sessions.append(self.id, context_id, user, [user_message], task_id)
        if self.long_term is not None:
            await self.long_term.remember_safely(context_id, user, [user_message])
        ctx = ToolContext(agent_id=self.id, context_id=context_id, task_id=task_id, user=user)
        async for event in self._loop(prompt, ctx, None):
            yield event

    async def pending_approval(self, task_id: str) -> PendingApproval | None:
        return await self.approvals.pending_for_task(self.id, task_id) if self.approvals else None

    async def resume_stream(
        self, *, task_id: str, user: str, decision: Decision
    ) -> AsyncIterator[AgentEvent]:
        """Continue a run that paused for approval, with the person's decision.

        Only the user who started the task may decide; a decision counts once; an approval past
        its deadline is treated as a denial.
        """
        if self.approvals is None:
            raise ApprovalError("this agent has no approval store")
        pending = await self.approvals.pending_for_task(self.id, task_id)
        if pending is None:
            raise ApprovalError("no tool call of this task is waiting for approval")
        if pending.owner != user:
            raise ApprovalError("only the user who started this task can approve or deny its tool calls")
        expired = time.time() > pending.expires_at
        outcome = "expired" if expired else ("approved" if decision == "approve" else "denied")
        if not await self.approvals.decide(pending.id, outcome, user):
            raise ApprovalError("this approval was already decided")
        reason = None
        if expired:
            reason = "the approval request expired before anyone answered"
        elif decision == "deny":
            reason = "The user rejected this tool call."
        refused = {c.id: reason for c in pending.calls} if reason else {}
        prompt = await self._prompt(pending.context_id, user, [])
        ctx = ToolContext(agent_id=self.id, context_id=pending.context_id, task_id=task_id, user=user)
        async for event in self._loop(prompt, ctx, ResumedStep(pending.step, refused)):
            yield event

    async def continue_stream(
        self, checkpoint: Checkpoint, interrupted: InterruptedCalls
    ) -> AsyncIterator[AgentEvent]:
        """Continue a task from its checkpoint, after the server running it died."""
        ctx = ToolContext(self.id, checkpoint.context_id, checkpoint.task_id, checkpoint.owner)
        step = checkpoint.resume_step(interrupted)
        async for event in self._loop([], ctx, step, checkpoint):
            yield event

    async def run(self, text: str, *, context_id: str, user: str = "anonymous") -> str:
        """Run to the end and return the final text."""
        return await final_text(self.run_stream(text, context_id=context_id, user=user))
