"""Keeps configured secrets out of log output, whatever code path tries to log them."""

from __future__ import annotations

import logging
from typing import Any

from hector.config.secrets import config_secrets

MASK = "[REDACTED]"
MIN_SECRET_LENGTH = 6  # shorter values would mask ordinary words


def collect_secrets(node: Any) -> set[str]:
    """Every secret of a configuration tree long enough to mask: ``SecretStr`` values, and those of
    plain strings (URL passwords, secret-named ``env``/``params`` entries; see
    ``hector.config.secrets``)."""
    return {s for s in config_secrets(node) if len(s) >= MIN_SECRET_LENGTH}


class RedactingFilter(logging.Filter):
    """Replaces known secret values in a record's message, arguments and extra fields."""

    def __init__(self, secrets: set[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted(secrets, key=len, reverse=True)

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        record.msg = self._clean(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if isinstance(value, str) and key not in ("msg", "name", "levelname", "pathname", "filename"):
                setattr(record, key, self._clean(value))
        return True
