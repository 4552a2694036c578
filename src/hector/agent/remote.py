"""``type: a2a`` agents: another A2A server's agent, used here as if it were local.

A remote agent answers through the a2a-sdk client, over whichever transport its card offers
(JSON-RPC, HTTP+JSON; protocol 1.0 or 0.3). Its events become Hector agent events, so it can be
served, listed and called by ``agent_call`` like a native agent. Each local (user, context) pair
gets its own remote context, because every local user reaches the remote with the same
credentials.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Literal

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError
from a2a.helpers.proto_helpers import get_text_parts
from a2a.types.a2a_pb2 import Message, Part, Role, SendMessageRequest, StreamResponse, TaskState

from hector.agent import final_text
from hector.agent.approval import ApprovalError, Decision, PendingApproval
from hector.config.schema import AgentConfig
from hector.errors import AgentRunError
from hector.http_client import create_async_client
from hector.messages import AgentEvent, FinalEvent, TextDelta
from hector.tls import TLSOptions, describe_tls_error

CARD_PATH = "/.well-known/agent-card.json"
_REMOTE_CONTEXT = uuid.UUID("6f1d2b7c-4a4e-4d55-9f3a-0e6f1c2b9a10")
_FAILED = {TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_REJECTED, TaskState.TASK_STATE_CANCELED}


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


class RemoteAgent:
    """An external A2A agent (``agents.<id>: type: a2a, url: ...``)."""

    def __init__(self, agent_id: str, cfg: AgentConfig, tls: TLSOptions, component: str) -> None:
        assert cfg.url is not None  # checked by config validation
        self.id = agent_id
        self.name = cfg.name or agent_id
        self.description = cfg.description or f"External A2A agent at {cfg.url}"
        self.visibility: Literal["public", "internal", "private"] = cfg.visibility
        self.url = cfg.url
        self._headers = credential_headers(cfg)
        self._tls = tls
        self._component = component

    def telemetry_labels(self) -> tuple[str, str]:
        return "a2a", self.url

    def _card_location(self) -> tuple[str, str]:
        if self.url.endswith(".json"):
            base, _, name = self.url.rpartition("/")
            return base, "/" + name
        return self.url.rstrip("/"), CARD_PATH

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
        http = create_async_client(
            component=self._component, tls=self._tls, timeout=600.0, headers=self._headers
        )
        try:
            base, path = self._card_location()
            card = await A2ACardResolver(http, base, path).get_agent_card()
            client = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)
            try:
                final = ""
                async for event in client.send_message(SendMessageRequest(message=message)):
                    delta, done = self._translate(event)
                    if delta:
                        final += delta
                        yield TextDelta(delta)
                    if done is not None:
                        final = done or final
                yield FinalEvent(final)
            finally:
                await client.close()
        except (httpx.HTTPError, A2AClientError) as exc:
            cause = underlying(exc)
            reason = describe_tls_error(cause) if isinstance(cause, httpx.HTTPError) else str(cause)
            raise AgentRunError(f"external agent {self.id!r} at {self.url} failed: {reason}") from None
        finally:
            await http.aclose()

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
        status = event.task.status if event.HasField("task") else event.status_update.status
        if not (event.HasField("task") or event.HasField("status_update")):
            return "", None
        said = _text(status.message.parts)
        if status.state in _FAILED:
            state = TaskState.Name(status.state).removeprefix("TASK_STATE_").lower()
            raise AgentRunError(f"external agent {self.id!r} answered {state}: {said or 'no reason given'}")
        if status.state in (TaskState.TASK_STATE_COMPLETED, TaskState.TASK_STATE_INPUT_REQUIRED):
            if not said and event.HasField("task"):
                said = "".join(_text(a.parts) for a in event.task.artifacts)
            return "", said
        return "", None

    async def run(self, text: str, *, context_id: str, user: str = "anonymous") -> str:
        return await final_text(self.run_stream(text, context_id=context_id, user=user))

    async def pending_approval(self, task_id: str) -> PendingApproval | None:
        return None

    def resume_stream(self, *, task_id: str, user: str, decision: Decision) -> AsyncIterator[AgentEvent]:
        raise ApprovalError("approvals of an external agent are answered on that agent's own server")
