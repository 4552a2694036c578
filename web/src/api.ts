// Hector's HTTP API as the page uses it: who am I, which agents can I see, and A2A JSON-RPC
// (protocol 1.0) to each agent: SendStreamingMessage for turns, CancelTask for Stop, ListTasks
// and SubscribeToTask to bring a conversation back after a reload.
// Every URL is relative to the page, so a Hector behind a path prefix works too.

import { sseData } from "./sse";

export interface Part {
  text?: string;
  data?: unknown;
  metadata?: Record<string, unknown>;
  mediaType?: string;
}

export interface Message {
  messageId?: string;
  role?: string;
  parts?: Part[];
  taskId?: string;
  contextId?: string;
}

export interface TaskStatus {
  state?: string;
  message?: Message;
  timestamp?: string;
}

export interface Artifact {
  artifactId: string;
  name?: string;
  parts?: Part[];
}

export interface Task {
  id: string;
  contextId?: string;
  status?: TaskStatus;
  history?: Message[];
  artifacts?: Artifact[];
}

/** One event of a message stream (exactly one field is set). */
export interface StreamResponse {
  task?: Task;
  message?: Message;
  statusUpdate?: { taskId: string; contextId?: string; status?: TaskStatus; metadata?: Record<string, unknown> };
  artifactUpdate?: {
    taskId: string;
    artifact: Artifact;
    append?: boolean;
    lastChunk?: boolean;
  };
}

export interface AgentInterface {
  url: string;
  protocolBinding?: string;
  protocolVersion?: string;
}

export interface AgentCard {
  name: string;
  description?: string;
  url?: string;
  supportedInterfaces?: AgentInterface[];
}

export interface WhoAmI {
  auth: boolean;
  required: boolean;
  user: string | null;
}

/** A failed call, with the server's own explanation when it gave one. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

function headers(token: string | null, json = false): Record<string, string> {
  const h: Record<string, string> = { Accept: "application/json", "A2A-Version": "1.0" };
  if (json) h["Content-Type"] = "application/json";
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

/** The message in an error body: `{"error": "..."}`, `{"error": {"message": ...}}` or text. */
export function errorText(body: unknown, fallback: string): string {
  if (body && typeof body === "object" && "error" in body) {
    const error = (body as { error: unknown }).error;
    if (typeof error === "string") return error;
    if (error && typeof error === "object" && "message" in error) {
      return String((error as { message: unknown }).message);
    }
  }
  return fallback;
}

async function failure(response: Response): Promise<ApiError> {
  const fallback = `HTTP ${response.status} ${response.statusText}`.trim();
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(errorText(body, fallback), response.status);
}

async function call(path: string, init: RequestInit): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch (exc) {
    if (init.signal?.aborted) throw exc; // we hung up ourselves: nothing to report
    throw new ApiError(`Cannot reach the server (${(exc as Error).message})`, 0);
  }
  if (!response.ok) throw await failure(response);
  return response;
}

export async function whoami(token: string | null): Promise<WhoAmI> {
  const response = await call("ui/whoami", { headers: headers(token) });
  return (await response.json()) as WhoAmI;
}

export async function discover(token: string | null): Promise<AgentCard[]> {
  const response = await call("agents", { headers: headers(token) });
  const body = (await response.json()) as { agents?: AgentCard[] };
  return body.agents ?? [];
}

/** The agent's JSON-RPC endpoint relative to the page, which Hector serves at its own root:
 *  `agents/<id>`. The card's URL may name another host, which the page's content security policy
 *  would not let it reach, or carry a path prefix the page's own URL already has (a
 *  `server.base_url` such as `https://example.com/hector`). */
export function endpointOf(card: AgentCard): string {
  const jsonrpc = card.supportedInterfaces?.find(
    (i) => i.protocolBinding === "JSONRPC" && i.protocolVersion === "1.0",
  );
  let path: string;
  try {
    path = new URL(jsonrpc?.url ?? card.url ?? "", document.baseURI).pathname;
  } catch {
    return ""; // not a URL: the agent cannot be talked to, but the page still works
  }
  return /(?:^|\/)(agents\/[^/]+)\/?$/.exec(path)?.[1] ?? path.replace(/^\/+/, "");
}

let nextId = 1;

function rpc(method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: "2.0", id: nextId++, method, params });
}

function rpcResult<T>(envelope: unknown): T {
  if (envelope && typeof envelope === "object" && "error" in envelope) {
    throw new ApiError(errorText(envelope, "the agent returned an error"), 200);
  }
  return (envelope as { result: T }).result;
}

/** Calls a streaming method and yields the task's events as the agent produces them. */
async function* stream(
  endpoint: string,
  token: string | null,
  method: string,
  params: unknown,
  signal?: AbortSignal,
): AsyncGenerator<StreamResponse> {
  const response = await call(endpoint, {
    method: "POST",
    headers: { ...headers(token, true), Accept: "text/event-stream, application/json" },
    body: rpc(method, params),
    signal,
  });
  if (!response.headers.get("content-type")?.startsWith("text/event-stream")) {
    // Errors found before the stream starts come back as one JSON-RPC response.
    yield rpcResult<StreamResponse>(await response.json());
    return;
  }
  if (!response.body) throw new ApiError("The server sent an empty stream", response.status);
  for await (const data of sseData(response.body)) {
    yield rpcResult<StreamResponse>(JSON.parse(data));
  }
}

/** Sends *message* and yields the task's events. */
export function streamMessage(
  endpoint: string,
  token: string | null,
  message: Message,
  signal?: AbortSignal,
): AsyncGenerator<StreamResponse> {
  return stream(endpoint, token, "SendStreamingMessage", { message }, signal);
}

/** Follows a task that is still running (the page was reloaded meanwhile); the first event is
 *  the task as it stands. */
export function subscribeTask(
  endpoint: string,
  token: string | null,
  id: string,
  signal?: AbortSignal,
): AsyncGenerator<StreamResponse> {
  return stream(endpoint, token, "SubscribeToTask", { id }, signal);
}

async function unary<T>(
  endpoint: string,
  token: string | null,
  method: string,
  params: unknown,
  signal?: AbortSignal,
): Promise<T> {
  const init = { method: "POST", headers: headers(token, true), body: rpc(method, params), signal };
  return rpcResult<T>(await (await call(endpoint, init)).json());
}

/** The conversation's tasks (the latest 100), with their whole history and artifacts. */
export async function listTasks(endpoint: string, token: string | null, contextId: string): Promise<Task[]> {
  const params = { contextId, includeArtifacts: true, pageSize: 100 };
  return (await unary<{ tasks?: Task[] }>(endpoint, token, "ListTasks", params)).tasks ?? [];
}

/** The task as it stands, with its history and artifacts (to pick up after a lost stream). */
export function getTask(endpoint: string, token: string | null, id: string, signal?: AbortSignal): Promise<Task> {
  return unary<Task>(endpoint, token, "GetTask", { id }, signal);
}

export function cancelTask(endpoint: string, token: string | null, id: string): Promise<Task> {
  return unary<Task>(endpoint, token, "CancelTask", { id });
}

/** A random UUID; crypto.randomUUID exists only on https or localhost, and Hector may be
 *  reached over plain http on a LAN. */
export function newId(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
