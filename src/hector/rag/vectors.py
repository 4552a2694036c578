"""Vector stores: where chunk vectors live and how the nearest ones are found.

The embedded store needs no server: vectors are rows in Hector's own database (SQLite in the data
dir by default) and each collection is searched as one NumPy matrix, loaded on first use and
after every change. Exact cosine search over a matrix is fast enough for the document sets an
agent searches (10k chunks: well under a millisecond per query) and never misses a neighbour.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.stores.db import rag_chunks, rag_collections


@dataclass(frozen=True)
class Chunk:
    """A piece of a document, as stored and as returned by a search."""

    id: str
    document: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float


class VectorStore(ABC):
    @abstractmethod
    async def open_collection(self, collection: str, embedder: str, dimension: int) -> bool:
        """Make *collection* ready for vectors of *embedder*. True when it holds nothing the caller
        may believe is there, so everything must be indexed again: it was emptied because it held
        vectors of another embedder or dimension (they cannot be compared with new ones), or, for a
        store on a server, it was just created (a first run, or a server that lost its data)."""

    @abstractmethod
    async def upsert(self, collection: str, chunks: list[Chunk], vectors: list[list[float]]) -> None: ...

    @abstractmethod
    async def delete_documents(self, collection: str, documents: list[str]) -> None:
        """Remove every chunk of these documents."""

    @abstractmethod
    async def query(self, collection: str, vector: list[float], top_k: int) -> list[Hit]:
        """The *top_k* chunks nearest *vector*, best first, scored by cosine similarity."""

    @abstractmethod
    async def chunks(self, collection: str) -> list[Chunk]:
        """Every chunk of *collection* (for keyword search over the same text)."""

    async def aclose(self) -> None:  # noqa: B027  # the embedded store's engine belongs to the runtime
        pass


Matrix = npt.NDArray[np.float32]


@dataclass
class _Loaded:
    chunks: list[Chunk]
    matrix: Matrix


def _unit(rows: list[bytes], dimension: int) -> Matrix:
    if not rows:
        return np.zeros((0, dimension), dtype=np.float32)
    matrix = np.frombuffer(b"".join(rows), dtype=np.float32).reshape(len(rows), dimension)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return cast(Matrix, matrix / np.maximum(norms, 1e-12))


def _top(matrix: Matrix, vector: list[float], top_k: int) -> list[tuple[int, float]]:
    query = np.asarray(vector, dtype=np.float32)
    query /= max(float(np.linalg.norm(query)), 1e-12)
    scores = matrix @ query
    k = min(top_k, len(scores))
    if k <= 0:
        return []
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best])]
    return [(int(i), float(scores[i])) for i in best]


class EmbeddedVectorStore(VectorStore):
    """Vectors in SQL rows, searched in memory."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._loaded: dict[str, _Loaded] = {}
        self._dimensions: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def open_collection(self, collection: str, embedder: str, dimension: int) -> bool:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(rag_collections).where(rag_collections.c.collection == collection)
                )
            ).first()
            reset = row is not None and (row.embedder != embedder or row.dimension != dimension)
            if reset:
                await conn.execute(rag_chunks.delete().where(rag_chunks.c.collection == collection))
                await conn.execute(rag_collections.delete().where(rag_collections.c.collection == collection))
            if row is None or reset:
                await conn.execute(
                    rag_collections.insert().values(
                        collection=collection, embedder=embedder, dimension=dimension
                    )
                )
        self._dimensions[collection] = dimension
        self._loaded.pop(collection, None)
        return reset

    async def upsert(self, collection: str, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        if not chunks:
            return
        rows = [
            {
                "collection": collection,
                "id": c.id,
                "document": c.document,
                "text": c.text,
                "meta": c.meta,
                "vector": np.asarray(v, dtype=np.float32).tobytes(),
            }
            for c, v in zip(chunks, vectors, strict=True)
        ]
        ids = [c.id for c in chunks]
        async with self._engine.begin() as conn:
            for start in range(0, len(ids), 500):  # SQLite caps the parameters of one statement
                part = ids[start : start + 500]
                await conn.execute(
                    rag_chunks.delete().where(
                        rag_chunks.c.collection == collection, rag_chunks.c.id.in_(part)
                    )
                )
            await conn.execute(rag_chunks.insert(), rows)
        self._loaded.pop(collection, None)

    async def delete_documents(self, collection: str, documents: list[str]) -> None:
        if not documents:
            return
        async with self._engine.begin() as conn:
            for start in range(0, len(documents), 500):
                part = documents[start : start + 500]
                await conn.execute(
                    rag_chunks.delete().where(
                        rag_chunks.c.collection == collection, rag_chunks.c.document.in_(part)
                    )
                )
        self._loaded.pop(collection, None)

    async def _load(self, collection: str) -> _Loaded:
        loaded = self._loaded.get(collection)
        if loaded is not None:
            return loaded
        async with self._locks.setdefault(collection, asyncio.Lock()):
            loaded = self._loaded.get(collection)
            if loaded is not None:
                return loaded
            async with self._engine.connect() as conn:
                result = await conn.execute(
                    sa.select(rag_chunks)
                    .where(rag_chunks.c.collection == collection)
                    .order_by(rag_chunks.c.id)
                )
                rows = result.all()
                dimension = self._dimensions.get(collection)
                if dimension is None:
                    dimension = (
                        await conn.execute(
                            sa.select(rag_collections.c.dimension).where(
                                rag_collections.c.collection == collection
                            )
                        )
                    ).scalar() or 0
            chunks = [Chunk(r.id, r.document, r.text, dict(r.meta)) for r in rows]
            matrix = await asyncio.to_thread(_unit, [r.vector for r in rows], dimension)
            loaded = self._loaded[collection] = _Loaded(chunks, matrix)
            return loaded

    async def query(self, collection: str, vector: list[float], top_k: int) -> list[Hit]:
        loaded = await self._load(collection)
        if loaded.matrix.shape[0] == 0:
            return []
        if len(vector) != loaded.matrix.shape[1]:
            raise ValueError(
                f"collection {collection!r} holds {loaded.matrix.shape[1]}-dimensional vectors, "
                f"the query has {len(vector)}"
            )
        # A product over a large matrix takes milliseconds: off the loop so requests keep flowing.
        best = await asyncio.to_thread(_top, loaded.matrix, vector, top_k)
        return [Hit(loaded.chunks[i], score) for i, score in best]

    async def chunks(self, collection: str) -> list[Chunk]:
        return list((await self._load(collection)).chunks)
