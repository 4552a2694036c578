"""Whether a served document store can be searched yet.

A server answers requests while it indexes its document stores (``hector.rag.watch.keep_indexed``).
A search of a store whose first indexing is under way waits for it to finish: a partial index
would give incomplete answers that look complete. A store whose first indexing failed answers an
error naming it, at once, until an indexing succeeds. A store nobody is about to index (``hector
index``, a store built directly) has nothing to wait for.
"""

from __future__ import annotations

import asyncio
from typing import Literal

from hector.errors import ConfigError, HectorError, IndexingError

State = Literal["indexing", "failed", "ready"]


def describe(error: BaseException) -> str:
    return error.message if isinstance(error, HectorError) else f"{type(error).__name__}: {error}"


def retried(error: BaseException) -> bool:
    """Whether a failed first indexing is tried again: a configuration error will not fix itself,
    an embedder or a vector store that is down (or still starting) may come back."""
    return not isinstance(error, ConfigError)


class Readiness:
    """Where one document store's first indexing stands."""

    def __init__(self, store: str) -> None:
        self.store = store
        self._settled = asyncio.Event()
        self._settled.set()
        self.error: BaseException | None = None
        """Why the first indexing failed; None once one succeeded."""

    @property
    def state(self) -> State:
        if not self._settled.is_set():
            return "indexing"
        return "ready" if self.error is None else "failed"

    def expect(self) -> None:
        """The store is about to be indexed for the first time: searches wait for it."""
        self.error = None
        self._settled.clear()

    def succeeded(self) -> None:
        self.error = None
        self._settled.set()

    def failed(self, error: BaseException) -> None:
        """An indexing failed. Once one succeeded that changes nothing: the store keeps serving
        the index it has (the watcher logs the failure)."""
        if self.state != "ready":
            self.error = error
            self._settled.set()

    async def outcome(self) -> BaseException | None:
        """Wait for the first indexing to end; what made it fail, if it did."""
        await self._settled.wait()
        return self.error

    async def wait(self) -> None:
        """Return once the store can be searched; IndexingError if its first indexing failed."""
        error = await self.outcome()
        if error is not None:
            then = "and is retried in the background" if retried(error) else "(fix the configuration)"
            raise IndexingError(
                f"document store {self.store!r} cannot be searched: indexing it failed {then}: "
                f"{describe(error)}"
            )
