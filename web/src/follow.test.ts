import { describe, expect, it } from "vitest";
import { ApiError, type StreamResponse, type Task } from "./api";
import { type Followed, type Reconnect, TRIES, follow } from "./follow";

const ID = "task-1";

function task(state: string): Task {
  return { id: ID, contextId: "ctx", status: { state: `TASK_STATE_${state}` } };
}

function status(state: string): StreamResponse {
  return { statusUpdate: { taskId: ID, status: { state: `TASK_STATE_${state}` } } };
}

/** A stream of *events* that then ends, or breaks with *error*. */
async function* stream(events: StreamResponse[], error?: unknown): AsyncGenerator<StreamResponse> {
  for (const event of events) yield event;
  if (error) throw error;
}

/** A server whose GetTask answers from *tasks* and SubscribeToTask from *subscriptions*, in turn. */
function server(tasks: Task[], subscriptions: (() => AsyncGenerator<StreamResponse>)[] = []) {
  const calls: string[] = [];
  const reconnect: Reconnect = {
    getTask: async (id) => {
      calls.push(`get ${id}`);
      const next = tasks.shift();
      if (!next) throw new TypeError("Failed to fetch");
      return next;
    },
    subscribe: (id) => {
      calls.push(`subscribe ${id}`);
      const next = subscriptions.shift();
      return next ? next() : stream([], new TypeError("network error"));
    },
    pause: async (n) => {
      calls.push(`pause ${n}`);
    },
  };
  return { calls, reconnect };
}

async function collect(events: AsyncGenerator<Followed>): Promise<Followed[]> {
  const out: Followed[] = [];
  for await (const event of events) out.push(event);
  return out;
}

describe("follow", () => {
  it("passes a stream through that ends with the task settled", async () => {
    const { calls, reconnect } = server([]);
    const events = [{ task: task("SUBMITTED") }, status("WORKING"), status("INPUT_REQUIRED")];
    const out = await collect(follow(stream(events), reconnect));
    expect(out.map((e) => e.event)).toEqual(events);
    expect(out.every((e) => !e.fresh)).toBe(true);
    expect(calls).toEqual([]);
  });

  it("picks a running task up again when its stream ends early", async () => {
    const resumed = [{ task: task("WORKING") }, status("COMPLETED")];
    const { calls, reconnect } = server([task("WORKING")], [() => stream(resumed)]);
    const out = await collect(follow(stream([{ task: task("SUBMITTED") }, status("WORKING")]), reconnect));
    expect(calls).toEqual(["pause 0", `get ${ID}`, `subscribe ${ID}`]);
    expect(out.map((e) => e.fresh)).toEqual([false, false, true, true, false]);
    expect(out[out.length - 1].event).toEqual(status("COMPLETED"));
  });

  it("shows a task that finished while the connection was down", async () => {
    const { calls, reconnect } = server([task("COMPLETED")]);
    const broken = stream([{ task: task("SUBMITTED") }], new TypeError("network error"));
    const out = await collect(follow(broken, reconnect));
    expect(calls).toEqual(["pause 0", `get ${ID}`]);
    expect(out[out.length - 1]).toEqual({ event: { task: task("COMPLETED") }, fresh: true });
  });

  it("copes with a task that ends between GetTask and SubscribeToTask", async () => {
    const terminal = new ApiError("Task task-1 is in terminal state: TASK_STATE_COMPLETED", 200);
    const { calls, reconnect } = server(
      [task("WORKING"), task("COMPLETED")],
      [() => stream([], terminal)],
    );
    const out = await collect(follow(stream([status("WORKING")]), reconnect, { taskId: ID }));
    expect(calls).toEqual(["pause 0", `get ${ID}`, `subscribe ${ID}`, `get ${ID}`]);
    expect(out[out.length - 1].event).toEqual({ task: task("COMPLETED") });
  });

  it("gives up with a clear message after a few failed tries, waiting longer each time", async () => {
    const { calls, reconnect } = server([]);
    const run = collect(follow(stream([{ task: task("WORKING") }], new TypeError("network error")), reconnect));
    await expect(run).rejects.toThrow("Lost the connection to the server: reload the page");
    expect(calls.filter((c) => c.startsWith("pause"))).toEqual(
      Array.from({ length: TRIES }, (_, n) => `pause ${n}`),
    );
  });

  it("keeps following a task whose stream breaks now and then", async () => {
    const drop = () => stream([{ task: task("WORKING") }, status("WORKING")]);
    const tasks = Array.from({ length: TRIES + 2 }, () => task("WORKING"));
    const subscriptions = [...Array.from({ length: TRIES + 1 }, () => drop), () => stream([status("COMPLETED")])];
    const { reconnect } = server(tasks, subscriptions);
    const out = await collect(follow(drop(), reconnect));
    expect(out[out.length - 1].event).toEqual(status("COMPLETED"));
  });

  it("says so when the stream ends before the task exists", async () => {
    const { calls, reconnect } = server([]);
    await expect(collect(follow(stream([]), reconnect))).rejects.toThrow("The connection ended before the agent");
    expect(calls).toEqual([]);
  });

  it("passes the server's refusals on without retrying", async () => {
    const { calls, reconnect } = server([]);
    const refused = new ApiError("Invalid token: expired", 401);
    await expect(collect(follow(stream([{ task: task("WORKING") }], refused), reconnect))).rejects.toBe(refused);
    const unreachable = new ApiError("Cannot reach the server (Failed to fetch)", 0);
    await expect(collect(follow(stream([], unreachable), reconnect))).rejects.toBe(unreachable);
    expect(calls).toEqual([]);
  });

  it("stops when hung up", async () => {
    const { calls, reconnect } = server([task("WORKING")]);
    const hangUp = new AbortController();
    hangUp.abort();
    const aborted = new DOMException("aborted", "AbortError");
    const run = collect(follow(stream([{ task: task("WORKING") }], aborted), reconnect, {}, hangUp.signal));
    await expect(run).rejects.toBe(aborted);
    expect(calls).toEqual([]);
  });

  it("treats a plain message reply as the end", async () => {
    const { calls, reconnect } = server([]);
    const reply = { message: { role: "ROLE_AGENT", parts: [{ text: "hi" }] } };
    expect((await collect(follow(stream([reply]), reconnect))).map((e) => e.event)).toEqual([reply]);
    expect(calls).toEqual([]);
  });
});
