"""Configuration of document stores fed by a database (``source: sql``) or a REST API (``source: api``).

Names of tables and columns go into SQL as identifiers, never as text: only plain names (letters,
digits, ``_`` and ``$``, not starting with a digit; a table may be ``schema.table``) are accepted,
so a name in the configuration cannot smuggle SQL in. ``where_clause`` is the exception on
purpose: it is raw SQL written by whoever writes the configuration, and is trusted as such.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from hector.config.base import Section, TLSClientOptions
from hector.config.types import Duration, Size, StrList

if TYPE_CHECKING:  # rag.py imports this module
    from hector.config.rag import DocumentStoreConfig

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
SOURCES = ("directory", "sql", "api")


def check_identifier(value: str, what: str, dotted: bool = False) -> str:
    """*value* if it is a plain SQL identifier (or ``schema.name`` when *dotted*), else ValueError."""
    parts = value.split(".") if dotted else [value]
    # fullmatch: with match, "$" would also accept a name ending in a newline.
    if len(parts) > 2 or not all(_IDENTIFIER.fullmatch(p) for p in parts):
        shape = "a plain name or schema.name" if dotted else "a plain name"
        raise ValueError(f"{what} {value!r} is not {shape} (letters, digits, _ and $; no quotes or spaces)")
    return value


class SQLConnectionConfig(Section):
    conn: SecretStr | None = None
    """A database URL: ``postgresql://user:pass@host/db`` or ``sqlite:///path.db`` (async drivers
    are chosen automatically). Read only: Hector never writes to it."""
    timeout: Duration = 30.0
    """Connecting and each query must finish within this long."""


class SQLTableConfig(Section):
    table: str | None = None
    columns: StrList = []
    """The columns whose values are the document's text, in this order."""
    id_column: str | None = None
    updated_column: str | None = None
    """A last-modified column: part of the row's fingerprint and of its metadata."""
    where_clause: str | None = None
    """Raw SQL appended after WHERE, trusted as the rest of the configuration is."""
    metadata_columns: StrList = []
    """Columns stored with each chunk of the row (returned with search hits), not embedded."""

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        return None if value is None else check_identifier(value, "table", dotted=True)

    @field_validator("id_column", "updated_column")
    @classmethod
    def _column_name(cls, value: str | None) -> str | None:
        return None if value is None else check_identifier(value, "column")

    @field_validator("columns", "metadata_columns")
    @classmethod
    def _column_names(cls, value: list[str]) -> list[str]:
        return [check_identifier(v, "column") for v in value]


class APIAuthConfig(Section):
    aliases: ClassVar[dict[str, str]] = {"username": "user", "password": "pass"}

    type: Literal["bearer", "basic", "apikey"] = "bearer"
    token: SecretStr | None = None
    """bearer: sent as ``Authorization: Bearer <token>``; apikey: sent in ``header``."""
    user: str | None = None
    pass_: SecretStr | None = Field(default=None, alias="pass")
    header: str = "X-API-Key"
    extra: dict[str, SecretStr] = {}
    """More headers sent with the credentials (e.g. a tenant or application id)."""


class APIPaginationConfig(Section):
    type: Literal["page", "offset", "cursor", "link"] | None = None
    """None: one request. page: page=1,2,…; offset: offset=0,n,2n,…; cursor: the next cursor
    from the body; link: the next URL from the body (next_field) or the ``Link`` header."""
    page_param: str | None = None
    """The query parameter for the page number, offset or cursor (default: page, offset, cursor)."""
    size_param: str | None = None
    """The query parameter for the page size (default: page_size for page, limit otherwise)."""
    page_size: int = Field(default=100, gt=0)
    max_pages: int = Field(default=0, ge=0)
    """At most this many requests per endpoint; 0: until the last page."""
    data_field: str | None = None
    """Dot path to the list of items in a response (default: the body itself, or its data,
    items or results list)."""
    next_field: str | None = None
    """Dot path to the next cursor (cursor; default next_cursor) or next URL (link)."""


class APIEndpointConfig(Section):
    path: str | None = None
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, Any] = {}
    headers: dict[str, SecretStr] = {}
    body: Any = None
    """JSON body of a POST request."""
    auth: APIAuthConfig | None = None
    """Overrides the source's auth for this endpoint."""
    id_field: str = "id"
    content_field: StrList = []
    """Dot paths of the fields that make the text, e.g. ``title,body``; default: the whole item."""
    metadata_fields: StrList = []
    updated_field: str | None = None
    pagination: APIPaginationConfig = APIPaginationConfig()

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class APISourceConfig(TLSClientOptions):
    base_url: str | None = None
    auth: APIAuthConfig | None = None
    endpoints: list[APIEndpointConfig] = []
    timeout: Duration = 30.0
    """Each request, its whole answer included, must be done within this long."""
    max_response_size: Size = Field(default=50 * 1024 * 1024, gt=0)
    """The largest answer read (after decompression); a larger one fails the read rather than
    filling the memory."""


def api_component(store: str) -> str:
    """The name TLS warnings and errors give a document store's API."""
    return f"document store API ({store})"


def source_problems(owner: str, doc: DocumentStoreConfig) -> tuple[list[str], list[str]]:
    """``hector validate`` errors and warnings of a document store's source settings."""
    errors: list[str] = []
    warnings: list[str] = []
    if doc.source not in SOURCES:
        return [f"{owner}: unknown source {doc.source!r} (expected one of: {', '.join(SOURCES)})"], []
    if doc.source == "sql":
        if doc.sql is None or doc.sql.conn is None or not doc.sql.conn.get_secret_value():
            hint = (
                " (sql_database names a top-level databases entry, which this version does not have)"
                if doc.sql_database
                else ""
            )
            example = "postgresql://user@host/db"
            errors.append(f"{owner}: source sql needs sql.conn, a database URL such as {example}{hint}")
        elif doc.sql_database:
            warnings.append(f"{owner}: sql_database is ignored: the database is the one sql.conn names")
        if not doc.sql_tables:
            errors.append(f"{owner}: source sql needs sql_tables (at least one table to index)")
        for i, table in enumerate(doc.sql_tables):
            missing = [k for k in ("table", "id_column", "columns") if not getattr(table, k)]
            if missing:
                errors.append(f"{owner}: sql_tables[{i}] needs {', '.join(missing)}")
    elif doc.source == "api":
        api = doc.api
        if api is None or not api.base_url:
            errors.append(f"{owner}: source api needs api.base_url")
        elif not api.base_url.startswith(("http://", "https://")):
            errors.append(f"{owner}: api.base_url must start with http:// or https://")
        if api is None or not api.endpoints:
            errors.append(f"{owner}: source api needs api.endpoints (at least one)")
        errors += [f"{owner}: api.{p}" for p in _auth_problems(api.auth if api else None)]
        for i, endpoint in enumerate(api.endpoints if api else []):
            where = f"{owner}: api.endpoints[{i}]"
            if not endpoint.path:
                errors.append(f"{where} needs path")
            errors += [f"{where}.{p}" for p in _auth_problems(endpoint.auth)]
    for key, kind in (("sql", "sql"), ("sql_tables", "sql"), ("sql_database", "sql"), ("api", "api")):
        if getattr(doc, key) and doc.source != kind:
            warnings.append(f"{owner}: {key} is ignored because source is {doc.source}")
    return errors, warnings


def _auth_problems(auth: APIAuthConfig | None) -> list[str]:
    if auth is None:
        return []
    if auth.type in ("bearer", "apikey") and auth.token is None:
        return [f"auth: type {auth.type} needs token"]
    if auth.type == "basic" and (auth.user is None or auth.pass_ is None):
        return ["auth: type basic needs user and pass"]
    return []
