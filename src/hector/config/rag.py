"""Configuration of retrieval: embedders, vector stores, search settings and document stores."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from hector.config.base import Section, TLSClientOptions
from hector.config.sources import APISourceConfig, SQLConnectionConfig, SQLTableConfig
from hector.config.types import Duration, Size, StrList


class EmbedderConfig(TLSClientOptions):
    aliases: ClassVar[dict[str, str]] = {"provider": "type", "base_url": "host"}

    type: str = "local"
    model: str | None = None
    host: str | None = None
    api_key: SecretStr | None = None
    dimension: int | None = Field(default=None, gt=0)
    timeout: Duration = 30.0
    max_retries: int = Field(default=3, ge=0)
    batch_size: int = Field(default=32, gt=0)


class VectorStoreConfig(TLSClientOptions):
    aliases: ClassVar[dict[str, str]] = {"use_tls": "enable_tls"}

    type: str = "embedded"
    host: str | None = None
    port: int | None = Field(default=None, gt=0, le=65535)
    api_key: SecretStr | None = None
    enable_tls: bool = False
    collection: str | None = None
    url: str | None = None
    path: str | None = None
    grpc_port: int | None = Field(default=None, gt=0, le=65535)
    """weaviate: the gRPC port on host (default 50051); queries and writes go over gRPC."""
    index_name: str | None = None
    """pinecone: the index to use when neither host nor url gives its host (looked up by name)."""
    database: str | None = None
    """pgvector: the database on host (with url, the URL's path names it)."""


SearchModeName = Literal["vector", "hybrid", "keyword", "multi_query", "hyde"]


class RerankConfig(Section):
    enabled: bool = False
    llm: str | None = None
    """Default: the calling agent's llm."""
    max_results: int = Field(default=20, gt=0, le=100)


class MultiQueryConfig(Section):
    enabled: bool = False
    """Makes multi_query the default mode where search_mode is not set."""
    llm: str | None = None
    num_variations: int = Field(default=3, gt=0, le=10)


class HydeConfig(Section):
    enabled: bool = False
    """Makes hyde the default mode where search_mode is not set."""
    llm: str | None = None


class SearchConfig(Section):
    """Search settings. A key left unset falls back to the next, less specific level: the call's
    arguments, the search tool's ``search``, the document store's ``search``, the agent's."""

    aliases: ClassVar[dict[str, str]] = {"mode": "search_mode", "alpha": "hybrid_alpha"}

    top_k: int | None = Field(default=None, gt=0, le=100)
    threshold: float | None = Field(default=None, ge=-1, le=1)
    preserve_case: bool | None = None
    search_mode: SearchModeName | None = None
    hybrid_alpha: float | None = Field(default=None, ge=0, le=1)
    rerank: RerankConfig | None = None
    multi_query: MultiQueryConfig | None = None
    hyde: HydeConfig | None = None


# What MCP parsers read unless told otherwise (and what mcp_parser_tool / --mcp-parser-tool set).
MCP_PARSER_EXTENSIONS = (".pdf", ".docx", ".pptx", ".xlsx", ".html")
MCP_PARSER_PRIORITY = 8


class MCPParsersConfig(Section):
    """Files whose extension is listed are parsed by MCP tools (e.g. Docling); see
    ``hector.rag.mcp_parsers``."""

    tool_names: StrList = []
    """Tools of the declared MCP sources (``type: mcp``), tried in order; a source's own name
    stands for its only tool."""
    extensions: StrList = list(MCP_PARSER_EXTENSIONS)
    priority: int = MCP_PARSER_PRIORITY
    """Against the native parsers' 5: the higher goes first, the other is the fallback."""
    prefer_native: bool = False
    """Native parsing first wherever a native parser reads the file, whatever the priority."""

    @field_validator("extensions")
    @classmethod
    def _dotted(cls, value: list[str]) -> list[str]:
        # "pdf", ".pdf" and ".PDF" all mean the files ending in .pdf.
        return [f".{e.strip().lstrip('.').lower()}" for e in value if e.strip().lstrip(".")]


class DocumentStoreConfig(Section):
    aliases: ClassVar[dict[str, str]] = {"path": "source_path"}

    source: str = "directory"
    source_path: str | None = None
    collection: str | None = None
    vector_store: str | None = None
    embedder: str | None = None
    include_patterns: StrList = []
    exclude_patterns: StrList | None = None
    additional_exclude_patterns: StrList = []
    chunk_size: int = Field(default=800, gt=0)
    chunk_overlap: int = Field(default=0, ge=0)
    chunk_strategy: Literal["simple", "overlapping", "semantic"] = "simple"
    """The Go original's key; every strategy chunks the same way (``hector.rag.sources.chunk_text``)."""
    enable_watch_changes: bool = True
    enable_incremental_indexing: bool = True
    max_file_size: Size = 10 * 1024 * 1024
    search: SearchConfig = SearchConfig()
    mcp_parsers: MCPParsersConfig | None = None
    # source: sql and source: api (hector.config.sources)
    sql: SQLConnectionConfig | None = None
    sql_database: str | None = None
    sql_tables: list[SQLTableConfig] = []
    sql_max_rows: int = Field(default=10_000, gt=0)
    """Per table: rows past this many are not indexed (with a warning)."""
    api: APISourceConfig | None = None
    refresh_interval: Duration = 300.0
    """sql and api sources are read again this often while serving; 0: only at start-up."""
