// A task's events, followed to the end even when its stream breaks off. The task goes on on the
// server when a proxy closes a long stream or the network drops it: the page then asks for the
// task as it stands (GetTask) and, while it still runs, subscribes to it again (SubscribeToTask).

import { ApiError, type StreamResponse, type Task } from "./api";
import { stateName } from "./turn";

/** States a stream ends in by design: the task is over, or waits for the user. */
const SETTLED = new Set(["completed", "failed", "canceled", "rejected", "input-required", "auth-required"]);

/** Lost connections in a row (with nothing new heard in between) before the page gives up. */
export const TRIES = 3;

export interface Reconnect {
  getTask(id: string): Promise<Task>;
  subscribe(id: string): AsyncGenerator<StreamResponse>;
  /** Waits before reconnecting the *n*-th time in a row (0-based). */
  pause(n: number): Promise<void>;
}

export interface Followed {
  event: StreamResponse;
  /** The event is the whole task as it stands: it replaces what the turn showed. */
  fresh: boolean;
}

/** A connection that broke (rather than a server that answered with an error). */
function lost(exc: unknown): boolean {
  return exc instanceof TypeError || (exc instanceof ApiError && exc.status === 0);
}

/** The events of *first* and, when it ends before the task settles, of the task picked up again.
 *  *from*: the task the stream is about when already known, and whether *first* starts with the
 *  whole task (a resubscription). */
export async function* follow(
  first: AsyncGenerator<StreamResponse>,
  reconnect: Reconnect,
  from: { taskId?: string; fresh?: boolean } = {},
  signal?: AbortSignal,
): AsyncGenerator<Followed> {
  let taskId = from.taskId;
  let state = "";
  let source = first;
  let snapshot = Boolean(from.fresh); // the source's first task event is a whole task
  for (let failures = 0; ; failures++) {
    try {
      for await (const event of source) {
        const fresh = snapshot && event.task !== undefined;
        taskId = event.task?.id ?? event.statusUpdate?.taskId ?? event.artifactUpdate?.taskId ?? taskId;
        const status = event.task?.status ?? event.statusUpdate?.status;
        if (status) state = stateName(status.state);
        if (event.message) state = "completed"; // a plain reply: there is no task to follow
        if (!fresh) failures = 0; // heard something new: the connection works
        yield { event, fresh };
      }
    } catch (exc) {
      if (signal?.aborted || !lost(exc) || !taskId) throw exc;
    }
    if (SETTLED.has(state)) return;
    if (!taskId) throw new ApiError("The connection ended before the agent took the message: send it again.", 0);
    if (failures >= TRIES) {
      throw new ApiError("Lost the connection to the server: reload the page to see how the task ends.", 0);
    }
    await reconnect.pause(failures);
    if (signal?.aborted) return;
    source = resumed(taskId, reconnect);
    snapshot = true;
  }
}

/** The task as it stands, then (while it runs) its further events. */
async function* resumed(id: string, reconnect: Reconnect): AsyncGenerator<StreamResponse> {
  const task = await reconnect.getTask(id);
  yield { task };
  if (SETTLED.has(stateName(task.status?.state))) return;
  try {
    yield* reconnect.subscribe(id);
  } catch (exc) {
    // It may have ended between the two calls, and a finished task cannot be subscribed to.
    if (!(exc instanceof ApiError && exc.status === 200)) throw exc;
    const now = await reconnect.getTask(id);
    if (!SETTLED.has(stateName(now.status?.state))) throw exc;
    yield { task: now };
  }
}
