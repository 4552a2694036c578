"""A configured agent: a model, an instruction, tools and a memory of each conversation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from hector.agent.loop import run_loop
from hector.agent.memory import WorkingMemory
from hector.messages import AgentEvent, ChatMessage
from hector.providers.base import Model, ModelSettings
from hector.stores.sessions import SessionStore
from hector.tools import Tool, ToolContext

Visibility = Literal["public", "internal", "private"]


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

    async def run_stream(
        self, text: str, *, context_id: str, user: str = "anonymous", task_id: str | None = None
    ) -> AsyncIterator[AgentEvent]:
        """Answer *text* in conversation *context_id*, yielding events as they happen.

        The user's message and every completed step are saved as they finish, so a crash or a
        cancellation loses at most the step in flight.
        """
        session = await self.sessions.load(self.id, context_id, user)
        ctx = ToolContext(agent_id=self.id, context_id=context_id, task_id=task_id, user=user)
        user_message = ChatMessage("user", text)
        await self.sessions.append(self.id, context_id, user, [user_message], task_id)
        history = [*session.messages, user_message]
        view = await self.memory.view(history, session.summary, session.summarized_upto)
        if view.summarized_upto != session.summarized_upto and view.summary:
            await self.sessions.set_summary(self.id, context_id, view.summary, view.summarized_upto)
        system = self.instruction or ""
        if view.summary:
            system = f"{system}\n\nPrevious conversation summary: {view.summary}".strip()
        prompt = ([ChatMessage("system", system)] if system else []) + view.messages

        async def save(messages: Sequence[ChatMessage]) -> None:
            await self.sessions.append(self.id, context_id, user, messages, task_id)

        async for event in run_loop(
            model=self.model,
            prompt=prompt,
            tools=self.tools,
            settings=self.settings,
            max_iterations=self.max_iterations,
            streaming=self.streaming,
            ctx=ctx,
            save=save,
            agent_id=self.id,
        ):
            yield event

    async def run(self, text: str, *, context_id: str, user: str = "anonymous") -> str:
        """Run to the end and return the final text."""
        final = ""
        async for event in self.run_stream(text, context_id=context_id, user=user):
            if event.kind == "final":
                final = event.text
        return final
