"""A real Milvus gRPC server on loopback for the tests: Milvus Lite's own servicer (the one
pymilvus starts for a ``.db`` path) on a TCP port (``tests.tls.conftest.tls_proxy`` puts TLS in
front of it, with client certificates if asked).

The server records each call's method and ``authorization`` metadata, so a test can check the
token the back end sends.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from milvus_lite.adapter.grpc.servicer import MilvusServicer
from milvus_lite.db import MilvusLite
from pymilvus.grpc_gen import milvus_pb2_grpc


@dataclass
class MilvusServer:
    port: int
    db: MilvusLite
    calls: list[tuple[str, str | None]] = field(default_factory=list)
    """(method, authorization metadata) of every call."""


class _Recorder(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    def __init__(self, calls: list[tuple[str, str | None]]) -> None:
        self.calls = calls

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        metadata = dict(details.invocation_metadata)
        self.calls.append((details.method.rsplit("/", 1)[-1], metadata.get("authorization")))
        return continuation(details)


@contextlib.contextmanager
def milvus_server(data_dir: Path) -> Iterator[MilvusServer]:
    db = MilvusLite(str(data_dir))
    calls: list[tuple[str, str | None]] = []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[_Recorder(calls)])
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(MilvusServicer(db), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield MilvusServer(port, db, calls)
    finally:
        server.stop(grace=0)
        db.close()
