"""Small value types for configuration: durations, sizes, secrets."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: Any) -> float:
    """``30s``, ``15m``, ``1h``, ``500ms`` or a bare number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 15m or 1h")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        # Go-style compound durations ("1m30s") are accepted too.
        parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", value.replace(" ", ""))
        if parts and "".join(n + u for n, u in parts) == value.replace(" ", ""):
            return sum(float(n) * _UNITS[u] for n, u in parts)
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNITS[match.group(2)]
    raise ValueError(f"invalid duration {value!r}: expected a number of seconds or e.g. 30s, 15m, 1h")


def parse_size(value: Any) -> int:
    """``10MiB``, ``512KB`` or a bare number of bytes → bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 10MiB")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            unit = match.group(2).lower() if match.group(2) else None
            return int(float(match.group(1)) * _SIZE_UNITS[unit])
    raise ValueError(f"invalid size {value!r}: expected bytes or e.g. 512KiB, 10MiB")


def _placeholder(value: Any) -> Any:
    # The seed's Cognito example writes `audience: {clientId}`, which YAML reads as a one-key
    # mapping. Read it back as the placeholder string the author meant.
    if isinstance(value, dict) and len(value) == 1 and next(iter(value.values())) is None:
        return "{" + str(next(iter(value))) + "}"
    return value


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
PlaceholderStr = Annotated[str, BeforeValidator(_placeholder)]
StrList = Annotated[list[str], BeforeValidator(_comma_list)]
