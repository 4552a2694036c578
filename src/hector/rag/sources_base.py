"""Document sources other than a folder: database rows and API items, read as records.

A source yields ``Record``s: an id (``<table>/<id>``, ``<endpoint path>/<id>``) that citations
show and that incremental indexing keys on, the text to embed, and metadata stored with every
chunk. A record's fingerprint covers its text and metadata (the updated column or field among
them), so a re-read re-embeds only what changed and drops what is gone, as for files.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hector.config.base import TLSClientOptions
from hector.config.schema import DocumentStoreConfig

MASK = "***"


@dataclass(frozen=True)
class Record:
    id: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> bytes:
        return json.dumps([self.text, self.meta], sort_keys=True, ensure_ascii=False).encode()


class RecordSource(Protocol):
    kind: str

    async def records(self) -> list[Record]:
        """Every record the source holds now; raises DocumentSourceError when it cannot be read."""
        ...

    async def aclose(self) -> None: ...


def plain(value: Any) -> Any:
    """*value* as JSON can hold it (metadata goes to every vector store back end)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(plain(value), ensure_ascii=False)


def record_text(fields: Iterable[tuple[str, Any]]) -> str:
    """The text of a record: the value of its only field, or ``name: value`` paragraphs (the
    names help the embedder and the model tell a title from a price)."""
    present = [(name, as_text(value)) for name, value in fields if value is not None and value != ""]
    if len(present) == 1:
        return present[0][1]
    return "\n\n".join(f"{name}: {text}" for name, text in present)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """*text* with every secret masked: database drivers and servers may echo them back."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def build_source(
    name: str, cfg: DocumentStoreConfig, base_dir: Path, tls_defaults: TLSClientOptions | None = None
) -> RecordSource | None:
    """The source of a ``sql`` or ``api`` store; None for a folder."""
    if cfg.source == "sql":
        from hector.rag.sources_sql import SQLSource

        return SQLSource(name, cfg, base_dir)
    if cfg.source == "api":
        from hector.rag.sources_api import APISource

        return APISource(name, cfg, tls_defaults)
    return None
