"""Stopping a reply, and a conversation that survives a page reload (sessionStorage + A2A ListTasks)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from hector.tools import FunctionTool, Tool
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.ui.conftest import hector_serving
from tests.ui.screens import APPROVAL_AMBER, APPROVE_GREEN, CODE_GREY, DENY_RED, count_colour, shot
from tests.ui.test_chat import CHAT, deploy_tool, hector_config, last_reply, send

COMPOSER = (260, 645, 1100, 720)
HISTORY = (0, 56, 259, 720)
CANCELED_PINK = (0xFB, 0xE0, 0xDD)


def slow_tool(release: threading.Event, runs: list[str]) -> Tool:
    async def search(query: str) -> str:
        """Searches the archive (slowly)."""
        runs.append(query)
        for _ in range(600):  # until released, or canceled with its task
            if release.is_set():
                return f"3 results for {query}"
            await asyncio.sleep(0.05)
        return "timed out"

    return FunctionTool(search)


def saved_context(page: Page) -> str:
    return str(page.evaluate("JSON.parse(sessionStorage.getItem('hector.chat')).contextId"))


def tasks_on_server(page: Page, url: str, context_id: str) -> list[dict[str, Any]]:
    """ListTasks for *context_id*, asked from the page (the same client and owner as the UI)."""
    return list(
        page.evaluate(
            """async ([url, contextId]) => {
                const body = {jsonrpc: "2.0", id: 1, method: "ListTasks", params: {contextId}};
                const r = await fetch(url, {method: "POST", body: JSON.stringify(body),
                    headers: {"Content-Type": "application/json", "A2A-Version": "1.0"}});
                return (await r.json()).result.tasks;
            }""",
            [f"{url}/agents/helper", context_id],
        )
    )


def test_stop_cancels_the_running_task(page: Page, llm_server: ScriptedLLMServer, tmp_path: Path) -> None:
    release, runs = threading.Event(), list[str]()
    llm_server.reply("Searching the archive.", tool_calls=[ScriptedCall("search", {"query": "invoices"})])
    config = hector_config(llm_server, ["search"])
    with hector_serving(config, tmp_path, {"search": slow_tool(release, runs)}) as url:
        page.goto(f"{url}/")
        expect(page.get_by_role("button", name="Stop")).to_have_count(0)  # only while a reply streams
        send(page, "find the invoices")
        reply = last_reply(page)
        tool = reply.get_by_test_id("tool-call")
        expect(tool.locator(".badge")).to_have_text("running")
        stop = page.get_by_role("button", name="Stop")
        expect(stop).to_be_enabled()
        streaming = shot(page, tmp_path, "streaming")
        stop.click()
        expect(reply.get_by_test_id("turn-canceled")).to_have_text("Canceled by the user.")
        expect(tool.locator(".badge")).to_have_text("stopped")
        expect(reply.get_by_test_id("turn-error")).to_have_count(0)  # stopping is not a failure
        expect(reply).to_have_attribute("aria-busy", "false")
        expect(page.get_by_test_id("task-history").locator(".badge")).to_have_text("canceled")
        expect(stop).to_have_count(0)
        stopped = shot(page, tmp_path, "stopped")
        tasks = tasks_on_server(page, url, saved_context(page))
        assert [t["status"]["state"] for t in tasks] == ["TASK_STATE_CANCELED"]
        release.set()
        # The page is ready for the next question, and the model was never asked again.
        llm_server.reply("Ready.")
        send(page, "anything else?")
        expect(last_reply(page).locator(".markdown")).to_have_text("Ready.")
    assert runs == ["invoices"]
    assert len(llm_server.requests) == 2
    # The red Stop button is drawn while the reply streams and gone after; the history's
    # "canceled" badge is red too.
    assert count_colour(streaming, DENY_RED, COMPOSER, tol=30) > 100
    assert count_colour(stopped, DENY_RED, COMPOSER, tol=30) == 0
    assert count_colour(stopped, CANCELED_PINK, HISTORY) > 100


def test_reload_restores_the_conversation(page: Page, llm_server: ScriptedLLMServer, tmp_path: Path) -> None:
    release, runs = threading.Event(), list[str]()
    release.set()
    llm_server.reply("Let me search.", tool_calls=[ScriptedCall("search", {"query": "Oslo"})])
    llm_server.reply("Oslo has **709000** people.")
    long_answer = "\n".join(f"{n}. Bergen fact number {n}." for n in range(1, 40))
    llm_server.reply(f"Bergen:\n\n{long_answer}\n\n```\nbergen = 291000\n```")
    config = hector_config(llm_server, ["search"])
    with hector_serving(config, tmp_path, {"search": slow_tool(release, runs)}) as url:
        page.goto(f"{url}/")
        send(page, "How many people live in Oslo?")
        expect(last_reply(page).locator(".markdown").last).to_have_text("Oslo has 709000 people.")
        send(page, "And Bergen?")
        expect(last_reply(page).locator("pre code")).to_have_text("bergen = 291000")
        context_id = saved_context(page)

        page.reload()
        # The same conversation, rebuilt from the server: questions, what the agent said before
        # its tool call, the finished call, the answers, and the history in the order asked.
        expect(page.get_by_test_id("user-message")).to_have_text(
            ["How many people live in Oslo?", "And Bergen?"]
        )
        first = page.get_by_test_id("agent-message").first
        tool = first.get_by_test_id("tool-call")
        expect(tool.locator(".badge")).to_have_text("done")
        expect(tool.locator(".tool-name")).to_have_text("search")
        expect(tool.locator(".tool-result")).to_have_text("3 results for Oslo")
        expect(first.locator(".markdown")).to_have_text(["Let me search.", "Oslo has 709000 people."])
        steps = first.locator(".markdown, [data-testid=tool-call]")
        expect(steps).to_have_count(3)
        expect(steps.nth(0)).to_have_text("Let me search.")
        expect(steps.nth(1)).to_have_attribute("data-testid", "tool-call")
        expect(first.locator("strong")).to_have_text("709000")
        history = page.get_by_test_id("task-history")
        expect(history.locator(".badge")).to_have_text(["completed", "completed"])
        expect(history.locator(".task-summary")).to_have_text(
            ["How many people live in Oslo?", "And Bergen?"]
        )
        expect(page.locator(".context")).to_have_text(context_id[:8])
        assert saved_context(page) == context_id
        # The newest reply is in view; the first one has scrolled away.
        expect(page.locator("pre code")).to_be_in_viewport()
        expect(first).not_to_be_in_viewport()
        restored = shot(page, tmp_path, "restored")

        history.get_by_role("link", name="How many people live in Oslo?").click()
        turn = page.locator("article.turn").first
        expect(turn).to_have_class("turn selected")
        expect(turn).to_be_focused()
        expect(first).to_be_in_viewport()
        picked = shot(page, tmp_path, "history-picked")

        page.get_by_role("button", name="New chat").click()
        expect(page.get_by_test_id("user-message")).to_have_count(0)
        expect(page.get_by_text("No tasks yet.")).to_be_visible()
        # Saved once the page has drawn it (an effect): wait for it, not for the drawing.
        page.wait_for_function(
            "old => JSON.parse(sessionStorage.getItem('hector.chat')).contextId !== old", arg=context_id
        )
        fresh = saved_context(page)
        page.reload()
        expect(page.locator(".context")).to_have_text(fresh[:8])
        expect(page.get_by_text("Ask helper something.")).to_be_visible()
        expect(page.get_by_test_id("user-message")).to_have_count(0)
    assert runs == ["Oslo"]  # restoring ran nothing again
    assert len(llm_server.requests) == 3
    assert count_colour(restored, CODE_GREY, CHAT) > 2000
    # The picked task's highlight ring (#b9cff7) is drawn around it.
    assert count_colour(picked, (0xB9, 0xCF, 0xF7), CHAT) > 300
    assert count_colour(restored, (0xB9, 0xCF, 0xF7), CHAT) < 50


def test_pending_approval_and_running_task_come_back_after_reload(
    page: Page, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    deployed: list[str] = []
    release, runs = threading.Event(), list[str]()
    llm_server.reply(tool_calls=[ScriptedCall("deploy", {"env": "prod"})])
    llm_server.reply("Deployed to prod.")
    llm_server.reply(tool_calls=[ScriptedCall("search", {"query": "logs"})])
    llm_server.reply("The logs are clean.")
    tools = {"deploy": deploy_tool(deployed), "search": slow_tool(release, runs)}
    with hector_serving(hector_config(llm_server, ["deploy", "search"]), tmp_path, tools) as url:
        page.goto(f"{url}/")
        send(page, "deploy to prod")
        expect(last_reply(page).get_by_test_id("approval")).to_be_visible()

        page.reload()
        approval = last_reply(page).get_by_test_id("approval")
        expect(approval.locator(".approval-prompt")).to_have_text("Deploy to prod?")
        expect(approval).to_contain_text('"env": "prod"')
        expect(page.get_by_test_id("task-history").locator(".badge")).to_have_text("input-required")
        asking = shot(page, tmp_path, "approval-restored")
        approval.get_by_role("button", name="Approve").click()
        expect(last_reply(page).locator(".markdown")).to_have_text("Deployed to prod.")
        expect(approval.get_by_test_id("decision")).to_have_text("Approved")
        assert deployed == ["prod"]

        # A task still running at the reload is followed again (SubscribeToTask) to its end.
        send(page, "check the logs")
        expect(last_reply(page).get_by_test_id("tool-call").locator(".badge")).to_have_text("running")
        page.reload()
        following = last_reply(page)
        expect(following.get_by_test_id("tool-call").locator(".badge")).to_have_text("running")
        expect(following).to_have_attribute("aria-busy", "true")
        expect(page.get_by_role("button", name="Stop")).to_be_enabled()
        release.set()
        expect(following.locator(".markdown")).to_have_text("The logs are clean.")
        expect(following.get_by_test_id("tool-call").locator(".badge")).to_have_text("done")
        expect(page.get_by_test_id("task-history").locator(".badge")).to_have_text(["completed", "completed"])
    assert runs == ["logs"]
    assert count_colour(asking, APPROVAL_AMBER, CHAT) > 300
    assert count_colour(asking, APPROVE_GREEN, CHAT) > 1500
