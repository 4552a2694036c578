"""Certificates for the TLS tests (trustme) and HTTPS servers on loopback that present them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import hector.tls as tls_module
from tests.harness import serve_app

GREETING = "hello over TLS"


@dataclass(frozen=True)
class Certs:
    """PEM files: server leaves (key and chain in one file), the CA that issued them, a client pair."""

    ca: str
    """The private CA: trusted only when a test says so (ca_certificate)."""
    good: str
    """Issued by the CA for 127.0.0.1 and localhost."""
    good_cert: str
    good_key: str
    """``good`` as separate certificate and key files (server.tls takes them apart)."""
    wrong_host: str
    """Issued by the CA for other.example only."""
    expired: str
    """Issued by the CA for 127.0.0.1; expired yesterday."""
    self_signed: str
    """For 127.0.0.1, signed by its own key; also usable as its own trust anchor."""
    self_signed_cert: str
    """The certificate of ``self_signed`` alone (what a user would put in ca_certificate)."""
    client_cert: str
    client_key: str
    """A client certificate issued by the CA, and its key, for mutual TLS."""
    not_pem: str


def _self_signed(folder: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "self-signed.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (folder / "self-signed.pem").write_bytes(key_pem + cert_pem)
    (folder / "self-signed-cert.pem").write_bytes(cert_pem)
    return str(folder / "self-signed.pem"), str(folder / "self-signed-cert.pem")


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    folder = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(folder / "ca.pem")
    good = ca.issue_cert("127.0.0.1", "localhost")
    good.private_key_and_cert_chain_pem.write_to_path(folder / "good.pem")
    good.cert_chain_pems[0].write_to_path(folder / "good-cert.pem")
    good.private_key_pem.write_to_path(folder / "good-key.pem")
    ca.issue_cert("other.example").private_key_and_cert_chain_pem.write_to_path(folder / "wrong.pem")
    now = datetime.datetime.now(datetime.UTC)
    expired = ca.issue_cert(
        "127.0.0.1", not_before=now - datetime.timedelta(days=30), not_after=now - datetime.timedelta(days=1)
    )
    expired.private_key_and_cert_chain_pem.write_to_path(folder / "expired.pem")
    client = ca.issue_cert("client@example.test")
    client.cert_chain_pems[0].write_to_path(folder / "client-cert.pem")
    client.private_key_pem.write_to_path(folder / "client-key.pem")
    (folder / "not-pem.pem").write_text("this is not a certificate\n", encoding="utf-8")
    self_signed, self_signed_cert = _self_signed(folder)
    return Certs(
        ca=str(folder / "ca.pem"),
        good=str(folder / "good.pem"),
        good_cert=str(folder / "good-cert.pem"),
        good_key=str(folder / "good-key.pem"),
        wrong_host=str(folder / "wrong.pem"),
        expired=str(folder / "expired.pem"),
        self_signed=self_signed,
        self_signed_cert=self_signed_cert,
        client_cert=str(folder / "client-cert.pem"),
        client_key=str(folder / "client-key.pem"),
        not_pem=str(folder / "not-pem.pem"),
    )


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The insecure warning is logged once per component per process; each test is a new start."""
    monkeypatch.setattr(tls_module, "_warned", set())


def hello_app() -> Starlette:
    async def hello(request: Request) -> Response:
        return PlainTextResponse(GREETING)

    return Starlette(routes=[Route("/", hello)])


@contextlib.asynccontextmanager
async def https(app: Any, certfile: str, client_ca: str | None = None) -> AsyncIterator[str]:
    """Serve *app* over HTTPS with *certfile*; with *client_ca*, a client certificate is required."""
    options: dict[str, Any] = {"ssl_certfile": certfile}
    if client_ca:
        options |= {"ssl_ca_certs": client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    async with serve_app(app, **options) as url:
        yield url


def insecure_records(caplog: pytest.LogCaptureFixture, component: str) -> list[str]:
    """The insecure_skip_verify warnings logged for *component*."""
    wanted = f"TLS certificate verification disabled for {component} (insecure_skip_verify=true)"
    return [r.getMessage() for r in caplog.records if r.getMessage() == wanted]


HECTOR = Path(sys.executable).with_name("hector")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class HectorProcess:
    """A ``hector serve`` subprocess; ``log`` is its stderr so far."""

    process: subprocess.Popen[bytes]
    port: int
    stderr_path: Path

    @property
    def log(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def hector_serve(
    config: dict[str, Any], folder: Path, verify: ssl.SSLContext | bool = True
) -> Iterator[HectorProcess]:
    """Run ``hector serve --config`` on a free port until ``/health`` answers (with *verify* for
    HTTPS); stop it afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hector.yaml"
    path.write_text(
        yaml.safe_dump({**config, "server": {"data_dir": str(folder / "data"), **config.get("server", {})}})
    )
    port = free_port()
    stderr_path = folder / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(HECTOR), "serve", "--config", str(path), "--port", str(port)],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    running = HectorProcess(process, port, stderr_path)
    scheme = "https" if config.get("server", {}).get("tls") else "http"
    try:
        _wait_healthy(running, f"{scheme}://127.0.0.1:{port}/health", verify)
        yield running
    finally:
        process.terminate()
        process.wait(15)


def _wait_healthy(running: HectorProcess, url: str, verify: ssl.SSLContext | bool) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise AssertionError(f"hector serve exited with {running.process.returncode}:\n{running.log}")
        try:
            if httpx.get(url, verify=verify, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"hector serve did not answer {url}:\n{running.log}")


async def relay(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, copy: bytearray | None = None
) -> None:
    """Pass what *reader* receives on to *writer* (and into *copy*) until either side ends."""
    try:
        while data := await reader.read(65536):
            if copy is not None:
                copy.extend(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def splice(
    client_r: asyncio.StreamReader,
    client_w: asyncio.StreamWriter,
    upstream: tuple[str, int],
    sent: bytearray | None = None,
) -> None:
    """Connect to *upstream* and relay a client's bytes both ways (what it sends also into *sent*)."""
    try:
        server_r, server_w = await asyncio.open_connection(*upstream)
    except OSError:
        client_w.close()
        return
    await asyncio.gather(relay(client_r, server_w, sent), relay(server_r, client_w))


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve_proxy(handle: Handler, context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    """Serve *handle* on a free loopback port (TLS with *context*); yield the port. On the way out,
    the handlers still running (connections a client keeps alive, handshakes a client abandoned)
    are cancelled and their connections closed, so that none outlives the event loop."""
    running: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        running[task] = writer
        try:
            await handle(reader, writer)
        finally:
            running.pop(task, None)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0, ssl=context)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        handlers = list(running.items())
        for task, _ in handlers:
            task.cancel()  # before closing: a TLS upgrade must end as cancelled, not half-done
        await asyncio.gather(*(task for task, _ in handlers), return_exceptions=True)
        for _, writer in handlers:
            writer.close()


@contextlib.asynccontextmanager
async def tls_proxy(
    certfile: str, upstream: tuple[str, int], client_ca: str | None = None
) -> AsyncIterator[int]:
    """Terminate TLS with *certfile* on a free loopback port and pass the bytes on to the
    plaintext server at *upstream*: any real server (HTTP, gRPC) becomes a TLS endpoint. With
    *client_ca*, clients must present a certificate it issued. Yields the port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=client_ca)
    if client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(certfile)
    context.set_alpn_protocols(["h2", "http/1.1"])
    async with serve_proxy(lambda reader, writer: splice(reader, writer, upstream), context) as port:
        yield port
