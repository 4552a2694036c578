"""Untrusted text on the chat page (replies, tool calls, errors, agent cards): shown, never run.

Every hostile snippet sets ``window.__pwned`` if it ever runs. The page's content security policy
would refuse most of them anyway, but a refusal is logged, and ``opened_page`` fails the test on
any such log: the page must stop them before the browser has to.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from hector.tools import FunctionTool
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.ui.conftest import hector_serving
from tests.ui.test_chat import hector_config, last_reply, send

CARD = "<img src=x onerror=\"window.__pwned='card'\"> Answers questions"
ARGS = "<img src=x onerror=\"window.__pwned='args'\">"
RESULT = "</script><script>window.__pwned='result'</script><img src=x onerror=\"window.__pwned='result'\">"
ERROR = "<img src=x onerror=\"window.__pwned='error'\"> overloaded"
COVER = '<div id="app" style="position:fixed;inset:0;background:red">cover</div>'
QUESTION = "<b onmouseover=\"window.__pwned='question'\">hi</b>"
REPLY = "\n\n".join(
    [
        "Look: <img src=x onerror=\"window.__pwned='img'\"> [click me](javascript:window.__pwned='link')",
        "[data](data:text/html,<script>window.__pwned='data'</script>) [docs](https://example.invalid/docs)",
        "![spy](https://example.invalid/spy.png?q=secret)",
        "<svg><a href=\"https://example.invalid/svg\"><text y='20'>svg link</text></a></svg>",
        COVER,
        "<script>window.__pwned='script'</script>",
        "```html\n</script><script>window.__pwned='code'</script>\n```",
    ]
)

# Everything in the page that could run or leave: handlers, scripts, links and styles.
INSPECT = """() => {
    const all = [...document.querySelectorAll("*")];
    const chat = document.querySelector("[data-testid=chat]");
    return {
        pwned: window.__pwned ?? null,
        handlers: all.flatMap((e) => [...e.attributes].map((a) => a.name).filter((n) => n.startsWith("on"))),
        scripts: document.body.querySelectorAll("script").length,
        svg: chat.querySelectorAll("svg").length,
        styled: chat.querySelectorAll("[style]").length,
        images: [...chat.querySelectorAll("img")].map((img) => img.getAttribute("src")),
        links: [...chat.querySelectorAll("a[href], [*|href]")].map((a) => [
            a.getAttribute("href"), a.getAttribute("target"), a.getAttribute("rel"),
        ]),
    };
}"""


def echo(text: str) -> str:
    """Repeats the text (and something of its own)."""
    return RESULT


def test_hostile_text_is_shown_literally_and_never_runs(
    page: Page, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    config: dict[str, Any] = hector_config(llm_server, ["echo"])
    config["agents"]["helper"]["description"] = CARD
    llm_server.reply("Checking.", tool_calls=[ScriptedCall("echo", {"text": ARGS})])
    llm_server.reply(REPLY)
    llm_server.fail(500, ERROR)
    with hector_serving(config, tmp_path, {"echo": FunctionTool(echo)}) as url:
        page.goto(f"{url}/")
        expect(page.locator(".description")).to_have_text(CARD)
        send(page, QUESTION)
        reply = last_reply(page)
        expect(reply.locator("pre code.language-html")).to_have_text(
            "</script><script>window.__pwned='code'</script>"
        )
        expect(page.get_by_test_id("user-message")).to_have_text(QUESTION)
        tool = reply.get_by_test_id("tool-call")
        expect(tool.locator(".tool-args")).to_contain_text(ARGS.replace('"', '\\"'))
        expect(tool.locator(".tool-result")).to_have_text(RESULT)
        answer = reply.locator(".markdown").last
        # HTML in the reply is shown as the text it is.
        expect(answer).to_contain_text("Look: <img src=x onerror=\"window.__pwned='img'\">")
        expect(answer).to_contain_text(COVER)
        expect(answer).to_contain_text("<script>window.__pwned='script'</script>")
        expect(answer.locator("img")).to_have_attribute("alt", "spy")
        expect(answer.locator("img")).not_to_have_attribute("src", re.compile(".*"))
        reply.get_by_text("click me").click()  # a link stripped of its javascript: URL goes nowhere

        send(page, "again")
        expect(last_reply(page).get_by_test_id("turn-error")).to_contain_text(ERROR)

        found = page.evaluate(INSPECT)
        assert found["pwned"] is None
        assert found["handlers"] == [] and found["scripts"] == 0
        assert found["svg"] == 0 and found["styled"] == 0 and found["images"] == [None]
        # The one real link left opens in a new tab that cannot reach back to this one.
        assert found["links"] == [["https://example.invalid/docs", "_blank", "noopener noreferrer"]]
        assert page.url == f"{url}/"
