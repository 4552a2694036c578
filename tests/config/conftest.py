"""Fixtures for the configuration tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

SEEDS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "seeds"

# Every environment variable the seed examples name, with a recognisable test value.
SEED_ENV = {
    "OPENAI_API_KEY": "sk-test-openai-0001",
    "ANTHROPIC_API_KEY": "sk-ant-test-0002",
    "AUTH0_DOMAIN": "tenant.eu.auth0.com",
    "AUTH0_AUDIENCE": "https://api.example.com",
    "API_KEY_1": "key-abc123",
    "API_KEY_2": "key-def456",
    "SERVICE_API_KEY": "svc-key-789",
    "INTERNAL_API_KEY": "internal-key-321",
    "INTERNAL_TOKEN": "internal-token-654",
}


@pytest.fixture
def seed_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Set the variables the seed examples use (after any autouse clean-up has run)."""
    for name, value in SEED_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(SEED_ENV)


@pytest.fixture
def isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory, so the CLI's automatic .env loading finds nothing."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def unset_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Make sure variables are unset now and restored (to unset) after the test.

    ``load_dotenv`` writes to ``os.environ`` behind monkeypatch's back; setting then deleting
    through monkeypatch records the original state so the undo removes whatever was loaded.
    """

    def unset(*names: str) -> None:
        for name in names:
            monkeypatch.setenv(name, "placeholder")
            monkeypatch.delenv(name)

    return unset


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write YAML text to a file under tmp_path and return its path."""

    def write(text: str, name: str = "hector.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
