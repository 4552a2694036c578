"""Vector-store back ends, one module each, imported only when a configuration names them.

Every module exposes ``create(name, cfg, base_dir) -> VectorStore``; the client library of a
back end is imported by its module, so a deployment that only uses the embedded store never
loads (or needs) the others: each client library is an optional extra of the package
(``pip install 'hector-agents[qdrant]'``), all of them in ``dev``.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from hector.config.base import TLSClientOptions
from hector.config.schema import VectorStoreConfig
from hector.config.tls import effective_tls
from hector.errors import ConfigError
from hector.rag.vectors import EmbeddedVectorStore, VectorStore

BACKENDS = {
    "chroma": "hector.rag.backends.chroma",
    "milvus": "hector.rag.backends.milvus",
    "pgvector": "hector.rag.backends.pgvector",
    "pinecone": "hector.rag.backends.pinecone",
    "qdrant": "hector.rag.backends.qdrant",
    "weaviate": "hector.rag.backends.weaviate",
}


def build_vector_store(
    name: str,
    cfg: VectorStoreConfig,
    base_dir: Path,
    state: AsyncEngine,
    tls_defaults: TLSClientOptions | None = None,
) -> VectorStore:
    """The store *cfg* describes; the embedded one keeps its vectors on *state*. The top-level TLS
    options in *tls_defaults* fill in what the store does not set itself."""
    if cfg.type == "embedded":
        return EmbeddedVectorStore(state)
    # Written into the store's own section, so a back end's effective_tls(cfg) sees the defaults.
    cfg = cfg.model_copy(update=dataclasses.asdict(effective_tls(cfg, tls_defaults)))
    module_name = BACKENDS.get(cfg.type)
    if module_name is None:
        raise ConfigError(
            f"vector store {name!r}: unknown type {cfg.type!r} "
            f"(expected one of: embedded, {', '.join(sorted(BACKENDS))})"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:  # the back end's client library is an optional extra
        raise ConfigError(
            f"vector store {name!r}: type {cfg.type!r} needs its client library ({exc.name}): "
            f"pip install 'hector-agents[{cfg.type}]'"
        ) from exc
    store: VectorStore = module.create(name, cfg, base_dir)
    return store
