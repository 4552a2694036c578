"""Long-term memory: conversation messages kept in a vector store and recalled by meaning.

Working memory (``hector.agent.memory``) decides what of the current conversation the model
sees; long-term memory keeps what was said (``storage_scope``) as embedded vectors, so a later
turn or conversation can recall it when the user's message is about the same thing.

Isolation comes from where memories are written, not from filtering at read time: every scope
key (``recall_scope``: the user's conversation, the user, or the whole agent) has its own
collection, named by a hash of the agent and the key. A recall can only ever read the one
collection of its own key, so another user's or conversation's memories cannot leak into it,
whatever the vector store returns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from hector.config.schema import AgentConfig, Config, LongTermMemoryConfig
from hector.messages import ChatMessage
from hector.observability import retrieval as telemetry
from hector.rag import Library
from hector.rag.embedders import Embedder
from hector.rag.vectors import Chunk, VectorStore

log = logging.getLogger("hector.agent.memory")

MAX_MEMORY_CHARS = 4000  # a tool output can be 50 kB; what gets embedded is the start anyway
DEFAULT_PREFIX = "hector_memory"
RECALL_HEADER = "Things you remember from earlier conversations (most relevant first):"


@dataclass
class _Pending:
    chunks: list[Chunk] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def memory_text(message: ChatMessage) -> str:
    """What is kept of *message*: the text a memory of it holds."""
    text = message.content
    if message.role == "tool":
        text = f"tool {message.name or ''} returned: {text}".strip()
    return text[:MAX_MEMORY_CHARS]


class LongTermMemory:
    """One agent's long-term memory (``memory.long_term``)."""

    def __init__(
        self, agent_id: str, cfg: LongTermMemoryConfig, embedder: Embedder, vectors: VectorStore
    ) -> None:
        self.agent_id = agent_id
        self.cfg = cfg
        self.embedder = embedder
        self.vectors = vectors
        self._pending: dict[str, _Pending] = {}
        self._opened: set[str] = set()

    def collection(self, context_id: str, user: str) -> str:
        """The collection of the memories a conversation of *user* may write and read."""
        scope = self.cfg.recall_scope
        key = {"session": [user, context_id], "user": [user], "agent": []}[scope]
        digest = hashlib.sha256("\0".join([self.agent_id, scope, *key]).encode()).hexdigest()[:24]
        return f"{self.cfg.collection or DEFAULT_PREFIX}_{digest}"

    def _keeps(self, message: ChatMessage) -> bool:
        if not message.content.strip():
            return False
        scope = self.cfg.storage_scope
        if scope == "summaries_only":
            return False  # summaries arrive through remember_summary
        if scope == "conversational":
            return message.role in ("user", "assistant")
        return message.role in ("user", "assistant", "tool")

    async def remember(self, context_id: str, user: str, messages: Sequence[ChatMessage]) -> None:
        """Queue the messages worth keeping; they are written ``batch_size`` at a time."""
        await self._add(context_id, user, [(m.role, memory_text(m)) for m in messages if self._keeps(m)])

    async def remember_summary(self, context_id: str, user: str, summary: str) -> None:
        if self.cfg.storage_scope == "summaries_only" and summary.strip():
            try:
                await self._add(context_id, user, [("summary", summary)])
            except Exception as exc:  # kept pending; written with the next batch
                log.warning("long-term memory of agent %s: storing failed: %s", self.agent_id, exc)

    async def _add(self, context_id: str, user: str, items: list[tuple[str, str]]) -> None:
        if not items:
            return
        collection = self.collection(context_id, user)
        pending = self._pending.setdefault(collection, _Pending())
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        async with pending.lock:
            for role, text in items:
                meta = {"role": role, "context_id": context_id, "user": user, "at": now}
                # The document is the conversation: deleting a conversation's memories is one call.
                pending.chunks.append(Chunk(uuid.uuid4().hex, context_id, text[:MAX_MEMORY_CHARS], meta))
            if len(pending.chunks) >= self.cfg.batch_size:
                await self._write(collection, pending)

    async def _write(self, collection: str, pending: _Pending) -> None:
        """Embed and store what is pending (the caller holds the lock)."""
        chunks, pending.chunks = pending.chunks, []
        try:
            vectors = await self.embedder.embed([c.text for c in chunks])
            await self._open(collection, len(vectors[0]))
            with telemetry.vector_store("upsert", self.vectors, collection):
                await self.vectors.upsert(collection, chunks, vectors)
        except Exception:
            pending.chunks = chunks + pending.chunks  # try again with the next batch
            raise

    async def _open(self, collection: str, dimension: int) -> None:
        # Once per process: some back ends fail queries on a collection that does not exist yet.
        if collection not in self._opened:
            await self.vectors.open_collection(collection, self.embedder.identity, dimension)
            self._opened.add(collection)

    async def flush(self) -> None:
        """Write every pending memory (at shutdown: nothing queued is lost)."""
        for collection, pending in list(self._pending.items()):
            async with pending.lock:
                if pending.chunks:
                    await self._write(collection, pending)

    async def recall(
        self, context_id: str, user: str, query: str, visible: Sequence[ChatMessage] = ()
    ) -> list[Chunk]:
        """The ``recall_limit`` memories nearest *query*, leaving out those of the *visible*
        messages (the model sees them anyway). Memories still waiting for their batch are not
        searched."""
        if not query.strip():
            return []
        # Compared as stored: a tool result is kept as "tool X returned: ...", a long text cut.
        exclude = {memory_text(m) for m in visible}
        collection = self.collection(context_id, user)
        limit = self.cfg.recall_limit
        with telemetry.memory_lookup(self.agent_id, self.cfg.recall_scope, limit) as lookup:
            vector = await self.embedder.embed_query(query)
            await self._open(collection, len(vector))
            with telemetry.vector_store("query", self.vectors, collection):
                hits = await self.vectors.query(collection, vector, limit + len(exclude))
            recalled = [h.chunk for h in hits if h.chunk.text not in exclude][:limit]
            lookup.note("memory.hits", len(recalled))
        return recalled

    async def recall_text(
        self, context_id: str, user: str, query: str, visible: Sequence[ChatMessage] = ()
    ) -> str:
        """``recall`` as a section of the system prompt; empty when nothing (or on failure)."""
        try:
            return recall_block(await self.recall(context_id, user, query, visible))
        except Exception as exc:  # the agent answers without memories rather than not at all
            log.warning("long-term memory of agent %s: recall failed: %s", self.agent_id, exc)
            return ""

    async def remember_safely(self, context_id: str, user: str, messages: Sequence[ChatMessage]) -> None:
        try:
            await self.remember(context_id, user, messages)
        except Exception as exc:  # kept pending; written with the next batch
            log.warning("long-term memory of agent %s: storing failed: %s", self.agent_id, exc)


def recall_block(memories: Sequence[Chunk]) -> str:
    """Recalled memories as a section of the system prompt."""
    if not memories:
        return ""
    lines = [f"- [{m.meta.get('role', '?')}, {str(m.meta.get('at', ''))[:10]}] {m.text}" for m in memories]
    return RECALL_HEADER + "\n" + "\n".join(lines)


def build_long_term(
    agent_id: str, cfg: AgentConfig, config: Config, base_dir: Path, library: Library, state: AsyncEngine
) -> LongTermMemory | None:
    """The agent's long-term memory, sharing embedders and vector stores with *library*."""
    long_term = cfg.memory.long_term
    if long_term is None or not long_term.enabled:
        return None
    owner = f"agent {agent_id!r}"
    embedder = library.embedder(cfg.embedder, owner, config, base_dir)
    vectors = library.vector_store(cfg.vector_store, owner, config, base_dir, state)
    return LongTermMemory(agent_id, long_term, embedder, vectors)
