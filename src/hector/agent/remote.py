"""``type: a2a`` agents: another A2A server's agent, used here as if it were local.

A remote agent answers through the a2a-sdk client, over whichever transport its card prefers
(JSON-RPC, HTTP+JSON or gRPC; protocol 1.0 or 0.3). Its events become Hector agent events, so it
can be served, listed and called by ``agent_call`` like a native agent. Each local (user,
context) pair gets its own remote context, because every local user reaches the remote with the
same credentials.

When the remote pauses for a tool approval (``input-required`` with a ``tool_approval`` data
part, as a Hector agent does), the pause is recorded in the agent's approval store and surfaced
as this agent's own approval request; the local user's decision is then sent on to the remote
task, whose answer streams back here. A free-form question of the remote (no approval data) is
recorded the same way and pauses the local task too (``InputRequiredEvent``): the user's next
message on it goes to the same remote task. Called without a task of its own (``agent_call``),
the question is the answer.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

import grpc
import httpx
from a2a.client import A2ACardResolver, ClientCallContext, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError, AgentCardResolutionError
from a2a.helpers.proto_helpers import get_text_parts
from a2a.types.a2a_pb2 import (
    AgentCard,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    TaskState,
    TaskStatus,
)
from a2a.utils.constants import TransportProtocol
from a2a.utils.errors import A2AError
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Value

from hector.agent import final_text
from hector.agent.approval import ApprovalError, Decision, PendingApproval
from hector.agent.remote_grpc import ChannelFactory, call_metadata, describe_grpc_error
from hector.config.schema import AgentConfig
from hector.errors import AgentRunError, ConfigError
from hector.http_client import create_async_client
from hector.messages import (
    AgentEvent,
    ApprovalRequiredEvent,
    ChatMessage,
    FinalEvent,
    InputRequiredEvent,
    TextDelta,
    ToolCall,
)
from hector.stores.approvals import ApprovalStore
from hector.tls import TLSOptions, describe_tls_error

CARD_PATH = "/.well-known/agent-card.json"
# In the card's order of preference: the first interface the client can speak is used.
BINDINGS = [TransportProtocol.JSONRPC, TransportProtocol.HTTP_JSON, TransportProtocol.GRPC]
_REMOTE_CONTEXT = uuid.UUID("6f1d2b7c-4a4e-4d55-9f3a-0e6f1c2b9a10")
_FAILED = {
    TaskState.TASK_STATE_FAILED,
    TaskState.TASK_STATE_REJECTED,
    TaskState.TASK_STATE_CANCELED,
    TaskState.TASK_STATE_AUTH_REQUIRED,
}
# The remote enforces its own approval deadline; the local record only has to outlive it.
_APPROVAL_RECORD_SECONDS = 30 * 24 * 3600.0


def credential_headers(cfg: AgentConfig) -> dict[str, str]:
    creds = cfg.credentials
    if creds is None:
        return {}
    if creds.type == "api_key" and creds.api_key is not None:
        return {creds.api_key_header: creds.api_key.get_secret_value()}
    if creds.type == "basic" and creds.username is not None and creds.password is not None:
        pair = f"{creds.username}:{creds.password.get_secret_value()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    token = creds.token or creds.api_key
    return {"Authorization": f"Bearer {token.get_secret_value()}"} if token is not None else {}


def underlying(exc: BaseException) -> BaseException:
    """The error behind an a2a-sdk client error (the HTTP or TLS failure says what went wrong)."""
    return exc.__cause__ if isinstance(exc, A2AClientError) and exc.__cause__ else exc


def _text(parts: Sequence[Part]) -> str:
    return "".join(get_text_parts(parts))


def _reason(exc: BaseException, channels: ChannelFactory) -> str:
    cause = underlying(exc)
    if isinstance(cause, grpc.aio.AioRpcError):
        return describe_grpc_error(cause, channels)
    if isinstance(cause, httpx.HTTPError):
        return describe_tls_error(cause)
    return str(cause)


def chosen_binding(card: AgentCard) -> str | None:
    """The transport the client factory picks: the card's first interface it can speak."""
    return next(
        (i.protocol_binding for i in card.supported_interfaces if i.protocol_binding in BINDINGS), None
    )


def grpc_tenant(card: AgentCard) -> str:
    """The tenant of the card's gRPC interfaces, if they name one (a server that serves several
    agents on one gRPC port, as Hector does, names each agent so)."""
    return next(
        (i.tenant for i in card.supported_interfaces if i.protocol_binding == "GRPC" and i.tenant), ""
    )


def requested_calls(message: Message) -> tuple[ToolCall, ...] | None:
    """The tool calls a paused remote asks to approve (its ``tool_approval`` data part); ``None``
    when the pause is not an approval request."""
    for part in message.parts:
        if not part.HasField("data"):
            continue
        data: Any = MessageToDict(part.data)
        if isinstance(data, dict) and data.get("interaction_type") == "tool_approval":
            calls = data.get("calls") or [
                {"id": data.get("approval_id", ""), "name": data.get("tool_name", ""), "arguments": {}}
            ]
            return tuple(
                ToolCall(str(c.get("id", "")), str(c.get("name", "")), dict(c.get("arguments") or {}))
                for c in calls
            )
    return None


class RemoteAgent:
    """An external A2A agent (``agents.<id>: type: a2a, url: ...``)."""

    def __init__(
        self,
        agent_id: str,
        cfg: AgentConfig,
        tls: TLSOptions,
        component: str,
        approvals: ApprovalStore | None = None,
    ) -> None:
        assert cfg.url is not None  # checked by config validation
        self.id = agent_id
        self.name = cfg.name or agent_id
        self.description = cfg.description or f"External A2A agent at {cfg.url}"
        self.visibility: Literal["public", "internal", "private"] = cfg.visibility
        self.url = cfg.url
        self.target = cfg.target_agent_id
        self.approvals = approvals
        self._headers = credential_headers(cfg)
        self._tls = tls
        self._component = component
        self._channels = ChannelFactory(agent_id, cfg.url, tls, component)
        self._card_at: tuple[str, str] | None = None
        """Where the card was found, once it was (``target_agent_id`` may offer two places)."""

    def telemetry_labels(self) -> tuple[str, str]:
        return "a2a", self.url

    def card_locations(self) -> list[tuple[str, str]]:
        """Where the card may be: the URL itself if it names a JSON file; with ``target_agent_id``,
        that agent under the URL (``/agents/<id>``, as Hector serves it, or the Go original's
        ``/v1/agents/<id>``); else the URL's well-known card."""
        if self.url.endswith(".json"):
            base, _, name = self.url.rpartition("/")
            return [(base, "/" + name)]
        base = self.url.rstrip("/")
        if self.target:
            return [
                (f"{base}/agents/{self.target}", CARD_PATH),
                (f"{base}/v1/agents/{self.target}", CARD_PATH),
            ]
        return [(base, CARD_PATH)]

    async def _card(self, http: httpx.AsyncClient) -> AgentCard:
        places = [self._card_at] if self._card_at else self.card_locations()
        for n, (base, path) in enumerate(places):
            try:
                card = await A2ACardResolver(http, base, path).get_agent_card()
            except AgentCardResolutionError as exc:
                if exc.status_code == 404 and n + 1 < len(places):
                    continue  # not this place: try the next one
                raise
            self._card_at = (base, path)
            return card
        raise AssertionError("unreachable: the last place raises")

    async def run_stream(
        self, text: str, *, context_id: str, user: str = "anonymous", task_id: str | None = None
    ) -> AsyncIterator[AgentEvent]:
        remote_context = str(uuid.uuid5(_REMOTE_CONTEXT, f"{self.id}\n{user}\n{context_id}"))
        message = Message(
            role=Role.ROLE_USER,
            message_id=uuid.uuid4().hex,
            context_id=remote_context,
            parts=[Part(text=text)],
        )
        async for event in self._exchange(message, user, task_id):
            yield event

    async def _exchange(self, message: Message, user: str, task_id: str | None) -> AsyncIterator[AgentEvent]:
        """Send *message* and turn the remote's events into agent events."""
        http = create_async_client(
            component=self._component, tls=self._tls, timeout=600.0, headers=self._headers
        )
        try:
            card = await self._card(http)
            config = ClientConfig(
                streaming=True,
                httpx_client=http,
                supported_protocol_bindings=list(BINDINGS),
                grpc_channel_factory=self._channels,
            )
            client = ClientFactory(config).create(card)
            context = None
            if chosen_binding(card) == TransportProtocol.GRPC:
                # gRPC carries what HTTP sends as headers (credentials, traceparent) as metadata.
                # agent-name says what the tenant says (a2a-sdk sends the card's tenant itself).
                metadata = call_metadata(self._headers, grpc_tenant(card) or self.target or self.id)
                context = ClientCallContext(service_parameters=metadata)
            try:
                final = ""
                async for event in client.send_message(SendMessageRequest(message=message), context=context):
                    paused = self._paused(event)
                    if paused is not None:
                        asked = await self._ask(*paused, user=user, task_id=task_id)
                        if not isinstance(asked, str):
                            yield asked
                            return
                        final = asked
                        break
                    delta, done = self._translate(event)
                    if delta:
                        final += delta
                        yield TextDelta(delta)
                    if done is not None:
                        final = done or final
                yield FinalEvent(final)
            finally:
                await client.close()
        except (httpx.HTTPError, A2AError, grpc.aio.AioRpcError, ConfigError, ValueError) as exc:
            # ValueError: the client factory found no transport it speaks in the card.
            raise AgentRunError(
                f"external agent {self.id!r} at {self.url} failed: {_reason(exc, self._channels)}"
            ) from None
        finally:
            await http.aclose()

    def _paused(self, event: StreamResponse) -> tuple[str, str, TaskStatus] | None:
        """(remote task id, remote context id, status) when *event* says the remote waits for input."""
        if event.HasField("task") and event.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
            return event.task.id, event.task.context_id, event.task.status
        update = event.status_update
        if event.HasField("status_update") and update.status.state == TaskState.TASK_STATE_INPUT_REQUIRED:
            return update.task_id, update.context_id, update.status
        return None

    async def _ask(
        self, remote_task: str, remote_context: str, status: TaskStatus, *, user: str, task_id: str | None
    ) -> ApprovalRequiredEvent | InputRequiredEvent | str:
        """A remote approval request or question as this agent's own; without a local task to
        ask in, a question is the answer text."""
        prompt = _text(status.message.parts)
        calls = requested_calls(status.message)
        if calls is None and (task_id is None or self.approvals is None):
            return prompt
        if task_id is None or self.approvals is None:
            # Called by agent_call (no task of its own): nobody here can answer the question.
            raise AgentRunError(
                f"external agent {self.id!r} asks for approval, which needs a task to answer in "
                f"(call it directly): {prompt}"
            )
        now = time.time()
        pending = PendingApproval(
            id=uuid.uuid4().hex,
            agent_id=self.id,
            task_id=task_id,
            context_id=remote_context,
            owner=user,
            # The "step" of a remote approval is the remote task the decision goes to.
            # A question is recorded as an approval of no calls.
            step=ChatMessage("assistant", json.dumps({"remote_task_id": remote_task}), calls or ()),
            calls=calls or (),
            prompt=prompt,
            created_at=now,
            expires_at=now + _APPROVAL_RECORD_SECONDS,
        )
        await self.approvals.save(pending)
        if calls is None:
            return InputRequiredEvent(prompt)
        return ApprovalRequiredEvent(pending.id, calls, prompt)

    def _translate(self, event: StreamResponse) -> tuple[str, str | None]:
        """(text to stream now, final text when the remote task ended — "" if it said nothing)."""
        if event.HasField("artifact_update"):
            update = event.artifact_update
            text = _text(update.artifact.parts)
            # A closing chunk that is not an append repeats the whole answer: the final says it.
            if update.last_chunk and not update.append:
                return "", text
            return text, None
        if event.HasField("message"):
            return "", _text(event.message.parts)
        if not (event.HasField("task") or event.HasField("status_update")):
            return "", None
        status = event.task.status if event.HasField("task") else event.status_update.status
        said = _text(status.message.parts)
        if status.state in _FAILED:
            state = TaskState.Name(status.state).removeprefix("TASK_STATE_").lower()
            raise AgentRunError(f"external agent {self.id!r} answered {state}: {said or 'no reason given'}")
        if status.state == TaskState.TASK_STATE_COMPLETED:
            if not said and event.HasField("task"):
                said = "".join(_text(a.parts) for a in event.task.artifacts)
            return "", said
        return "", None

    async def run(self, text: str, *, context_id: str, user: str = "anonymous") -> str:
        return await final_text(self.run_stream(text, context_id=context_id, user=user))

    async def _pending(self, task_id: str) -> PendingApproval | None:
        return await self.approvals.pending_for_task(self.id, task_id) if self.approvals else None

    async def pending_approval(self, task_id: str) -> PendingApproval | None:
        pending = await self._pending(task_id)
        return pending if pending is not None and pending.calls else None

    async def pending_question(self, task_id: str) -> PendingApproval | None:
        """The remote's question that task *task_id* waits on, if it waits on one."""
        pending = await self._pending(task_id)
        return pending if pending is not None and not pending.calls else None

    async def _take(self, pending: PendingApproval | None, user: str, outcome: str, what: str) -> str:
        """Settle *pending* for *user*; the remote task it continues."""
        if pending is None:
            raise ApprovalError(f"no {what} of this task is waiting for an answer")
        if pending.owner != user:
            raise ApprovalError(f"only the user who started this task can answer its {what}")
        assert self.approvals is not None  # there is a pending record
        if not await self.approvals.decide(pending.id, outcome, user):
            raise ApprovalError(f"this {what} was already answered")
        return str(json.loads(pending.step.content)["remote_task_id"])

    async def resume_stream(
        self, *, task_id: str, user: str, decision: Decision
    ) -> AsyncIterator[AgentEvent]:
        """Send the local user's decision to the remote task that asked, and stream its answer.

        As for native agents: only the user who started the task decides, and a decision counts
        once. The deadline is the remote's own: it answers an expired approval itself.
        """
        pending = await self.pending_approval(task_id)
        outcome = "approved" if decision == "approve" else "denied"
        remote_task = await self._take(pending, user, outcome, "tool call approval")
        assert pending is not None
        parts = [Part(text=decision), Part(data=ParseDict({"decision": decision}, Value()))]
        async for event in self._exchange(self._reply(remote_task, pending, parts), user, task_id):
            yield event

    async def answer_stream(self, *, task_id: str, user: str, text: str) -> AsyncIterator[AgentEvent]:
        """Send the local user's answer to the remote's question, and stream what comes back
        (the remote's answer, or its next question)."""
        pending = await self.pending_question(task_id)
        remote_task = await self._take(pending, user, "answered", "question")
        assert pending is not None
        reply = self._reply(remote_task, pending, [Part(text=text)])
        async for event in self._exchange(reply, user, task_id):
            yield event

    @staticmethod
    def _reply(remote_task: str, pending: PendingApproval, parts: list[Part]) -> Message:
        return Message(
            role=Role.ROLE_USER,
            message_id=uuid.uuid4().hex,
            task_id=remote_task,
            context_id=pending.context_id,
            parts=parts,
        )
