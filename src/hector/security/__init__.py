"""Authentication, access decisions, rate limiting and secret redaction for the HTTP server."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.authentication import BaseUser

from hector.errors import HectorError


class AuthError(HectorError):
    """A credential was presented and is not valid. The message is safe to show the client."""

    default_message = "invalid credentials"


@dataclass(frozen=True)
class Principal:
    """Who made a request, once authenticated."""

    subject: str
    method: Literal["jwt", "api_key"]
    claims: dict[str, Any] = field(default_factory=dict)

    @property
    def display(self) -> str:
        return str(self.claims.get("email") or self.subject)


class HectorUser(BaseUser):
    """A ``Principal`` in Starlette's shape, so a2a-sdk's call context sees the user."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.subject

    @property
    def identity(self) -> str:
        return self.principal.subject
