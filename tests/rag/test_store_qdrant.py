"""The Qdrant vector store: the shared contract in local mode (memory and a folder) and against
a Qdrant REST server on loopback (HTTPS, api key), TLS options, errors, and a document store
searched end to end.

No Qdrant server can run here, so the remote tests use a scripted server that speaks Qdrant's
REST API (only the endpoints the back end calls) and answers from qdrant-client's own local
engine: the wire format is the real one (the client parses every answer with its models), and
the test checks the exact requests and headers the back end sends.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from qdrant_client import AsyncQdrantClient, models
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hector.cli import main
from hector.config import parse_config
from hector.config.schema import VectorStoreConfig
from hector.errors import VectorStoreError
from hector.rag.backends import build_vector_store
from hector.rag.backends.qdrant import QdrantVectorStore, create, point_id, qdrant_name
from hector.rag.vectors import Chunk
from tests.harness import serve_app
from tests.rag.store_contract import (
    EMBEDDER,
    QUERY,
    StoreAt,
    check_client_certificate,
    check_contract,
    check_contract_and_restart,
    check_isolation,
    check_one_collection,
    check_tls_cases,
    index_and_search_folder,
    sample_chunks,
)
from tests.tls import conftest as tls_fixtures

# The TLS tests' fixtures: trustme certificates, and a fresh "warn once" record per test.
certs = tls_fixtures.certs
fresh_warnings = tls_fixtures._fresh_warnings

API_KEY = "qdrant-secret-key-42"


@dataclass
class Seen:
    method: str
    path: str
    query: str
    api_key: str | None
    body: Any


@dataclass
class FakeQdrant:
    """Qdrant's REST API over qdrant-client's in-memory engine, recording every request."""

    engine: AsyncQdrantClient = field(default_factory=lambda: AsyncQdrantClient(location=":memory:"))
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        body = json.loads(await request.body() or b"null")
        path = request.url.path
        self.seen.append(Seen(request.method, path, request.url.query, request.headers.get("api-key"), body))
        parts = path.strip("/").split("/")
        try:
            result = await self._dispatch(request.method, parts, body)
        except ValueError as exc:  # the engine's "Collection x not found"
            return JSONResponse({"status": {"error": f"Not found: {exc}"}, "time": 0.0}, status_code=404)
        if isinstance(result, models.BaseModel):
            result = result.model_dump(mode="json")
        return JSONResponse({"result": result, "status": "ok", "time": 0.001})

    async def _dispatch(self, method: str, parts: list[str], body: Any) -> Any:
        e, name, rest = self.engine, parts[1], parts[2:]
        updated = {"operation_id": 1, "status": "completed"}
        match method, rest:
            case "GET", ["exists"]:
                return {"exists": await e.collection_exists(name)}
            case "GET", []:
                return await e.get_collection(name)
            case "PUT", []:
                spec = models.CreateCollection(**body)
                return await e.create_collection(name, spec.vectors, metadata=spec.metadata)
            case "DELETE", []:
                return await e.delete_collection(name)
            case "PUT", ["index"]:
                await e.get_collection(name)
                return updated
            case "PUT", ["points"]:
                await e.upsert(name, models.PointsList(**body).points)
                return updated
            case "POST", ["points", "delete"]:
                await e.delete(name, models.FilterSelector(**body))
                return updated
            case "POST", ["points", "query"]:
                q = models.QueryRequest(**body)
                return await e.query_points(name, q.query, limit=q.limit, with_payload=q.with_payload)
            case "POST", ["points", "scroll"]:
                s = models.ScrollRequest(**body)
                points, offset = await e.scroll(
                    name, limit=s.limit, offset=s.offset, with_payload=s.with_payload, with_vectors=False
                )
                return {"points": [p.model_dump(mode="json") for p in points], "next_page_offset": offset}
            case "POST", ["points", "count"]:
                return await e.count(name, exact=models.CountRequest(**body).exact)
        raise AssertionError(f"unexpected request {method} /{'/'.join(parts)}")


@contextlib.asynccontextmanager
async def fake_qdrant(
    certfile: str | None = None, client_ca: str | None = None
) -> AsyncIterator[tuple[FakeQdrant, int]]:
    fake = FakeQdrant()
    app = Starlette(
        routes=[Route("/collections/{rest:path}", fake.handle, methods=["GET", "PUT", "POST", "DELETE"])]
    )
    options: dict[str, Any] = {"ssl_certfile": certfile} if certfile else {}
    if client_ca:
        options |= {"ssl_ca_certs": client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    async with serve_app(app, **options) as url:
        yield fake, int(url.rsplit(":", 1)[1])


def remote(port: int, **options: Any) -> QdrantVectorStore:
    cfg = VectorStoreConfig(type="qdrant", host="127.0.0.1", port=port, **options)
    store = create("kbvec", cfg, Path("."))
    assert isinstance(store, QdrantVectorStore)
    return store


async def test_contract_in_memory() -> None:
    store = create("mem", VectorStoreConfig(type="qdrant", path=":memory:"), Path("."))
    await check_contract(store, "contract")
    await check_isolation(store, "one", "two")
    await store.aclose()


async def test_contract_in_a_folder_and_data_survives_a_restart(tmp_path: Path) -> None:
    cfg = VectorStoreConfig(type="qdrant", path="qdrant-data")
    await check_contract_and_restart(lambda: create("disk", cfg, tmp_path))
    assert (tmp_path / "qdrant-data").is_dir()


async def test_contract_over_https_with_api_key(certs: Any) -> None:
    async with fake_qdrant(certs.good) as (fake, port):
        store = remote(port, enable_tls=True, ca_certificate=certs.ca, api_key=API_KEY)
        await check_contract(store, "contract")
        await store.aclose()
    assert fake.seen and all(s.api_key == API_KEY for s in fake.seen)


async def test_the_rest_requests_sent(certs: Any) -> None:
    async with fake_qdrant() as (fake, port):
        store = remote(port)
        assert await store.open_collection("docs", "emb/1", 4) is True
        chunks, vectors = sample_chunks()
        await store.upsert("docs", chunks[:1], vectors[:1])
        await store.query("docs", [1.0, 0.0, 0.0, 0.0], 3)
        await store.delete_documents("docs", ["guides/setup.md"])
        await store.aclose()
    calls = [(s.method, s.path) for s in fake.seen]
    assert calls == [
        ("GET", "/collections/docs/exists"),
        ("PUT", "/collections/docs"),
        ("PUT", "/collections/docs/index"),
        ("PUT", "/collections/docs/points"),
        ("POST", "/collections/docs/points/query"),
        ("POST", "/collections/docs/points/delete"),
    ]
    create_body, index_body, upsert, query, delete = (fake.seen[i].body for i in range(1, 6))
    assert create_body["vectors"] == {"size": 4, "distance": "Cosine"}
    assert create_body["metadata"] == {"hector_embedder": "emb/1", "hector_dimension": 4}
    assert index_body == {"field_name": "document", "field_schema": "keyword"}
    assert "wait=true" in fake.seen[3].query
    [point] = upsert["points"]
    assert point["id"] == point_id(chunks[0].id)
    assert point["payload"] == {
        "chunk_id": chunks[0].id,
        "document": chunks[0].document,
        "text": chunks[0].text,
        "meta": chunks[0].meta,
    }
    assert query["query"] == {"nearest": [1.0, 0.0, 0.0, 0.0]} and query["limit"] == 3
    assert delete["filter"]["must"] == [{"key": "document", "match": {"any": ["guides/setup.md"]}}]
    assert all(s.api_key is None for s in fake.seen)


async def test_tls_options(certs: Any, caplog: pytest.LogCaptureFixture) -> None:
    @contextlib.asynccontextmanager
    async def endpoint(certfile: str) -> AsyncIterator[StoreAt]:
        async with fake_qdrant(certfile) as (_, port):
            yield lambda **tls: remote(port, enable_tls=True, **tls)

    refused = r"vector store 'kbvec' \(qdrant\): cannot reach https://127\.0\.0\.1:\d+"
    await check_tls_cases(endpoint, certs, caplog, "vector store qdrant (kbvec)", refused)


async def test_top_level_tls_defaults_reach_the_store(certs: Any, tmp_path: Path) -> None:
    """A top-level ca_certificate is trusted by a vector store that sets no TLS option itself;
    one that opts out (ca_certificate: null) does not inherit it."""
    async with fake_qdrant(certs.good) as (_, port):
        raw = {
            "ca_certificate": certs.ca,
            "vector_stores": {
                "inherits": {"type": "qdrant", "host": "127.0.0.1", "port": port, "enable_tls": True},
                "opts_out": {
                    "type": "qdrant",
                    "host": "127.0.0.1",
                    "port": port,
                    "enable_tls": True,
                    "ca_certificate": None,
                },
            },
        }
        config = parse_config(raw, "<test>").config
        inherits, opts_out = (
            build_vector_store(name, config.vector_stores[name], tmp_path, None, config)  # type: ignore[arg-type]
            for name in ("inherits", "opts_out")
        )
        assert await inherits.open_collection("docs", EMBEDDER, 4) is True
        with pytest.raises(VectorStoreError, match="certificate signed by unknown authority"):
            await opts_out.open_collection("docs", EMBEDDER, 4)
        await inherits.aclose()
        await opts_out.aclose()


async def test_client_certificate(certs: Any) -> None:
    async with fake_qdrant(certs.good, client_ca=certs.ca) as (_, port):
        # uvicorn resets the connection instead of sending its alert: a plain connection failure.
        refused = r"vector store 'kbvec' \(qdrant\): cannot reach https://"
        await check_client_certificate(lambda **tls: remote(port, enable_tls=True, **tls), certs, refused)


async def test_unreachable_server_names_the_store_and_hides_the_key() -> None:
    with pytest.warns(UserWarning, match="Api key is used with an insecure connection"):
        store = remote(1, api_key=API_KEY)
    with pytest.raises(VectorStoreError) as failed:
        await store.query("docs", [1.0], 1)
    assert "vector store 'kbvec' (qdrant): cannot reach http://127.0.0.1:1" in failed.value.message
    assert API_KEY not in failed.value.message
    grpc_port = remote(6334)
    with pytest.raises(VectorStoreError, match="its port is 6333, 6334 is gRPC"):
        await grpc_port.chunks("docs")
    await store.aclose()
    await grpc_port.aclose()
    with_password = create(
        "kbvec", VectorStoreConfig(type="qdrant", url="http://u:pw-42@127.0.0.1:1"), Path(".")
    )
    with pytest.raises(VectorStoreError) as failed:
        await with_password.chunks("docs")
    assert failed.value.message.startswith("vector store 'kbvec' (qdrant): cannot reach http://127.0.0.1:1")
    assert "pw-42" not in failed.value.message
    await with_password.aclose()


async def test_server_errors_and_foreign_collections() -> None:
    async with fake_qdrant() as (fake, port):
        store = remote(port)
        with pytest.raises(VectorStoreError, match=r"reading collection 'nope' failed: HTTP 404: Not found"):
            await store.chunks("nope")
        # A collection written by another tool (no embedder recorded) is not wiped.
        await fake.engine.create_collection(
            "theirs", models.VectorParams(size=4, distance=models.Distance.COSINE)
        )
        await fake.engine.upsert("theirs", [models.PointStruct(id=1, vector=[1.0, 0, 0, 0], payload={})])
        with pytest.raises(VectorStoreError, match="holds points Hector did not write"):
            await store.open_collection("theirs", EMBEDDER, 4)
        assert (await fake.engine.count("theirs")).count == 1
        await store.aclose()


async def test_collection_names_qdrant_refuses_are_mapped(tmp_path: Path) -> None:
    assert qdrant_name("docs") == "docs" and qdrant_name("kb_v2.1") == "kb_v2.1"
    assert qdrant_name("my docs/v2").startswith("hector-my-docs-v2-")
    assert qdrant_name("my docs/v2") != qdrant_name("my docs?v2") and qdrant_name("..").startswith("hector-")
    local = create("v", VectorStoreConfig(type="qdrant", path="local"), tmp_path)
    await check_isolation(local, "team/handbook", "team?handbook")
    await local.aclose()
    async with fake_qdrant() as (fake, port):
        store = remote(port)
        await check_isolation(store, "team/handbook", "team#handbook")
        await store.aclose()
    assert all(seen.path.startswith("/collections/hector-team-handbook-") for seen in fake.seen)


async def test_the_local_engine_works_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qdrant-client's local engine searches (every point, in NumPy) and writes inside its
    coroutines: they run on a worker thread, so the event loop serves other requests meanwhile."""
    store = create("v", VectorStoreConfig(type="qdrant", path="local"), tmp_path)
    assert isinstance(store, QdrantVectorStore)
    threads: list[threading.Thread] = []
    real = store.client.query_points

    async def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return await real(*args, **kwargs)

    monkeypatch.setattr(store.client, "query_points", spy)
    await store.open_collection("docs", EMBEDDER, 4)
    chunks, vectors = sample_chunks()
    await store.upsert("docs", chunks, vectors)
    assert (await store.query("docs", QUERY, 1))[0].chunk == chunks[0]
    assert threads and threads[0] is not threading.current_thread()
    await store.aclose()


async def test_the_collection_setting_keeps_one_collection(tmp_path: Path) -> None:
    store = create("v", VectorStoreConfig(type="qdrant", path=":memory:", collection="shared"), tmp_path)
    await check_one_collection(store)
    await store.aclose()


async def test_collection_setting_and_dispatch(tmp_path: Path) -> None:
    cfg = VectorStoreConfig(type="qdrant", path=":memory:", collection="shared")
    store = build_vector_store("v", cfg, tmp_path, state=None)  # type: ignore[arg-type]  # unused
    assert isinstance(store, QdrantVectorStore)
    await store.open_collection("kb", EMBEDDER, 4)
    await store.upsert("kb", [Chunk("a", "a.md", "alpha")], [[1.0, 0.0, 0.0, 0.0]])
    assert await store.client.get_collections() == models.CollectionsResponse(
        collections=[models.CollectionDescription(name="shared")]
    )
    await store.aclose()


async def test_document_store_on_qdrant_finds_the_right_file(tmp_path: Path) -> None:
    # The second start finds the vectors in the folder: nothing to re-embed.
    vector_store = {"type": "qdrant", "path": "qdrant-data"}
    await index_and_search_folder(vector_store, tmp_path, QdrantVectorStore, starts=2)


def test_document_stores_sharing_one_collection_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`hector validate` says it: two document stores cannot fill a vector store's one collection."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    data: dict[str, Any] = {
        "vector_stores": {"q": {"type": "qdrant", "path": str(tmp_path / "q"), "collection": "kb"}},
        "document_stores": {"one": {"path": str(tmp_path / "a")}, "two": {"path": str(tmp_path / "b")}},
    }
    config = tmp_path / "hector.yaml"
    config.write_text(yaml.safe_dump(data))
    assert main(["validate", str(config)]) == 1
    assert "document stores ['one', 'two'] would mix their chunks in it" in capsys.readouterr().err
    del data["document_stores"]["two"]
    config.write_text(yaml.safe_dump(data))
    assert main(["validate", str(config)]) == 0
