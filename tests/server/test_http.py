"""Discovery, health and bad input over raw HTTP: each error gets its code and the server keeps serving."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.harness import running_hector

V1 = {"A2A-Version": "1.0"}
CONFIG = {
    "llms": {"t": {"type": "test"}},
    "server": {"max_body_size": "64KiB"},
    "agents": {
        "echo": {"llm": "t", "description": "Echoes"},
        "helper": {"llm": "t", "visibility": "private"},
    },
}


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_hector(CONFIG, tmp_path) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        yield client
        assert (await client.get("/health")).json() == {"status": "ok"}, "the server must keep serving"


def send(text: str | None = "hi", method: str = "SendMessage") -> dict[str, object]:
    parts = [] if text is None else [{"text": text}]
    return {
        "jsonrpc": "2.0",
        "id": 7,
        "method": method,
        "params": {"message": {"role": "ROLE_USER", "messageId": "m1", "parts": parts}},
    }


async def test_health_ready_discovery_and_cards(http: httpx.AsyncClient) -> None:
    assert (await http.get("/ready")).json() == {"status": "ready"}
    listing = (await http.get("/agents")).json()
    assert [a["name"] for a in listing["agents"]] == ["echo"] and listing["total"] == 1
    card = (await http.get("/agents/echo/.well-known/agent-card.json")).json()
    assert card["name"] == "echo" and card["capabilities"]["streaming"] is True
    urls = {(i["protocolBinding"], i["protocolVersion"]): i["url"] for i in card["supportedInterfaces"]}
    assert urls[("JSONRPC", "1.0")] == str(http.base_url).rstrip("/") + "/agents/echo"
    assert card["url"] == urls[("JSONRPC", "0.3")], "0.3 clients read `url`"
    assert (await http.get("/.well-known/agent-card.json")).json()["name"] == "echo"
    assert (await http.get("/agents/echo")).json() == card


async def test_malformed_json_is_a_parse_error(http: httpx.AsyncClient) -> None:
    response = await http.post("/agents/echo", content=b"{not json")
    assert response.status_code == 200
    assert response.json()["error"]["code"] == -32700 and response.json()["id"] is None


async def test_wrong_envelope_and_unknown_method(http: httpx.AsyncClient) -> None:
    no_version = send()
    del no_version["jsonrpc"]
    assert (await http.post("/agents/echo", json=no_version)).json()["error"]["code"] == -32600
    unknown = (await http.post("/agents/echo", json=send(method="DoMagic"), headers=V1)).json()
    assert unknown["error"]["code"] == -32601 and unknown["id"] == 7


async def test_message_without_parts_is_invalid(http: httpx.AsyncClient) -> None:
    answer = (await http.post("/agents/echo", json=send(None), headers=V1)).json()
    assert answer["error"]["code"] == -32602, answer
    assert "message.parts" in json.dumps(answer["error"])


async def test_jsonrpc_send_works_after_errors(http: httpx.AsyncClient) -> None:
    await http.post("/agents/echo", content=b"[")
    result = (await http.post("/agents/echo", json=send("still here?"), headers=V1)).json()
    task = result["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][0]["parts"][0]["text"] == "[test model] You said: still here?"


async def test_unknown_and_private_agents_look_the_same(http: httpx.AsyncClient) -> None:
    for name in ("nobody", "helper"):
        for response in (
            await http.get(f"/agents/{name}/.well-known/agent-card.json"),
            await http.post(f"/agents/{name}", json=send()),
            await http.post(f"/agents/{name}/message:send", json={"message": {}}),
        ):
            assert response.status_code == 404
            assert response.json() == {"error": f"agent {name!r} not found", "available": ["echo"]}


async def test_oversized_body_gets_413(http: httpx.AsyncClient) -> None:
    big = send("x" * 70_000)
    response = await http.post("/agents/echo", json=big)
    assert response.status_code == 413
    assert "too large" in response.json()["error"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
        payload = json.dumps(big).encode()
        for i in range(0, len(payload), 8192):
            yield payload[i : i + 8192]

    response = await http.post("/agents/echo", content=chunks())
    assert response.status_code == 413


async def test_rest_bad_body_is_400(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/agents/echo/message:send", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert (await http.get("/agents/echo/tasks/does-not-exist", headers=V1)).status_code == 404


async def test_unknown_route_is_json_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/nope")
    assert response.status_code == 404 and response.json()["error"] == "no route for /nope"
