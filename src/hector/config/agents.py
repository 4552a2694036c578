"""Configuration of agents and of what they are given: LLMs, tools, prompts, memory, reasoning."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from hector.config.base import Section, TLSClientOptions
from hector.config.rag import EmbedderConfig, SearchConfig, VectorStoreConfig
from hector.config.types import Duration, Size, StrList

ProviderType = Literal["openai", "anthropic", "gemini", "ollama", "test"]

Visibility = Literal["public", "internal", "private"]


class LLMConfig(TLSClientOptions):
    aliases: ClassVar[dict[str, str]] = {"provider": "type", "base_url": "host"}

    type: ProviderType = "openai"
    model: str | None = None
    api_key: SecretStr | None = None
    host: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    timeout: Duration = 600.0
    max_retries: int = Field(default=5, ge=0, le=20)
    retry_delay: Duration = 2.0


class ToolConfig(TLSClientOptions):
    """A tool declaration. The keys of all tool kinds live here; each kind reads its own."""

    aliases: ClassVar[dict[str, str]] = {
        "requires_approval": "require_approval",
        "enable_approval": "require_approval",
    }

    type: str = "function"
    handler: str | None = None
    enabled: bool = True
    description: str | None = None
    internal: bool = False
    """Never given to an agent, even one that lists it (an MCP source kept for mcp_parsers)."""
    require_approval: bool | None = None
    """Default: on for tools that change things (command, write, patch, web), off for readers."""
    approval_prompt: str | None = None
    approval_timeout: Duration = 600.0
    """A pending approval expires after this long; the call is then denied."""
    # command
    working_directory: str | None = None
    max_execution_time: Duration = 30.0
    allowed_commands: StrList | None = None
    denied_commands: StrList | None = None
    deny_by_default: bool = False
    enable_sandboxing: bool = True
    max_output_size: Size = 1024 * 1024
    # file tools
    max_file_size: Size | None = None
    allowed_extensions: StrList | None = None
    denied_extensions: StrList | None = None
    backup_on_overwrite: bool = False
    # web_request
    allowed_domains: StrList | None = None
    denied_domains: StrList | None = None
    allowed_methods: StrList | None = None
    timeout: Duration | None = None
    max_response_size: Size = 10 * 1024 * 1024
    max_redirects: int = Field(default=5, ge=0, le=20)
    allow_private_networks: bool = False
    """web_request: allow loopback, private and link-local addresses (off: SSRF protection)."""
    # mcp
    server_url: str | None = None
    url: str | None = None
    transport: Literal["sse", "stdio", "streamable-http"] | None = None
    command: str | None = None
    args: list[str] = []
    env: dict[str, str] = {}
    headers: dict[str, SecretStr] = {}
    filter: StrList | None = None
    # search
    max_limit: int = Field(default=50, gt=0, le=100)
    search: SearchConfig = SearchConfig()


class LongTermMemoryConfig(Section):
    enabled: bool = True
    storage_scope: Literal["all", "conversational", "summaries_only"] = "all"
    batch_size: int = Field(default=1, gt=0, le=1000)
    enable_auto_recall: bool = False
    recall_limit: int = Field(default=5, gt=0, le=50)
    collection: str | None = None
    """Prefix of the memory collections (one per scope key); default hector_memory."""
    recall_scope: Literal["session", "user", "agent"] = "session"
    """Whose memories a conversation recalls: its own (session), every conversation of the same
    user with this agent (user), or every conversation with this agent (agent)."""


class MemoryConfig(Section):
    strategy: Literal["buffer_window", "summary_buffer"] = "buffer_window"
    window_size: int = Field(default=20, gt=0)
    budget: int = Field(default=8000, gt=0)
    threshold: float = Field(default=0.85, gt=0, le=1)
    target: float = Field(default=0.7, gt=0, le=1)
    long_term: LongTermMemoryConfig | None = None


class PromptSlots(Section):
    system_role: str | None = None
    instructions: str | None = None
    user_guidance: str | None = None


class PromptConfig(Section):
    system_prompt: str | None = None
    prompt_slots: PromptSlots = PromptSlots()
    include_context: bool = False
    include_context_limit: int | None = Field(default=None, gt=0, le=50)
    """Default: the agent's search top_k."""
    include_context_max_length: int = Field(default=500, gt=0)


class ReasoningConfig(Section):
    engine: Literal["chain-of-thought", "supervisor", "default"] = "default"
    max_iterations: int = Field(default=100, gt=0, le=10_000)
    enable_streaming: bool = True


class StructuredOutputConfig(Section):
    format: Literal["json"] = "json"
    schema_: dict[str, Any] = Field(alias="schema")
    name: str = "response"


class CredentialsConfig(Section):
    type: Literal["bearer", "api_key", "basic"] = "bearer"
    token: SecretStr | None = None
    api_key: SecretStr | None = None
    api_key_header: str = "X-API-Key"
    username: str | None = None
    password: SecretStr | None = None


class SkillConfig(Section):
    id: str
    name: str
    description: str = ""
    tags: list[str] = []
    examples: list[str] = []


class AgentConfig(TLSClientOptions):
    aliases: ClassVar[dict[str, str]] = {"system_prompt": "instruction"}

    type: Literal["native", "a2a"] = "native"
    name: str | None = None
    description: str | None = None
    visibility: Visibility = "public"
    llm: str | None = None
    instruction: str | None = None
    prompt: PromptConfig = PromptConfig()
    tools: list[str] | None = None
    document_stores: list[str] | None = None
    sub_agents: list[str] | None = None
    session_store: str | None = None
    memory: MemoryConfig = MemoryConfig()
    search: SearchConfig = SearchConfig()
    vector_store: str | None = None
    """For long-term memory and the docs_folder store (other document stores name their own)."""
    embedder: str | None = None
    reasoning: ReasoningConfig = ReasoningConfig()
    structured_output: StructuredOutputConfig | None = None
    skills: list[SkillConfig] = []
    # external agents (type: a2a)
    url: str | None = None
    target_agent_id: str | None = None
    """The agent's id on a server that serves several: its card is looked up under
    ``<url>/agents/<id>`` (then ``/v1/agents/<id>``), and gRPC calls carry it as ``agent-name``."""
    credentials: CredentialsConfig | None = None
    # Shortcuts (SPEC §2.6), expanded into plain entries by ``hector.config.shortcuts`` when the
    # configuration is loaded: the rest of Hector, and ``--print-config``, never see them.
    llm_config: LLMConfig | None = Field(default=None, exclude=True)
    """Inline llm: becomes ``llms.<agent>-llm-inline``."""
    vector_store_config: VectorStoreConfig | None = Field(default=None, exclude=True)
    embedder_config: EmbedderConfig | None = Field(default=None, exclude=True)
    docs_folder: str | None = Field(default=None, exclude=True)
    """A folder to search: becomes a directory document store and the search tool."""
    mcp_parser_tool: StrList | None = Field(default=None, exclude=True)
    """MCP tools that parse the docs_folder's PDF, Office and HTML files."""
    enable_tools: bool = Field(default=False, exclude=True)
    """Every built-in tool (instead of listing them under tools)."""

    @field_validator("visibility", mode="before")
    @classmethod
    def _visibility(cls, value: Any) -> Any:
        if value not in ("public", "internal", "private"):
            raise ValueError(f"invalid visibility {value!r} (must be 'public', 'internal', or 'private')")
        return value
