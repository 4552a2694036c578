"""Human approval of tool calls: the pending record, the prompt, and reading a decision."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from hector.errors import HectorError
from hector.messages import ChatMessage, ToolCall

Decision = Literal["approve", "deny"]
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_MAX_VALUE = 500


class ApprovalError(HectorError):
    default_message = "approval failed"


@dataclass(frozen=True)
class PendingApproval:
    """A model step whose tool calls wait for a person to approve or deny them."""

    id: str
    agent_id: str
    task_id: str
    context_id: str
    owner: str
    step: ChatMessage
    """The assistant message carrying every tool call of the step."""
    calls: tuple[ToolCall, ...]
    """The calls of the step that need approval."""
    prompt: str
    created_at: float
    expires_at: float


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _MAX_VALUE else text[:_MAX_VALUE] + "…"


def format_prompt(template: str | None, call: ToolCall) -> str:
    """Fill ``{arg}`` (and ``{tool}``, ``{input}``, ``{file}`` for ``path``) from the call; unknown
    names stay as written.

    A plain substitution rather than ``str.format``: the template must not be able to reach
    attributes of the values (``{x.__class__}``) or fail on stray braces.
    """
    if not template:
        return (
            "🔐 Tool Approval Required\n\n"
            f"Tool: {call.name}\nInput: {_shown(call.arguments)}\n\n"
            "Please respond with: approve or deny"
        )
    values = {"tool": call.name, "input": _shown(call.arguments)}
    if "path" in call.arguments:
        # The seed's write_file example asks "Allow writing to {file}?"; the file tools call it path.
        values["file"] = _shown(call.arguments["path"])
    values.update({k: _shown(v) for k, v in call.arguments.items()})
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


APPROVE_WORDS = {"approve", "approved", "yes", "y", "allow", "ok"}
DENY_WORDS = {"deny", "denied", "no", "n", "reject", "rejected"}


def parse_decision(data: list[dict[str, Any]], text: str) -> Decision | None:
    """A data part ``{"decision": "approve"|"deny"}`` wins; else the text ``approve``/``deny``
    (or yes/no). Anything else is no decision: the task keeps waiting rather than guessing."""
    for item in data:
        decision = str(item.get("decision", "")).strip().lower()
        if decision in APPROVE_WORDS:
            return "approve"
        if decision in DENY_WORDS:
            return "deny"
    word = text.strip().lower().rstrip(".!")
    if word in APPROVE_WORDS:
        return "approve"
    if word in DENY_WORDS:
        return "deny"
    return None
