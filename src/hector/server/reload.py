"""``hector serve --config-watch``: apply a changed configuration without dropping requests.

Each configuration is a *generation*: its runtime and its app, started and stopped together.
The config file is polled; on a change the new configuration is validated and a new generation
is started beside the running one; once its document stores are indexed, new requests go to
the new generation, while requests already in flight (streams included) finish on the old one,
which stops once idle. A change that does not validate, or a generation that cannot start or
cannot index its documents, is logged and the running configuration keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

from starlette.types import Receive, Scope, Send

from hector.assembly import build_runtime
from hector.config import LoadedConfig, load_config
from hector.errors import HectorError
from hector.server.app import create_app

log = logging.getLogger("hector.reload")


class Generation:
    """One configuration's runtime and app, with a count of the requests (HTTP and gRPC) it is
    serving."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.runtime = build_runtime(loaded.config, loaded.base_dir)
        self.app = create_app(self.runtime, own_runtime=False)
        self.in_flight = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._stack = contextlib.AsyncExitStack()
        self.app.state.grpc.activity = self.serving  # the process's one gRPC server calls in here

    async def start(self) -> None:
        try:
            await self._stack.enter_async_context(self.runtime)
            await self._stack.enter_async_context(self.app.router.lifespan_context(self.app))
        except BaseException:
            await self._stack.aclose()
            raise

    async def stop(self) -> None:
        await self._stack.aclose()

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Counts one request in flight for as long as it is held."""
        self.in_flight += 1
        self.idle.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self.idle.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self.serving():
            await self.app(scope, receive, send)


class ReloadingApp:
    """The ASGI app that routes each request to the current generation."""

    def __init__(
        self,
        path: Path,
        first: LoadedConfig,
        on_reload: Callable[[LoadedConfig], None],
        interval: float = 1.0,
        drain_timeout: float = 60.0,
    ) -> None:
        self.path = path
        self.current = Generation(first)
        self.on_reload = on_reload
        self.interval = interval
        self.drain_timeout = drain_timeout
        self._watcher: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # Generations are started and stopped by `async with` around the server.
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await self.current(scope, receive, send)

    async def __aenter__(self) -> ReloadingApp:
        await self.current.start()
        self._watcher = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for task in list(self._retiring):
            await task
        await self.current.stop()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None  # being replaced (editors write a new file and rename it)
        return st.st_mtime_ns, st.st_size

    async def _watch(self) -> None:
        seen = self._stamp()
        while True:
            await asyncio.sleep(self.interval)
            stamp = self._stamp()
            if stamp is not None and stamp != seen:
                seen = stamp
                await self.reload()

    async def reload(self) -> bool:
        """Switch to the configuration now in the file; False (and a log line) if it is refused."""
        try:
            loaded = await asyncio.to_thread(load_config, self.path)
            new = Generation(loaded)
            await new.start()
        except HectorError as exc:
            log.error("configuration change rejected; still serving the previous one: %s", exc.message)
            return False
        try:
            # The running configuration serves until the new one's documents are indexed.
            await new.runtime.documents_indexed()
        except BaseException as exc:
            await new.stop()
            if not isinstance(exc, HectorError):
                raise
            log.error("configuration change rejected; still serving the previous one: %s", exc.message)
            return False
        old, self.current = self.current, new
        self.on_reload(loaded)
        old_server, new_server = old.loaded.config.server, loaded.config.server
        listeners = ("host", "port", "tls", "grpc")
        if changed := [k for k in listeners if getattr(old_server, k) != getattr(new_server, k)]:
            log.warning(
                "%s take effect only after a restart (the listeners stay as they are)",
                ", ".join(f"server.{k}" for k in changed),
            )
        log.info(
            "configuration reloaded", extra={"component": "reload", "agents": sorted(new.runtime.agents)}
        )
        task = asyncio.create_task(self._retire(old))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)
        return True

    async def _retire(self, old: Generation) -> None:
        try:
            await asyncio.wait_for(old.idle.wait(), self.drain_timeout)
        except TimeoutError:
            log.warning("%d requests still running on the previous configuration are stopped", old.in_flight)
        await old.stop()
