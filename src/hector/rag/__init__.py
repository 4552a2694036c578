"""Retrieval: embedders, vector stores and the document stores agents search.

``build_library`` turns the configuration's ``embedders``, ``vector_stores`` and
``document_stores`` into live objects, sharing each embedder and vector store among the
document stores that name it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from hector.config.schema import Config, EmbedderConfig, VectorStoreConfig
from hector.errors import ConfigError
from hector.rag.backends import build_vector_store
from hector.rag.documents import DocumentStore, IndexReport
from hector.rag.embedders import Embedder, build_embedder
from hector.rag.vectors import VectorStore

__all__ = ["DocumentStore", "IndexReport", "Library", "build_library"]

DEFAULT = "default"


@dataclass
class Library:
    stores: dict[str, DocumentStore] = field(default_factory=dict)
    embedders: dict[str, Embedder] = field(default_factory=dict)
    vector_stores: dict[str, VectorStore] = field(default_factory=dict)

    def embedder(self, own: str | None, owner: str, config: Config, base_dir: Path) -> Embedder:
        """The embedder *owner* uses, built once and shared."""
        name = _pick("embedder", own, config.defaults.embedder, config.embedders, owner)
        if name not in self.embedders:
            cfg = config.embedders.get(name, EmbedderConfig())
            self.embedders[name] = build_embedder(name, cfg, base_dir, config)
        return self.embedders[name]

    def vector_store(
        self, own: str | None, owner: str, config: Config, base_dir: Path, state: AsyncEngine
    ) -> VectorStore:
        """The vector store *owner* uses, built once and shared."""
        name = _pick("vector_store", own, config.defaults.vector_store, config.vector_stores, owner)
        if name not in self.vector_stores:
            cfg = config.vector_stores.get(name, VectorStoreConfig())
            self.vector_stores[name] = build_vector_store(name, cfg, base_dir, state, config)
        return self.vector_stores[name]

    async def aclose(self) -> None:
        for store in self.stores.values():
            await store.aclose()
        for embedder in self.embedders.values():
            await embedder.aclose()
        for vectors in self.vector_stores.values():
            await vectors.aclose()


def _pick(kind: str, own: str | None, default: str | None, declared: Collection[str], owner: str) -> str:
    """An owner's embedder or vector store: its own, else the default, else the only one declared,
    else the built-in (the local embedder, the embedded store). ``hector validate`` reports the
    ambiguous case first; this is the last line for configurations built without it."""
    name = own or default
    if name:
        return name
    if len(declared) == 1:
        return next(iter(declared))
    if not declared:
        return DEFAULT
    raise ConfigError(f"{owner}: several {kind}s are declared ({sorted(declared)}): set defaults.{kind}")


def build_library(
    config: Config, base_dir: Path, state: AsyncEngine, names: list[str] | None = None
) -> Library:
    """The document stores called *names* (default: all), on *state*: the engine that keeps the
    indexing state and, for the embedded vector store, the vectors."""
    library = Library()
    for name in config.document_stores if names is None else names:
        cfg = config.document_stores[name]
        owner = f"document store {name!r}"
        embedder = library.embedder(cfg.embedder, owner, config, base_dir)
        vectors = library.vector_store(cfg.vector_store, owner, config, base_dir, state)
        library.stores[name] = DocumentStore(name, cfg, base_dir, embedder, vectors, state, config)
    return library
