"""Retrieval: embedders, vector stores and the document stores agents search.

``build_library`` turns the configuration's ``embedders``, ``vector_stores`` and
``document_stores`` into live objects, sharing each embedder and vector store among the
document stores that name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from hector.config.schema import Config, EmbedderConfig, VectorStoreConfig
from hector.errors import ConfigError
from hector.rag.documents import DocumentStore, IndexReport
from hector.rag.embedders import Embedder, build_embedder
from hector.rag.vectors import EmbeddedVectorStore, VectorStore

__all__ = ["DocumentStore", "IndexReport", "Library", "build_library"]

DEFAULT = "default"


@dataclass
class Library:
    stores: dict[str, DocumentStore] = field(default_factory=dict)
    embedders: dict[str, Embedder] = field(default_factory=dict)
    vector_stores: dict[str, VectorStore] = field(default_factory=dict)

    async def aclose(self) -> None:
        for embedder in self.embedders.values():
            await embedder.aclose()
        for vectors in self.vector_stores.values():
            await vectors.aclose()


def _pick(kind: str, own: str | None, default: str | None, declared: dict[str, object]) -> str:
    """A store's embedder or vector store: its own, else the default, else the only one declared."""
    name = own or default
    if name:
        return name
    if len(declared) == 1:
        return next(iter(declared))
    if not declared:
        return DEFAULT
    raise ConfigError(f"several {kind}s are declared ({sorted(declared)}): set defaults.{kind}")


def build_library(
    config: Config, base_dir: Path, state: AsyncEngine, names: list[str] | None = None
) -> Library:
    """The document stores called *names* (default: all), on *state*: the engine that keeps the
    indexing state and, for the embedded vector store, the vectors."""
    library = Library()
    for name in config.document_stores if names is None else names:
        cfg = config.document_stores[name]
        embedder_name = _pick("embedder", cfg.embedder, config.defaults.embedder, dict(config.embedders))
        if embedder_name not in library.embedders:
            embedder_cfg = config.embedders.get(embedder_name, EmbedderConfig())
            library.embedders[embedder_name] = build_embedder(embedder_name, embedder_cfg, base_dir, config)
        vectors_name = _pick(
            "vector_store", cfg.vector_store, config.defaults.vector_store, dict(config.vector_stores)
        )
        if vectors_name not in library.vector_stores:
            vectors_cfg = config.vector_stores.get(vectors_name, VectorStoreConfig())
            if vectors_cfg.type != "embedded":
                raise ConfigError(
                    f"vector store {vectors_name!r}: type {vectors_cfg.type!r} is not supported in this "
                    "version yet (use embedded: no server, kept in the data dir)"
                )
            library.vector_stores[vectors_name] = EmbeddedVectorStore(state)
        library.stores[name] = DocumentStore(
            name, cfg, base_dir, library.embedders[embedder_name], library.vector_stores[vectors_name], state
        )
    return library
