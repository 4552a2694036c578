"""`hector task ...`: inspect, cancel, approve and deny tasks on any A2A server."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message as Proto

from hector.cli import remote
from hector.cli.options import DEFAULT_URL, TokenOpt, UrlOpt, err, out
from hector.cli.render import STATE_NAMES, Printer

task_app = typer.Typer(help="Inspect, cancel, approve and deny tasks.", no_args_is_help=True)


def _print_task(task: Proto) -> None:
    out.print_json(json.dumps(MessageToDict(task)))


@task_app.command("get")
def task_get(
    agent: Annotated[str, typer.Argument()],
    task_id: Annotated[str, typer.Argument()],
    url: UrlOpt = None,
    token: TokenOpt = None,
    history_length: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Show a task: status, artifacts and history."""
    task = asyncio.run(
        remote.get_task(remote.Target(url or DEFAULT_URL, agent, token), task_id, history_length)
    )
    err.print(f"task {task.id}: {STATE_NAMES.get(task.status.state, '?')}")
    _print_task(task)


@task_app.command("list")
def task_list(
    agent: Annotated[str, typer.Argument()],
    url: UrlOpt = None,
    token: TokenOpt = None,
    session: Annotated[str | None, typer.Option(help="Only this contextId.")] = None,
    page_size: Annotated[int, typer.Option(min=1, max=100)] = 50,
) -> None:
    """List your tasks with an agent."""
    response = asyncio.run(
        remote.list_tasks(remote.Target(url or DEFAULT_URL, agent, token), session, page_size)
    )
    for task in response.tasks:
        out.print(f"{task.id}  {STATE_NAMES.get(task.status.state, '?'):<15} {task.context_id}")


@task_app.command("cancel")
def task_cancel(
    agent: Annotated[str, typer.Argument()],
    task_id: Annotated[str, typer.Argument()],
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Cancel a running task."""
    task = asyncio.run(remote.cancel_task(remote.Target(url or DEFAULT_URL, agent, token), task_id))
    out.print(f"task {task.id}: {STATE_NAMES.get(task.status.state, '?')}")


def _decide(agent: str, task_id: str, decision: str, url: str | None, token: str | None) -> None:
    printer = Printer()

    async def follow() -> None:
        async for event in remote.decide(
            remote.Target(url or DEFAULT_URL, agent, token), task_id, decision, True
        ):
            printer.remote(event)

    asyncio.run(follow())
    printer.end()
    if not printer.ok:
        raise typer.Exit(1)


@task_app.command("approve")
def task_approve(
    agent: Annotated[str, typer.Argument()],
    task_id: Annotated[str, typer.Argument()],
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Approve the tool call a task is waiting on, and follow the task to its end."""
    _decide(agent, task_id, "approve", url, token)


@task_app.command("deny")
def task_deny(
    agent: Annotated[str, typer.Argument()],
    task_id: Annotated[str, typer.Argument()],
    url: UrlOpt = None,
    token: TokenOpt = None,
) -> None:
    """Deny the tool call a task is waiting on; the agent is told and goes on."""
    _decide(agent, task_id, "deny", url, token)
