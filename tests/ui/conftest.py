"""A headless Chromium (Debian's package, driven by Playwright) for the web UI's end-to-end tests.

Playwright's own browser downloads are never used: nothing may be fetched at run time. Outside
CI a machine without /usr/bin/chromium skips these tests; in CI (``CI`` set) that is a failure,
since `.ci/run` installs the package.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from hector.tools import Tool
from tests.harness import running_hector

CHROMIUM = Path("/usr/bin/chromium")
# Headless, as root, on a machine without internet: no sandbox (root), and none of Chromium's
# background calls home, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--font-render-hinting=none",
]
VIEWPORT: ViewportSize = {"width": 1100, "height": 720}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class PageErrors:
    """What went wrong inside the page: script errors and content-security-policy violations."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _console(self, message: object) -> None:
        text = getattr(message, "text", "")
        if getattr(message, "type", "") == "error" and "Content Security Policy" in text:
            self.errors.append(f"csp: {text}")


@contextlib.contextmanager
def opened_page(browser: Browser, viewport: ViewportSize = VIEWPORT) -> Iterator[Page]:
    """A page in a fresh browser context (its own sessionStorage), checked for script errors."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors = PageErrors(page)
    yield page
    context.close()
    assert errors.errors == [], errors.errors


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with opened_page(browser) as opened:
        yield opened


@contextlib.contextmanager
def serving(start: Callable[[], AbstractAsyncContextManager[str]]) -> Iterator[str]:
    """Runs the server *start* opens (an async context manager yielding its URL) on its own
    thread and event loop, set up and torn down there.

    (Sync Playwright keeps an event loop of its own on the test's thread, so the server's loop
    cannot be driven from that thread, not even to clean up.)
    """
    ready = threading.Event()
    url: list[str] = []
    failure: list[BaseException] = []
    control: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        stop = asyncio.Event()
        control.append((asyncio.get_running_loop(), stop))
        async with start() as base:
            url.append(base)
            ready.set()
            await stop.wait()

    def main() -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:
            failure.append(exc)
        finally:
            ready.set()
            leftover = asyncio.all_tasks(loop)  # sse-starlette's shutdown watchers outlive the server
            for task in leftover:
                task.cancel()
            if leftover:
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
            loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert ready.wait(20), "server did not start"
    if failure:
        raise failure[0]
    try:
        yield url[0]
    finally:
        loop, stop = control[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)


def hector_serving(
    config: dict[str, Any], base_dir: Path, tools: dict[str, Tool] | None = None
) -> contextlib.AbstractContextManager[str]:
    """``running_hector`` with *config*, served from its own thread (see ``serving``)."""
    return serving(lambda: running_hector(config, base_dir, tools))
