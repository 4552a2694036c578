"""The chat page in headless Chromium against a real Hector and the scripted OpenAI-protocol LLM."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from hector.tools import FunctionTool, Tool
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.ui.conftest import hector_serving
from tests.ui.screens import (
    APPROVAL_AMBER,
    APPROVE_GREEN,
    CODE_GREY,
    DENY_RED,
    ERROR_PINK,
    count_colour,
    differs,
    shot,
)

CHAT = (260, 56, 1100, 625)
"""The conversation column of a screenshot (right of the history, between header and composer)."""


def hector_config(llm: ScriptedLLMServer, tools: list[str]) -> dict[str, Any]:
    model: dict[str, Any] = {
        "type": "openai",
        "model": "scripted",
        "host": f"{llm.url}/v1",
        "api_key": "sk-ui-test",
    }
    model["max_retries"] = 0
    return {
        "llms": {"main": model},
        "agents": {
            "helper": {"llm": "main", "tools": tools, "description": "Answers questions"},
            "backoffice": {"llm": "main", "visibility": "internal"},
            "secret": {"llm": "main", "visibility": "private"},
        },
    }


def send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_role("button", name="Send").click()


def last_reply(page: Page) -> Any:
    return page.get_by_test_id("agent-message").last


def test_picker_lists_visible_agents_and_reply_renders_markdown(
    page: Page, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    llm_server.reply("Here is **the code**:\n\n```python\nprint('hello')\n```\n\nDone.")
    with hector_serving(hector_config(llm_server, []), tmp_path) as url:
        page.goto(f"{url}/")
        picker = page.get_by_label("Agent")
        expect(picker.locator("option")).to_have_text(["helper"])  # internal and private stay hidden
        expect(page.locator(".description")).to_have_text("Answers questions")
        empty = shot(page, tmp_path, "empty")
        send(page, "show me code")
        reply = last_reply(page)
        expect(reply.locator("pre code.language-python")).to_have_text("print('hello')")
        expect(reply.locator("strong")).to_have_text("the code")
        expect(reply).to_have_attribute("aria-busy", "false")
        expect(page.get_by_test_id("user-message")).to_have_text("show me code")
        history = page.get_by_test_id("task-history")
        expect(history.locator("li")).to_have_count(1)
        expect(history.locator(".badge")).to_have_text("completed")
        answered = shot(page, tmp_path, "answered")
    assert llm_server.last.body["messages"][-1] == {"role": "user", "content": "show me code"}
    # The code block is drawn (its grey background), and the conversation area changed.
    assert count_colour(answered, CODE_GREY, CHAT) > 2000
    assert count_colour(empty, CODE_GREY, CHAT) < 100
    assert differs(empty, answered, CHAT) > 1


def test_streamed_text_and_tool_call_show_as_they_happen(
    page: Page, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    release = threading.Event()

    async def lookup(city: str) -> str:
        """Population of a city."""
        for _ in range(400):  # the tool runs until the test has seen the page mid-run
            if release.is_set():
                break
            await asyncio.sleep(0.05)
        return "709000"

    tools: dict[str, Tool] = {"lookup": FunctionTool(lookup)}
    llm_server.reply("Let me look that up.", tool_calls=[ScriptedCall("lookup", {"city": "Oslo"})])
    llm_server.reply("Oslo has **709000** people.")
    with hector_serving(hector_config(llm_server, ["lookup"]), tmp_path, tools) as url:
        page.goto(f"{url}/")
        send(page, "How many people live in Oslo?")
        reply = last_reply(page)
        tool = reply.get_by_test_id("tool-call")
        # Mid-run: the text said before the call and the running call are on screen already; the
        # call's status message carries that text too, and it still shows once.
        expect(tool.locator(".badge")).to_have_text("running")
        expect(reply.locator(".markdown")).to_have_text(["Let me look that up."])
        expect(tool.locator(".tool-name")).to_have_text("lookup")
        expect(tool.locator(".tool-args")).to_contain_text('"city": "Oslo"')
        expect(reply).to_have_attribute("aria-busy", "true")
        expect(page.get_by_test_id("task-history").locator(".badge")).to_have_text("working")
        expect(page.get_by_role("button", name="Send")).to_be_disabled()
        running = shot(page, tmp_path, "tool-running")
        release.set()
        expect(reply.locator(".markdown").last).to_have_text("Oslo has 709000 people.")
        expect(tool.locator(".badge")).to_have_text("done")
        expect(tool.locator(".tool-result")).to_have_text("709000")
        expect(reply.locator(".markdown")).to_have_count(2)
        done = shot(page, tmp_path, "tool-done")
    assert differs(running, done, CHAT) > 0.5


def deploy_tool(done: list[str]) -> Tool:
    def deploy(env: str) -> str:
        """Deploys to an environment."""
        done.append(env)
        return f"deployed {env}"

    tool = FunctionTool(deploy)
    tool.require_approval = True
    tool.approval_prompt = "Deploy to {env}?"
    return tool


def test_approve_and_deny_change_the_outcome(
    page: Page, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    deployed: list[str] = []
    llm_server.reply(tool_calls=[ScriptedCall("deploy", {"env": "prod"})])
    llm_server.reply("Deployed to prod.")
    llm_server.reply(tool_calls=[ScriptedCall("deploy", {"env": "staging"})])
    llm_server.reply("I did not deploy to staging.")
    with hector_serving(
        hector_config(llm_server, ["deploy"]), tmp_path, {"deploy": deploy_tool(deployed)}
    ) as url:
        page.goto(f"{url}/")
        send(page, "deploy to prod")
        approval = last_reply(page).get_by_test_id("approval")
        expect(approval.locator(".approval-prompt")).to_have_text("Deploy to prod?")
        expect(approval).to_contain_text('"env": "prod"')
        expect(page.get_by_test_id("task-history").locator(".badge")).to_have_text("input-required")
        asking = shot(page, tmp_path, "approval")
        assert deployed == []
        approval.get_by_role("button", name="Approve").click()
        expect(last_reply(page).locator(".markdown")).to_have_text("Deployed to prod.")
        expect(approval.get_by_test_id("decision")).to_have_text("Approved")
        expect(approval.get_by_role("button")).to_have_count(0)
        approved = shot(page, tmp_path, "approved")
        assert deployed == ["prod"]

        send(page, "deploy to staging")
        second = last_reply(page).get_by_test_id("approval")
        expect(second.locator(".approval-prompt")).to_have_text("Deploy to staging?")
        second.get_by_role("button", name="Deny").click()
        expect(last_reply(page).locator(".markdown")).to_have_text("I did not deploy to staging.")
        expect(second.get_by_test_id("decision")).to_have_text("Denied")
        expect(page.get_by_test_id("task-history").locator(".badge")).to_have_text(["completed", "completed"])
    assert deployed == ["prod"]
    denial = llm_server.last.body["messages"][-1]
    assert denial["role"] == "tool" and "TOOL_EXECUTION_DENIED" in denial["content"]
    # The approval card (amber border, green Approve and red Deny buttons) is drawn while asking
    # and gone once decided.
    assert count_colour(asking, APPROVAL_AMBER, CHAT) > 300
    assert count_colour(asking, APPROVE_GREEN, CHAT) > 1500 and count_colour(asking, DENY_RED, CHAT) > 1500
    assert count_colour(approved, APPROVE_GREEN, CHAT) < 300
    assert count_colour(approved, APPROVAL_AMBER, CHAT) < 50


def test_server_error_is_displayed(page: Page, llm_server: ScriptedLLMServer, tmp_path: Path) -> None:
    llm_server.fail(503, "model overloaded")
    with hector_serving(hector_config(llm_server, []), tmp_path) as url:
        page.goto(f"{url}/")
        before = shot(page, tmp_path, "before-error")
        send(page, "hello?")
        error = last_reply(page).get_by_test_id("turn-error")
        expect(error).to_contain_text("503")
        expect(error).to_contain_text("model overloaded")
        expect(error).not_to_contain_text("sk-ui-test")
        expect(page.get_by_test_id("task-history").locator(".badge")).to_have_text("failed")
        failed = shot(page, tmp_path, "error")
        # The page keeps working after the failure.
        llm_server.reply("recovered")
        send(page, "again")
        expect(last_reply(page).locator(".markdown")).to_have_text("recovered")
    assert count_colour(failed, ERROR_PINK, CHAT) > 2000
    assert count_colour(before, ERROR_PINK, CHAT) < 100
