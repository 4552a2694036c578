"""The `hector` command line."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
import yaml

import hector.cli.sdk_spans  # noqa: F401  # first: a2a-sdk reads its setting when imported
from hector import __version__
from hector.cli import remote
from hector.cli.options import DEFAULT_URL, AgentOpt, ConfigOpt, TokenOpt, UrlOpt, err, out
from hector.cli.render import Printer
from hector.cli.tasks import task_app
from hector.cli.zeroconfig import zero_config
from hector.config import load_config, load_env_files, parse_config
from hector.config.secrets import printable
from hector.errors import AgentNotFoundError, ConfigError, ConfigLoadError, HectorError

app = typer.Typer(
    name="hector",
    help="Declare AI agents in YAML and serve them over A2A.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(task_app, name="task")


@app.command()
def version() -> None:
    """Print Hector's version."""
    out.print(f"Hector version {__version__}")


def _stage(exc: ConfigError) -> str:
    """``load``: the file could not be read as YAML; ``process``: what it says is wrong."""
    return "load" if isinstance(exc, ConfigLoadError) else "process"


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="YAML configuration file.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="compact | verbose | json")] = "compact",
    print_config: Annotated[
        bool, typer.Option("--print-config", "-p", help="Print the expanded config.")
    ] = False,
) -> None:
    """Check a configuration file; exit 0 when valid, 1 when not."""
    if fmt not in ("compact", "verbose", "json"):
        raise typer.BadParameter("must be compact, verbose or json", param_hint="--format")
    try:
        loaded = load_config(config)
    except ConfigError as exc:
        if fmt == "json":
            out.print_json(
                json.dumps(
                    {
                        "valid": False,
                        "file": str(config),
                        "errors": [{"type": _stage(exc), "message": exc.message}],
                    }
                )
            )
        else:
            err.print(exc.message, markup=False)
        raise typer.Exit(1) from None
    if fmt == "json":
        result: dict[str, object] = {
            "valid": True,
            "file": str(config),
            "errors": [],
            "warnings": loaded.warnings,
        }
        if print_config:
            result["config"] = printable(loaded.config)
        out.print_json(json.dumps(result))
        return
    for warning in loaded.warnings:
        err.print(f"warning: {warning}", markup=False)
    if fmt == "verbose":
        cfg = loaded.config
        out.print(f"{config}: valid ({len(cfg.agents)} agents, {len(cfg.llms)} llms, {len(cfg.tools)} tools)")
    else:
        out.print(f"{config}: valid", markup=False)
    if print_config:
        dumped = yaml.safe_dump(printable(loaded.config), sort_keys=False)
        out.print(
            f"# Expanded configuration of {config}\n# Secrets are shown as **********\n{dumped}", markup=False
        )


@app.command()
def serve(
    agent: Annotated[str, typer.Argument(help="Name of the zero-config agent.")] = "assistant",
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default: server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: server.port, 8080).")] = None,
    provider: Annotated[str | None, typer.Option(help="openai | anthropic | gemini | ollama | test")] = None,
    model: Annotated[str | None, typer.Option(help="Model name.")] = None,
    api_key: Annotated[str | None, typer.Option(help="Provider API key (prefer the env var).")] = None,
    base_url: Annotated[str | None, typer.Option(help="Provider base URL.")] = None,
    instruction: Annotated[str | None, typer.Option(help="The agent's instruction.")] = None,
    tools: Annotated[
        str | None, typer.Option(help="Comma-separated tool names, or `all` (every built-in tool).")
    ] = None,
    docs_folder: Annotated[
        Path | None, typer.Option(help="Index this folder and give the agent a `search` tool over it.")
    ] = None,
    embedder: Annotated[
        str | None, typer.Option(help="Embedder for --docs-folder: local (default), ollama, openai, cohere.")
    ] = None,
    embedder_model: Annotated[
        str | None, typer.Option(help="Embedding model for --docs-folder (alone: an Ollama model).")
    ] = None,
    mcp_url: Annotated[
        str | None, typer.Option(help="MCP server whose tools the agent gets (env MCP_URL): source `mcp`.")
    ] = None,
    mcp_parser_tool: Annotated[
        str | None,
        typer.Option(help="Comma-separated MCP tools parsing --docs-folder's .pdf .docx .pptx .xlsx .html."),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option(envvar="LOG_LEVEL", help="debug | info | warn | error")
    ] = None,
    log_format: Annotated[str | None, typer.Option(envvar="LOG_FORMAT", help="text | json")] = None,
    auth_jwks_url: Annotated[
        str | None, typer.Option(help="JWKS URL (with --auth-issuer, --auth-audience).")
    ] = None,
    auth_issuer: Annotated[str | None, typer.Option(help="Expected JWT issuer (iss).")] = None,
    auth_audience: Annotated[str | None, typer.Option(help="Expected JWT audience (aud).")] = None,
    config_watch: Annotated[
        bool, typer.Option("--config-watch", help="Apply changes to the --config file while serving.")
    ] = False,
    auth_required: Annotated[
        bool, typer.Option("--auth-required/--no-auth-required", help="Refuse unauthenticated requests.")
    ] = True,
) -> None:
    """Serve the configured agents over A2A (JSON-RPC, HTTP+JSON, SSE)."""
    from hector.cli.serve import serve as run_server

    flags = {
        "provider": provider,
        "model": model,
        "api_key": api_key,
        "base_url": base_url,
        "instruction": instruction,
        "tools": [t.strip() for t in tools.split(",") if t.strip()] if tools else None,
        "docs_folder": docs_folder,
        "embedder": embedder,
        "embedder_model": embedder_model,
        "mcp_url": mcp_url,
        "mcp_parser_tool": [t.strip() for t in (mcp_parser_tool or "").split(",") if t.strip()] or None,
    }
    auth = {"jwks_url": auth_jwks_url, "issuer": auth_issuer, "audience": auth_audience}
    if config is not None:
        named = {
            **flags,
            "auth_jwks_url": auth_jwks_url,
            "auth_issuer": auth_issuer,
            "auth_audience": auth_audience,
        }
        given = [f"--{k.replace('_', '-')}" for k, v in named.items() if v]
        if given:
            raise ConfigError(f"--config cannot be combined with zero-config flags: {', '.join(given)}")
        loaded = load_config(config)
    else:
        data = zero_config(agent=agent, **flags)  # type: ignore[arg-type]
        auth_warning = None
        if all(auth.values()):
            data["server"] = {"auth": {"enabled": True, "require_auth": auth_required, **auth}}
        elif any(auth.values()):
            auth_warning = (
                "--auth-jwks-url, --auth-issuer and --auth-audience must all be given; "
                "authentication is DISABLED"
            )
        loaded = parse_config(data, "<zero-config>")
        if auth_warning:
            loaded.warnings.append(auth_warning)
        if config_watch:
            raise ConfigError("--config-watch needs --config: there is no file to watch in zero-config mode")
    run_server(loaded, host, port, log_level, log_format, watch=config_watch)


@app.command()
def index(
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML configuration file.")],
    store: Annotated[
        list[str] | None, typer.Option("--store", "-s", help="Only this document store (repeatable).")
    ] = None,
) -> None:
    """Index the configured document stores now (`hector serve` also does it at start-up)."""
    from hector.cli.indexing import index_stores

    reports = asyncio.run(index_stores(config, store or [], err))
    for name, r in reports.items():
        out.print(
            f"{name}: {r.added} added, {r.updated} updated, {r.removed} removed, {r.unchanged} unchanged, "
            f"{r.chunks} chunks embedded" + (f", {r.failed} failed to parse" if r.failed else ""),
            markup=False,
        )


async def _call_local(config: Path, agent: str | None, message: str, session: str, printer: Printer) -> None:
    from hector.assembly import build_runtime

    loaded = await asyncio.to_thread(load_config, config)
    runtime = build_runtime(loaded.config, loaded.base_dir)
    if agent is None:
        if len(runtime.agents) != 1:
            raise AgentNotFoundError(f"--agent is required: this config has agents {sorted(runtime.agents)}")
        agent = next(iter(runtime.agents))
    if agent not in runtime.agents:
        raise AgentNotFoundError(f"agent {agent!r} not found (available: {sorted(runtime.agents)})")
    async with runtime:
        async for event in runtime.agents[agent].agent.run_stream(message, context_id=session, user="cli"):
            printer.local(event)


async def _call(
    target: remote.Target | None,
    config: Path | None,
    agent: str | None,
    message: str,
    session: str,
    stream: bool,
    printer: Printer,
    task_id: str | None = None,
) -> None:
    if target is None:
        assert config is not None
        await _call_local(config, agent, message, session, printer)
        return
    async for event in remote.send(target, message, session, stream, task_id):
        printer.remote(event)


def _target(
    url: str | None, config: Path | None, agent: str | None, token: str | None
) -> remote.Target | None:
    if url is None and config is not None:
        return None
    return remote.Target(url or DEFAULT_URL, agent, token)


@app.command()
def call(
    message: Annotated[str, typer.Argument(help="The message to send.")],
    agent: AgentOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    session: Annotated[
        str | None, typer.Option(envvar="HECTOR_SESSION", help="Conversation id (contextId).")
    ] = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream", help="Stream the answer.")] = True,
    config: ConfigOpt = None,
    show_tools: Annotated[bool, typer.Option("--show-tools/--no-show-tools")] = True,
) -> None:
    """Send one message to an agent (on a server, or in-process with --config) and print the answer."""
    printer = Printer(show_tools)
    target = _target(url, config, agent, token)
    asyncio.run(
        _call(target, config, agent, message, session or f"cli-call-{int(time.time())}", stream, printer)
    )
    printer.end()
    if printer.waiting:
        name = agent or "<agent>"
        err.print(
            f"task {printer.task_id} is waiting for your answer: "
            f"hector task approve {name} {printer.task_id}  (or: hector task deny ...)"
        )
    if not printer.ok:
        raise typer.Exit(1)


@app.command()
def chat(
    agent: AgentOpt = None,
    url: UrlOpt = None,
    token: TokenOpt = None,
    session: Annotated[
        str | None, typer.Option(envvar="HECTOR_SESSION", help="Resume this conversation.")
    ] = None,
    stream: Annotated[bool, typer.Option("--stream/--no-stream")] = True,
    config: ConfigOpt = None,
) -> None:
    """Talk with an agent; `exit`, `/quit` or Ctrl-D ends. The session id is printed to resume later."""
    session = session or f"cli-chat-{int(time.time())}"
    target = _target(url, config, agent, token)
    err.print(f"[dim]session {session} — resume with --session {session}; type /exit to quit[/dim]")
    waiting_task: str | None = None
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            err.print()
            return
        if line.strip() in ("exit", "/exit", "/quit", "quit"):
            return
        if not line.strip():
            continue
        printer = Printer()
        try:
            asyncio.run(_call(target, config, agent, line, session, stream, printer, waiting_task))
        except HectorError as exc:
            err.print(f"[red]error:[/red] {exc.message}")
        printer.end()
        # A task that asked a question (e.g. approve a tool call?) gets the next line as answer.
        waiting_task = printer.task_id if printer.waiting else None


@app.command("list")
def list_agents(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """List the agents a server exposes to you."""
    cards = asyncio.run(remote.list_agents(remote.Target(url or DEFAULT_URL, None, token)))
    for card in cards:
        interfaces = card.get("supportedInterfaces") or [{"url": card.get("url", "")}]
        out.print(
            f"[bold]{card.get('name')}[/bold]  {card.get('description', '')}\n  {interfaces[0].get('url')}"
        )


@app.command()
def info(agent: Annotated[str, typer.Argument()], url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Print an agent's card."""
    out.print_json(json.dumps(asyncio.run(remote.get_card(remote.Target(url or DEFAULT_URL, agent, token)))))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code instead of exiting (for tests)."""
    load_env_files()
    try:
        # Standalone mode lets typer report usage errors (exit 2) and --help itself; it ends
        # with SystemExit, which carries the exit code.
        app(args=list(argv) if argv is not None else None, prog_name="hector", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except HectorError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        return 1
    return 0


def run() -> None:
    sys.exit(main())
