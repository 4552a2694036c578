"""Behaviour of configuration loading and of `hector validate`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hector.cli import main
from hector.config import BUILTIN_TOOLS, Config, LoadedConfig, load_config, load_env_files, parse_config
from hector.errors import ConfigError, EnvVarError

WriteConfig = Callable[..., Path]
Unset = Callable[..., None]


def config_error(data: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "test.yaml")
    return info.value.message


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def squash(text: str) -> str:
    """Text without any whitespace: a console may wrap long lines anywhere."""
    return "".join(text.split())


# --- ${VAR} expansion ----------------------------------------------------------------------


def test_variable_is_expanded_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HECTOR_CFGTEST_KEY", "sk-from-env")
    monkeypatch.setenv("HECTOR_CFGTEST_HOST", "llm.internal")
    cfg = parse_config(
        {
            "llms": {
                "main": {"api_key": "${HECTOR_CFGTEST_KEY}", "host": "https://${HECTOR_CFGTEST_HOST}:8443/v1"}
            }
        }
    ).config
    llm = cfg.llms["main"]
    assert llm.api_key is not None
    assert llm.api_key.get_secret_value() == "sk-from-env"
    assert llm.host == "https://llm.internal:8443/v1"


@pytest.mark.parametrize("state", ["unset", "empty"])
def test_default_is_used_when_variable_is_unset_or_empty(
    state: str, monkeypatch: pytest.MonkeyPatch, unset_env: Unset
) -> None:
    if state == "unset":
        unset_env("HECTOR_CFGTEST_MODEL")
    else:
        monkeypatch.setenv("HECTOR_CFGTEST_MODEL", "")
    cfg = parse_config({"llms": {"main": {"model": "${HECTOR_CFGTEST_MODEL:-gpt-4o-mini}"}}}).config
    assert cfg.llms["main"].model == "gpt-4o-mini"


def test_set_variable_wins_over_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HECTOR_CFGTEST_MODEL", "gpt-4o")
    cfg = parse_config({"llms": {"main": {"model": "${HECTOR_CFGTEST_MODEL:-gpt-4o-mini}"}}}).config
    assert cfg.llms["main"].model == "gpt-4o"


def test_empty_default_gives_empty_string(unset_env: Unset) -> None:
    unset_env("HECTOR_CFGTEST_DESC")
    cfg = parse_config({"agents": {"a": {"description": "x${HECTOR_CFGTEST_DESC:-}y"}}}).config
    assert cfg.agents["a"].description == "xy"


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"llms": {"main": {"api_key": "${HECTOR_CFGTEST_MISSING}"}}}, "llms.main.api_key"),
        ({"agents": {"a": {"tools": ["search", "${HECTOR_CFGTEST_MISSING}"]}}}, "agents.a.tools[1]"),
        ({"server": {"auth": {"issuer": "https://${HECTOR_CFGTEST_MISSING}/"}}}, "server.auth.issuer"),
    ],
)
def test_unset_variable_without_default_names_variable_and_key(
    data: dict[str, Any], path: str, unset_env: Unset
) -> None:
    unset_env("HECTOR_CFGTEST_MISSING")
    with pytest.raises(EnvVarError) as info:
        parse_config(data, "test.yaml")
    assert isinstance(info.value, ConfigError)
    message = info.value.message
    assert "HECTOR_CFGTEST_MISSING" in message
    assert message.startswith(f"test.yaml: invalid configuration:\n  {path}:")
    assert "${HECTOR_CFGTEST_MISSING:-default}" in message  # tells the user how to give a default


def test_every_unset_variable_is_reported_at_once(unset_env: Unset) -> None:
    unset_env("HECTOR_CFGTEST_MISSING", "HECTOR_CFGTEST_MISSING2")
    data = {
        "llms": {"a": {"api_key": "${HECTOR_CFGTEST_MISSING}", "host": "https://${HECTOR_CFGTEST_MISSING2}"}}
    }
    message = config_error(data)
    assert "llms.a.api_key: environment variable 'HECTOR_CFGTEST_MISSING' is not set" in message
    assert "llms.a.host: environment variable 'HECTOR_CFGTEST_MISSING2' is not set" in message


def test_unset_variable_fails_validate(
    write_config: WriteConfig, unset_env: Unset, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unset_env("HECTOR_CFGTEST_MISSING")
    path = write_config("llms:\n  main:\n    api_key: ${HECTOR_CFGTEST_MISSING}\n")
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert "HECTOR_CFGTEST_MISSING" in err
    assert squash(f"{path}: invalid configuration: llms.main.api_key: environment variable") in squash(err)

    code, out, _ = run_cli(capsys, "validate", str(path), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["valid"] is False
    assert "HECTOR_CFGTEST_MISSING" in report["errors"][0]["message"]
    assert report["errors"][0]["type"] == "process"


def test_variable_in_a_yaml_comment_is_ignored(write_config: WriteConfig, unset_env: Unset) -> None:
    unset_env("HECTOR_CFGTEST_MISSING")
    path = write_config("llms:\n  main:\n    # api_key: ${HECTOR_CFGTEST_MISSING}\n    model: gpt-4o\n")
    assert load_config(path).config.llms["main"].model == "gpt-4o"


@pytest.mark.parametrize(
    "value",
    ["a: b\n- c", "x\nagents:\n  evil:\n    visibility: public", "{evil: 1}", "[1, 2]", "&anchor *alias"],
)
def test_expanded_value_cannot_inject_yaml_structure(
    value: str, monkeypatch: pytest.MonkeyPatch, write_config: WriteConfig
) -> None:
    monkeypatch.setenv("HECTOR_CFGTEST_INJECT", value)
    path = write_config(
        "agents:\n  a:\n"
        "    instruction: ${HECTOR_CFGTEST_INJECT}\n"
        "    description: '${HECTOR_CFGTEST_INJECT}'\n"
    )
    cfg = load_config(path).config
    assert list(cfg.agents) == ["a"]
    assert cfg.agents["a"].instruction == value
    assert cfg.agents["a"].description == value


def test_expanded_value_is_not_expanded_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HECTOR_CFGTEST_OUTER", "${HECTOR_CFGTEST_INNER}")
    monkeypatch.setenv("HECTOR_CFGTEST_INNER", "secret-inner")
    cfg = parse_config({"agents": {"a": {"instruction": "${HECTOR_CFGTEST_OUTER}"}}}).config
    assert cfg.agents["a"].instruction == "${HECTOR_CFGTEST_INNER}"


def test_keys_are_not_expanded(monkeypatch: pytest.MonkeyPatch, unset_env: Unset) -> None:
    monkeypatch.setenv("HECTOR_CFGTEST_NAME", "renamed")
    unset_env("HECTOR_CFGTEST_MISSING")
    cfg = parse_config({"agents": {"${HECTOR_CFGTEST_NAME}": {}, "${HECTOR_CFGTEST_MISSING}": {}}}).config
    assert sorted(cfg.agents) == ["${HECTOR_CFGTEST_MISSING}", "${HECTOR_CFGTEST_NAME}"]


def test_expanded_strings_are_converted_to_the_field_type(
    monkeypatch: pytest.MonkeyPatch, unset_env: Unset
) -> None:
    unset_env("HECTOR_CFGTEST_PORT")
    monkeypatch.setenv("HECTOR_CFGTEST_AUTH", "true")
    cfg = parse_config(
        {
            "server": {
                "port": "${HECTOR_CFGTEST_PORT:-9090}",
                "auth": {"enabled": "${HECTOR_CFGTEST_AUTH}", "api_keys": ["k"]},
            }
        }
    ).config
    assert cfg.server.port == 9090
    assert cfg.server.auth.enabled is True


# --- .env files ----------------------------------------------------------------------------


def test_env_files_are_loaded_without_overriding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unset_env: Unset
) -> None:
    unset_env("HECTOR_CFGTEST_BOTH", "HECTOR_CFGTEST_ONLY_ENV", "HECTOR_CFGTEST_ONLY_LOCAL")
    monkeypatch.setenv("HECTOR_CFGTEST_PRESET", "from-process")
    (tmp_path / ".env").write_text(
        "HECTOR_CFGTEST_BOTH=from-env\nHECTOR_CFGTEST_ONLY_ENV=env-only\nHECTOR_CFGTEST_PRESET=from-env\n"
    )
    (tmp_path / ".env.local").write_text(
        "HECTOR_CFGTEST_BOTH=from-local\nHECTOR_CFGTEST_ONLY_LOCAL=local-only\nHECTOR_CFGTEST_PRESET=from-local\n"
    )

    loaded = load_env_files(tmp_path)

    assert loaded == [tmp_path / ".env.local", tmp_path / ".env"]
    assert os.environ["HECTOR_CFGTEST_BOTH"] == "from-local"  # .env.local is read first and wins
    assert os.environ["HECTOR_CFGTEST_ONLY_ENV"] == "env-only"
    assert os.environ["HECTOR_CFGTEST_ONLY_LOCAL"] == "local-only"
    assert os.environ["HECTOR_CFGTEST_PRESET"] == "from-process"  # the real environment wins


def test_no_env_files_is_fine(tmp_path: Path) -> None:
    assert load_env_files(tmp_path) == []


def test_validate_reads_dotenv_from_working_directory(
    isolated_cwd: Path, write_config: WriteConfig, unset_env: Unset, capsys: pytest.CaptureFixture[str]
) -> None:
    unset_env("HECTOR_CFGTEST_MODEL")
    (isolated_cwd / ".env").write_text("HECTOR_CFGTEST_MODEL=model-from-dotenv\n")
    path = write_config("llms:\n  main:\n    model: ${HECTOR_CFGTEST_MODEL}\n")
    code, out, _ = run_cli(capsys, "validate", str(path), "--format", "json", "--print-config")
    assert code == 0
    assert json.loads(out)["config"]["llms"]["main"]["model"] == "model-from-dotenv"


# --- aliases -------------------------------------------------------------------------------

ALIASES = [
    # (path to the section, alias, canonical key, value)
    (("llms", "x"), "provider", "type", "anthropic"),
    (("llms", "x"), "base_url", "host", "https://llm.example.com"),
    (("embedders", "e"), "provider", "type", "openai"),
    (("embedders", "e"), "base_url", "host", "https://embed.example.com"),
    (("agents", "a"), "system_prompt", "instruction", "Be brief."),
    (("tools", "write_file"), "requires_approval", "require_approval", True),
    (("tools", "write_file"), "enable_approval", "require_approval", True),
    (("vector_stores", "v"), "use_tls", "enable_tls", True),
    (("server", "observability", "tracing"), "endpoint_url", "endpoint", "collector:4317"),
    (("document_stores", "d"), "path", "source_path", "./docs"),
]
ALIAS_IDS = [f"{'.'.join(p)}.{alias}" for p, alias, _, _ in ALIASES]


def nest(path: tuple[str, ...], leaf: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = leaf
    for part in reversed(path):
        data = {part: data}
    return data


def dig(cfg: Config, path: tuple[str, ...]) -> Any:
    node: Any = cfg
    for part in path:
        node = node[part] if isinstance(node, dict) else getattr(node, part)
    return node


@pytest.mark.parametrize(("path", "alias", "canonical", "value"), ALIASES, ids=ALIAS_IDS)
def test_alias_sets_the_canonical_key(path: tuple[str, ...], alias: str, canonical: str, value: Any) -> None:
    cfg = parse_config(nest(path, {alias: value})).config
    assert getattr(dig(cfg, path), canonical) == value


@pytest.mark.parametrize(("path", "alias", "canonical", "value"), ALIASES, ids=ALIAS_IDS)
def test_alias_and_canonical_together_is_an_error(
    path: tuple[str, ...], alias: str, canonical: str, value: Any
) -> None:
    message = config_error(nest(path, {alias: value, canonical: value}))
    assert f"{'.'.join(path)}: give either {canonical!r} or its alias {alias!r}, not both" in message


def test_both_approval_aliases_together_is_an_error() -> None:
    message = config_error({"tools": {"t": {"requires_approval": True, "enable_approval": True}}})
    assert "tools.t: give either 'require_approval'" in message


def test_agent_prompt_system_prompt_is_not_the_instruction() -> None:
    cfg = parse_config({"agents": {"a": {"prompt": {"system_prompt": "P"}, "instruction": "I"}}}).config
    assert cfg.agents["a"].instruction == "I"
    assert cfg.agents["a"].prompt.system_prompt == "P"


# --- unknown keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where", "suggestion"),
    [
        ({"agents": {"a": {"instructon": "x"}}}, "agents.a.instructon", "instruction"),
        ({"server": {"auth": {"requre_auth": True}}}, "server.auth.requre_auth", "require_auth"),
        ({"server": {"rate_limit": {"enabled": True}}}, "server.rate_limit", "rate_limiting"),
        ({"llms": {"x": {"modle": "gpt-4o"}}}, "llms.x.modle", "model"),
        ({"tools": {"t": {"allowed_command": ["ls"]}}}, "tools.t.allowed_command", "allowed_commands"),
        ({"agent": {}}, "agent", "agents"),
        (
            {"vector_stores": {"v": {"insecure_skip_verfy": True}}},
            "vector_stores.v.insecure_skip_verfy",
            "insecure_skip_verify",
        ),
        (
            {"server": {"observability": {"tracing": {"endpont": "x"}}}},
            "server.observability.tracing.endpont",
            "endpoint",
        ),
        ({"server": {"cors": {"allowed_origin": ["*"]}}}, "server.cors.allowed_origin", "allowed_origins"),
        # Alternative spellings and YAML names that differ from the field's are suggested too.
        ({"llms": {"x": {"provder": "openai"}}}, "llms.x.provder", "provider"),
        (
            {"agents": {"a": {"structured_output": {"schema": {}, "schem": 1}}}},
            "agents.a.structured_output.schem",
            "schema",
        ),
        # An entry named like a key of its section ("tools") is still an entry.
        ({"agents": {"tools": {"visiblity": "public"}}}, "agents.tools.visiblity", "visibility"),
        (
            {"document_stores": {"d": {"sql_tables": [{"tabel": "t"}]}}},
            "document_stores.d.sql_tables.0.tabel",
            "table",
        ),
    ],
)
def test_unknown_key_names_path_and_suggests(data: dict[str, Any], where: str, suggestion: str) -> None:
    message = config_error(data)
    assert f"{where}: unknown key (did you mean {suggestion!r}?)" in message
    assert message.startswith("test.yaml: invalid configuration")


def test_unknown_key_without_close_match_has_no_suggestion() -> None:
    message = config_error({"server": {"zzzqqq": 1}})
    assert "server.zzzqqq: unknown key; remove it or check the spelling" in message
    assert "did you mean" not in message


def test_every_unknown_key_is_reported_at_once() -> None:
    message = config_error({"agents": {"a": {"instructon": "x"}}, "llms": {"x": {"modle": "m"}}})
    assert "agents.a.instructon" in message
    assert "llms.x.modle" in message


def test_missing_key_and_wrong_kind_say_what_to_do() -> None:
    message = config_error({"server": {"tls": {"cert_file": "c.pem"}}, "agents": {"a": "helper", "b": None}})
    assert "server.tls.key_file: required key is missing; add it" in message
    assert "agents.a: expected a mapping of keys, got text" in message
    assert "Input should be" not in message


# --- values --------------------------------------------------------------------------------


def test_invalid_visibility_message() -> None:
    message = config_error({"agents": {"a": {"visibility": "secret"}}})
    assert (
        "agents.a.visibility: invalid visibility 'secret' (must be 'public', 'internal', or 'private')"
        in message
    )


def test_visibility_defaults_to_public() -> None:
    assert parse_config({"agents": {"a": {}}}).config.agents["a"].visibility == "public"


def test_invalid_choice_shows_the_given_value() -> None:
    message = config_error({"logger": {"level": "loud"}})
    assert "logger.level:" in message
    assert "'loud'" in message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("30s", 30.0), ("15m", 900.0), ("1h", 3600.0), ("1m30s", 90.0), ("500ms", 0.5), (45, 45.0), (2.5, 2.5)],
)
def test_durations(value: Any, seconds: float) -> None:
    cfg = parse_config(
        {
            "tools": {"t": {"type": "command", "max_execution_time": value}},
            "server": {"task_lease_interval": value},
        }
    ).config
    assert cfg.tools["t"].max_execution_time == seconds
    assert cfg.server.task_lease_interval == seconds


@pytest.mark.parametrize("value", ["abc", "30x", "", True, -5, "-5s"])
def test_invalid_duration(value: Any) -> None:
    message = config_error({"tools": {"t": {"type": "command", "max_execution_time": value}}})
    assert "tools.t.max_execution_time:" in message
    assert "duration" in message


def test_jwks_refresh_interval_is_at_least_a_minute() -> None:
    # Every refresh is a request to the issuer: 0 would make every authenticated request one.
    for value in (0, "30s"):
        message = config_error({"server": {"auth": {"refresh_interval": value}}})
        assert "server.auth.refresh_interval: must be at least 1m" in message
    assert (
        parse_config({"server": {"auth": {"refresh_interval": "1m"}}}).config.server.auth.refresh_interval
        == 60
    )


@pytest.mark.parametrize(
    ("value", "size"),
    [("10MiB", 10 * 1024 * 1024), ("512KB", 512_000), ("1GiB", 1024**3), ("64kib", 64 * 1024), (2048, 2048)],
)
def test_sizes(value: Any, size: int) -> None:
    cfg = parse_config(
        {
            "server": {"max_body_size": value},
            "tools": {"t": {"handler": "write_file", "max_file_size": value}},
        }
    ).config
    assert cfg.server.max_body_size == size
    assert cfg.tools["t"].max_file_size == size


def test_invalid_size() -> None:
    message = config_error({"server": {"max_body_size": "lots"}})
    assert "server.max_body_size: invalid size 'lots'" in message


def test_comma_separated_string_lists() -> None:
    cfg = parse_config({"tools": {"t": {"type": "command", "allowed_commands": "ls, cat ,grep"}}}).config
    assert cfg.tools["t"].allowed_commands == ["ls", "cat", "grep"]


def test_api_keys_drop_empty_strings(monkeypatch: pytest.MonkeyPatch, unset_env: Unset) -> None:
    unset_env("HECTOR_CFGTEST_KEY2")
    monkeypatch.setenv("HECTOR_CFGTEST_KEY1", "real-key")
    loaded = parse_config(
        {
            "server": {
                "auth": {
                    "enabled": True,
                    "api_keys": ["${HECTOR_CFGTEST_KEY1}", "${HECTOR_CFGTEST_KEY2:-}", "", "   "],
                }
            }
        }
    )
    assert [k.get_secret_value() for k in loaded.config.server.auth.api_keys] == ["real-key"]
    assert loaded.warnings == []


def test_only_empty_api_keys_leave_auth_without_credentials(unset_env: Unset) -> None:
    unset_env("HECTOR_CFGTEST_KEY2")
    loaded = parse_config({"server": {"auth": {"enabled": True, "api_keys": ["${HECTOR_CFGTEST_KEY2:-}"]}}})
    assert loaded.config.server.auth.api_keys == []
    assert any("401" in w for w in loaded.warnings)


def test_incomplete_jwt_without_api_keys_is_rejected() -> None:
    message = config_error({"server": {"auth": {"enabled": True, "jwks_url": "https://a/jwks.json"}}})
    assert "server.auth: incomplete JWT configuration, missing issuer, audience" in message


def test_jwt_settings_are_ignored_when_auth_is_disabled() -> None:
    loaded = parse_config({"server": {"auth": {"enabled": False, "jwks_url": "https://a/jwks.json"}}})
    assert loaded.warnings == []


def test_empty_sections_are_empty() -> None:
    cfg = parse_config(yaml.safe_load("agents:\nllms:\ntools:\n")).config
    assert (cfg.agents, cfg.llms, cfg.tools) == ({}, {}, {})


def test_empty_scalar_top_level_keys_stay_none() -> None:
    cfg = parse_config(yaml.safe_load("version:\nname:\ndescription:\nserver:\n")).config
    assert (cfg.version, cfg.name, cfg.description) == (None, None, None)
    assert cfg.server.port == 8080


def test_config_is_frozen() -> None:
    cfg = parse_config({"agents": {"a": {}}}).config
    with pytest.raises(ValueError, match="frozen"):
        cfg.agents["a"].visibility = "private"


# --- cross references ----------------------------------------------------------------------


def test_unknown_llm() -> None:
    message = config_error({"llms": {"b": {}, "a": {}}, "agents": {"x": {"llm": "y"}}})
    assert "agent 'x': llm 'y' not found (available: ['a', 'b'])" in message


def test_unknown_tool_lists_declared_and_builtin_tools() -> None:
    message = config_error(
        {"tools": {"mine": {"handler": "read_file"}}, "agents": {"x": {"tools": ["search", "nope"]}}}
    )
    assert "agent 'x': tool 'nope' not found (available: [" in message
    assert "'mine'" in message
    assert all(repr(t) in message for t in BUILTIN_TOOLS)


def test_builtin_and_declared_tools_resolve() -> None:
    cfg = parse_config(
        {"tools": {"mine": {"handler": "read_file"}}, "agents": {"x": {"tools": ["mine", *BUILTIN_TOOLS]}}}
    ).config
    assert cfg.agents["x"].tools == ["mine", *BUILTIN_TOOLS]


def test_unknown_sub_agent() -> None:
    message = config_error({"agents": {"x": {"sub_agents": ["ghost"]}, "helper": {}}})
    assert "agent 'x': sub-agent 'ghost' not found (available: ['helper', 'x'])" in message


def test_agent_cannot_be_its_own_sub_agent() -> None:
    assert "agent 'x': an agent cannot be its own sub-agent" in config_error(
        {"agents": {"x": {"sub_agents": ["x"]}}}
    )


def test_unknown_session_store() -> None:
    message = config_error({"session_stores": {"db": {}}, "agents": {"x": {"session_store": "other"}}})
    assert "agent 'x': session_store 'other' not found (available: ['db'])" in message


def test_declared_session_store_resolves() -> None:
    cfg = parse_config(
        {"session_stores": {"db": {"backend": "memory"}}, "agents": {"x": {"session_store": "db"}}}
    )
    assert cfg.config.agents["x"].session_store == "db"


def test_unknown_defaults() -> None:
    message = config_error({"defaults": {"llm": "nope"}, "llms": {"a": {}}})
    assert "defaults: llm 'nope' not found (available: ['a'])" in message


def test_unknown_document_store_backends() -> None:
    message = config_error({"document_stores": {"docs": {"vector_store": "vs", "embedder": "emb"}}})
    assert "document store 'docs': vector_store 'vs' not found (available: [])" in message
    assert "document store 'docs': embedder 'emb' not found (available: [])" in message


def test_external_agent_rules() -> None:
    message = config_error({"llms": {"l": {}}, "agents": {"ext": {"type": "a2a", "llm": "l"}}})
    assert "agent 'ext': url is required for external A2A agents" in message
    assert "agent 'ext': llm should not be specified for external A2A agents" in message


def test_every_reference_error_is_reported_at_once() -> None:
    message = config_error({"agents": {"x": {"llm": "y", "tools": ["nope"], "sub_agents": ["ghost"]}}})
    assert "llm 'y'" in message
    assert "tool 'nope'" in message
    assert "sub-agent 'ghost'" in message


# --- files ---------------------------------------------------------------------------------


def test_yaml_syntax_error_gives_line_and_column(write_config: WriteConfig) -> None:
    path = write_config("llms:\n  x:\n    type: openai\n   model: gpt\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message.startswith(f"{path}: YAML syntax error at line 4, column 4:")


def test_yaml_syntax_error_in_validate(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config("agents:\n  a:\n    tools: [a, b\n")
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert "YAML syntax error at line" in " ".join(err.split())


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.message.startswith(f"{path}: file not found")


def test_top_level_must_be_a_mapping(write_config: WriteConfig) -> None:
    path = write_config("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(path)


def test_empty_file_is_an_empty_config(write_config: WriteConfig) -> None:
    loaded = load_config(write_config(""))
    assert isinstance(loaded, LoadedConfig)
    assert loaded.config.agents == {}
    assert loaded.warnings == []


def test_json_is_yaml(write_config: WriteConfig) -> None:
    path = write_config(json.dumps({"agents": {"a": {"visibility": "internal"}}}), name="hector.json")
    assert load_config(path).config.agents["a"].visibility == "internal"


# --- secrets -------------------------------------------------------------------------------

CANARY = "sk-canary-XYZ123"
SECRETS_YAML = f"""\
llms:
  main:
    type: openai
    model: visible-model-name
    api_key: {CANARY}-llm
  from_env:
    api_key: ${{HECTOR_CFGTEST_SECRET}}
embedders:
  e:
    api_key: {CANARY}-embedder
vector_stores:
  v:
    api_key: {CANARY}-vector
tools:
  mcp:
    type: mcp
    url: https://mcp.example.com
    headers:
      Authorization: Bearer {CANARY}-mcp
agents:
  ext:
    type: a2a
    url: https://agent.example.com
    credentials:
      type: bearer
      token: {CANARY}-token
      password: {CANARY}-password
      api_key: {CANARY}-credkey
session_stores:
  db:
    url: postgresql+asyncpg://hector:{CANARY}-db@db.example.com/hector
server:
  auth:
    enabled: true
    api_keys:
      - {CANARY}-auth1
      - {CANARY}-auth2
  observability:
    tracing:
      headers:
        x-api-key: {CANARY}-tracing
"""
SECRET_COUNT = 12


@pytest.fixture
def secrets_config(write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch, isolated_cwd: Path) -> Path:
    monkeypatch.setenv("HECTOR_CFGTEST_SECRET", f"{CANARY}-env")
    return write_config(SECRETS_YAML)


@pytest.mark.parametrize("fmt", ["compact", "verbose"])
def test_print_config_masks_secrets(
    fmt: str, secrets_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "validate", str(secrets_config), "--format", fmt, "--print-config")
    assert code == 0
    assert "visible-model-name" in out  # the config really was printed
    assert out.count("'**********'") == SECRET_COUNT  # quoted YAML values, not the header line
    assert "canary" not in squash(out + err).lower()


def test_json_print_config_masks_secrets(secrets_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "validate", str(secrets_config), "--format", "json", "--print-config")
    assert code == 0
    assert "canary" not in squash(out + err).lower()
    config = json.loads(out)["config"]
    mask = "**********"
    assert config["llms"]["main"]["model"] == "visible-model-name"
    assert config["llms"]["main"]["api_key"] == mask
    assert config["llms"]["from_env"]["api_key"] == mask
    assert config["session_stores"]["db"]["url"] == mask
    assert config["server"]["auth"]["api_keys"] == [mask, mask]
    assert config["agents"]["ext"]["credentials"]["token"] == mask
    assert config["tools"]["mcp"]["headers"] == {"Authorization": mask}
    assert config["server"]["observability"]["tracing"]["headers"] == {"x-api-key": mask}


def test_secrets_are_kept_in_memory(secrets_config: Path) -> None:
    cfg = load_config(secrets_config).config
    assert cfg.llms["main"].api_key is not None
    assert cfg.llms["main"].api_key.get_secret_value() == f"{CANARY}-llm"
    assert cfg.llms["from_env"].api_key is not None
    assert cfg.llms["from_env"].api_key.get_secret_value() == f"{CANARY}-env"
    assert cfg.session_stores["db"].url is not None
    assert CANARY in cfg.session_stores["db"].url.get_secret_value()
    assert CANARY not in repr(cfg)


@pytest.mark.parametrize(
    "text",
    [
        f"server:\n  auth:\n    enabled: true\n    api_keys: {CANARY}\n    nope: 1\n",
        f"llms:\n  main:\n    api_key: [{CANARY}]\n",
        f"session_stores:\n  db:\n    url: {{x: {CANARY}}}\n",
    ],
)
@pytest.mark.parametrize("fmt", ["compact", "json"])
def test_errors_do_not_echo_secrets(
    text: str, fmt: str, write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(text)
    code, out, err = run_cli(capsys, "validate", str(path), "--format", fmt)
    assert code == 1
    assert "invalid configuration" in out + err
    assert "canary" not in squash(out + err).lower()


# --- hector validate -----------------------------------------------------------------------

VALID = (
    "llms:\n  main:\n    model: m\ntools:\n  mine: {handler: read_file}\n"
    "agents:\n  a:\n    llm: main\n  b: {}\n"
)
WARNS = "server:\n  auth:\n    enabled: true\n"
INVALID = "agents:\n  a:\n    llm: nope\n    instructon: x\n"


def test_validate_valid_file(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(VALID)
    code, out, err = run_cli(capsys, "validate", str(path))
    assert code == 0
    assert " ".join(out.split()) == f"{path}: valid"
    assert err == ""


def test_validate_verbose_counts(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(VALID)
    code, out, _ = run_cli(capsys, "validate", str(path), "--format", "verbose")
    assert code == 0
    assert "valid (2 agents, 1 llms, 1 tools)" in " ".join(out.split())


def test_validate_prints_warnings_to_stderr(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(WARNS)
    code, out, err = run_cli(capsys, "validate", str(path))
    assert code == 0
    assert "valid" in out
    assert err.startswith("warning: server.auth:")


def test_validate_invalid_file(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(INVALID)
    code, out, err = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert "valid" not in out
    flat = " ".join(err.split())
    assert "agents.a.instructon: unknown key (did you mean 'instruction'?)" in flat


def test_validate_missing_file(
    tmp_path: Path, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.yaml"
    code, _, err = run_cli(capsys, "validate", str(path))
    assert code == 1
    assert "file not found" in err

    code, out, _ = run_cli(capsys, "validate", str(path), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["valid"] is False
    assert "file not found" in report["errors"][0]["message"]
    assert report["errors"][0]["type"] == "load"  # the file could not be read, as for bad YAML:
    path.write_text("llms: [unclosed\n")
    code, out, _ = run_cli(capsys, "validate", str(path), "--format", "json")
    assert code == 1
    assert json.loads(out)["errors"][0]["type"] == "load"


def test_validate_json_valid(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(VALID)
    code, out, err = run_cli(capsys, "validate", str(path), "--format", "json")
    assert code == 0
    assert err == ""
    assert json.loads(out) == {"valid": True, "file": str(path), "errors": [], "warnings": []}


def test_validate_json_warnings(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(WARNS)
    code, out, err = run_cli(capsys, "validate", str(path), "--format", "json")
    assert code == 0
    assert err == ""
    report = json.loads(out)
    assert report["valid"] is True
    assert len(report["warnings"]) == 1
    assert report["warnings"][0].startswith("server.auth:")


def test_validate_json_invalid(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(INVALID)
    code, out, err = run_cli(capsys, "validate", str(path), "--format", "json")
    assert code == 1
    assert err == ""
    report = json.loads(out)
    assert set(report) == {"valid", "file", "errors"}
    assert report["valid"] is False
    assert report["file"] == str(path)
    assert len(report["errors"]) == 1
    assert "agents.a.instructon: unknown key" in report["errors"][0]["message"]
    assert report["errors"][0]["type"] == "process"


def test_validate_json_print_config(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(VALID)
    code, out, _ = run_cli(capsys, "validate", str(path), "--format", "json", "--print-config")
    assert code == 0
    config = json.loads(out)["config"]
    assert config["agents"]["a"]["llm"] == "main"
    assert config["agents"]["b"]["visibility"] == "public"  # defaults are filled in
    assert Config.model_validate(config).agents["a"].llm == "main"


def test_validate_print_config_is_yaml(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(VALID)
    code, out, _ = run_cli(capsys, "validate", str(path), "--print-config")
    assert code == 0
    printed = yaml.safe_load(out.split("\n", 1)[1])  # after the "path: valid" line
    assert printed["agents"]["a"]["llm"] == "main"
    assert printed["llms"]["main"]["model"] == "m"


def test_validate_print_config_keeps_long_values_intact(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A console must not wrap the output at the terminal width: that would change the value.
    host = "https://llm.example.com/" + "x" * 300
    path = write_config(f"llms:\n  main:\n    host: {host}\n")
    code, out, _ = run_cli(capsys, "validate", str(path), "--print-config")
    assert code == 0
    assert yaml.safe_load(out.split("\n", 1)[1])["llms"]["main"]["host"] == host


def test_validate_bad_format_is_a_usage_error(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(VALID)
    code, _, err = run_cli(capsys, "validate", str(path), "--format", "xml")
    assert code == 2
    assert "--format" in err
