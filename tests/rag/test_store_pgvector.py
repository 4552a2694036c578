"""The pgvector store against PostgreSQL with the real pgvector extension (PGlite served over the
PostgreSQL wire protocol, see ``tests/rag/pgvector_server.py``), plain and behind a TLS front
that negotiates TLS the PostgreSQL way (SSLRequest); the local PostgreSQL 15, which has no
pgvector, shows the error a user gets for a database without the extension.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from hector.config import parse_config
from hector.config.schema import VectorStoreConfig
from hector.errors import ConfigError, VectorStoreError
from hector.rag.backends import build_vector_store
from hector.rag.backends.pgvector import REGISTRY, PgvectorStore, create, table_name
from hector.rag.vectors import Chunk
from tests.harness import fresh_postgres_database
from tests.rag.pgvector_server import pglite_server, postgres_tls_proxy
from tests.rag.store_contract import (
    EMBEDDER,
    StoreAt,
    check_contract,
    check_isolation,
    check_one_collection,
    check_tls_cases,
    index_and_search_folder,
    sample_chunks,
)
from tests.tls import conftest as tls_fixtures

certs = tls_fixtures.certs
fresh_warnings = tls_fixtures._fresh_warnings

COMPONENT = "vector store pgvector (pg)"


@pytest.fixture(scope="module")
def pglite() -> Iterator[int]:
    with pglite_server() as port:
        yield port


def url(port: int, password: str = "") -> str:
    secret = f":{password}" if password else ""
    return f"postgresql://postgres{secret}@127.0.0.1:{port}/postgres"


def store_for(**options: Any) -> PgvectorStore:
    store = create("pg", VectorStoreConfig(type="pgvector", **options), Path("."))
    assert isinstance(store, PgvectorStore)
    return store


async def test_contract(pglite: int) -> None:
    store = store_for(url=url(pglite))
    await check_contract(store, "contract")
    await check_isolation(store, "one", "two")
    await store.aclose()


async def test_what_the_database_holds(pglite: int) -> None:
    store = store_for(url=f"postgresql+asyncpg://postgres@127.0.0.1:{pglite}/postgres")
    assert await store.open_collection("Docs: v2", "emb/1", 4) is True
    chunks, vectors = sample_chunks()
    await store.upsert("Docs: v2", chunks, vectors)
    await store.aclose()

    table = table_name("Docs: v2")
    assert table.startswith("hector_vec_docs__v2_") and table != table_name("docs: v2")
    conn = await asyncpg.connect(url(pglite))
    registered = await conn.fetchrow(f"SELECT * FROM {REGISTRY} WHERE collection = $1", "Docs: v2")
    assert dict(registered) == {
        "collection": "Docs: v2",
        "table_name": table,
        "embedder": "emb/1",
        "dimension": 4,
    }
    index = await conn.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = $1", f"{table}_hnsw")
    assert "USING hnsw (embedding vector_cosine_ops)" in index
    column = await conn.fetchval(
        f"SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        f"WHERE attrelid = '{table}'::regclass AND attname = 'embedding'"
    )
    assert column == "vector(4)"
    row = await conn.fetchrow(f"SELECT meta, embedding::text AS v FROM {table} WHERE id = $1", chunks[1].id)
    assert row["v"] == "[1,1,0,0]" and '"nested": {"k": 1.5, "none": null}' in row["meta"]
    await conn.close()


async def test_data_survives_a_new_store_and_top_k_beyond_the_index_default(pglite: int) -> None:
    store = store_for(url=url(pglite))
    assert await store.open_collection("kept", EMBEDDER, 4) is True
    chunks = [Chunk(f"c{i}", f"d{i % 7}.md", f"text {i}", {"i": i}) for i in range(120)]
    await store.upsert("kept", chunks, [[1.0, float(i), 0.5, 0.0] for i in range(120)])
    await store.aclose()

    again = store_for(url=url(pglite))
    assert await again.open_collection("kept", EMBEDDER, 4) is False
    assert len(await again.chunks("kept")) == 120
    # An HNSW scan returns at most hnsw.ef_search rows (40 unless raised): 100 must all come back.
    hits = await again.query("kept", [0.0, 1.0, 0.0, 0.0], 100)
    assert len(hits) == 100 and hits[0].chunk.id == "c119"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    await again.aclose()


async def test_errors_name_the_store_and_hide_the_password(pglite: int) -> None:
    store = store_for(url=url(pglite))
    with pytest.raises(VectorStoreError, match="collection 'never' does not exist"):
        await store.chunks("never")
    await store.open_collection("dims", EMBEDDER, 4)
    with pytest.raises(VectorStoreError, match="holds 4-dimensional vectors, got 3"):
        await store.query("dims", [1.0, 0.0, 0.0], 1)
    await store.aclose()

    gone = store_for(url=url(1, password="s3cret-pw"))
    with pytest.raises(VectorStoreError) as failed:
        await gone.chunks("docs")
    message = failed.value.message
    assert message.startswith(
        "vector store 'pg' (pgvector at postgresql://postgres:***@127.0.0.1:1/postgres)"
    )
    assert "cannot connect" in message and "s3cret-pw" not in message
    await gone.aclose()


async def test_a_database_without_pgvector_says_what_to_do() -> None:
    """The local PostgreSQL 15 has no pgvector: the error names the store and the fix."""
    async with fresh_postgres_database() as database:
        store = store_for(url=database)
        with pytest.raises(VectorStoreError) as failed:
            await store.open_collection("docs", EMBEDDER, 4)
        message = failed.value.message
        assert "vector store 'pg' (pgvector at postgresql://" in message
        assert 'extension "vector" is not available' in message
        assert "install pgvector on the server and run CREATE EXTENSION vector" in message
        await store.aclose()


async def test_tls(pglite: int, certs: Any, caplog: pytest.LogCaptureFixture) -> None:
    @contextlib.asynccontextmanager
    async def endpoint(certfile: str) -> AsyncIterator[StoreAt]:
        async with postgres_tls_proxy(certfile, ("127.0.0.1", pglite)) as port:
            yield lambda **tls: store_for(
                host="127.0.0.1", port=port, database="postgres", enable_tls=True, **tls
            )

    refused = r"^vector store 'pg' \(pgvector at postgresql://127\.0\.0\.1:\d+/"
    await check_tls_cases(endpoint, certs, caplog, COMPONENT, refused)

    # Without enable_tls the URL's sslmode applies (libpq's names): disable is turned away by
    # this TLS-only front, require encrypts without checking the certificate.
    async with postgres_tls_proxy(certs.good, ("127.0.0.1", pglite)) as port:
        cleartext = store_for(url=f"{url(port)}?sslmode=disable")
        with pytest.raises(VectorStoreError, match="connection was closed"):
            await cleartext.chunks("tls-docs")
        required = store_for(url=f"{url(port)}?sslmode=require")
        assert len(await required.chunks("tls-docs")) == 4
        for store in (cleartext, required):
            await store.aclose()


async def test_top_level_ca_reaches_the_store(pglite: int, certs: Any, tmp_path: Path) -> None:
    async with postgres_tls_proxy(certs.good, ("127.0.0.1", pglite)) as port:
        raw = {
            "ca_certificate": certs.ca,
            "vector_stores": {
                "v": {"type": "pgvector", "url": f"{url(port)}", "enable_tls": True},
            },
        }
        config = parse_config(raw, "<test>").config
        store = build_vector_store("v", config.vector_stores["v"], tmp_path, None, config)  # type: ignore[arg-type]
        assert await store.open_collection("top", EMBEDDER, 4) in (True, False)
        assert await store.chunks("top") == []
        await store.aclose()


def test_configuration(tmp_path: Path) -> None:
    raw: dict[str, Any] = {"version": "2", "vector_stores": {"p": {"type": "pgvector"}}}
    with pytest.raises(ConfigError, match="type pgvector needs host or url"):
        parse_config(raw, "<test>")
    with pytest.raises(ConfigError, match="not path"):
        store_for(path="vectors.db")
    with pytest.raises(ConfigError, match=r"url must start with postgresql://"):
        store_for(url="mysql://u@h/db")
    with pytest.raises(ConfigError, match="host takes a name, not a URL"):
        store_for(host="postgresql://h")


async def test_the_collection_setting_keeps_one_collection(pglite: int) -> None:
    store = store_for(url=url(pglite), collection="only_one")
    await check_one_collection(store)
    await store.aclose()


async def test_collection_setting_shares_one_table(pglite: int) -> None:
    store = store_for(url=url(pglite), collection="shared_kb")
    await store.open_collection("kb", EMBEDDER, 4)
    await store.upsert("kb", [Chunk("a", "a.md", "alpha")], [[1.0, 0.0, 0.0, 0.0]])
    await store.aclose()
    conn = await asyncpg.connect(url(pglite))
    assert await conn.fetchval(f"SELECT count(*) FROM {table_name('shared_kb')}") == 1
    assert await conn.fetchval(f"SELECT count(*) FROM {REGISTRY} WHERE collection = 'kb'") == 0
    await conn.close()


async def test_document_store_on_pgvector_finds_the_right_file(pglite: int, tmp_path: Path) -> None:
    # The second start finds the vectors in PostgreSQL: nothing to re-embed.
    vector_store = {"type": "pgvector", "url": url(pglite), "collection": "e2e_kb"}
    await index_and_search_folder(vector_store, tmp_path, PgvectorStore, starts=2)
