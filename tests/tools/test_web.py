"""web_request against real servers on loopback: fetching, caps, domain and method rules, SSRF, TLS."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from a2a.types.a2a_pb2 import TaskState
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from hector.config.schema import ToolConfig
from hector.errors import ConfigError, ToolError
from hector.tools import ToolContext, web
from hector.tools.registry import ToolEnv, build_tool
from tests.harness import running_hector, serve_app
from tests.server.test_a2a import client_for, final_text, request

CTX = ToolContext(agent_id="agent", context_id="ctx", task_id=None, user="alice")


class Target:
    """A loopback HTTP server that records every request it receives."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.release = asyncio.Event()
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=list(web.METHODS))])

    @property
    def paths(self) -> list[str]:
        return [path for _, path, _ in self.log]

    async def _handle(self, req: Request) -> Response:
        path = req.url.path
        self.log.append((req.method, path, dict(req.headers)))
        if path == "/echo":
            body = (await req.body()).decode()
            return JSONResponse({"method": req.method, "headers": dict(req.headers), "body": body})
        if path == "/redirect":
            return RedirectResponse(
                req.query_params["to"], status_code=int(req.query_params.get("status", 302))
            )
        if path == "/latin1":
            return Response("café".encode("latin-1"), media_type="text/plain; charset=iso-8859-1")
        if path == "/binary":
            return Response(bytes(range(256)), media_type="image/png")
        if path == "/big":
            return PlainTextResponse("a" * 100_000)
        if path == "/endless":
            return StreamingResponse(_endless(), media_type="text/plain")
        if path == "/slow":
            await asyncio.wait_for(self.release.wait(), 10)
        return PlainTextResponse(f"hello from {path}")


async def _endless() -> AsyncIterator[bytes]:
    while True:
        yield b"x" * 4096
        await asyncio.sleep(0)


def serve(app: Any, host: str = "127.0.0.1", certfile: str | None = None) -> Any:
    # Short graceful shutdown: some targets stream forever.
    return serve_app(app, host, lifespan="off", timeout_graceful_shutdown=1, ssl_certfile=certfile)


@pytest.fixture
async def target() -> AsyncIterator[tuple[Target, str]]:
    t = Target()
    async with serve(t.app) as url:
        yield t, url
        t.release.set()


def tool(**cfg: Any) -> web.WebRequestTool:
    built = web.build("web_request", ToolConfig.model_validate(cfg), ToolEnv(base_dir=Path(".")))
    assert isinstance(built, web.WebRequestTool)
    return built


def fake_dns(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> list[str]:
    """Resolve *names* to the given addresses, other names really; returns the names looked up."""
    real = web.resolve
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[web.IPAddress]:
        asked.append(host)
        if host in names:
            return [ipaddress.ip_address(a) for a in names[host]]
        return await real(host, port)

    monkeypatch.setattr(web, "resolve", resolve)
    return asked


LOCAL = {"allow_private_networks": True}


# ---- fetching -----------------------------------------------------------------------------------


async def test_get_returns_status_headers_and_text(target: tuple[Target, str]) -> None:
    server, url = target
    out = await tool(**LOCAL).call({"url": f"{url}/page"}, CTX)
    lines = out.splitlines()
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "content-type: text/plain; charset=utf-8" in lines
    assert "content-length: 16" in lines
    assert lines[-1] == "hello from /page"
    (_, _, headers) = server.log[0]
    assert headers["user-agent"] == "Hector-Agent/1.0"
    assert headers["accept-encoding"] == "identity"
    assert headers["host"] == url.removeprefix("http://")
    assert "authorization" not in headers and "cookie" not in headers


async def test_method_headers_and_body_are_sent(target: tuple[Target, str]) -> None:
    server, url = target
    headers = {"X-Custom": "yes", "Upgrade": "h2c", "Keep-Alive": "1", "Content-Length": "999"}
    out = await tool(**LOCAL).call(
        {"url": f"{url}/echo", "method": "post", "headers": headers, "body": "payload"}, CTX
    )
    assert '"method":"POST"' in out and '"body":"payload"' in out
    sent = server.log[0][2]
    assert sent["x-custom"] == "yes" and sent["content-length"] == "7"
    assert "upgrade" not in sent and "keep-alive" not in sent


async def test_charset_and_binary_bodies(target: tuple[Target, str]) -> None:
    _, url = target
    fetch = tool(**LOCAL)
    assert (await fetch.call({"url": f"{url}/latin1"}, CTX)).endswith("\ncafé")
    binary = await fetch.call({"url": f"{url}/binary"}, CTX)
    assert binary.endswith("[binary body: 256 bytes of image/png; not shown]")
    assert (await fetch.call({"url": f"{url}/page", "method": "HEAD"}, CTX)).endswith("(empty body)")


@pytest.mark.parametrize("path", ["/big", "/endless"])
async def test_response_is_capped(target: tuple[Target, str], path: str) -> None:
    _, url = target
    out = await tool(**LOCAL, max_response_size=1000).call({"url": url + path}, CTX)
    body, note = out.split("\n\n", 1)[1].rsplit("\n", 1)
    assert len(body) == 1000
    assert note.startswith("[truncated: the response is larger than max_response_size (1000 bytes)")


async def test_total_time_is_capped(target: tuple[Target, str]) -> None:
    _, url = target
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"timed out after 0.3s"):
        await tool(**LOCAL, timeout="300ms").call({"url": f"{url}/slow"}, CTX)
    assert time.monotonic() - started < 3


async def test_refused_connection_is_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ToolError, match=r"cannot connect to 127.0.0.1 \(127.0.0.1\)"):
        await tool(**LOCAL).call({"url": f"http://127.0.0.1:{port}/"}, CTX)


async def test_protocol_errors_are_tool_errors() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(ToolError, match=r"request to http://127.0.0.1:\d+/ failed: RemoteProtocolError"):
            await tool(**LOCAL).call({"url": f"http://127.0.0.1:{port}/"}, CTX)


# ---- redirects ------------------------------------------------------------------------------------


async def test_redirects_are_followed_and_capped(target: tuple[Target, str]) -> None:
    _, url = target
    out = await tool(**LOCAL).call({"url": f"{url}/redirect?to=/landing"}, CTX)
    assert f"final URL: {url}/landing (after 1 redirect)" in out and out.endswith("hello from /landing")
    shown = await tool(**LOCAL, max_redirects=0).call({"url": f"{url}/redirect?to=/landing"}, CTX)
    assert shown.splitlines()[:4] == [
        "HTTP/1.1 302 Found",
        "content-length: 0",
        "location: /landing",
        "[redirect not followed: max_redirects (0) reached]",
    ]
    loop = f"{url}/redirect?to=/redirect%3Fto%3D/redirect"
    assert "max_redirects (1) reached" in await tool(**LOCAL, max_redirects=1).call({"url": loop}, CTX)


async def test_see_other_turns_post_into_get(target: tuple[Target, str]) -> None:
    _, url = target
    args = {"url": f"{url}/redirect?to=/echo&status=303", "method": "POST", "body": "x"}
    out = await tool(**LOCAL).call(args | {"headers": {"Content-Type": "text/plain"}}, CTX)
    assert '"method":"GET"' in out and '"body":""' in out and "content-type" not in out.split("\n\n")[1]


async def test_credentials_stay_with_their_origin(
    target: tuple[Target, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = target
    fake_dns(monkeypatch, {"other.test": ["127.0.0.1"]})
    port = url.rsplit(":", 1)[1]
    secret = {"Authorization": "Bearer model-token", "Cookie": "a=b"}
    fetch = tool(**LOCAL)
    await fetch.call({"url": f"{url}/redirect?to=/echo", "headers": secret}, CTX)
    assert server.log[-1][2]["authorization"] == "Bearer model-token"
    await fetch.call({"url": f"{url}/redirect?to=http://other.test:{port}/echo", "headers": secret}, CTX)
    assert server.log[-1][2]["host"] == f"other.test:{port}"
    assert "authorization" not in server.log[-1][2] and "cookie" not in server.log[-1][2]


# ---- request rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "allowed", "denied", "ok"),
    [
        ("api.example.com", ["*.example.com"], None, True),
        ("example.com", ["*.example.com"], None, False),
        ("evilexample.com", ["*.example.com"], None, False),
        ("example.com", ["example.com:8443"], None, True),
        ("EXAMPLE.com.", ["example.com"], None, True),
        ("bad.example.com", ["*.example.com"], ["bad.example.com"], False),
        ("x.bad.example.com", None, ["*.bad.example.com"], False),
        ("good.example.com", None, ["*.bad.example.com"], True),
        ("anything.org", [], None, True),
        ("::1", ["[::1]:80"], None, True),
    ],
)
def test_domain_rules(host: str, allowed: list[str] | None, denied: list[str] | None, ok: bool) -> None:
    if ok:
        web.check_domain(host, allowed, denied)
    else:
        with pytest.raises(ToolError, match=r"denied|not allowed"):
            web.check_domain(host, allowed, denied)


async def test_domain_rules_apply_to_requests(
    target: tuple[Target, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = target
    port = url.rsplit(":", 1)[1]
    fake_dns(monkeypatch, {n: ["127.0.0.1"] for n in ("api.web.test", "bad.web.test", "web.test")})
    fetch = tool(**LOCAL, allowed_domains=["*.web.test"], denied_domains="bad.web.test:1")
    assert (await fetch.call({"url": f"http://api.web.test:{port}/ok"}, CTX)).endswith("hello from /ok")
    with pytest.raises(ToolError, match=r"domain bad.web.test is denied"):
        await fetch.call({"url": f"http://bad.web.test:{port}/"}, CTX)
    with pytest.raises(ToolError, match=r"domain web.test is not allowed \(allowed_domains: \*.web.test\)"):
        await fetch.call({"url": f"http://web.test:{port}/"}, CTX)
    with pytest.raises(ToolError, match=r"redirect 1 to http://bad.web.test.*denied"):
        await fetch.call({"url": f"http://api.web.test:{port}/redirect?to=http://bad.web.test:{port}/"}, CTX)
    assert server.paths == ["/ok", "/redirect"]


async def test_method_allow_list_is_case_insensitive(target: tuple[Target, str]) -> None:
    _, url = target
    fetch = tool(**LOCAL, allowed_methods=["get", "Post"])
    assert "200 OK" in await fetch.call({"url": url, "method": "post"}, CTX)
    assert "200 OK" in await fetch.call({"url": url, "method": "GET"}, CTX)
    with pytest.raises(ToolError, match=r"method DELETE is not allowed \(allowed_methods: GET, POST\)"):
        await fetch.call({"url": url, "method": "delete"}, CTX)
    with pytest.raises(ToolError, match="method TRACE is not allowed"):
        await tool(**LOCAL).call({"url": url, "method": "TRACE"}, CTX)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"headers": {"X-A": "v\r\nInjected: 1"}}, "invalid header 'X-A'"),
        ({"headers": {"X-A\r\nInjected": "1"}}, "invalid header"),
        ({"headers": {"X-A": "v\nGET /admin HTTP/1.1"}}, "invalid header"),
        ({"headers": {"Bad Name": "1"}}, "invalid header"),
        ({"headers": {"X-A": 1}}, "invalid header"),
        ({"headers": ["X-A: 1"]}, "headers must be an object"),
        ({"headers": {"host": "internal.example"}}, "the Host header cannot be set"),
        ({"method": "GET /x HTTP/1.1\r\n"}, "invalid method"),
        ({"url": "http://example.com/\r\nX-Injected: 1"}, "invalid url"),
        ({"url": "ftp://example.com/"}, "only http and https URLs are allowed, not 'ftp'"),
        ({"url": "file:///etc/passwd"}, "only http and https"),
        ({"url": ""}, "url is required"),
        ({"body": {"a": 1}}, "body must be a string"),
        ({"timeout": 5}, r"unknown arguments \['timeout'\]"),
    ],
)
async def test_bad_requests_are_refused(args: dict[str, Any], message: str) -> None:
    # Port 9 (discard) has no listener: a request that got through would fail differently.
    with pytest.raises(ToolError, match=message):
        await tool(**LOCAL).call({"url": "http://127.0.0.1:9/"} | args, CTX)


async def test_request_body_is_capped(target: tuple[Target, str], monkeypatch: pytest.MonkeyPatch) -> None:
    server, url = target
    monkeypatch.setattr(web, "MAX_REQUEST_SIZE", 10)
    with pytest.raises(ToolError, match=r"request body too large: 11 bytes \(max: 10\)"):
        await tool(**LOCAL).call({"url": url, "method": "POST", "body": "x" * 11}, CTX)
    assert server.log == []


# ---- SSRF -------------------------------------------------------------------------------------------

BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("localhost", "loopback"),
    ("[::1]", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("[::]", "unspecified"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "shared"),
    ("[fc00::1]", "private"),
    ("[fe80::1]", "link-local"),
    ("[fec0::1]", "site-local"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:169.254.169.254]", "link-local"),
    ("[64:ff9b::a00:1]", "private"),
    ("[2002:7f00:1::]", "loopback"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "private|reserved"),
    ("2130706433", "loopback"),
    ("0x7f.1", "loopback"),
    ("0x7f000001", "loopback"),
    ("017700000001", "loopback"),
    ("127.1", "loopback"),
]


@pytest.mark.parametrize(("host", "kind"), BLOCKED)
async def test_private_addresses_are_refused(host: str, kind: str) -> None:
    with pytest.raises(ToolError, match=rf"refused .*a ({kind}).* address.*allow_private_networks is off"):
        await tool().call({"url": f"http://{host}:9/secret"}, CTX)


async def test_loopback_server_sees_no_request(target: tuple[Target, str]) -> None:
    server, url = target
    port = url.rsplit(":", 1)[1]
    fetch = tool()
    for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "2130706433", "0x7f.1", "017700000001"):
        with pytest.raises(ToolError, match="loopback address"):
            await fetch.call({"url": f"http://{host}:{port}/secret"}, CTX)
    assert server.log == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "017700000001", "[::ffff:7f00:1]"])
async def test_numeric_forms_do_not_depend_on_the_resolver(
    monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    monkeypatch.setattr(web, "resolve", lambda *a: pytest.fail(f"resolver asked about {a}"))
    with pytest.raises(ToolError, match=r"refused .* 127.0.0.1 is a loopback address"):
        await tool().call({"url": f"http://{host}/"}, CTX)


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["93.184.216.34", "10.0.0.1"], ["::1"]])
async def test_names_resolving_to_private_addresses_are_refused(
    target: tuple[Target, str], monkeypatch: pytest.MonkeyPatch, addresses: list[str]
) -> None:
    server, url = target
    fake_dns(monkeypatch, {"evil.test": addresses})
    with pytest.raises(ToolError, match=r"refused evil.test: .* is a (loopback|private) address"):
        await tool().call({"url": f"http://evil.test:{url.rsplit(':', 1)[1]}/secret"}, CTX)
    assert server.log == []


async def test_request_goes_to_the_checked_address(
    target: tuple[Target, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is looked up once, by the check; httpx dials the address (no second lookup for a
    rebinding DNS server to answer differently) and sends the name only as the Host header."""
    server, url = target
    asked = fake_dns(monkeypatch, {"rebind.test": ["127.0.0.1"]})
    port = url.rsplit(":", 1)[1]
    out = await tool(**LOCAL).call({"url": f"http://rebind.test:{port}/pinned"}, CTX)
    assert out.endswith("hello from /pinned")
    assert asked == ["rebind.test"]  # rebind.test exists nowhere else: only the pin could reach it
    assert server.log[0][2]["host"] == f"rebind.test:{port}"


@pytest.mark.parametrize(
    "secret_host", ["127.0.0.1", "localhost", "2130706433", "[::ffff:127.0.0.1]", "inner.test"]
)
async def test_redirect_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, secret_host: str
) -> None:
    # "public.test" stands for a public site: it resolves to 127.0.0.2, which this test (only)
    # treats as public. The private server at 127.0.0.1 must never see a request.
    real_reason = web.blocked_reason
    monkeypatch.setattr(web, "blocked_reason", lambda ip: None if str(ip) == "127.0.0.2" else real_reason(ip))
    fake_dns(monkeypatch, {"public.test": ["127.0.0.2"], "inner.test": ["127.0.0.1"]})
    public, private = Target(), Target()
    async with serve(public.app, host="127.0.0.2") as public_url, serve(private.app) as private_url:
        public_port, private_port = public_url.rsplit(":", 1)[1], private_url.rsplit(":", 1)[1]
        fetch = tool(allowed_domains=["public.test", secret_host.strip("[]")])
        start = f"http://public.test:{public_port}"
        assert (await fetch.call({"url": f"{start}/fine"}, CTX)).endswith("hello from /fine")
        secret = f"http://{secret_host}:{private_port}/secret"
        with pytest.raises(ToolError, match=r"redirect 1 to http://.*/secret: refused .* loopback address"):
            await fetch.call({"url": f"{start}/redirect?to={secret}"}, CTX)
    assert public.paths == ["/fine", "/redirect"]
    assert private.log == []


# ---- TLS --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("web-tls")
    ca.issue_cert("secure.test").private_key_and_cert_chain_pem.write_to_path(folder / "server.pem")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    return str(folder / "server.pem"), str(folder / "ca.pem")


async def test_https_uses_system_cas_plus_ca_certificate(
    tls_files: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    certfile, ca = tls_files
    fake_dns(monkeypatch, {"secure.test": ["127.0.0.1"], "wrong.test": ["127.0.0.1"]})
    async with serve(Target().app, certfile=certfile) as url:
        port = url.rsplit(":", 1)[1]
        with pytest.raises(
            ToolError,
            match=r"TLS connection to secure.test failed: x509: .*unknown authority.*ca_certificate",
        ):
            await tool(**LOCAL).call({"url": f"https://secure.test:{port}/"}, CTX)
        trusted = tool(**LOCAL, ca_certificate=ca)
        assert (await trusted.call({"url": f"https://secure.test:{port}/tls"}, CTX)).endswith(
            "hello from /tls"
        )
        # The connection goes to 127.0.0.1, but the certificate is checked against the URL's name.
        with pytest.raises(
            ToolError, match=r"to wrong.test failed: .*the name does not match \(Hostname mismatch"
        ):
            await trusted.call({"url": f"https://wrong.test:{port}/"}, CTX)


def test_unreadable_ca_certificate_fails_at_build(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tool web_request: failed to read CA certificate"):
        tool(ca_certificate=str(tmp_path / "missing.pem"))


# ---- in a running Hector -----------------------------------------------------------------------------


async def test_agent_fetches_and_ssrf_refusal_is_a_tool_error(
    target: tuple[Target, str], tmp_path: Path
) -> None:
    server, url = target
    config = {
        "llms": {"t": {"type": "test"}},
        "tools": {
            "web_request": {"allow_private_networks": True, "require_approval": False},
            "strict_web": {"type": "function", "handler": "web_request", "require_approval": False},
        },
        "agents": {"fetcher": {"llm": "t", "tools": ["web_request", "strict_web"]}},
    }
    assert build_tool(
        "web_request", ToolConfig(), ToolEnv(base_dir=tmp_path)
    ).require_approval  # approval is the default
    async with running_hector(config, tmp_path) as hector, httpx.AsyncClient(timeout=30) as http:
        client = await client_for(
            hector, "fetcher", binding="JSONRPC", version="1.0", streaming=False, http=http
        )
        state, text, _ = await _ask(client, f'use web_request {{"url": "{url}/public"}}')
        assert state == TaskState.TASK_STATE_COMPLETED
        assert text.startswith("Tool web_request returned: HTTP/1.1 200 OK") and "hello from /public" in text
        state, text, _ = await _ask(client, f'use strict_web {{"url": "{url}/secret"}}')
        assert state == TaskState.TASK_STATE_COMPLETED
        assert text.startswith("Tool strict_web returned: ERROR: refused 127.0.0.1: 127.0.0.1 is a loopback")
        await client.close()
    assert server.paths == ["/public"]


async def _ask(client: Any, text: str) -> tuple[int, str, str]:
    return final_text([e async for e in client.send_message(request(text, f"ctx-{text[4:10]}"))])
