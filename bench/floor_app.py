"""The floor for bench/load.py: a bare Starlette app answering SendMessage with a fixed completed task.

It parses the JSON-RPC body (to echo ``id`` and ``contextId``) and does nothing else, so it measures
what uvicorn + Starlette + JSON cost on this machine. Run: ``uvicorn floor_app:app --app-dir bench``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TASK_ID = "00000000-0000-4000-8000-000000000000"
TEXT = "[test model] You said: hello"


def _task(context_id: str) -> dict[str, Any]:
    parts = [{"text": TEXT}]
    return {
        "id": TASK_ID,
        "contextId": context_id,
        "status": {
            "state": "TASK_STATE_COMPLETED",
            "message": {
                "messageId": "00000000-0000-4000-8000-000000000001",
                "contextId": context_id,
                "taskId": TASK_ID,
                "role": "ROLE_AGENT",
                "parts": parts,
            },
            "timestamp": "2026-01-01T00:00:00.000000Z",
        },
        "artifacts": [{"artifactId": f"response-{TASK_ID}", "name": "response", "parts": parts}],
        "history": [],
    }


async def send_message(request: Request) -> JSONResponse:
    body = json.loads(await request.body())
    context_id = str(body.get("params", {}).get("message", {}).get("contextId", ""))
    return JSONResponse({"result": {"task": _task(context_id)}, "id": body.get("id"), "jsonrpc": "2.0"})


app = Starlette(routes=[Route("/agents/echo", send_message, methods=["POST"])])
