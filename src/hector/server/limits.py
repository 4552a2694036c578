"""Pure-ASGI guard that refuses request bodies over the configured size with 413."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def _reject(self, send: Send) -> None:
        body = json.dumps(
            {
                "error": f"request body too large (limit: {self.max_body_size} bytes); "
                "send a smaller message or raise server.max_body_size"
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            # The server (h11/httptools) never delivers more bytes than Content-Length declares.
            if not length.isdigit() or int(length) > self.max_body_size:
                await self._reject(send)
                return
            await self.app(scope, receive, send)
            return
        # A chunked body: read it here, up to the limit, and replay it to the app. The app would
        # buffer it whole anyway, and reading first is the only way to answer 413 rather than
        # let the handler turn the overflow into an error of its own protocol.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_size:
                await self._reject(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
