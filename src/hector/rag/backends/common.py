"""What the vector-store back ends share: settings checks, error translation, the embedder
identity a collection records, and chunk fields as flat metadata.

Only what is the same logic in several back ends lives here; what differs between them (where
a store keeps its identity record, which library errors carry which details) stays in each one.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hector.config.schema import VectorStoreConfig
from hector.errors import ConfigError, HectorError, VectorStoreError
from hector.rag.vectors import Chunk
from hector.tls import describe_tls_error, find_tls_error

# The keys of the identity record in a collection's (qdrant, chroma) or marker's (pinecone) metadata.
EMBEDDER_KEY = "hector_embedder"
DIMENSION_KEY = "hector_dimension"


# --- settings -----------------------------------------------------------------------------------


def not_both(name: str, cfg: VectorStoreConfig, local: str) -> None:
    """A store runs *local* (``path``) or talks to a server (``url``/``host``), never both."""
    if cfg.path and (cfg.url or cfg.host):
        raise ConfigError(f"vector store {name!r}: set path ({local}) or url/host (a server), not both")


def local_path(cfg: VectorStoreConfig, base_dir: Path) -> Path:
    """``path`` of *cfg*, relative to the configuration's folder unless absolute."""
    path = Path(str(cfg.path)).expanduser()
    return path if path.is_absolute() else base_dir / path


class OneCollection:
    """The ``collection`` setting of a vector store: the one collection it keeps, for the first
    Hector collection asked for. Records there carry no mark of the Hector collection they belong
    to, so a second one would overwrite the first one's chunks (equal ids), delete its documents
    (equal paths) and, for long-term memory, recall another user's memories: it is refused."""

    def __init__(self, store: str, shared: str | None) -> None:
        self._store = store
        self.shared = shared or None  # `collection: ""` is no setting
        self._owner: str | None = None

    def name(self, collection: str) -> str:
        """Where *collection* is kept: the shared collection (if it is *collection*'s), else itself."""
        if self.shared is None:
            return collection
        if self._owner is None:
            self._owner = collection
        elif collection != self._owner:
            raise VectorStoreError(
                f"{self._store}: its collection {self.shared!r} (the `collection` setting) already "
                f"holds {self._owner!r}, and {collection!r} cannot share it (their chunks would "
                "overwrite and delete each other's, and memories would be recalled across users): "
                "remove `collection` to give each its own collection, or use another vector store"
            )
        return self.shared


def server_host(name: str, cfg: VectorStoreConfig) -> str:
    """``host`` of *cfg* (default ``localhost``): a name, as a URL belongs in ``url``."""
    host = cfg.host or "localhost"
    if "://" in host:
        raise ConfigError(f"vector store {name!r}: host takes a name, not a URL ({host}); use url")
    return host


# --- TLS for clients that take one CA file ------------------------------------------------------


def system_roots() -> bytes:
    """The system trust store as PEM; empty when the platform keeps no bundle file."""
    cafile = ssl.get_default_verify_paths().cafile
    try:
        return Path(cafile).read_bytes() if cafile else b""
    except OSError:
        return b""


def trust_bundle(ca_certificate: str | None) -> Path | None:
    """A temporary PEM file of the system roots plus *ca_certificate*, for a client library that
    trusts nothing but the one CA file it is given: so that ``ca_certificate`` adds to the system
    store, as everywhere in Hector, instead of replacing it (a top-level company CA would otherwise
    make every public server untrusted). None when there is nothing to trust beyond the library's
    own default. The caller deletes the file when it closes."""
    pem = system_roots()
    if ca_certificate:
        pem += b"\n" + Path(ca_certificate).read_bytes()
    if not pem:
        return None
    with tempfile.NamedTemporaryFile("wb", prefix="hector-ca-", suffix=".pem", delete=False) as file:
        file.write(pem)
    return Path(file.name)


# --- errors -------------------------------------------------------------------------------------


@contextlib.contextmanager
def translated_errors(
    explain: Callable[[Exception], VectorStoreError],
    *,
    chain: bool,
    keep: type[HectorError] = HectorError,
) -> Iterator[None]:
    """Any failure of a client library in the body as the ``VectorStoreError`` *explain* makes of
    it (naming the store, what failed and, where known, the fix); errors of type *keep* (Hector's
    own) pass as they are. *chain* keeps the library's error as the cause; without it a traceback
    shows only the message (which a back end has cleaned of its secrets)."""
    try:
        yield
    except keep:
        raise
    except Exception as exc:
        raise explain(exc) from (exc if chain else None)


def failure_reason(exc: BaseException) -> str:
    """Why a connection failed, for a message: a TLS failure in the seed's words (with the fix),
    else the error's type and text."""
    return describe_tls_error(exc) if find_tls_error(exc) else f"{type(exc).__name__}: {exc}"


def tls_failure(exc: BaseException, where: str) -> str | None:
    """The TLS failure behind *exc* in the seed's words, pointing at the TLS options of *where*;
    None when TLS is not what failed."""
    if find_tls_error(exc) is None:
        return None
    return f"TLS connection failed: {describe_tls_error(exc)} (TLS options of {where})"


def without_credentials(url: str) -> str:
    """*url* without the ``user:password@`` it may carry, for messages."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl() if "@" in parts.netloc else url


def redact(text: str, secret: str | None) -> str:
    """*text* without *secret* (an API key or token a library may echo in its errors)."""
    return text.replace(secret, "***") if secret else text


def wrong_dimension(collection: str, dimension: int | None, vectors: list[list[float]]) -> str | None:
    """What is wrong when *vectors* do not fit *collection*'s *dimension* (None when all fit or it
    is not known), for a back end whose server would answer that in obscure words, or not at all."""
    for vector in vectors:
        if dimension is not None and len(vector) != dimension:
            return f"collection {collection!r} holds {dimension}-dimensional vectors, got {len(vector)}"
    return None


# --- the embedder identity of a collection -------------------------------------------------------


def identity(embedder: str, dimension: int) -> dict[str, str | int]:
    """The record of the embedder and dimension whose vectors fill a collection."""
    return {EMBEDDER_KEY: embedder, DIMENSION_KEY: dimension}


def same_identity(recorded: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool | None:
    """Whether a collection's *recorded* identity is *wanted* (True: keep its vectors) or another
    (False: they are of no use, reset it); None when it records none: Hector did not make it."""
    if not any(key in recorded for key in wanted):
        return None
    return all(recorded.get(key) == value for key, value in wanted.items())


def not_written_by_hector(store: str, place: str, things: str, fix: str = "delete it") -> VectorStoreError:
    """The refusal to wipe data another tool wrote (*things* in *place*, without an identity)."""
    return VectorStoreError(
        f"{store}: {place} holds {things} Hector did not write (no embedder recorded); "
        f"set another collection or {fix}"
    )


# --- chunks as flat metadata ---------------------------------------------------------------------


def encode_meta(meta: dict[str, Any]) -> str:
    """A chunk's meta as one JSON string, for stores whose metadata is flat."""
    return json.dumps(meta, ensure_ascii=False)


def decode_meta(text: object) -> dict[str, Any]:
    """The meta *encode_meta* wrote (none: empty)."""
    found: dict[str, Any] = json.loads(str(text or "{}"))
    return found


def flat_fields(chunk: Chunk) -> dict[str, str]:
    """Every field of *chunk* as flat string metadata (pinecone, weaviate)."""
    return {
        "chunk_id": chunk.id,
        "document": chunk.document,
        "text": chunk.text,
        "meta": encode_meta(chunk.meta),
    }


def chunk_from_fields(fields: Mapping[str, Any] | None) -> Chunk:
    """The chunk *flat_fields* made."""
    f = fields or {}
    return Chunk(str(f["chunk_id"]), str(f["document"]), str(f["text"]), decode_meta(f["meta"]))
