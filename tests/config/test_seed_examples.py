"""Every Hector configuration example of the seed documents validates, and means what it says.

The fixtures in tests/fixtures/seeds/ are verbatim copies of the examples in security.md and
tls-https-configuration.md (see the README there). Each whole example must be accepted by
``load_config`` and by ``hector validate``; the per-example checks below make sure no key of an
example is silently dropped, renamed or read with another meaning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, SecretStr

from hector.cli import main
from hector.config import LLMConfig, LoadedConfig, ToolConfig, load_config, parse_config
from hector.config.tls import effective_tls

from .conftest import SEEDS_DIR

CA = "/etc/ssl/certs/company-ca.pem"
JWT_EXCLUDED = ["/health", "/.well-known/agent-card.json"]

Check = Callable[[LoadedConfig, dict[str, str]], None]
EXPECT: dict[str, Check] = {}

# The Troubleshooting section of tls-https-configuration.md shows two one-line fragments
# (`ca_certificate: ...`, `insecure_skip_verify: true`). Inside a component they set that
# component's option; as whole files they set the top-level default of every component.
FRAGMENTS = {
    "tls_10_fragment_ca_certificate.yaml",
    "tls_11_fragment_insecure_skip_verify.yaml",
}


def expect(name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        assert name not in EXPECT, f"two checks for {name}"
        EXPECT[name] = fn
        return fn

    return register


def given_twice(key: str, line: int, first: int) -> str:
    """The warning for a key YAML keeps only the last of (the seed's Good/Bad pairs share one)."""
    return (
        f"line {line}: key {key!r} is given twice in one mapping (first at line {first}); only this "
        f"last one counts, so put everything under one {key!r}"
    )


def secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def all_fixtures() -> list[str]:
    return sorted(p.name for p in SEEDS_DIR.glob("*.yaml"))


def assert_no_key_dropped(raw: Any, node: Any, where: str = "") -> None:
    """Every key written in the YAML is set on the model (under its canonical name)."""
    if isinstance(node, BaseModel):
        assert isinstance(raw, dict), f"{where}: expected a mapping in the YAML"
        aliases: dict[str, str] = getattr(type(node), "aliases", {})
        for key, value in raw.items():
            field = aliases.get(key, key)
            at = f"{where}.{key}" if where else str(key)
            assert field in type(node).model_fields, f"{at}: not a field of {type(node).__name__}"
            assert field in node.model_fields_set, f"{at}: given in the YAML but not set"
            assert_no_key_dropped(value, getattr(node, field), at)
    elif isinstance(node, dict) and isinstance(raw, dict):
        assert set(raw) == set(node), f"{where}: entries {sorted(raw)} became {sorted(node)}"
        for key, value in raw.items():
            assert_no_key_dropped(value, node[key], f"{where}.{key}")


# --- security.md ---------------------------------------------------------------------------


@expect("security_01_jwt.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    auth = loaded.config.server.auth
    assert auth.enabled is True
    assert auth.jwks_url == "https://auth.yourdomain.com/.well-known/jwks.json"
    assert auth.issuer == "https://auth.yourdomain.com/"
    assert auth.audience == "your-api-identifier"
    assert auth.require_auth is True
    assert auth.excluded_paths == JWT_EXCLUDED
    assert auth.refresh_interval == 15 * 60  # "refresh_interval (default: 15m)"
    assert auth.api_keys == []
    assert loaded.warnings == []


@expect("security_02_auth0.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    auth = loaded.config.server.auth
    domain = env["AUTH0_DOMAIN"]
    assert auth.enabled is True
    assert auth.jwks_url == f"https://{domain}/.well-known/jwks.json"
    assert auth.issuer == f"https://{domain}/"
    assert auth.audience == env["AUTH0_AUDIENCE"]
    assert auth.require_auth is True  # the default when enabled
    assert loaded.warnings == []


@expect("security_03_keycloak.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    auth = loaded.config.server.auth
    assert auth.enabled is True
    assert auth.jwks_url == (
        "https://keycloak.yourdomain.com/realms/your-realm/protocol/openid-connect/certs"
    )
    assert auth.issuer == "https://keycloak.yourdomain.com/realms/your-realm"
    assert auth.audience == "hector-api"
    assert loaded.warnings == []


@expect("security_04_cognito.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    auth = loaded.config.server.auth
    assert auth.enabled is True
    # Placeholders are kept as written; `audience: {clientId}` (a YAML flow mapping) is read
    # back as the placeholder string the author meant.
    assert auth.jwks_url == "https://cognito-idp.{region}.amazonaws.com/{userPoolId}/.well-known/jwks.json"
    assert auth.issuer == "https://cognito-idp.{region}.amazonaws.com/{userPoolId}"
    assert auth.audience == "{clientId}"
    assert loaded.warnings == []


@expect("security_05_api_keys.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    auth = loaded.config.server.auth
    assert auth.enabled is True
    assert [secret(k) for k in auth.api_keys] == [env["API_KEY_1"], env["API_KEY_2"]]
    assert (auth.jwks_url, auth.issuer, auth.audience) == (None, None, None)
    assert loaded.warnings == []


@expect("security_06_combined_auth.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    auth = loaded.config.server.auth
    assert auth.enabled is True
    assert auth.jwks_url == "https://auth.yourdomain.com/.well-known/jwks.json"
    assert [secret(k) for k in auth.api_keys] == [env["SERVICE_API_KEY"]]
    # JWT settings are incomplete (no issuer/audience): accepted because API keys are set,
    # but the user is told what is not verified.
    assert len(loaded.warnings) == 1
    assert "issuer" in loaded.warnings[0]
    assert "audience" in loaded.warnings[0]


@expect("security_07_visibility_levels.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    agents = loaded.config.agents
    assert {name: a.visibility for name, a in agents.items()} == {
        "public_assistant": "public",
        "internal_analyst": "internal",
        "private_helper": "private",
    }


@expect("security_08_visibility_require_auth_true.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    cfg = loaded.config
    assert cfg.server.auth.enabled is True
    assert cfg.server.auth.require_auth is True
    assert {name: a.visibility for name, a in cfg.agents.items()} == {
        "assistant": "public",
        "admin": "internal",
    }
    # Auth on with no way to authenticate is legal but refused requests are predictable: warn.
    assert any("401" in w for w in loaded.warnings)


@expect("security_09_visibility_require_auth_false.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    cfg = loaded.config
    assert cfg.server.auth.enabled is True
    assert cfg.server.auth.require_auth is False
    assert {name: a.visibility for name, a in cfg.agents.items()} == {
        "assistant": "public",
        "admin": "internal",
    }


@expect("security_10_visibility_example.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    cfg = loaded.config
    auth = cfg.server.auth
    assert (auth.jwks_url, auth.issuer, auth.audience) == (
        "https://auth.company.com/.well-known/jwks.json",
        "https://auth.company.com/",
        "company-api",
    )
    assert auth.require_auth is True
    assert auth.excluded_paths == JWT_EXCLUDED
    agents = cfg.agents
    assert {name: a.visibility for name, a in agents.items()} == {
        "customer_support": "public",
        "admin_assistant": "internal",
        "data_processor": "private",
    }
    assert agents["customer_support"].instruction == "Help customers with basic questions"
    assert agents["admin_assistant"].tools == ["execute_command", "write_file"]
    assert agents["admin_assistant"].instruction == "Administrative tasks"
    assert agents["data_processor"].instruction == "Process data internally"
    assert agents["customer_support"].tools is None
    assert loaded.warnings == []


@expect("security_11_tool_approval.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    tools = loaded.config.tools
    write = tools["write_file"]
    assert (write.type, write.handler) == ("function", "write_file")
    assert write.require_approval is True
    assert write.approval_prompt == "Allow writing to {file}?"
    command = tools["execute_command"]
    assert command.type == "command"
    assert command.require_approval is True
    assert command.approval_prompt == "Execute: {command}?"


@expect("security_12_command_sandboxing.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    tool = loaded.config.tools["execute_command"]
    assert tool.type == "command"
    assert tool.working_directory == "./workspace"
    assert tool.max_execution_time == 30.0
    assert tool.allowed_commands == ["git", "npm", "python", "pytest"]
    assert tool.denied_commands == ["rm", "dd", "sudo"]
    assert tool.deny_by_default is False


@expect("security_13_command_whitelist.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    tool = loaded.config.tools["execute_command"]
    assert tool.type == "command"
    assert tool.deny_by_default is True
    assert tool.allowed_commands == ["ls", "cat", "grep"]
    assert tool.denied_commands is None


@expect("security_14_working_directory.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    tool = loaded.config.tools["execute_command"]
    assert tool.type == "command"
    assert tool.working_directory == "./safe-workspace"


@expect("security_15_execution_timeout.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    tool = loaded.config.tools["execute_command"]
    assert tool.type == "command"
    assert tool.max_execution_time == 30.0


@expect("security_16_secret_env_vars.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    # "Good" and "Bad" variants share the `llms:` key; YAML keeps the last one (the hardcoded key).
    llms = loaded.config.llms
    assert list(llms) == ["default"]
    assert secret(llms["default"].api_key) == "sk-proj-abc123..."
    assert loaded.warnings[0] == given_twice("llms", 7, 2)
    # The seed's "Bad" variant: validate says so.
    assert loaded.warnings[1].startswith("secrets written into the file (llms.default.api_key)")
    assert len(loaded.warnings) == 2


@expect("security_17_cors.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    cors = loaded.config.server.cors
    assert cors is not None
    assert cors.allowed_origins == ["https://app.yourdomain.com", "https://dashboard.yourdomain.com"]
    assert cors.allowed_methods == ["GET", "POST", "OPTIONS"]
    assert cors.allowed_headers == ["Authorization", "Content-Type"]
    assert cors.max_age == 86400


@expect("security_18_cors_wildcard.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    cors = loaded.config.server.cors
    assert cors is not None
    assert cors.allowed_origins == ["*"]
    # The seed says "development only"; validate says so too.
    assert len(loaded.warnings) == 1 and "development only" in loaded.warnings[0]


@expect("security_19_rate_limiting.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    rl = loaded.config.server.rate_limiting
    assert rl.enabled is True
    assert rl.requests_per_minute == 60
    assert rl.burst == 10
    assert rl.per_user is False


@expect("security_20_rate_limiting_per_user.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    rl = loaded.config.server.rate_limiting
    assert rl.enabled is True
    assert rl.requests_per_minute == 100
    assert rl.burst == 20
    assert rl.per_user is True


@expect("security_21_audit_logging.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    logger = loaded.config.logger
    assert (logger.level, logger.format) == ("info", "json")


@expect("security_22_least_privilege.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    # Good/Bad variants share `agents:`; the last one wins.
    agents = loaded.config.agents
    assert list(agents) == ["reader"]
    assert agents["reader"].tools == ["read_file", "write_file", "execute_command", "web_request"]
    assert loaded.warnings == [given_twice("agents", 7, 2)]


@expect("security_23_agent_isolation.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    agents = loaded.config.agents
    assert {name: (a.visibility, a.tools) for name, a in agents.items()} == {
        "public_assistant": ("public", ["search"]),
        "internal_assistant": ("internal", ["search", "read_file", "write_file"]),
        "admin_assistant": ("internal", ["execute_command", "write_file", "web_request"]),
    }


@expect("security_24_tool_whitelisting.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    # Good/Bad variants share `tools:`; the last one (the blacklist) wins.
    tools = loaded.config.tools
    assert list(tools) == ["execute_command"]
    tool = tools["execute_command"]
    assert tool.deny_by_default is False
    assert tool.denied_commands == ["rm"]
    assert tool.allowed_commands is None
    assert loaded.warnings == [given_twice("tools", 8, 2)]


@expect("security_25_secure_production.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    cfg = loaded.config
    assert cfg.version == "2"
    llm = cfg.llms["default"]
    assert (llm.type, llm.model) == ("openai", "gpt-4o")  # `provider` is an alias of `type`
    assert secret(llm.api_key) == env["OPENAI_API_KEY"]

    command = cfg.tools["execute_command"]
    assert command.type == "command"
    assert command.working_directory == "./workspace"
    assert command.max_execution_time == 30.0
    assert command.deny_by_default is True
    assert command.allowed_commands == ["git", "npm", "python", "pytest"]
    assert command.require_approval is True
    assert (cfg.tools["write_file"].handler, cfg.tools["write_file"].require_approval) == ("write_file", True)
    assert cfg.tools["read_file"].handler == "read_file"
    assert cfg.tools["read_file"].require_approval is None  # not given: the tool's own default

    assert {name: (a.visibility, a.llm, a.tools) for name, a in cfg.agents.items()} == {
        "public_assistant": ("public", "default", ["search"]),
        "internal_assistant": ("internal", "default", ["search", "read_file", "write_file"]),
        "admin_assistant": ("internal", "default", ["execute_command", "write_file", "read_file"]),
    }
    assert cfg.agents["internal_assistant"].document_stores == ["internal_docs"]

    server = cfg.server
    assert server.port == 8080
    assert server.auth.enabled is True
    assert (server.auth.jwks_url, server.auth.issuer, server.auth.audience) == (
        "https://auth.company.com/.well-known/jwks.json",
        "https://auth.company.com/",
        "company-api",
    )
    assert server.auth.require_auth is True
    assert server.auth.excluded_paths == JWT_EXCLUDED
    assert server.cors is not None
    assert server.cors.allowed_origins == ["https://app.company.com"]
    rl = server.rate_limiting
    assert (rl.enabled, rl.requests_per_minute, rl.burst, rl.per_user) == (True, 100, None, True)
    assert server.observability.metrics.enabled is True
    assert server.observability.tracing.enabled is True
    assert server.observability.tracing.endpoint == "jaeger-collector:4317"
    assert (cfg.logger.level, cfg.logger.format) == ("info", "json")
    # internal_docs is referenced but not declared: a warning, not an error.
    assert len(loaded.warnings) == 1
    assert "internal_docs" in loaded.warnings[0]


# --- tls-https-configuration.md ------------------------------------------------------------


def missing_ca(where: str, path: str = CA) -> str:
    """The warning for a CA file that does not exist on this machine (an error for `hector serve`)."""
    return (
        f"{where}: failed to read CA certificate from {path}: No such file or directory; check the "
        "path (absolute paths are safest), that the file is readable and that it is PEM"
    )


def insecure(component: str) -> str:
    return f"TLS certificate verification disabled for {component} (insecure_skip_verify=true)"


def _vector_store(loaded: LoadedConfig, name: str) -> Any:
    return loaded.config.vector_stores[name]


@expect("tls_01_weaviate_insecure.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    vs = _vector_store(loaded, "weaviate")
    assert (vs.type, vs.host, vs.port) == ("weaviate", "internal.company.com", 443)
    assert vs.enable_tls is True
    assert vs.insecure_skip_verify is True
    assert vs.ca_certificate is None
    assert loaded.warnings == [insecure("vector store weaviate (weaviate)")]


@expect("tls_02_weaviate_custom_ca.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    vs = _vector_store(loaded, "weaviate")
    assert (vs.type, vs.host, vs.port) == ("weaviate", "internal.company.com", 443)
    assert vs.enable_tls is True
    assert vs.ca_certificate == CA
    assert vs.insecure_skip_verify is False
    assert loaded.warnings == [missing_ca("vector_stores.weaviate")]


@expect("tls_03_vector_stores.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    stores = loaded.config.vector_stores
    assert {
        name: (s.type, s.host, s.port, s.enable_tls, s.insecure_skip_verify, s.ca_certificate)
        for name, s in stores.items()
    } == {
        "weaviate": ("weaviate", "internal-weaviate.company.com", 443, True, False, CA),
        "milvus": ("milvus", "internal-milvus.company.com", 443, True, False, CA),
        "chroma": ("chroma", "internal-chroma.company.com", 443, True, True, None),
    }
    assert loaded.warnings == [
        missing_ca("vector_stores.weaviate"),
        missing_ca("vector_stores.milvus"),
        insecure("vector store chroma (chroma)"),
    ]


@expect("tls_04_llm_providers.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    llms = loaded.config.llms
    assert {
        name: (llm.type, llm.model, llm.host, llm.insecure_skip_verify, llm.ca_certificate)
        for name, llm in llms.items()
    } == {
        "internal_openai": ("openai", "gpt-4", "https://internal-llm.company.com", False, CA),
        "internal_anthropic": (
            "anthropic",
            "claude-sonnet-4-20250514",
            "https://internal-anthropic.company.com",
            True,
            None,
        ),
        "remote_ollama": ("ollama", "qwen3", "https://ollama.company.com", False, CA),
    }
    assert secret(llms["internal_openai"].api_key) == env["INTERNAL_API_KEY"]
    assert secret(llms["internal_anthropic"].api_key) == env["INTERNAL_API_KEY"]
    assert llms["remote_ollama"].api_key is None
    assert loaded.warnings == [
        missing_ca("llms.internal_openai"),
        missing_ca("llms.remote_ollama"),
        insecure("LLM provider anthropic (internal_anthropic)"),
    ]


@expect("tls_05_mcp_tools.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    tool = loaded.config.tools["docling"]
    assert tool.type == "mcp"
    assert tool.enabled is True
    assert tool.server_url == "https://docling.company.com/mcp"
    assert tool.description == "Docling - Document parsing"
    assert tool.insecure_skip_verify is False
    assert tool.ca_certificate == CA
    assert loaded.warnings == [missing_ca("tools.docling")]


@expect("tls_06_a2a_agents.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    agent = loaded.config.agents["internal_agent"]
    assert agent.type == "a2a"
    assert agent.url == "https://internal-agent.company.com"
    assert agent.description == "Internal A2A agent"
    assert agent.insecure_skip_verify is False
    assert agent.ca_certificate == CA
    assert agent.credentials is not None
    assert agent.credentials.type == "bearer"
    assert secret(agent.credentials.token) == env["INTERNAL_TOKEN"]
    assert loaded.warnings == [missing_ca("agents.internal_agent")]


@expect("tls_07_scenario_internal_custom_ca.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    vs = _vector_store(loaded, "weaviate")
    assert (vs.type, vs.host, vs.port, vs.enable_tls, vs.ca_certificate) == (
        "weaviate",
        "weaviate.internal.company.com",
        443,
        True,
        CA,
    )
    llm = loaded.config.llms["internal_llm"]
    assert (llm.type, llm.host, llm.ca_certificate) == ("openai", "https://llm.internal.company.com", CA)
    assert loaded.warnings == [missing_ca("llms.internal_llm"), missing_ca("vector_stores.weaviate")]


@expect("tls_08_scenario_self_signed.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    vs = _vector_store(loaded, "weaviate")
    assert (vs.type, vs.host, vs.port) == ("weaviate", "localhost", 8443)
    assert vs.enable_tls is True
    assert vs.insecure_skip_verify is True
    assert loaded.warnings == [insecure("vector store weaviate (weaviate)")]


@expect("tls_09_scenario_mixed_public_internal.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    # Both halves use the `llms:` key; YAML keeps the last one (the internal service).
    llms = loaded.config.llms
    assert list(llms) == ["internal_llm"]
    llm = llms["internal_llm"]
    assert (llm.type, llm.host, llm.ca_certificate) == ("openai", "https://llm.internal.company.com", CA)
    assert llm.insecure_skip_verify is False
    # The user is told that the public service's entry was dropped.
    assert loaded.warnings == [given_twice("llms", 8, 2), missing_ca("llms.internal_llm")]


@expect("tls_10_fragment_ca_certificate.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    cfg = loaded.config
    assert cfg.ca_certificate == "/path/to/ca-cert.pem"
    # A top-level default: every component that does not set its own trusts that CA too.
    assert effective_tls(LLMConfig(), cfg).ca_certificate == "/path/to/ca-cert.pem"
    assert effective_tls(LLMConfig(ca_certificate=CA), cfg).ca_certificate == CA
    assert loaded.warnings == [missing_ca("top level", "/path/to/ca-cert.pem")]


@expect("tls_11_fragment_insecure_skip_verify.yaml")
def _(loaded: LoadedConfig, env: dict[str, str]) -> None:
    cfg = loaded.config
    assert cfg.insecure_skip_verify is True
    assert effective_tls(ToolConfig(), cfg).insecure_skip_verify is True
    assert effective_tls(ToolConfig(insecure_skip_verify=False), cfg).insecure_skip_verify is False
    assert len(loaded.warnings) == 1
    assert (
        "TLS certificate verification disabled by default for every outbound connection"
        in (loaded.warnings[0])
    )


# --- the tests -----------------------------------------------------------------------------


def test_fixture_set_is_complete() -> None:
    names = set(all_fixtures())
    assert sum(n.startswith("security_") for n in names) == 25
    assert sum(n.startswith("tls_") for n in names) == 11
    assert names == set(EXPECT) | FRAGMENTS, "every whole example needs its own meaning checks"
    readme = (SEEDS_DIR / "README.md").read_text(encoding="utf-8")
    assert all(n in readme for n in names), "list every fixture in tests/fixtures/seeds/README.md"


@pytest.mark.parametrize("name", all_fixtures())
def test_seed_example_loads_with_its_meaning(name: str, seed_env: dict[str, str]) -> None:
    path = SEEDS_DIR / name
    loaded = load_config(path)
    assert loaded.source == str(path)
    EXPECT[name](loaded, seed_env)
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert_no_key_dropped(raw, loaded.config)


@pytest.mark.parametrize("name", all_fixtures())
def test_seed_example_passes_hector_validate(
    name: str, seed_env: dict[str, str], isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = SEEDS_DIR / name
    assert main(["validate", str(path)]) == 0
    # Compare with whitespace normalised: the console may wrap a long path onto two lines.
    assert f"{path}: valid" in " ".join(capsys.readouterr().out.split())

    assert main(["validate", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is True
    assert report["file"] == str(path)
    assert report["errors"] == []
    assert report["warnings"] == load_config(path).warnings


@pytest.mark.parametrize("name", sorted(FRAGMENTS))
def test_tls_fragment_is_valid_in_every_tls_component(name: str) -> None:
    fragment = yaml.safe_load((SEEDS_DIR / name).read_text(encoding="utf-8"))
    assert isinstance(fragment, dict)
    assert len(fragment) == 1
    data = {
        "llms": {"l": {"type": "openai", **fragment}},
        "vector_stores": {"v": {"type": "weaviate", "enable_tls": True, **fragment}},
        "tools": {"t": {"type": "mcp", "server_url": "https://mcp.example.com/mcp", **fragment}},
        "agents": {"a": {"type": "a2a", "url": "https://agent.example.com", **fragment}},
        "embedders": {"e": {"type": "openai", **fragment}},
    }
    cfg = parse_config(data, name).config
    components = [cfg.llms["l"], cfg.vector_stores["v"], cfg.tools["t"], cfg.agents["a"], cfg.embedders["e"]]
    for key, value in fragment.items():
        for component in components:
            assert getattr(component, key) == value, f"{type(component).__name__}.{key}"
