// The chat page: sign-in, agent picker, conversation and the session's task history.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import {
  type AgentCard,
  ApiError,
  type StreamResponse,
  type WhoAmI,
  cancelTask,
  discover,
  endpointOf,
  getTask,
  listTasks,
  newId,
  streamMessage,
  subscribeTask,
  whoami,
} from "./api";
import { type Reconnect, follow } from "./follow";
import { describe, saveChat, savedChat, signInAgain, storeToken, storedToken } from "./session";
import { type Turn, applyEvent, conversationOrder, decide, newTurn, refreshed, turnFromTask } from "./turn";
import { Composer, History, SignIn, TurnView } from "./views";

export function App() {
  // Read once: what the tab had before a reload (the saves below overwrite it from then on).
  const [saved] = useState(savedChat);
  const [token, setToken] = useState<string | null>(storedToken());
  const [who, setWho] = useState<WhoAmI | null>(null);
  const [signInError, setSignInError] = useState<string | null>(null);
  const [banner, setBanner] = useState<string | null>(null);
  const [agents, setAgents] = useState<AgentCard[] | null>(null);
  const [endpoint, setEndpoint] = useState<string>(saved?.endpoint ?? "");
  const [contextId, setContextId] = useState<string>(saved?.contextId ?? newId());
  const [turns, setTurns] = useState<Turn[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [stopping, setStopping] = useState(false);
  const chat = useRef<HTMLDivElement>(null);
  /** The streams this page follows: a new conversation or identity hangs them all up. */
  const streams = useRef(new Set<AbortController>());

  /** The key or token was refused: forget it and ask for another (the page stays usable). */
  const signedOut = useCallback((exc: ApiError, typed: boolean) => {
    storeToken(null);
    setToken(null);
    setWho((w) => (w ? { ...w, user: null } : w));
    setSignInError(signInAgain(exc, typed));
  }, []);

  /** Who we are with *candidate* as the key, then the agents that identity may see. */
  const load = useCallback(
    async (candidate: string | null, typed: boolean) => {
      setBanner(null);
      let active = candidate;
      try {
        setWho(await whoami(candidate));
        if (candidate) setSignInError(null); // (anonymous: a reason to sign in again stays up)
      } catch (exc) {
        if (!(exc instanceof ApiError) || exc.status !== 401) {
          setBanner(describe(exc));
          return;
        }
        setWho({ auth: true, required: true, user: null });
        if (candidate) signedOut(exc, typed);
        active = null;
      }
      try {
        const found = await discover(active);
        setAgents(found);
        setEndpoint((current) => {
          const paths = found.map(endpointOf);
          return paths.includes(current) ? current : (paths[0] ?? "");
        });
      } catch (exc) {
        setBanner(`Cannot list the agents: ${describe(exc)}`);
      }
    },
    [signedOut],
  );

  useEffect(() => {
    void load(storedToken(), false);
  }, [load]);

  const update = (key: string, change: (turn: Turn) => Turn) =>
    setTurns((all) => all.map((t) => (t.key === key ? change(t) : t)));

  /** A call refused with 401: the key or token stopped working (expired, revoked), so back to
   *  what anyone may see; without one, the reason to sign in. */
  const refused = (exc: unknown) => {
    if (!(exc instanceof ApiError) || exc.status !== 401) return;
    if (token) {
      signedOut(exc, false);
      void load(null, false);
    } else {
      setSignInError(signInAgain(exc, false));
    }
  };

  /** Applies a task's events to the turn *key* until the task settles, picking the task up again
   *  when the stream breaks off (see follow). A resubscription (*from.fresh*) starts with the
   *  task as it stands, which replaces what the turn showed. */
  const run = async (
    key: string,
    open: (signal: AbortSignal) => AsyncGenerator<StreamResponse>,
    from: { taskId?: string; fresh?: boolean } = {},
  ) => {
    const hangUp = new AbortController();
    const { signal } = hangUp;
    streams.current.add(hangUp);
    const reconnect: Reconnect = {
      getTask: (id) => getTask(endpoint, token, id, signal),
      subscribe: (id) => subscribeTask(endpoint, token, id, signal),
      pause: (n) => new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** n)),
    };
    try {
      for await (const { event, fresh } of follow(open(signal), reconnect, from, signal)) {
        update(key, (turn) => (fresh && event.task ? refreshed(turn, event.task) : applyEvent(turn, event)));
      }
    } catch (exc) {
      if (signal.aborted) return; // its conversation was left: nobody is shown this turn
      update(key, (turn) => ({ ...turn, error: describe(exc) }));
      refused(exc);
    } finally {
      streams.current.delete(hangUp);
      update(key, (turn) => ({ ...turn, streaming: false }));
    }
  };

  // The conversation as the server has it, whenever it changes (a reload, another agent, New
  // chat): tasks still running are followed again, a pending approval shows its buttons again.
  // Listing needs a key when the server requires one: wait until the sign-in says who we are.
  const canList = who !== null && !(who.required && !who.user);
  useEffect(() => {
    if (!endpoint || !canList) return;
    let current = true;
    (async () => {
      try {
        const tasks = conversationOrder(await listTasks(endpoint, token, contextId), saved?.asked ?? []);
        if (!current || tasks.length === 0) return;
        const restored = tasks.map(turnFromTask);
        const live = new Set(["submitted", "working"]);
        const running = restored.filter((t) => live.has(t.state));
        for (const turn of running) turn.streaming = true;
        setTurns((all) => (all.length ? all : restored)); // the user was quicker: keep theirs
        for (const turn of running) {
          const taskId = turn.taskId as string;
          void run(turn.key, (signal) => subscribeTask(endpoint, token, taskId, signal), { taskId, fresh: true });
        }
      } catch (exc) {
        if (current) setBanner(`Cannot load this conversation: ${describe(exc)}`);
      }
    })();
    return () => {
      current = false;
    };
  }, [endpoint, contextId, token, canList]);

  useEffect(() => {
    if (endpoint) saveChat({ endpoint, contextId, asked: turns.flatMap((t) => (t.taskId ? [t.taskId] : [])) });
  }, [endpoint, contextId, turns]);

  useEffect(() => {
    if (!selected) chat.current?.scrollTo({ top: chat.current.scrollHeight });
  }, [turns, selected]);

  const send = (text: string) => {
    const key = newId();
    setSelected(null);
    setTurns((all) => [...all, newTurn(key, text, contextId)]);
    const message = { messageId: newId(), role: "ROLE_USER", parts: [{ text }], contextId };
    void run(key, (signal) => streamMessage(endpoint, token, message, signal));
  };

  const answer = (turn: Turn, decision: "approve" | "deny") => {
    update(turn.key, (t) => decide(t, decision));
    const message = {
      messageId: newId(),
      role: "ROLE_USER",
      taskId: turn.taskId,
      contextId: turn.contextId,
      parts: [{ data: { decision } }],
    };
    void run(turn.key, (signal) => streamMessage(endpoint, token, message, signal), { taskId: turn.taskId });
  };

  const streaming = turns.find((t) => t.streaming);

  /** Stop: cancels the running task; its stream then ends with the canceled state. */
  const stop = async () => {
    if (!streaming?.taskId) return;
    setStopping(true);
    try {
      const task = await cancelTask(endpoint, token, streaming.taskId);
      update(streaming.key, (turn) => applyEvent(turn, { task }));
    } catch (exc) {
      update(streaming.key, (turn) => ({ ...turn, error: `Cannot stop: ${describe(exc)}` }));
      refused(exc);
    } finally {
      setStopping(false);
    }
  };

  const startOver = () => {
    for (const stream of streams.current) stream.abort();
    streams.current.clear();
    setContextId(newId());
    setTurns([]);
    setSelected(null);
  };

  const show = (taskId: string) => {
    setSelected(taskId);
    const section = document.getElementById(`turn-${taskId}`);
    section?.scrollIntoView({ block: "start" });
    section?.focus({ preventScroll: true });
  };

  const signIn = (candidate: string) => {
    storeToken(candidate);
    setToken(candidate);
    startOver();
    void load(candidate, true);
  };

  const signOut = () => {
    storeToken(null);
    setToken(null);
    setSignInError(null);
    startOver();
    void load(null, false);
  };

  const busy = streaming !== undefined;
  const current = agents?.find((a) => endpointOf(a) === endpoint);
  return (
    <div class="page">
      <header class="top">
        <h1>Hector</h1>
        <label class="picker">
          <span>Agent</span>
          <select
            aria-label="Agent"
            value={endpoint}
            disabled={!agents?.length || busy}
            onChange={(e) => {
              setEndpoint((e.target as HTMLSelectElement).value);
              startOver();
            }}
          >
            {(agents ?? []).map((a) => (
              <option key={a.name} value={endpointOf(a)}>
                {a.name}
              </option>
            ))}
          </select>
        </label>
        <span class="description">{current?.description}</span>
        {who?.auth && (
          <SignIn
            user={who.user}
            required={who.required}
            error={signInError}
            onSignIn={signIn}
            onSignOut={signOut}
          />
        )}
      </header>
      {(signInError || banner) && (
        <div class="banner" role="alert" data-testid="banner">
          {signInError ?? banner}
        </div>
      )}
      <main class="body">
        <History turns={turns} selected={selected} contextId={contextId} onSelect={show} onNew={startOver} />
        <div class="conversation">
          <div class="chat" ref={chat} data-testid="chat">
            {agents !== null && agents.length === 0 && (
              <p class="empty">
                No agent is visible to you{who?.auth && !who.user ? ": sign in to see more." : "."}
              </p>
            )}
            {agents?.length && turns.length === 0 ? (
              <p class="empty">Ask {current?.name ?? "the agent"} something.</p>
            ) : null}
            {turns.map((turn) => (
              <TurnView
                key={turn.key}
                turn={turn}
                selected={turn.taskId !== undefined && turn.taskId === selected}
                onDecide={(d) => answer(turn, d)}
              />
            ))}
          </div>
          <Composer
            ready={Boolean(endpoint)}
            busy={busy}
            canStop={Boolean(streaming?.taskId) && !stopping}
            onSend={send}
            onStop={() => void stop()}
          />
        </div>
      </main>
    </div>
  );
}
