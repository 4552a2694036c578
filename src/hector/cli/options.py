"""Options and consoles shared by the CLI's commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML configuration file.")]
UrlOpt = Annotated[str | None, typer.Option("--url", envvar="HECTOR_URL", help="A2A server URL.")]
TokenOpt = Annotated[
    str | None, typer.Option("--token", envvar="HECTOR_TOKEN", help="Bearer token or API key.")
]
AgentOpt = Annotated[str | None, typer.Option("--agent", "-a", help="Agent name on the server.")]
DEFAULT_URL = "http://127.0.0.1:8080"
