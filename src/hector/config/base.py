"""The base of every configuration model: strict, frozen, with alias keys."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator


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
    """Outbound TLS options, shared by every component that opens connections.

    At the top level of the configuration they are the defaults of every such component; see
    ``hector.config.tls.effective_tls``.
    """

    insecure_skip_verify: bool = False
    ca_certificate: str | None = None
    """A PEM file of CAs trusted in addition to the system store."""
    client_certificate: str | None = None
    """A PEM certificate (optionally with its key) presented for mutual TLS."""
    client_key: str | None = None
    min_tls_version: Literal["1.2", "1.3"] | None = None
    """Default 1.2; older versions are never offered."""

    @field_validator("min_tls_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        # YAML reads `min_tls_version: 1.2` as a number.
        return str(value) if isinstance(value, float) else value

    @model_validator(mode="after")
    def _key_needs_certificate(self) -> TLSClientOptions:
        if self.client_key and not self.client_certificate:
            raise ValueError("client_key is given without client_certificate; give both for mutual TLS")
        return self
