"""Secrets inside plain configuration strings, and the configuration as ``--print-config`` shows it.

Secret fields are ``SecretStr``. A few plain values can carry a secret too: a URL with a password
(a pgvector ``url`` such as ``postgresql://user:pass@db/vectors``, an LLM ``host``, an agent
``url``) or a secret-named query parameter (``?api_key=…``), and the free-form maps whose entries
the user names: an MCP server's ``env`` (``GITHUB_TOKEN: …``) and an API endpoint's ``params``.
``printable`` masks them all; ``config_secrets`` hands them to the log filter.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

MASK = "**********"
"""As pydantic shows a ``SecretStr``."""

_SECRET_NAME = re.compile(r"key|token|secret|passw|pwd|auth|credential|signature", re.IGNORECASE)
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)
NAMED_VALUE_MAPS = ("env", "params")
"""Fields whose entries are named by the user: a secret-looking name marks a secret value."""


def secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def _url_secrets(url: str) -> tuple[str | None, list[str]]:
    """The password of *url* and its secret-named query values, as written (not decoded)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return None, []
    values = [
        value
        for name, _, value in (pair.partition("=") for pair in parts.query.split("&"))
        if value and secret_name(name)
    ]
    return password, values


def _mask_url(match: re.Match[str]) -> str:
    url = match.group(0)
    password, values = _url_secrets(url)
    if password is None and not values:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{host}"
    query = "&".join(
        f"{name}={MASK}" if value and secret_name(name) else f"{name}{sep}{value}"
        for name, sep, value in (pair.partition("=") for pair in parts.query.split("&"))
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query if parts.query else ""))


def mask_text(text: str) -> str:
    """*text* with the password and secret-named query values of each URL in it masked."""
    return _URL.sub(_mask_url, text) if "://" in text else text


def secrets_in_text(text: str) -> list[str]:
    found: list[str] = []
    for match in _URL.finditer(text):
        password, values = _url_secrets(match.group(0))
        found += ([password] if password else []) + values
    return found


def config_secrets(node: Any) -> set[str]:
    """Every secret of a configuration tree: ``SecretStr`` values and those inside plain strings."""
    found: set[str] = set()
    if isinstance(node, SecretStr):
        found.add(node.get_secret_value())
    elif isinstance(node, str):
        found.update(secrets_in_text(node))
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            value = getattr(node, name)
            if name in NAMED_VALUE_MAPS and isinstance(value, dict):
                found.update(str(v) for k, v in value.items() if secret_name(str(k)) and _scalar(v))
            found |= config_secrets(value)
    elif isinstance(node, dict):
        for value in node.values():
            found |= config_secrets(value)
    elif isinstance(node, list | tuple):
        for value in node:
            found |= config_secrets(value)
    return found


_WRITTEN = ("api_key", "token", "password", "pass")
"""Keys whose value is a secret wherever they appear (``api_keys`` holds a list of them)."""


def written_secrets(data: Any, where: str = "") -> list[str]:
    """Key paths of secrets written into the file itself rather than taken from ``${VAR}``: the
    seed's "Bad - Hardcoded secret" (a file gets copied, committed and shared; the environment
    does not). *data* is the file as parsed, before expansion."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            path = f"{where}.{key}" if where else str(key)
            if key in _WRITTEN and _written(value):
                found.append(path)
            elif key == "api_keys" and isinstance(value, list):
                found += [f"{path}[{i}]" for i, item in enumerate(value) if _written(item)]
            else:
                found += written_secrets(value, path)
    elif isinstance(data, list):
        for i, item in enumerate(data):
            found += written_secrets(item, f"{where}[{i}]")
    return found


def _written(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and "${" not in value


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool) and str(value) != ""


def _masked(node: Any, model: Any) -> Any:
    """The dump *node* of *model* with plain-string secrets masked (``SecretStr`` already are)."""
    if isinstance(node, str):
        return mask_text(node)
    if isinstance(node, list):
        items = model if isinstance(model, list | tuple) else [None] * len(node)
        return [_masked(n, m) for n, m in zip(node, items, strict=False)]
    if not isinstance(node, dict):
        return node
    if isinstance(model, BaseModel):
        out = {}
        for name, info in type(model).model_fields.items():
            key = info.alias or name
            if key not in node:
                continue
            value = getattr(model, name)
            if name in NAMED_VALUE_MAPS and isinstance(value, dict):
                out[key] = {
                    k: MASK if secret_name(str(k)) and _scalar(v) else _masked(v, None)
                    for k, v in node[key].items()
                }
            else:
                out[key] = _masked(node[key], value)
        return out
    entries = model if isinstance(model, dict) else {}
    return {k: _masked(v, entries.get(k)) for k, v in node.items()}


def printable(cfg: BaseModel) -> dict[str, Any]:
    """*cfg* as JSON-compatible data with every secret masked, for ``hector validate --print-config``."""
    dumped: dict[str, Any] = _masked(cfg.model_dump(mode="json", by_alias=True), cfg)
    return dumped
