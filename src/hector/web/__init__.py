"""The chat page at ``GET /``: pre-built files shipped inside the package, served with strict headers.

The page is built from ``web/`` (Vite, Preact) into ``static/`` and committed, so an installed
Hector needs no Node.js and downloads nothing at run time. The page and its files are public
(they hold no data; see ``hector.security.middleware``); everything the page then asks the API
for carries the user's key or token, like any other client.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hector.security.middleware import UI_ASSETS as ASSETS, principal_of

STATIC = Path(__file__).parent / "static"

# The page runs only its own script and style: no inline code, nothing from elsewhere. Images
# are limited to the page's origin too, so a reply's Markdown cannot make the browser call a
# tracking URL; frame-ancestors keeps the page out of other sites' frames (clickjacking).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    # File names are fixed (not content-hashed): browsers revalidate with the ETag every time.
    "Cache-Control": "no-cache",
}
_TEXT_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets(root: Path = STATIC) -> dict[str, Asset]:
    """Every file under *root*, by its path relative to it (``index.html``, ``ui/assets/app.js``)."""
    assets: dict[str, Asset] = {}
    if not root.is_dir():
        return assets
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        body = path.read_bytes()
        text_type = _TEXT_TYPES.get(path.suffix)
        if text_type is not None:
            media_type = f"{text_type}; charset=utf-8"
        else:
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[path.relative_to(root).as_posix()] = Asset(body, media_type, etag)
    return assets


def _fresh(request: Request, etag: str) -> bool:
    """Whether the browser's copy is current: If-None-Match lists *etag* (weak or not) or is ``*``."""
    listed = [t.strip().removeprefix("W/") for t in request.headers.get("if-none-match", "").split(",")]
    return etag in listed or "*" in listed


def _serve(request: Request, asset: Asset) -> Response:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag}
    if _fresh(request, asset.etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def web_routes(
    auth_enabled: bool, require_auth: bool, assets: dict[str, Asset] | None = None
) -> list[BaseRoute]:
    """``/`` (the page), ``/ui/assets/*`` (its files) and ``/ui/whoami`` (what the page asks first).

    ``/ui/whoami`` is an ordinary API path: with ``require_auth`` and no key it answers 401, and
    with a bad key 401 with the reason, so the page can tell "sign in" from "wrong key" (the
    agent listing cannot: it is never rejected and shows an anonymous view for a bad key).
    """
    files = load_assets() if assets is None else assets

    async def page(request: Request) -> Response:
        index = files.get("index.html")
        if index is None:  # a source checkout where `npm run build` never ran
            text = "The web UI is not built: run `npm ci && npm run build` in web/."
            return Response(text, 503, headers=SECURITY_HEADERS, media_type="text/plain")
        return _serve(request, index)

    async def asset(request: Request) -> Response:
        found = files.get(ASSETS.lstrip("/") + request.path_params["name"])
        if found is None:
            return JSONResponse({"error": f"no route for {request.url.path}"}, status_code=404)
        return _serve(request, found)

    async def whoami(request: Request) -> Response:
        principal = principal_of(request.scope)
        user = principal.display if principal is not None else None
        return JSONResponse({"auth": auth_enabled, "required": require_auth, "user": user})

    return [
        Route("/", page, methods=["GET"]),
        Route(ASSETS + "{name:path}", asset, methods=["GET"]),
        Route("/ui/whoami", whoami, methods=["GET"]),
    ]
