// One exchange in the chat (the user's message and everything the agent did about it), built
// from A2A stream events by a pure function so the rendering stays simple and testable.

import type { Message, Part, StreamResponse, Task, TaskStatus } from "./api";

export type Item =
  | { kind: "text"; text: string; artifactId?: string }
  | {
      kind: "tool";
      id: string;
      name: string;
      args: unknown;
      result?: string;
      isError?: boolean;
      /** The task ended (canceled, failed) while the call was still running. */
      stopped?: boolean;
    }
  | {
      kind: "approval";
      approvalId: string;
      prompt: string;
      tool: string;
      input: unknown;
      decided?: "approve" | "deny";
    }
  | { kind: "status"; text: string };

export interface Turn {
  key: string;
  user: string;
  contextId: string;
  taskId?: string;
  /** Lower-case A2A state: submitted, working, input-required, completed, failed, ... */
  state: string;
  items: Item[];
  error?: string;
  /** Why the task stopped when the user stopped it (not an error: shown in grey). */
  canceled?: string;
  streaming: boolean;
}

const FINISHED = new Set(["completed", "failed", "canceled", "rejected"]);
const BAD_ENDINGS = new Set(["failed", "rejected", "auth-required"]);

export function stateName(state: string | undefined): string {
  return (state ?? "unknown").replace(/^TASK_STATE_/, "").toLowerCase().replace(/_/g, "-");
}

export function isFinished(state: string): boolean {
  return FINISHED.has(state);
}

export function newTurn(key: string, user: string, contextId: string): Turn {
  return { key, user, contextId, state: "submitted", items: [], streaming: true };
}

export function textOf(parts: Part[] | undefined): string {
  return (parts ?? [])
    .map((p) => p.text)
    .filter((t): t is string => typeof t === "string")
    .join("");
}

function tagged(message: Message | undefined, eventType: string): Record<string, unknown> | undefined {
  const part = message?.parts?.find((p) => p.metadata?.event_type === eventType && p.data);
  return part?.data as Record<string, unknown> | undefined;
}

/** Whether the turn shows an answer: text after its last tool call (text before one is what
 *  the agent said on the way). */
function hasAnswer(items: Item[]): boolean {
  for (let n = items.length - 1; n >= 0 && items[n].kind !== "tool"; n--) {
    const item = items[n];
    if (item.kind === "text" && item.text) return true;
  }
  return false;
}

/** What the agent said before a tool call, which the call's status message carries (so a stored
 *  task keeps it): it takes the place of the same text streamed since the last call, so it shows
 *  once, or comes before the call when it did not stream (a reload, a non-streaming agent). */
function withNarration(items: Item[], text: string): Item[] {
  for (let n = items.length - 1; n >= 0 && items[n].kind !== "tool"; n--) {
    const item = items[n];
    if (item.kind === "text") return items.map((i, m) => (m === n ? { ...item, text } : i));
  }
  return [...items, { kind: "text", text }];
}

/** A text chunk of *artifactId*: it extends or replaces the text shown last when that is the
 *  same artifact, and starts a new paragraph after tool calls (the final answer replaces the
 *  artifact with the last reply only, and must not take the place of what came before a tool). */
function withArtifactText(items: Item[], artifactId: string, text: string, append: boolean): Item[] {
  const last = items[items.length - 1];
  if (last?.kind === "text" && last.artifactId === artifactId) {
    return [...items.slice(0, -1), { ...last, text: append ? last.text + text : text }];
  }
  return text ? [...items, { kind: "text", text, artifactId }] : items;
}

function withStatus(turn: Turn, status: TaskStatus): Turn {
  const state = stateName(status.state);
  const message = status.message;
  let items = turn.items;
  const call = tagged(message, "tool_call");
  const result = tagged(message, "tool_result");
  const approval = tagged(message, "approval_request");
  if (call) {
    const said = textOf(message?.parts);
    if (said.trim()) items = withNarration(items, said);
    items = [...items, { kind: "tool", id: String(call.id), name: String(call.name), args: call.arguments }];
  } else if (result) {
    const id = String(result.tool_call_id);
    const found = items.some((i) => i.kind === "tool" && i.id === id);
    const done = { result: String(result.content ?? ""), isError: Boolean(result.is_error) };
    items = found
      ? items.map((i) => (i.kind === "tool" && i.id === id ? { ...i, ...done } : i))
      : [...items, { kind: "tool", id, name: String(result.name), args: undefined, ...done }];
  } else if (approval) {
    const item: Item = {
      kind: "approval",
      approvalId: String(approval.approval_id ?? ""),
      prompt: textOf(message?.parts),
      tool: String(approval.tool_name ?? ""),
      input: approval.tool_input,
    };
    // Asked again (the answer was unclear): the open question is replaced, not repeated.
    const open = items.findIndex((i) => i.kind === "approval" && !i.decided && i.approvalId === item.approvalId);
    items = open >= 0 ? items.map((i, n) => (n === open ? item : i)) : [...items, item];
  } else if (message && state === "working") {
    const text = textOf(message.parts);
    if (text) items = [...items, { kind: "status", text }];
  }
  let error = turn.error;
  let canceled = turn.canceled;
  if (BAD_ENDINGS.has(state)) {
    error = textOf(message?.parts) || `The task ended: ${state}`;
  } else if (state === "canceled") {
    canceled = textOf(message?.parts) || "Canceled.";
  } else if (state === "completed" && !hasAnswer(items)) {
    // An answer that came only as the status message (no streamed artifact).
    const text = textOf(message?.parts);
    if (text) items = [...items, { kind: "text", text }];
  }
  if (isFinished(state)) {
    // A call that never reported back will not now: it no longer shows as running.
    items = items.map((i) => (i.kind === "tool" && i.result === undefined ? { ...i, stopped: true } : i));
  }
  return { ...turn, state, items, error, canceled };
}

export function applyEvent(turn: Turn, event: StreamResponse): Turn {
  if (event.task) {
    const next = { ...turn, taskId: event.task.id, contextId: event.task.contextId ?? turn.contextId };
    return event.task.status ? withStatus(next, event.task.status) : next;
  }
  if (event.statusUpdate) {
    const next = { ...turn, taskId: event.statusUpdate.taskId };
    return event.statusUpdate.status ? withStatus(next, event.statusUpdate.status) : next;
  }
  if (event.artifactUpdate) {
    const { artifact, append } = event.artifactUpdate;
    const text = textOf(artifact.parts);
    return { ...turn, items: withArtifactText(turn.items, artifact.artifactId, text, Boolean(append)) };
  }
  if (event.message) {
    const text = textOf(event.message.parts);
    return text ? { ...turn, state: "completed", items: [...turn.items, { kind: "text", text }] } : turn;
  }
  return turn;
}

/** Marks the open approval question as answered (the buttons go away at once). */
export function decide(turn: Turn, decision: "approve" | "deny"): Turn {
  return {
    ...turn,
    streaming: true,
    items: turn.items.map((i) => (i.kind === "approval" && !i.decided ? { ...i, decided: decision } : i)),
  };
}

/** A decision the user sent on a task: `{"decision": ...}` data, or the words approve / deny. */
function decisionOf(message: Message): "approve" | "deny" | undefined {
  for (const part of message.parts ?? []) {
    const data = part.data as { decision?: unknown } | undefined;
    const word = String(data?.decision ?? part.text ?? "").trim().toLowerCase();
    if (word === "approve" || word === "deny") return word;
  }
  return undefined;
}

/** Text of a running (or stopped) task's artifact that its history does not show yet: until the
 *  answer replaces it, the artifact holds all text streamed so far, so it starts with what the
 *  agent said before the calls in the history (*said*, in order). */
function unsaid(text: string, said: string[]): string {
  let rest = text;
  for (const s of said) if (s && rest.startsWith(s)) rest = rest.slice(s.length);
  return rest;
}

/** The turn a stored task stands for (after a reload): its question, the tool calls (with what
 *  the agent said before them) and approvals in its history, the answer (its artifacts) and how
 *  it ended. */
export function turnFromTask(task: Task): Turn {
  const history = task.history ?? [];
  const first = history.findIndex((m) => m.role === "ROLE_USER");
  const user = first >= 0 ? textOf(history[first].parts) : "";
  let turn: Turn = { ...newTurn(task.id, user, task.contextId ?? ""), taskId: task.id, streaming: false };
  const said: string[] = [];
  for (const message of history.slice(first + 1)) {
    if (message.role === "ROLE_USER") {
      const decision = decisionOf(message);
      if (decision) turn = { ...decide(turn, decision), streaming: false };
    } else {
      if (tagged(message, "tool_call")) said.push(textOf(message.parts));
      turn = withStatus(turn, { state: "TASK_STATE_WORKING", message });
    }
  }
  const answered = stateName(task.status?.state) === "completed";
  for (const artifact of task.artifacts ?? []) {
    const text = textOf(artifact.parts);
    const shown = answered ? text : unsaid(text, said);
    turn = { ...turn, items: withArtifactText(turn.items, artifact.artifactId, shown, false) };
  }
  return task.status ? withStatus(turn, task.status) : turn;
}

/** *turn* shown afresh from its *task* as it stands (a resubscription, a lost stream picked up
 *  again); it keeps its question when the task's history does not carry it. */
export function refreshed(turn: Turn, task: Task): Turn {
  const fresh = turnFromTask(task);
  return { ...fresh, key: turn.key, user: fresh.user || turn.user, streaming: true };
}

/** The tasks of a conversation in the order they were asked. The server lists them by last
 *  update, newest first; tasks this tab started (*asked*, in order) keep the order they were
 *  asked in, in the places such tasks take in the oldest-update-first list. */
export function conversationOrder(tasks: Task[], asked: string[]): Task[] {
  const ordered = [...tasks].reverse();
  const rank = new Map(asked.map((id, n) => [id, n]));
  const known = ordered.filter((t) => rank.has(t.id)).sort((a, b) => rank.get(a.id)! - rank.get(b.id)!);
  let next = 0;
  return ordered.map((t) => (rank.has(t.id) ? known[next++] : t));
}
