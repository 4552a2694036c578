"""The base of every configuration model: strict, frozen, with alias keys."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator


class Section(BaseModel):
    """A configuration section.

    Unknown keys are errors. ``aliases`` maps another accepted spelling (the Go original's
    names) to the canonical, seed-given key; giving both spellings is an error.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    aliases: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _apply_aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not cls.aliases:
            return data
        out = dict(data)
        for alias, canonical in cls.aliases.items():
            if alias in out:
                if canonical in out:
                    raise ValueError(f"give either {canonical!r} or its alias {alias!r}, not both")
                out[canonical] = out.pop(alias)
        return out


class TLSClientOptions(Section):
    """Outbound TLS options, shared by every component that opens connections."""

    insecure_skip_verify: bool = False
    ca_certificate: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    min_tls_version: str | None = None
