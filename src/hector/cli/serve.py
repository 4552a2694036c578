"""`hector serve`: load the configuration, build the runtime and run the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import uvicorn
from rich.console import Console
from starlette.types import ASGIApp

from hector.assembly import build_runtime
from hector.config import LoadedConfig
from hector.config.checks import outbound
from hector.logsetup import setup_logging
from hector.security.redact import collect_secrets
from hector.server.app import STREAM_DRAIN_SECONDS, create_app
from hector.server.grpc import GrpcGateway, GrpcListener
from hector.server.reload import ReloadingApp
from hector.tls import insecure_warning

log = logging.getLogger("hector.server")


class _Server(uvicorn.Server):
    """uvicorn's server; on shutdown the gRPC server stops first, as its calls use the app."""

    def __init__(self, config: uvicorn.Config, grpc: GrpcListener | None) -> None:
        super().__init__(config)
        self.grpc = grpc

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.grpc is not None:
            await self.grpc.stop(STREAM_DRAIN_SECONDS)
        await super().shutdown(sockets)


def announce(loaded: LoadedConfig, console: Console, url: str, grpc_url: str | None = None) -> None:
    cfg = loaded.config
    # The runtime has logged these already, once per component, as it does outside `serve`.
    logged = {insecure_warning(found.component) for found in outbound(cfg)}
    for warning in loaded.warnings:
        if warning not in logged:
            console.print(f"[yellow]warning:[/yellow] {warning}", markup=True)
    for name, llm in cfg.llms.items():
        if llm.type == "test":
            console.print(
                f"[bold yellow]⚠ llm {name!r} is the TEST model: it answers with canned text, "
                "not AI.[/bold yellow]\n"
                f"  For a real model change its `type: test` to `type: openai` and export OPENAI_API_KEY.",
                markup=True,
            )
    agents = ", ".join(cfg.agents) or "assistant"
    console.print(f"Hector serving agents [bold]{agents}[/bold] at {url}", markup=True)
    console.print(f"  web UI: {url}/   discovery: {url}/agents   health: {url}/health", markup=False)
    if grpc_url is not None:
        console.print(f"  A2A over gRPC: {grpc_url}", markup=False)


def serve(
    loaded: LoadedConfig,
    host: str | None,
    port: int | None,
    log_level: str | None,
    log_format: str | None,
    watch: bool = False,
) -> None:
    cfg = loaded.config

    def configure_logging(current: LoadedConfig) -> None:
        c = current.config
        # Relative to the config file, as every other path of it.
        file = str(current.base_dir / c.logger.file) if c.logger.file else None
        setup_logging(log_level or c.logger.level, log_format or c.logger.format, file, collect_secrets(c))

    configure_logging(loaded)
    # The runtime (databases, MCP servers) starts before uvicorn, so a failure there is one clear
    # error line from the CLI, not a traceback from the ASGI lifespan. Documents are indexed in
    # the background: /ready answers 503 until they are.
    owner: contextlib.AbstractAsyncContextManager[object]
    app: ASGIApp
    gateway: Callable[[], GrpcGateway]
    if watch:
        reloading = ReloadingApp(Path(loaded.source), loaded, on_reload=configure_logging)
        app, owner = reloading, reloading
        # One gRPC server for the process; each call is admitted by the current configuration.
        gateway = lambda: reloading.current.app.state.grpc  # noqa: E731
    else:
        runtime = build_runtime(cfg, loaded.base_dir)
        starlette = create_app(runtime, own_runtime=False)
        app, owner = starlette, runtime
        gateway = lambda: starlette.state.grpc  # noqa: E731
    bind_host = host or cfg.server.host
    bind_port = port or cfg.server.port
    # --host moves the gRPC listener too (unless server.grpc.host puts it elsewhere): a container
    # started with --host 0.0.0.0 must not keep gRPC on its loopback, nor --host 127.0.0.1 leave
    # it on every interface.
    grpc_server = cfg.server.model_copy(update={"host": bind_host})
    grpc = GrpcListener(grpc_server, gateway) if cfg.server.grpc.enabled else None
    tls = cfg.server.tls if cfg.server.tls and cfg.server.tls.enabled else None
    scheme = "https" if tls else "http"
    grpc_url = f"{'grpcs' if tls else 'grpc'}://{grpc.address}" if grpc is not None else None
    config = uvicorn.Config(
        app,
        host=bind_host,
        port=bind_port,
        log_config=None,
        access_log=False,
        ssl_certfile=tls.cert_file if tls else None,
        ssl_keyfile=tls.key_file if tls else None,
        ssl_ca_certs=tls.client_ca_file if tls else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if tls and tls.client_ca_file else ssl.CERT_NONE,
        timeout_graceful_shutdown=10,
        # uvicorn would believe X-Forwarded-For from loopback by default; only
        # server.trusted_proxies may decide that (rate limits and audit logs key on the address).
        proxy_headers=False,
    )

    async def run() -> None:
        async with owner:
            if grpc is not None:  # bound before HTTP: a port in use is one error line, not a traceback
                await grpc.start()
            try:
                console = Console(stderr=True, soft_wrap=True)
                announce(loaded, console, f"{scheme}://{bind_host}:{bind_port}", grpc_url)
                await _Server(config, grpc).serve()
            finally:
                if grpc is not None:
                    await grpc.stop(0)

    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:  # uvloop when installed
        runner.run(run())
