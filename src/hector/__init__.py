"""Hector: declare AI agents in YAML and serve them over A2A."""

from __future__ import annotations

__version__ = "0.1.0"
