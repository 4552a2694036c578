"""Fixtures of the observability tests: an in-process OTLP/gRPC collector, an embedding server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.harness import serve_app
from tests.observability.collectors import GRPCCollector
from tests.rag.embed_server import EmbedServer


@pytest.fixture
def grpc_collector() -> Iterator[GRPCCollector]:
    collector = GRPCCollector()
    collector.start()
    yield collector
    collector.stop()


@pytest.fixture
async def embed_server() -> AsyncIterator[EmbedServer]:
    """Ollama's ``/api/embed`` on loopback: fast, deterministic vectors that record each request."""
    server = EmbedServer(dimension=16)
    async with serve_app(server.app) as server.url:
        yield server
