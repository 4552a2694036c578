"""Spans and metrics of retrieval (long-term memory, document search, embedders, vector stores,
indexing) and of task takeovers.

Each function opens an operation on the telemetry of the work in progress (``current()``):
within an agent run the app's, during start-up and in the runtime's background tasks (indexing,
the watcher, the lease sweeper) too, as the runtime activates the app's telemetry for them.
Elsewhere (``hector index``, tests without a server) they do nothing.

The spans are current for the body, so what the body calls (an embedder's HTTP request, a
vector query) becomes their child. Label values stay bounded: agent and store names come from
the configuration, modes and operations are fixed words, embedder types and back ends are the
names of Hector's own classes. Collections are span attributes only; queries and texts are
never recorded (they are user content).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from hector.observability import current
from hector.observability.metrics import Metrics
from hector.observability.telemetry import Note, Operation

if TYPE_CHECKING:
    from hector.rag.documents import IndexReport

INDEX_CHANGES = ("added", "updated", "removed", "failed")


def _outcome(op: Operation) -> str:
    return "ok" if op.error_type is None else "error"


def backend_label(store: object) -> str:
    """A vector store's back end from its class: ``EmbeddedVectorStore`` → ``embedded``,
    ``PgvectorStore`` → ``pgvector``."""
    name = type(store).__name__.removesuffix("VectorStore").removesuffix("Store")
    return name.lower() or "custom"


def memory_lookup(agent: str, scope: str, limit: int) -> AbstractContextManager[Operation]:
    """``agent.memory_lookup``: one long-term memory recall; note ``memory.hits``."""

    def record(m: Metrics, op: Operation, elapsed: float) -> None:
        m.memory_lookups.labels(agent, _outcome(op)).inc()
        m.memory_lookup_duration.labels(agent).observe(elapsed)

    attributes: dict[str, Note] = {"agent.name": agent, "memory.recall_scope": scope, "memory.limit": limit}
    return current().scoped("agent.memory_lookup", attributes, record)


def rag_search(store: str, mode: str, top_k: int) -> AbstractContextManager[Operation]:
    """``rag.search``: one search of one document store; note ``rag.hits``."""

    def record(m: Metrics, op: Operation, elapsed: float) -> None:
        m.rag_searches.labels(store, mode, _outcome(op)).inc()
        m.rag_search_duration.labels(store, mode).observe(elapsed)

    attributes: dict[str, Note] = {"rag.store": store, "rag.mode": mode, "rag.top_k": top_k}
    return current().scoped("rag.search", attributes, record)


def embedding(embedder_type: str, model: str, name: str, texts: int) -> AbstractContextManager[Operation]:
    """``rag.embed``: one embedding call of *texts* texts, however many batches it takes."""

    def record(m: Metrics, op: Operation, elapsed: float) -> None:
        m.embedding_requests.labels(embedder_type, model, _outcome(op)).inc()
        m.embedding_duration.labels(embedder_type, model).observe(elapsed)
        if op.error_type is None:
            m.embedding_texts.labels(embedder_type, model).inc(texts)

    attributes: dict[str, Note] = {
        "embedder.type": embedder_type,
        "embedder.model": model,
        "embedder.name": name,
        "embedder.texts": texts,
    }
    return current().scoped("rag.embed", attributes, record)


def vector_store(operation: str, store: object, collection: str) -> AbstractContextManager[Operation]:
    """``vector_store.<operation>`` (``query``, ``upsert``) on *store*, timed by back end."""
    backend = backend_label(store)

    def record(m: Metrics, op: Operation, elapsed: float) -> None:
        m.vector_operations.labels(backend, operation, _outcome(op)).inc()
        m.vector_duration.labels(backend, operation).observe(elapsed)

    attributes: dict[str, Note] = {"vector_store.backend": backend, "vector_store.collection": collection}
    return current().scoped(f"vector_store.{operation}", attributes, record)


def indexing(store: str) -> AbstractContextManager[Operation]:
    """``rag.index``: one indexing run of a document store; ``indexed`` gives its report."""

    def record(m: Metrics, op: Operation, elapsed: float) -> None:
        m.index_runs.labels(store, _outcome(op)).inc()
        for change in INDEX_CHANGES:
            count = int(op.notes.get(f"rag.documents.{change}", 0))
            if count:
                m.documents_indexed.labels(store, change).inc(count)
        chunks = int(op.notes.get("rag.chunks", 0))
        if chunks:
            m.chunks_indexed.labels(store).inc(chunks)

    # A trace of its own: a re-index after a change belongs to no request.
    return current().scoped("rag.index", {"rag.store": store}, record, root=True)


def indexed(op: Operation, report: IndexReport) -> None:
    """What an indexing run did, for its span and the indexing counters."""
    for change in (*INDEX_CHANGES, "unchanged"):
        op.note(f"rag.documents.{change}", getattr(report, change))
    op.note("rag.chunks", report.chunks)


def takeover(agent: str, task_id: str, iteration: int) -> AbstractContextManager[Operation]:
    """``task.takeover``: continuing a task whose server stopped. A new trace: the checkpoint
    does not keep the original request's trace context, and the run it starts (``agent.call``)
    is its child."""

    def record(m: Metrics, op: Operation, elapsed: float) -> None:
        m.task_takeovers.labels(agent, _outcome(op)).inc()

    attributes: dict[str, Note] = {
        "agent.name": agent,
        "task.id": task_id,
        "task.checkpoint.iteration": iteration,
    }
    return current().scoped("task.takeover", attributes, record, root=True)
