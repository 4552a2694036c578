"""Signing in to the chat page with an API key or a JWT, when the server's auth is on."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Page, Route, expect

from hector.security.tokens import LEEWAY_SECONDS
from tests.harness import serve_app
from tests.llm_server import ScriptedCall, ScriptedLLMServer
from tests.security.conftest import JWKSServer, SigningKey, jwt_auth, make_token
from tests.ui.conftest import hector_serving, serving
from tests.ui.screens import ERROR_PINK, count_colour, differs, shot
from tests.ui.test_chat import hector_config, last_reply, send
from tests.ui.test_session import slow_tool

KEY = "key-ui-signin-0123456789"
KEY_SUBJECT = "api-key:" + hashlib.sha256(KEY.encode()).hexdigest()[:12]
BANNER = (0, 56, 1100, 100)
"""The strip under the header where sign-in and server errors are shown."""


def test_sign_in_with_an_api_key(page: Page, llm_server: ScriptedLLMServer, tmp_path: Path) -> None:
    cfg = hector_config(llm_server, [])
    cfg["server"] = {"auth": {"enabled": True, "api_keys": [KEY], "require_auth": True}}
    llm_server.reply("Hello, signed-in user.")
    sent: list[tuple[str, str | None]] = []
    page.on("request", lambda request: sent.append((request.url, request.headers.get("authorization"))))
    with hector_serving(cfg, tmp_path) as url:
        page.goto(f"{url}/")
        key_field = page.get_by_label("API key or bearer token")
        expect(key_field).to_be_visible()  # required: the form is open from the start
        expect(page.get_by_label("Agent").locator("option")).to_have_text(["helper"])
        signed_out = shot(page, tmp_path, "signed-out")

        # Talking without a key: the server's refusal is shown, with the way out.
        send(page, "hi")
        expect(last_reply(page).get_by_test_id("turn-error")).to_have_text(
            "Not authorized: Missing Authorization header"
        )

        key_field.fill("not-the-key")
        page.get_by_role("button", name="Sign in").click()
        banner = page.get_by_test_id("banner")
        expect(banner).to_have_text("Sign-in failed: Invalid token")
        expect(page.get_by_test_id("user")).to_have_count(0)
        rejected = shot(page, tmp_path, "wrong-key")

        page.get_by_label("API key or bearer token").fill(KEY)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("user")).to_have_text(KEY_SUBJECT)
        expect(banner).to_have_count(0)
        # Signed in, the internal agent appears too (the private one never does).
        expect(page.get_by_label("Agent").locator("option")).to_have_text(["helper", "backoffice"])
        send(page, "hi again")
        expect(last_reply(page).locator(".markdown")).to_have_text("Hello, signed-in user.")
        expect(page.get_by_test_id("task-history").locator(".badge")).to_have_text("completed")
        shot(page, tmp_path, "signed-in")
        auth_header = llm_server.last.headers.get("authorization", "")
        assert KEY not in auth_header  # the user's key goes to Hector only, never to the model

        # The key lives in this tab only: a reload keeps it, signing out forgets it.
        page.reload()
        expect(page.get_by_test_id("user")).to_be_visible()
        assert page.evaluate("localStorage.length") == 0
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("API key or bearer token")).to_be_visible()
        expect(page.get_by_label("Agent").locator("option")).to_have_text(["helper"])
        assert page.evaluate("sessionStorage.getItem('hector.token')") is None
    # The key went in the Authorization header only, and only to this server.
    assert all(KEY not in u for u, _ in sent)
    assert {u.split("/")[2] for u, auth in sent if auth} == {url.split("/")[2]}
    assert any(auth == f"Bearer {KEY}" for _, auth in sent)
    assert count_colour(rejected, ERROR_PINK, BANNER) > 10000
    assert count_colour(signed_out, ERROR_PINK, BANNER) < 100
    assert differs(signed_out, rejected, BANNER) > 1


def test_sign_in_with_a_jwt_and_an_expired_one(
    page: Page, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    key = SigningKey("ui-ec-1", "ES256", ec.generate_private_key(ec.SECP256R1()))
    jwks = JWKSServer(keys=[key.jwk])
    valid = make_token(key, email="alice@example.test")
    expired = make_token(
        key, email="alice@example.test", iat=int(time.time()) - 900, exp=int(time.time()) - 600
    )
    llm_server.reply("Hello, Alice.")
    with serving(lambda: serve_app(jwks.app())) as jwks_url:
        jwks.url = f"{jwks_url}/.well-known/jwks.json"
        cfg = hector_config(llm_server, [])
        cfg["server"] = {"auth": {**jwt_auth(jwks), "require_auth": True}}
        with hector_serving(cfg, tmp_path) as url:
            page.goto(f"{url}/")
            page.get_by_label("API key or bearer token").fill(valid)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_test_id("user")).to_have_text("alice@example.test")
            expect(page.get_by_label("Agent").locator("option")).to_have_text(["helper", "backoffice"])
            send(page, "hi")
            expect(last_reply(page).locator(".markdown")).to_have_text("Hello, Alice.")
            assert jwks.requests >= 1  # the token was checked against the JWKS server's key

            # The token runs out while the page is open: the next call says to sign in again.
            page.get_by_role("button", name="Sign out").click()
            # Hector allows 30 s of clock skew: this token is good for 3 more seconds, then expired.
            short_exp = int(time.time()) - LEEWAY_SECONDS + 3
            short = make_token(key, email="alice@example.test", iat=short_exp - 60, exp=short_exp)
            page.get_by_label("API key or bearer token").fill(short)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_test_id("user")).to_have_text("alice@example.test")
            time.sleep(max(0.0, short_exp + LEEWAY_SECONDS + 1 - time.time()))
            send(page, "still there?")
            expect(last_reply(page).get_by_test_id("turn-error")).to_have_text(
                "Not authorized: Invalid token: expired"
            )
            banner = page.get_by_test_id("banner")
            expect(banner).to_have_text("Your sign-in has expired: sign in again.")
            expect(page.get_by_label("API key or bearer token")).to_have_value("")  # not kept
            expect(page.get_by_test_id("user")).to_have_count(0)
            # Signed out, the picker is back to what anyone may see.
            expect(page.get_by_label("Agent").locator("option")).to_have_text(["helper"])
            expired_shot = shot(page, tmp_path, "jwt-expired")

            # An expired token kept from before a reload gets the same message.
            page.evaluate("token => sessionStorage.setItem('hector.token', token)", expired)
            page.reload()
            expect(banner).to_have_text("Your sign-in has expired: sign in again.")
            page.get_by_label("API key or bearer token").fill(valid)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_test_id("user")).to_have_text("alice@example.test")
            expect(banner).to_have_count(0)
    assert count_colour(expired_shot, ERROR_PINK, BANNER) > 10000


def test_a_refused_stop_asks_to_sign_in_again(
    page: Page, llm_server: ScriptedLLMServer, tmp_path: Path
) -> None:
    release, runs = threading.Event(), list[str]()
    llm_server.reply("Searching.", tool_calls=[ScriptedCall("search", {"query": "tickets"})])
    llm_server.reply("No open tickets.")
    cfg = hector_config(llm_server, ["search"])
    cfg["server"] = {"auth": {"enabled": True, "api_keys": [KEY], "require_auth": True}}
    refusal = {"error": "Invalid token: expired"}

    def refuse_cancel(route: Route) -> None:
        # The key stops working (revoked, or a token's expiry) just as the user presses Stop.
        if '"CancelTask"' in (route.request.post_data or ""):
            route.fulfill(status=401, json=refusal, headers={"WWW-Authenticate": "Bearer"})
        else:
            route.continue_()

    with hector_serving(cfg, tmp_path, {"search": slow_tool(release, runs)}) as url:
        page.goto(f"{url}/")
        page.get_by_label("API key or bearer token").fill(KEY)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("user")).to_have_text(KEY_SUBJECT)
        send(page, "open tickets?")
        expect(last_reply(page).get_by_test_id("tool-call").locator(".badge")).to_have_text("running")
        page.route(f"{url}/agents/helper", refuse_cancel)
        page.get_by_role("button", name="Stop").click()
        expect(last_reply(page).get_by_test_id("turn-error")).to_have_text(
            "Cannot stop: Not authorized: Invalid token: expired"
        )
        expect(page.get_by_test_id("banner")).to_have_text("Your sign-in has expired: sign in again.")
        expect(page.get_by_label("API key or bearer token")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('hector.token')") is None
        release.set()
    assert runs == ["tickets"]
