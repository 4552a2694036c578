"""Keyboard use, accessible names and the narrow (phone) layout of the chat page."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.llm_server import ScriptedLLMServer
from tests.ui.conftest import hector_serving, opened_page
from tests.ui.screens import CODE_GREY, USER_BLUE, count_colour, shot
from tests.ui.test_chat import hector_config, last_reply, send

PHONE: ViewportSize = {"width": 390, "height": 844}


def test_keyboard_send_and_accessible_names(
    page: Page, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    llm_server.reply("Two lines received.")
    with hector_serving(hector_config(llm_server, []), tmp_path) as url:
        page.goto(f"{url}/")
        box = page.get_by_label("Message")
        box.focus()
        page.keyboard.type("first line")
        page.keyboard.press("Shift+Enter")  # a new line, not a send
        page.keyboard.type("second line")
        expect(box).to_have_value("first line\nsecond line")
        expect(page.get_by_test_id("user-message")).to_have_count(0)
        page.keyboard.press("Enter")
        reply = last_reply(page)
        expect(reply.locator(".markdown")).to_have_text("Two lines received.")
        expect(page.get_by_test_id("user-message")).to_have_text("first line\nsecond line")
        expect(box).to_have_value("")
        expect(box).to_be_focused()  # ready for the next message
        # The reply is a live region: screen readers announce it once it stops changing.
        expect(reply).to_have_attribute("aria-live", "polite")
        expect(reply).to_have_attribute("aria-busy", "false")

        # Every control has a name a screen reader can say.
        tree = page.locator("body").aria_snapshot()
        buttons = re.findall(r"- button(.*)", tree)
        assert len(buttons) >= 2 and all(re.match(r' "[^"]+"', b) for b in buttons), tree
        for role in ("textbox", "combobox", "link"):
            for line in re.findall(rf"- {role}(.*)", tree):
                assert re.match(r' "[^"]+"', line), (role, tree)
        expect(page.get_by_role("combobox", name="Agent")).to_be_visible()
        expect(page.get_by_role("navigation", name="Task history")).to_be_visible()

        # Keyboard focus is drawn: Shift+Tab from the message box reaches the history entry.
        page.keyboard.press("Shift+Tab")
        focused = page.get_by_role("link", name=re.compile("first line"))
        expect(focused).to_be_focused()
        style = "e => [getComputedStyle(e).outlineStyle, getComputedStyle(e).outlineWidth]"
        outline = focused.evaluate(style)
        assert outline == ["solid", "3px"]
        page.keyboard.press("Enter")  # following the entry from the keyboard shows that task
        expect(page.locator("article.turn").first).to_be_focused()
    assert llm_server.last.body["messages"][-1] == {"role": "user", "content": "first line\nsecond line"}


def test_narrow_layout_fits_a_phone(browser: Browser, llm_server: ScriptedLLMServer, tmp_path: Path) -> None:
    wide_code = "print(" + " + ".join(f"value_{n}" for n in range(30)) + ")"
    answer = f"A long answer with a wide code block:\n\n```python\n{wide_code}\n```\n\n" + "word " * 80
    llm_server.reply(answer)
    with hector_serving(hector_config(llm_server, []), tmp_path) as url, opened_page(browser, PHONE) as page:
        page.goto(f"{url}/")
        send(page, "a question with an unbreakable-" + "x" * 60 + " word")
        expect(last_reply(page).locator("pre code")).to_have_text(wide_code)
        width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width == [390, 390]  # no horizontal scrolling of the page
        for control in ("Agent", "Message"):
            box = page.get_by_label(control).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (control, box)
        expect(page.get_by_role("button", name="Send")).to_be_in_viewport()
        expect(page.get_by_role("button", name="New chat")).to_be_in_viewport()
        # The wide code scrolls inside its own box, not the page.
        code = page.locator("pre").first.evaluate(
            "e => [e.scrollWidth > e.clientWidth, e.getBoundingClientRect().right]"
        )
        assert code[0] is True and code[1] <= 390
        phone = shot(page, tmp_path, "phone")
    assert phone.size == (390, 844)
    assert count_colour(phone, USER_BLUE) > 2000  # the question's bubble
    assert count_colour(phone, CODE_GREY) > 3000  # the code block
