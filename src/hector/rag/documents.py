"""A document store: a folder (or database rows, or API items) kept indexed in a vector store, and searched.

Indexing is incremental: each file's content hash (with the chunking settings) is recorded, so
only new and changed files are parsed and embedded again, and deleted files lose their chunks.
Database and API sources (``hector.rag.sources_base``) yield records, indexed the same way.

Hybrid search fuses a keyword ranking (Okapi BM25 over the same chunks) with the vector ranking
by reciprocal rank fusion: vectors find paraphrases, BM25 finds the exact identifiers, error
codes and names that embeddings blur.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.config.base import TLSClientOptions
from hector.config.schema import DocumentStoreConfig
from hector.errors import ConfigError
from hector.observability import retrieval as telemetry
from hector.rag.embedders import Embedder
from hector.rag.readiness import Readiness
from hector.rag.sources import (
    FileFilter,
    FileParser,
    Section,
    chunk_text,
    default_excludes,
    language_of,
    parse_file,
    walk,
)
from hector.rag.sources_base import Record, RecordSource, build_source
from hector.rag.vectors import Chunk, Hit, VectorStore
from hector.stores.db import rag_documents

log = logging.getLogger("hector.rag")

SearchMode = Literal["vector", "hybrid", "keyword"]
EMBED_GROUP = 256  # chunks embedded and written together: big batches, bounded memory
Progress = Callable[[int, int], None]
"""Called with (files done, files to index)."""


_TOKEN = re.compile(r"\w+", re.UNICODE)
RRF_K = 60  # the constant of Cormack et al.; damps the weight of the very first ranks


def tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


class BM25:
    """Keyword search: an inverted index over fixed chunks; build it off the event loop."""

    def __init__(self, chunks: Sequence[Chunk], k1: float = 1.5, b: float = 0.75) -> None:
        self.chunks = list(chunks)
        self.k1 = k1
        self.b = b
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.lengths: list[int] = []
        for i, chunk in enumerate(self.chunks):
            counts = Counter(tokens(chunk.text))
            self.lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self.postings[term].append((i, tf))
        self.average = (sum(self.lengths) / len(self.lengths)) if self.lengths else 0.0

    def query(self, text: str, top_k: int) -> list[Hit]:
        n = len(self.chunks)
        scores: dict[int, float] = defaultdict(float)
        for term in set(tokens(text)):
            posting = self.postings.get(term)
            if not posting:
                continue
            # The "plus one" IDF of Lucene: never negative, even for terms in most chunks.
            idf = math.log(1 + (n - len(posting) + 0.5) / (len(posting) + 0.5))
            for i, tf in posting:
                norm = self.k1 * (1 - self.b + self.b * self.lengths[i] / (self.average or 1))
                scores[i] += idf * tf * (self.k1 + 1) / (tf + norm)
        best = sorted(scores.items(), key=lambda item: -item[1])[:top_k]
        return [Hit(self.chunks[i], score) for i, score in best]


def fuse(rankings: Sequence[Sequence[Hit]], top_k: int, weights: Sequence[float] | None = None) -> list[Hit]:
    """Reciprocal rank fusion, each ranking counting by its weight (default: all equal);
    scores are scaled so that first in every ranking is 1.0."""
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    fused: dict[str, float] = defaultdict(float)
    chunks: dict[str, Chunk] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, hit in enumerate(ranking, 1):
            fused[hit.chunk.id] += weight / (RRF_K + rank)
            chunks[hit.chunk.id] = hit.chunk
    best_possible = sum(weights) / (RRF_K + 1) or 1.0
    ordered = sorted(fused.items(), key=lambda item: -item[1])[:top_k]
    return [Hit(chunks[cid], score / best_possible) for cid, score in ordered]


@dataclass
class IndexReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _File:
    rel: str
    path: Path
    digest: str


@dataclass(frozen=True)
class _Item:
    """A record of a database or API source, keyed by its id as a file is by its path."""

    rel: str
    record: Record
    digest: str


def _items(records: list[Record], salt: bytes) -> list[_Item]:
    return [_Item(r.id, r, hashlib.sha256(salt + r.fingerprint()).hexdigest()) for r in records]


def _scan(root: Path, file_filter: FileFilter, salt: bytes) -> list[_File]:
    found = []
    for rel, path in walk(root, file_filter):
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("cannot read %s: %s", path, exc)
            continue
        found.append(_File(rel, path, hashlib.sha256(salt + data).hexdigest()))
    return found


class DocumentStore:
    def __init__(
        self,
        name: str,
        cfg: DocumentStoreConfig,
        base_dir: Path,
        embedder: Embedder,
        vectors: VectorStore,
        state: AsyncEngine,
        tls_defaults: TLSClientOptions | None = None,
    ) -> None:
        if cfg.source not in ("directory", "sql", "api"):
            raise ConfigError(f"document store {name!r}: unknown source {cfg.source!r}")
        self.name = name
        self.source: RecordSource | None = build_source(name, cfg, base_dir, tls_defaults)
        """Where the records of a sql or api store come from; None for a folder."""
        self.cfg = cfg
        root = Path(cfg.source_path or ".").expanduser()
        self.root = root if root.is_absolute() else (base_dir / root).resolve()
        self.collection = cfg.collection or name
        self.embedder = embedder
        self.vectors = vectors
        self._state = state
        parsed = cfg.mcp_parsers.extensions if cfg.mcp_parsers else []
        excludes = default_excludes(parsed) if cfg.exclude_patterns is None else list(cfg.exclude_patterns)
        self.filter = FileFilter(
            cfg.include_patterns, excludes + cfg.additional_exclude_patterns, cfg.max_file_size
        )
        self.chunk_overlap = min(cfg.chunk_overlap, cfg.chunk_size // 2)
        # Changing how files are cut changes every chunk: the settings are part of each file's hash.
        self._salt = f"{cfg.chunk_size}:{self.chunk_overlap}\0".encode()
        if cfg.mcp_parsers:  # so are the parsers: files get parsed again when they change
            self._salt += cfg.mcp_parsers.model_dump_json().encode()
        self._bm25: BM25 | None = None
        self._lock = asyncio.Lock()
        self.readiness = Readiness(name)
        """Searches wait for the first indexing of a served store (``hector.rag.readiness``)."""
        self.parse_file: FileParser = parse_file
        """The runtime puts MCP parsing here for a store with ``mcp_parsers``."""

    async def index(self, progress: Progress | None = None) -> IndexReport:
        """Bring the collection up to date with the folder."""
        async with self._lock:
            try:
                with telemetry.indexing(self.name) as run:
                    report = await self._index(progress)
                    telemetry.indexed(run, report)
            except Exception as exc:
                self.readiness.failed(exc)
                raise
            self._bm25 = None
            self.readiness.succeeded()
            return report

    def check(self) -> None:
        """What the configuration alone says is wrong (a folder that does not exist)."""
        if self.source is None and not self.root.is_dir():
            raise ConfigError(f"document store {self.name!r}: folder {self.root} does not exist")

    async def _index(self, progress: Progress | None) -> IndexReport:
        self.check()
        dimension = self.embedder.dimension
        if dimension is None:
            dimension = len((await self.embedder.embed(["dimension probe"]))[0])
        if await self.vectors.open_collection(self.collection, self.embedder.identity, dimension):
            if await self._known():
                log.info(
                    "document store %s: its collection was emptied (another embedder, or the vector "
                    "store lost its data): re-indexing everything",
                    self.name,
                )
            await self._forget_all()
        known = await self._known() if self.cfg.enable_incremental_indexing else {}
        if not self.cfg.enable_incremental_indexing:
            await self._forget_all()
        # Read before anything is deleted: a database or API that fails must not empty the index.
        files: Sequence[_File | _Item]
        if self.source is not None:
            files = _items(await self.source.records(), self._salt)
        else:
            files = await asyncio.to_thread(_scan, self.root, self.filter, self._salt)
        current = {f.rel for f in files}
        gone = [rel for rel in known if rel not in current]
        report = IndexReport(removed=len(gone))
        await self.vectors.delete_documents(self.collection, gone)
        await self._forget(gone)
        todo = [f for f in files if known.get(f.rel) != f.digest]
        report.unchanged = len(files) - len(todo)
        pending: list[tuple[_File | _Item, list[Chunk]]] = []
        for done, file in enumerate(todo, 1):
            try:
                sections = await self._sections(file)
                chunks = await asyncio.to_thread(self._chunks, file, sections)
            except Exception as exc:
                # One broken PDF must not stop the rest of the folder from being searchable.
                log.warning("document store %s: cannot parse %s: %s", self.name, file.rel, exc)
                report.failed += 1
                continue
            if file.rel in known:
                report.updated += 1
            else:
                report.added += 1
            report.chunks += len(chunks)
            pending.append((file, chunks))
            if sum(len(c) for _, c in pending) >= EMBED_GROUP or done == len(todo):
                await self._write(pending)
                pending = []
            if progress:
                progress(done, len(todo))
        if pending:
            await self._write(pending)
        return report

    async def _sections(self, file: _File | _Item) -> list[Section]:
        if isinstance(file, _Item):
            return [Section(file.record.text)]
        return await self.parse_file(file.rel, file.path)

    def _chunks(self, file: _File | _Item, sections: list[Section]) -> list[Chunk]:
        stem = hashlib.sha256(file.rel.encode()).hexdigest()[:24]
        language = language_of(file.rel)
        chunks: list[Chunk] = []
        for section in sections:
            for piece in chunk_text(section.text, self.cfg.chunk_size, self.chunk_overlap):
                meta: dict[str, object] = {
                    "path": file.rel,
                    "chunk": len(chunks),
                    "start_line": piece.start_line,
                    "end_line": piece.end_line,
                }
                if section.page is not None:
                    meta["page"] = section.page
                if section.name is not None:
                    meta["section"] = section.name
                if language is not None:
                    meta["language"] = language
                if isinstance(file, _Item):  # cited by its id: a row has no meaningful line numbers
                    cite = {"path": file.rel, "chunk": meta["chunk"]}
                    meta = {**file.record.meta, "source": self.cfg.source, **cite}
                chunks.append(Chunk(f"{stem}:{len(chunks)}", file.rel, piece.text, meta))
        return chunks

    async def _write(self, pending: list[tuple[_File | _Item, list[Chunk]]]) -> None:
        chunks = [c for _, file_chunks in pending for c in file_chunks]
        vectors = await self.embedder.embed([c.text for c in chunks])
        # Old chunks go first: a file that shrank would otherwise keep its stale tail.
        await self.vectors.delete_documents(self.collection, [f.rel for f, _ in pending])
        with telemetry.vector_store("upsert", self.vectors, self.collection):
            await self.vectors.upsert(self.collection, chunks, vectors)
        now = dt.datetime.now(dt.UTC)
        async with self._state.begin() as conn:
            await conn.execute(
                rag_documents.delete().where(
                    rag_documents.c.collection == self.collection,
                    rag_documents.c.path.in_([f.rel for f, _ in pending]),
                )
            )
            await conn.execute(
                rag_documents.insert(),
                [
                    {
                        "collection": self.collection,
                        "path": f.rel,
                        "content_hash": f.digest,
                        "chunks": len(c),
                        "indexed_at": now,
                    }
                    for f, c in pending
                ],
            )

    async def _known(self) -> dict[str, str]:
        async with self._state.connect() as conn:
            rows = await conn.execute(
                sa.select(rag_documents.c.path, rag_documents.c.content_hash).where(
                    rag_documents.c.collection == self.collection
                )
            )
            return {r.path: r.content_hash for r in rows}

    async def _forget(self, paths: list[str]) -> None:
        async with self._state.begin() as conn:
            for start in range(0, len(paths), 500):
                await conn.execute(
                    rag_documents.delete().where(
                        rag_documents.c.collection == self.collection,
                        rag_documents.c.path.in_(paths[start : start + 500]),
                    )
                )

    async def _forget_all(self) -> None:
        async with self._state.begin() as conn:
            await conn.execute(rag_documents.delete().where(rag_documents.c.collection == self.collection))

    async def aclose(self) -> None:
        if self.source is not None:
            await self.source.aclose()

    async def search(
        self,
        query: str,
        top_k: int = 5,
        mode: SearchMode = "hybrid",
        threshold: float = 0.0,
        alpha: float | None = None,
    ) -> list[Hit]:
        """The *top_k* best chunks for *query*, best first.

        *alpha* is the weight of the vector ranking in the fusion, the keyword ranking weighing
        ``1 - alpha``: 0.5 in hybrid mode, 0.1 in keyword mode unless given.

        *threshold* is a minimum cosine similarity in both modes: fused rank scores say how well a
        chunk ranked, not how relevant it is, so they would make a poor cut-off. In hybrid mode a
        chunk found by keywords alone has no known similarity and is dropped by any threshold.
        """
        await self.readiness.wait()
        query_vector = await self.embedder.embed_query(query)
        if mode == "vector":
            hits = await self._query(query_vector, top_k)
            return [h for h in hits if h.score >= threshold]
        # Fusing needs depth: a chunk 30th by vectors but 1st by keywords should still surface.
        depth = max(50, top_k * 5)
        by_vector = await self._query(query_vector, depth)
        similar = {h.chunk.id for h in by_vector if h.score >= threshold}
        bm25 = await self._keyword_index()
        by_keyword = await asyncio.to_thread(bm25.query, query, depth)
        if alpha is None:
            alpha = 0.1 if mode == "keyword" else 0.5
        fused = fuse([by_vector, by_keyword], depth, (alpha, 1 - alpha))
        return [h for h in fused if threshold <= 0 or h.chunk.id in similar][:top_k]

    async def _query(self, vector: list[float], top_k: int) -> list[Hit]:
        with telemetry.vector_store("query", self.vectors, self.collection):
            return await self.vectors.query(self.collection, vector, top_k)

    async def _keyword_index(self) -> BM25:
        if self._bm25 is None:
            chunks = await self.vectors.chunks(self.collection)
            self._bm25 = await asyncio.to_thread(BM25, chunks)
        return self._bm25
