"""Outbound TLS settings as components use them: top-level defaults, names, file checks.

The five TLS keys (``insecure_skip_verify``, ``ca_certificate``, ``client_certificate``,
``client_key``, ``min_tls_version``) may be set on a component or at the top level of the
configuration; ``effective_tls`` is the one place that decides which applies.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from hector.config.base import TLSClientOptions
from hector.config.schema import Config, ServerTLSConfig, VectorStoreConfig
from hector.errors import ConfigError
from hector.tls import TLSOptions, insecure_warning, load_ca, load_cert_chain, tls_file_problems

# The names components are known by in TLS warnings and errors; `validate` and the builders
# must agree on them, or `hector serve` would warn twice for one component.
JWKS_COMPONENT = "JWKS fetch (server.auth)"
TOP_LEVEL = "top level"
_CLIENT_PAIR = frozenset({"client_certificate", "client_key"})
_CLIENT_FILES = ("ca_certificate", "client_certificate", "client_key")
_SERVER_FILES = ("cert_file", "key_file", "client_ca_file")

M = TypeVar("M", bound=BaseModel)


def llm_component(provider: str, name: str) -> str:
    return f"LLM provider {provider} ({name})"


def tool_component(name: str) -> str:
    return f"tool {name}"


def mcp_component(name: str) -> str:
    return f"MCP server {name}"


def agent_component(name: str) -> str:
    return f"A2A agent {name}"


def vector_store_component(kind: str, name: str) -> str:
    return f"vector store {kind} ({name})"


def embedder_component(kind: str, name: str) -> str:
    return f"embedder {kind} ({name})"


def effective_tls(own: TLSClientOptions, defaults: TLSClientOptions | None = None) -> TLSOptions:
    """The options a component connects with: each key it sets itself, else the top-level default.

    Setting a key counts even when the value is the default (``insecure_skip_verify: false`` or
    ``ca_certificate: null`` opt out of a top-level default). The client certificate and key are
    one setting: a component that gives either does not inherit the other.
    """
    given = own.model_fields_set

    def pick(key: str) -> TLSClientOptions:
        return own if defaults is None or key in given else defaults

    pair = own if defaults is None or given & _CLIENT_PAIR else defaults
    return TLSOptions(
        insecure_skip_verify=pick("insecure_skip_verify").insecure_skip_verify,
        ca_certificate=pick("ca_certificate").ca_certificate,
        client_certificate=pair.client_certificate,
        client_key=pair.client_key,
        min_tls_version=pick("min_tls_version").min_tls_version,
    )


def _updated(model: M, update: dict[str, Any]) -> M:
    # Only what changed: a copy's update also counts as "set" (model_fields_set).
    changed = {key: value for key, value in update.items() if value != getattr(model, key)}
    return model.model_copy(update=changed) if changed else model


def _anchored(section: M, base: Path, keys: tuple[str, ...]) -> M:
    paths = {key: getattr(section, key) for key in keys}
    return _updated(section, {k: str(base / v) for k, v in paths.items() if v and not Path(v).is_absolute()})


def _anchored_map(entries: Mapping[str, M], base: Path) -> dict[str, M]:
    return {name: _anchored(section, base, _CLIENT_FILES) for name, section in entries.items()}


def anchor_tls_paths(cfg: Config, base: Path) -> Config:
    """The configuration with relative TLS file paths made relative to *base* (the configuration
    file's folder), as every relative path of a configuration is."""
    server = _updated(
        cfg.server,
        {
            "auth": _anchored(cfg.server.auth, base, _CLIENT_FILES),
            "tls": cfg.server.tls and _anchored(cfg.server.tls, base, _SERVER_FILES),
        },
    )
    return _updated(
        _anchored(cfg, base, _CLIENT_FILES),
        {
            "llms": _anchored_map(cfg.llms, base),
            "embedders": _anchored_map(cfg.embedders, base),
            "vector_stores": _anchored_map(cfg.vector_stores, base),
            "tools": _anchored_map(cfg.tools, base),
            "agents": _anchored_map(cfg.agents, base),
            "document_stores": {
                name: _updated(doc, {"api": doc.api and _anchored(doc.api, base, _CLIENT_FILES)})
                for name, doc in cfg.document_stores.items()
            },
            "server": server,
        },
    )


@dataclass(frozen=True)
class Outbound:
    """A configured component that opens TLS connections, as its start-up warning names it."""

    component: str
    tls: TLSOptions


def _sections(cfg: Config) -> Iterator[tuple[str, TLSClientOptions]]:
    """Every place of the configuration that can carry TLS keys, with its path."""
    yield TOP_LEVEL, cfg
    for kind, entries in (
        ("llms", cfg.llms),
        ("embedders", cfg.embedders),
        ("vector_stores", cfg.vector_stores),
        ("tools", cfg.tools),
        ("agents", cfg.agents),
    ):
        for name, section in entries.items():
            yield f"{kind}.{name}", section
    yield "server.auth", cfg.server.auth


def tls_file_errors(cfg: Config) -> list[str]:
    """A problem for each TLS file the configuration names that cannot be loaded.

    Only keys a section sets itself are checked, so a bad top-level default is reported once.
    ``hector validate`` shows these as warnings (the seed's own examples name CA files that exist
    only on the reader's machines); building the runtime refuses them (``check_tls_files``).
    """
    problems = []
    for where, section in _sections(cfg):
        own = TLSOptions(
            ca_certificate=section.ca_certificate,
            client_certificate=section.client_certificate,
            client_key=section.client_key,
        )
        problems += tls_file_problems(own, where)
    return problems


def check_tls_files(cfg: Config) -> None:
    """Refuse to start with a CA or client certificate that cannot be read, before any request."""
    problems = tls_file_errors(cfg)
    if problems:
        raise ConfigError("cannot use the TLS files of the configuration:\n  " + "\n  ".join(problems))


def insecure_warnings(outbound: list[Outbound], cfg: Config) -> list[str]:
    """One warning per component that skips verification, and one for a top-level default of it."""
    warnings = [insecure_warning(o.component) for o in outbound if o.tls.insecure_skip_verify]
    if cfg.insecure_skip_verify:
        warnings.insert(
            0,
            "TLS certificate verification disabled by default for every outbound connection "
            "(top-level insecure_skip_verify=true); use only in development",
        )
    return warnings


def vector_store_uses_tls(store: VectorStoreConfig) -> bool:
    """Whether a vector store's connections are TLS, so its TLS options apply (a back end with an
    odd rule may make it plain all the same: this errs on the side of "TLS")."""
    if store.type == "embedded":
        return False
    address = store.url or store.host or ""
    if store.enable_tls or address.startswith("https://"):
        return True
    # Pinecone's service is https unless `enable_tls: false` says otherwise (a local emulator).
    return store.type == "pinecone" and "enable_tls" not in store.model_fields_set and "://" not in address


def unused_tls_warnings(cfg: Config) -> list[str]:
    """Vector stores given TLS options they never use: without ``enable_tls`` the seed's stores
    connect in plain text, whatever ``ca_certificate`` or ``insecure_skip_verify`` say."""
    warnings = []
    for name, store in cfg.vector_stores.items():
        own = store.model_fields_set
        given = [k for k in TLSClientOptions.model_fields if k in own and getattr(store, k)]
        if given and not vector_store_uses_tls(store):
            fix = (
                "the embedded store opens no connections"
                if store.type == "embedded"
                else "its connections are not TLS; set enable_tls: true (or give an https:// url)"
            )
            warnings.append(f"vector_stores.{name}: {', '.join(given)} has no effect: {fix}")
    return warnings


def server_tls_errors(tls: ServerTLSConfig | None) -> list[str]:
    """``server.tls`` files are the operator's own: a file that does not load is an error."""
    if tls is None or not tls.enabled:
        return []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    problems = []
    try:
        load_cert_chain(ctx, tls.cert_file, tls.key_file, "server.tls", "server")
    except ConfigError as exc:
        problems.append(exc.message)
    if tls.client_ca_file:
        try:
            load_ca(ctx, tls.client_ca_file, "server.tls.client_ca_file")
        except ConfigError as exc:
            problems.append(exc.message)
    return problems
