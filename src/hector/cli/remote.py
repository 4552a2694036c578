"""The CLI's A2A client side: talk to any A2A server (not only Hector) through a2a-sdk."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.client.errors import A2AClientError
from a2a.types.a2a_pb2 import (
    AgentCard,
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    ListTasksResponse,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    Task,
)
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Value

from hector.agent.remote import underlying
from hector.errors import ClientError


@dataclass(frozen=True)
class Target:
    url: str
    agent: str | None
    token: str | None

    @property
    def agent_url(self) -> str:
        base = self.url.rstrip("/")
        return f"{base}/agents/{self.agent}" if self.agent else base


def _http(token: str | None, timeout: float = 600.0) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout, connect=10.0))


def _describe(error: BaseException, url: str) -> str:
    exc = underlying(error)
    if isinstance(exc, httpx.ConnectError):
        return f"cannot reach {url}: is the server running (`hector serve`) and is --url right?"
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        hint = {
            401: " (send a token with --token or HECTOR_TOKEN)",
            404: " (check --agent; `hector list` shows the agents)",
        }
        return f"{url} answered HTTP {code}{hint.get(code, '')}"
    if isinstance(exc, httpx.TimeoutException):
        return f"{url} did not answer in time"
    return f"{type(exc).__name__}: {exc}"


@asynccontextmanager
async def connect(target: Target, streaming: bool) -> AsyncIterator[tuple[Client, AgentCard]]:
    """An a2a-sdk client for the target agent, from its card."""
    http = _http(target.token)
    try:
        card = await A2ACardResolver(http, target.agent_url).get_agent_card()
        client = ClientFactory(ClientConfig(streaming=streaming, httpx_client=http)).create(card)
    except (httpx.HTTPError, A2AClientError) as exc:
        await http.aclose()
        raise ClientError(_describe(exc, target.agent_url)) from None
    try:
        yield client, card
    except (httpx.HTTPError, A2AClientError) as exc:
        raise ClientError(_describe(exc, target.agent_url)) from None
    finally:
        await client.close()
        await http.aclose()


def user_message(text: str, context_id: str, task_id: str | None = None) -> SendMessageRequest:
    msg = Message(
        role=Role.ROLE_USER, message_id=str(uuid.uuid4()), context_id=context_id, parts=[Part(text=text)]
    )
    if task_id:
        msg.task_id = task_id
    return SendMessageRequest(message=msg)


async def send(
    target: Target, text: str, context_id: str, streaming: bool, task_id: str | None = None
) -> AsyncIterator[StreamResponse]:
    """Send *text*; with *task_id*, as the answer to that task (e.g. one waiting for approval)."""
    async with connect(target, streaming) as (client, _):
        async for event in client.send_message(user_message(text, context_id, task_id)):
            yield event


async def decide(
    target: Target, task_id: str, decision: str, streaming: bool
) -> AsyncIterator[StreamResponse]:
    """Answer a task that waits for approval, and follow it as it goes on."""
    async with connect(target, streaming) as (client, _):
        task = await client.get_task(GetTaskRequest(id=task_id))
        request = user_message(decision, task.context_id, task_id)
        request.message.parts.append(Part(data=ParseDict({"decision": decision}, Value())))
        async for event in client.send_message(request):
            yield event


async def get_card(target: Target) -> dict[str, Any]:
    async with _http(target.token) as http:
        try:
            card = await A2ACardResolver(http, target.agent_url).get_agent_card()
        except (httpx.HTTPError, A2AClientError) as exc:
            raise ClientError(_describe(exc, target.agent_url)) from None
    return MessageToDict(card)


async def list_agents(target: Target) -> list[dict[str, Any]]:
    """Hector's discovery list; for other servers, the one card at the root."""
    async with _http(target.token) as http:
        try:
            response = await http.get(f"{target.url.rstrip('/')}/agents")
            if response.status_code == 200 and isinstance(response.json().get("agents"), list):
                return list(response.json()["agents"])
        except (httpx.HTTPError, ValueError) as exc:
            if isinstance(exc, httpx.ConnectError):
                raise ClientError(_describe(exc, target.url)) from None
    return [await get_card(Target(target.url, None, target.token))]


async def get_task(target: Target, task_id: str, history_length: int | None) -> Task:
    async with connect(target, False) as (client, _):
        request = GetTaskRequest(id=task_id)
        if history_length is not None:
            request.history_length = history_length
        return await client.get_task(request)


async def list_tasks(target: Target, context_id: str | None, page_size: int) -> ListTasksResponse:
    async with connect(target, False) as (client, _):
        request = ListTasksRequest(page_size=page_size)
        if context_id:
            request.context_id = context_id
        return await client.list_tasks(request)


async def cancel_task(target: Target, task_id: str) -> Task:
    async with connect(target, False) as (client, _):
        return await client.cancel_task(CancelTaskRequest(id=task_id))
