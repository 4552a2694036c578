"""`GET /` serves the built chat page and its files: public, with strict security headers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from hector.web import STATIC, load_assets, web_routes
from tests.harness import running_hector, serve_app

KEY = "key-ui-0123456789abcdef"


def config(require_auth: bool) -> dict[str, Any]:
    return {
        "llms": {"t": {"type": "test"}},
        "agents": {"helper": {"llm": "t"}},
        "server": {"auth": {"enabled": True, "api_keys": [KEY], "require_auth": require_auth}},
    }


def test_the_bundle_is_shipped_in_the_package() -> None:
    assets = load_assets()
    assert {"index.html", "ui/assets/app.js", "ui/assets/app.css"} <= set(assets)
    index = (STATIC / "index.html").read_text()
    # Only external, same-origin scripts: the CSP forbids inline code.
    assert re.search(r'<script type="module" crossorigin src="\./ui/assets/app\.js">', index)
    assert "<script>" not in index and "style=" not in index


async def test_page_and_assets_are_public_with_security_headers(tmp_path: Path) -> None:
    async with running_hector(config(require_auth=True), tmp_path) as url, httpx.AsyncClient() as http:
        page = await http.get(f"{url}/")
        assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
        assert "<title>Hector</title>" in page.text
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "DENY"
        script = await http.get(f"{url}/ui/assets/app.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert script.headers["x-content-type-options"] == "nosniff"
        again = await http.get(f"{url}/ui/assets/app.js", headers={"If-None-Match": script.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        etag = script.headers["etag"]
        for listed in (f'"other", W/{etag}', "*"):  # a list (weak tags too) or any version
            cached = await http.get(f"{url}/ui/assets/app.js", headers={"If-None-Match": listed})
            assert cached.status_code == 304, listed
        other = await http.get(f"{url}/ui/assets/app.js", headers={"If-None-Match": etag + "x"})
        assert other.status_code == 200  # another tag that merely contains this one
        assert (await http.get(f"{url}/ui/assets/../../agents/helper")).status_code in (401, 404)
        assert (await http.get(f"{url}/ui/assets/nope.js")).status_code == 404
        # The API behind the page is not public.
        anonymous = await http.get(f"{url}/ui/whoami")
        assert anonymous.status_code == 401 and anonymous.json() == {"error": "Missing Authorization header"}
        bad = await http.get(f"{url}/ui/whoami", headers={"Authorization": "Bearer wrong-key"})
        assert bad.status_code == 401 and bad.json()["error"].startswith("Invalid token")
        good = await http.get(f"{url}/ui/whoami", headers={"Authorization": f"Bearer {KEY}"})
        assert good.json() == {"auth": True, "required": True, "user": good.json()["user"]}
        assert good.json()["user"].startswith("api-key:") and KEY not in good.text


async def test_whoami_without_auth(tmp_path: Path) -> None:
    cfg = {"llms": {"t": {"type": "test"}}, "agents": {"helper": {"llm": "t"}}}
    async with running_hector(cfg, tmp_path) as url, httpx.AsyncClient() as http:
        who = await http.get(f"{url}/ui/whoami")
        assert who.json() == {"auth": False, "required": False, "user": None}


async def test_a_source_checkout_without_a_build_says_how_to_build() -> None:
    app = Starlette(routes=web_routes(auth_enabled=False, require_auth=False, assets={}))
    async with serve_app(app) as url, httpx.AsyncClient() as http:
        page = await http.get(f"{url}/")
    assert page.status_code == 503 and "npm ci && npm run build" in page.text
    assert page.headers["content-type"].startswith("text/plain")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
