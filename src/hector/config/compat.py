"""The Go original's ``global`` section, read as the seed's ``server`` (SPEC §2.12: accept both).

``global.a2a_server`` holds the listening settings, ``global.auth`` the three JWT settings (auth
is on when they are given) and ``global.observability`` the metrics and tracing switches. They
are moved under ``server`` before validation, so every later check and ``--print-config`` see
the canonical keys; giving a setting both ways is an error.
"""

from __future__ import annotations

from typing import Any

_A2A_SERVER = ("host", "port", "base_url", "preferred_transport", "grpc_port")
_AUTH = ("jwks_url", "issuer", "audience")
# global.observability.tracing key → server.observability.tracing key
_TRACING = {
    "enabled": "enabled",
    "exporter_type": "exporter",
    "endpoint_url": "endpoint",
    "sampling_rate": "sampling_rate",
    "service_name": "service_name",
}


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping of keys")
    return value


def _move(source: dict[str, Any], keys: dict[str, str], target: dict[str, Any], where: str, to: str) -> None:
    unknown = sorted(set(source) - set(keys))
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: unknown key (accepted: {', '.join(keys)})")
    for key, canonical in keys.items():
        if key not in source:
            continue
        if canonical in target:
            raise ValueError(f"give either {to}.{canonical} or {where}.{key}, not both")
        target[canonical] = source[key]


def _section(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    section = dict(_mapping(parent.get(key), where))
    parent[key] = section
    return section


def merge_global(data: dict[str, Any]) -> dict[str, Any]:
    """*data* with its ``global`` section moved under ``server``."""
    if "global" not in data:
        return data
    out = dict(data)
    legacy = _mapping(out.pop("global"), "global")
    unknown = sorted(set(legacy) - {"a2a_server", "auth", "observability"})
    if unknown:
        raise ValueError(
            f"global.{unknown[0]}: not supported (global takes a2a_server, auth and observability; "
            "prefer the server section)"
        )
    server = _section(out, "server", "server")
    a2a = _mapping(legacy.get("a2a_server"), "global.a2a_server")
    _move(a2a, {k: k for k in _A2A_SERVER}, server, "global.a2a_server", "server")
    if "auth" in legacy:
        jwt = _mapping(legacy["auth"], "global.auth")
        auth = _section(server, "auth", "server.auth")
        _move(jwt, {k: k for k in _AUTH}, auth, "global.auth", "server.auth")
        # The original turned auth on by giving these; an incomplete set is then refused.
        if any(jwt.get(k) for k in _AUTH):
            auth.setdefault("enabled", True)
    observability = dict(_mapping(legacy.get("observability"), "global.observability"))
    if observability:
        target = _section(server, "observability", "server.observability")
        if "enable_metrics" in observability:
            metrics = _section(target, "metrics", "server.observability.metrics")
            if "enabled" in metrics:
                raise ValueError(
                    "give either server.observability.metrics.enabled or "
                    "global.observability.enable_metrics, not both"
                )
            metrics["enabled"] = observability.pop("enable_metrics")
        tracing = _mapping(observability.pop("tracing", None), "global.observability.tracing")
        if observability:
            raise ValueError(f"global.observability.{sorted(observability)[0]}: unknown key")
        if tracing:
            to = _section(target, "tracing", "server.observability.tracing")
            _move(tracing, _TRACING, to, "global.observability.tracing", "server.observability.tracing")
    return out
