"""The page's task streams: one that breaks off is picked up again, one that is left is closed.

To break a stream, the browser's request is answered here instead of by Hector (Playwright's
request routing): the real stream is read up to its first event and the page gets only that, then
the end of the body. The task goes on in Hector regardless, and the page must follow it (GetTask,
SubscribeToTask).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
from playwright.sync_api import Page, Request, Route, expect

from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.ui.conftest import hector_serving
from tests.ui.test_chat import hector_config, last_reply, send
from tests.ui.test_session import slow_tool

FORWARDED = {"content-type", "accept", "a2a-version", "authorization"}


def method_of(request: Request) -> str | None:
    if request.method != "POST" or not request.post_data:
        return None
    return str(json.loads(request.post_data).get("method"))


def first_event_only(route: Route) -> None:
    """Sends the request on to Hector and answers the page with the stream's first event only."""
    headers = {k: v for k, v in route.request.headers.items() if k.lower() in FORWARDED}
    body = route.request.post_data or ""
    with httpx.stream("POST", route.request.url, headers=headers, content=body, timeout=10) as response:
        first = next(line for line in response.iter_lines() if line.startswith("data:"))
    route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=first + "\n\n")


def test_a_broken_stream_is_followed_to_the_end(
    page: Page, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    release, runs = threading.Event(), list[str]()
    llm_server.reply("Searching.", tool_calls=[ScriptedCall("search", {"query": "fjords"})])
    llm_server.reply("Norway has **1190** fjords.")
    config = hector_config(llm_server, ["search"])
    methods: list[str | None] = []
    page.on("request", lambda request: methods.append(method_of(request)))
    with hector_serving(config, tmp_path, {"search": slow_tool(release, runs)}) as url:
        page.goto(f"{url}/")
        endpoint = f"{url}/agents/helper"

        def nothing(route: Route) -> None:
            if method_of(route.request) != "SendStreamingMessage":
                route.continue_()  # the page's ListTasks, when it comes after this
                return
            route.fulfill(headers={"content-type": "text/event-stream"}, body="")

        # A stream that ends before the task even exists: nothing to pick up, and the user is told.
        page.route(endpoint, nothing)
        send(page, "hello?")
        expect(last_reply(page).get_by_test_id("turn-error")).to_have_text(
            "The connection ended before the agent took the message: send it again."
        )
        page.unroute(endpoint)

        cut: list[bool] = []

        def cut_once(route: Route) -> None:
            if cut or method_of(route.request) != "SendStreamingMessage":
                route.continue_()
                return
            cut.append(True)
            first_event_only(route)

        page.route(endpoint, cut_once)
        send(page, "How many fjords?")
        reply = last_reply(page)
        tool = reply.get_by_test_id("tool-call")
        # Picked up again while the tool still runs: the call shows, and Stop is there.
        expect(tool.locator(".badge")).to_have_text("running")
        expect(reply).to_have_attribute("aria-busy", "true")
        expect(page.get_by_role("button", name="Stop")).to_be_enabled()
        release.set()
        expect(reply.locator(".markdown").last).to_have_text("Norway has 1190 fjords.")
        expect(tool.locator(".badge")).to_have_text("done")
        expect(reply.get_by_test_id("turn-error")).to_have_count(0)
        expect(page.get_by_test_id("user-message").last).to_have_text("How many fjords?")
        expect(page.get_by_test_id("task-history").locator(".badge")).to_have_text("completed")
    assert cut == [True] and runs == ["fjords"]
    asked = [m for m in methods if m in {"SendStreamingMessage", "GetTask", "SubscribeToTask"}]
    assert asked == ["SendStreamingMessage", "SendStreamingMessage", "GetTask", "SubscribeToTask"]


def test_new_chat_hangs_up_the_stream_it_leaves(
    page: Page, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    release, runs = threading.Event(), list[str]()
    llm_server.reply("Searching.", tool_calls=[ScriptedCall("search", {"query": "glaciers"})])
    llm_server.reply("Many glaciers.")
    config = hector_config(llm_server, ["search"])
    with hector_serving(config, tmp_path, {"search": slow_tool(release, runs)}) as url:
        page.goto(f"{url}/")
        send(page, "Glaciers?")
        expect(last_reply(page).get_by_test_id("tool-call").locator(".badge")).to_have_text("running")
        # The left stream would hold one of the browser's few connections to this server open
        # for as long as the task runs.
        with page.expect_event(
            "requestfailed", predicate=lambda request: method_of(request) == "SendStreamingMessage"
        ):
            page.get_by_role("button", name="New chat").click()
        expect(page.get_by_test_id("user-message")).to_have_count(0)
        expect(page.get_by_role("button", name="Send")).to_be_visible()
        release.set()
    assert runs == ["glaciers"]
