"""`hector validate` catches what would otherwise fail at start-up or leave a server open, and
never shows a secret, even one written inside a plain string."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from hector.cli import main
from hector.config import load_config
from hector.security.redact import RedactingFilter, collect_secrets

WriteConfig = Callable[..., Path]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def test_trusted_proxies_must_be_addresses_or_networks(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Accepted by validate before, then `hector serve` died with a traceback.
    path = write_config("server:\n  trusted_proxies: [10.0.0.5, nginx.internal, 172.16.0.0/12, '::1']\n")
    code, out, err = run(capsys, "validate", str(path))
    assert code == 1
    assert "valid" not in out
    assert f"{path}: invalid configuration:" in err
    assert "server.trusted_proxies: not IP addresses or networks: ['nginx.internal']" in err
    assert "10.0.0.0/8" in err  # shows the expected form

    path = write_config("server:\n  trusted_proxies: [10.0.0.5, 172.16.0.0/12, '::1']\n")
    assert run(capsys, "validate", str(path))[0] == 0


@pytest.mark.parametrize(
    ("auth", "named"),
    [
        (
            "    jwks_url: https://auth.example.com/.well-known/jwks.json\n"
            "    issuer: https://auth.example.com/\n    audience: api\n",
            "jwks_url, issuer, audience",
        ),
        ("    api_keys: [key-0123456789]\n", "api_keys"),
    ],
)
def test_credentials_without_enabled_warn_that_auth_is_off(
    auth: str, named: str, write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config("server:\n  auth:\n" + auth)
    code, _, err = run(capsys, "validate", str(path))
    assert code == 0
    assert f"warning: server.auth: {named} set but enabled is not, so authentication is OFF" in err
    assert "add enabled: true" in err
    assert load_config(path).config.server.auth.enabled is False

    # Saying so either way silences it.
    for enabled in ("true", "false"):
        path = write_config(f"server:\n  auth:\n    enabled: {enabled}\n" + auth)
        assert "authentication is OFF" not in run(capsys, "validate", str(path))[2]


PLAIN_SECRETS = (
    "pgpass-0001",
    "llmpass-0002",
    "a2apass-0003",
    "ghp_token_0004",
    "qsecret-0005",
    "psecret-0006",
)
PLAIN_SECRETS_YAML = """\
llms:
  l: {type: openai, api_key: sk-0000000, host: "https://proxy-user:llmpass-0002@llm.example.com/v1"}
vector_stores:
  v: {type: pgvector, url: "postgresql://hector:pgpass-0001@db:5432/vectors"}
tools:
  gh:
    type: mcp
    command: npx
    args: [server-github]
    env: {GITHUB_TOKEN: ghp_token_0004, LOG_LEVEL: debug}
  remote: {type: mcp, server_url: "https://mcp.example.com/mcp?region=eu&api_key=qsecret-0005"}
agents:
  a: {llm: l}
  ext: {type: a2a, url: "https://bob:a2apass-0003@agent.example.com"}
document_stores:
  d:
    source: api
    api:
      base_url: https://api.example.com
      endpoints: [{path: /items, params: {api_key: psecret-0006, limit: 50}}]
"""


@pytest.mark.parametrize("fmt", ["compact", "json"])
def test_print_config_masks_secrets_inside_plain_strings(
    fmt: str, write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(PLAIN_SECRETS_YAML)
    code, out, err = run(capsys, "validate", str(path), "--print-config", "--format", fmt)
    assert code == 0
    for secret in PLAIN_SECRETS:
        assert secret not in out + err
    text = out if fmt == "compact" else json.dumps(json.loads(out)["config"])
    # Only the secret part goes: the rest still shows what the configuration says.
    for shown in (
        "postgresql://hector:**********@db:5432/vectors",
        "https://proxy-user:**********@llm.example.com/v1",
        "https://bob:**********@agent.example.com",
        "https://mcp.example.com/mcp?region=eu&api_key=**********",
        "LOG_LEVEL",
        "debug",
        "limit",
    ):
        assert shown in text, shown


def test_secrets_inside_plain_strings_are_kept_out_of_logs(write_config: WriteConfig) -> None:
    cfg = load_config(write_config(PLAIN_SECRETS_YAML)).config
    secrets = collect_secrets(cfg)
    assert set(PLAIN_SECRETS) <= secrets
    assert "debug" not in secrets and "hector" not in secrets
    record = logging.LogRecord(
        "hector.test", logging.INFO, __file__, 1, "connecting to %s", (cfg.vector_stores["v"].url,), None
    )
    RedactingFilter(secrets).filter(record)
    assert record.getMessage() == "connecting to postgresql://hector:[REDACTED]@db:5432/vectors"


def test_vector_store_tls_options_warn_where_they_apply_and_where_they_do_not(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        "vector_stores:\n"
        # TLS options without enable_tls: the connection is plain, the options are dead letters.
        "  plain: {type: weaviate, host: weaviate.internal, port: 8080, insecure_skip_verify: true}\n"
        "  local: {type: embedded, min_tls_version: '1.3'}\n"
        # Pinecone is https unless enable_tls: false, so skipping verification matters there.
        "  cone: {type: pinecone, api_key: '${HECTOR_TEST_CONE_KEY:-k}', index_name: docs,"
        " insecure_skip_verify: true}\n"
        "  secure: {type: weaviate, host: weaviate.internal, enable_tls: true, insecure_skip_verify: true}\n"
    )
    code, _, err = run(capsys, "validate", str(path))
    assert code == 0
    assert (
        "warning: vector_stores.plain: insecure_skip_verify has no effect: its connections are not "
        "TLS; set enable_tls: true (or give an https:// url)"
    ) in err
    assert "warning: vector_stores.local: min_tls_version has no effect: the embedded store opens no" in err
    for component in ("vector store pinecone (cone)", "vector store weaviate (secure)"):
        assert f"TLS certificate verification disabled for {component} (insecure_skip_verify=true)" in err
    assert "vector store weaviate (plain)" not in err
    assert "vector_stores.secure" not in err and "vector_stores.cone" not in err


def test_a_key_given_twice_is_reported_with_its_lines(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        "agents:\n  a:\n    tools: [read_file]\n    description: x\n    tools: [write_file]\n"
        "llms:\n  l: {type: test}\n"
    )
    code, _, err = run(capsys, "validate", str(path))
    assert code == 0
    assert "warning: line 5: key 'tools' is given twice in one mapping (first at line 3)" in err
    assert load_config(path).config.agents["a"].tools == ["write_file"]


def test_chunk_strategy_is_not_silently_ignored(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config("document_stores:\n  docs: {path: ., chunk_strategy: semantic}\n")
    code, _, err = run(capsys, "validate", str(path))
    assert code == 0
    assert "warning: document store 'docs': chunk_strategy semantic is accepted for compatibility only" in err
    path = write_config("document_stores:\n  docs: {path: ., chunk_strategy: simple, chunk_overlap: 50}\n")
    assert "chunk_strategy" not in run(capsys, "validate", str(path))[2]


def test_sql_database_is_not_silently_ignored(
    write_config: WriteConfig, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(
        "document_stores:\n  rows:\n    source: sql\n    sql: {conn: 'sqlite:///rows.db'}\n"
        "    sql_database: main\n    sql_tables: [{table: t, id_column: id, columns: [body]}]\n"
    )
    code, _, err = run(capsys, "validate", str(path))
    assert code == 0
    assert "warning: document store 'rows': sql_database is ignored: the database is the one sql.conn" in err


def test_a_file_that_is_not_utf8_is_a_clear_error(
    tmp_path: Path, isolated_cwd: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("agents:\n  a: {description: caf\u00e9}\n".encode("latin-1"))
    code, out, _ = run(capsys, "validate", str(path), "--format", "json")
    assert code == 1
    message = json.loads(out)["errors"][0]["message"]
    assert message == f"{path}: not UTF-8 text (byte 30 cannot be decoded); save the file as UTF-8"
