// Presentational pieces of the chat page: no fetching here, only what a turn or task looks like.

import { useState } from "preact/hooks";
import { renderMarkdown } from "./markdown";
import type { Item, Turn } from "./turn";

function json(value: unknown): string {
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

function Markdown({ text }: { text: string }) {
  // renderMarkdown sanitizes: this is the only place HTML from the agent reaches the page.
  return <div class="markdown" dangerouslySetInnerHTML={{ __html: renderMarkdown(text) }} />;
}

function ToolView({ item }: { item: Extract<Item, { kind: "tool" }> }) {
  const state = item.result !== undefined ? (item.isError ? "error" : "done") : item.stopped ? "stopped" : "running";
  return (
    <details class={`tool tool-${state}`} data-testid="tool-call" open={state !== "done"}>
      <summary>
        <span class="tool-icon" aria-hidden="true">
          ⚙
        </span>{" "}
        <span class="tool-name">{item.name}</span>{" "}
        <span class={`badge badge-${state}`}>{state}</span>
      </summary>
      {item.args !== undefined && <pre class="tool-args">{json(item.args)}</pre>}
      {item.result !== undefined && <pre class="tool-result">{item.result}</pre>}
    </details>
  );
}

function ApprovalView(props: {
  item: Extract<Item, { kind: "approval" }>;
  onDecide: (decision: "approve" | "deny") => void;
  busy: boolean;
}) {
  const { item } = props;
  return (
    <div class={`approval ${item.decided ? "approval-decided" : ""}`} data-testid="approval">
      <div class="approval-title">
        Approval needed: <strong>{item.tool}</strong>
      </div>
      <div class="approval-prompt">{item.prompt}</div>
      {item.input !== undefined && <pre class="tool-args">{json(item.input)}</pre>}
      {item.decided ? (
        <div class={`badge badge-${item.decided}`} data-testid="decision">
          {item.decided === "approve" ? "Approved" : "Denied"}
        </div>
      ) : (
        <div class="approval-actions">
          <button type="button" class="approve" disabled={props.busy} onClick={() => props.onDecide("approve")}>
            Approve
          </button>
          <button type="button" class="deny" disabled={props.busy} onClick={() => props.onDecide("deny")}>
            Deny
          </button>
        </div>
      )}
    </div>
  );
}

export function TurnView(props: {
  turn: Turn;
  selected: boolean;
  onDecide: (decision: "approve" | "deny") => void;
}) {
  const { turn } = props;
  const thinking = turn.streaming && !turn.items.some((i) => i.kind === "text");
  return (
    <article
      class={`turn ${props.selected ? "selected" : ""}`}
      id={turn.taskId ? `turn-${turn.taskId}` : undefined}
      data-state={turn.state}
      tabIndex={-1}
      aria-label={`Task: ${turn.user.slice(0, 60)}`}
    >
      <div class="bubble user" data-testid="user-message">
        {turn.user}
      </div>
      {/* Screen readers read the reply once it stops changing (aria-busy), not every chunk. */}
      <div class="bubble agent" data-testid="agent-message" aria-live="polite" aria-busy={turn.streaming}>
        {turn.items.map((item, n) => {
          switch (item.kind) {
            case "text":
              return <Markdown key={n} text={item.text} />;
            case "tool":
              return <ToolView key={n} item={item} />;
            case "approval":
              return <ApprovalView key={n} item={item} onDecide={props.onDecide} busy={turn.streaming} />;
            case "status":
              return (
                <div key={n} class="status-line">
                  {item.text}
                </div>
              );
          }
        })}
        {thinking && <div class="thinking">Working…</div>}
        {turn.canceled && (
          <div class="canceled" data-testid="turn-canceled">
            {turn.canceled}
          </div>
        )}
        {turn.error && (
          <div class="error" role="alert" data-testid="turn-error">
            {turn.error}
          </div>
        )}
      </div>
    </article>
  );
}

export function History(props: {
  turns: Turn[];
  selected: string | null;
  contextId: string;
  onSelect: (taskId: string) => void;
  onNew: () => void;
}) {
  const tasks = props.turns.filter((t) => t.taskId);
  return (
    <nav class="history" aria-label="Task history">
      <div class="history-head">
        <h2>Session</h2>
        <button type="button" class="secondary" onClick={props.onNew}>
          New chat
        </button>
      </div>
      <div class="context" title="contextId">
        {props.contextId.slice(0, 8)}
      </div>
      {tasks.length === 0 ? (
        <p class="muted">No tasks yet.</p>
      ) : (
        <ol class="tasks" data-testid="task-history">
          {tasks.map((turn) => (
            <li key={turn.key}>
              <a
                href={`#turn-${turn.taskId}`}
                class={`task ${turn.taskId === props.selected ? "selected" : ""}`}
                aria-current={turn.taskId === props.selected ? "true" : undefined}
                onClick={(e) => {
                  e.preventDefault();
                  props.onSelect(turn.taskId as string);
                }}
              >
                <span class={`badge badge-${turn.state}`}>{turn.state}</span>
                <span class="task-summary">{turn.user.slice(0, 80) || (turn.taskId as string).slice(0, 8)}</span>
              </a>
            </li>
          ))}
        </ol>
      )}
    </nav>
  );
}

/** The message box: Enter sends, Shift+Enter starts a new line; Stop while a reply streams. */
export function Composer(props: {
  ready: boolean;
  busy: boolean;
  canStop: boolean;
  onSend: (text: string) => void;
  onStop: () => void;
}) {
  const [input, setInput] = useState("");
  const send = () => {
    const text = input.trim();
    if (!text || !props.ready || props.busy) return;
    setInput("");
    props.onSend(text);
  };
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        send();
      }}
    >
      <textarea
        aria-label="Message"
        placeholder="Message (Enter sends, Shift+Enter for a new line)"
        rows={2}
        value={input}
        onInput={(e) => setInput((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            send();
          }
        }}
      />
      {props.busy && (
        <button type="button" class="stop" disabled={!props.canStop} onClick={props.onStop}>
          Stop
        </button>
      )}
      <button type="submit" disabled={props.busy || !props.ready || !input.trim()}>
        Send
      </button>
    </form>
  );
}

export function SignIn(props: {
  user: string | null;
  required: boolean;
  error: string | null;
  onSignIn: (token: string) => void;
  onSignOut: () => void;
}) {
  const [token, setToken] = useState("");
  const [open, setOpen] = useState(false);
  if (props.user) {
    return (
      <div class="signin">
        <span class="muted">Signed in as</span> <strong data-testid="user">{props.user}</strong>{" "}
        <button type="button" class="secondary" onClick={props.onSignOut}>
          Sign out
        </button>
      </div>
    );
  }
  if (!open && !props.required && !props.error) {
    return (
      <div class="signin">
        <button type="button" class="secondary" onClick={() => setOpen(true)}>
          Sign in
        </button>
      </div>
    );
  }
  return (
    <form
      class="signin"
      onSubmit={(e) => {
        e.preventDefault();
        if (token.trim()) props.onSignIn(token.trim());
        setToken(""); // a secret does not stay in the field once used
      }}
    >
      <input
        type="password"
        aria-label="API key or bearer token"
        placeholder="API key or bearer token"
        autocomplete="off"
        value={token}
        onInput={(e) => setToken((e.target as HTMLInputElement).value)}
      />
      <button type="submit">Sign in</button>
    </form>
  );
}
