// What the page keeps in the tab's sessionStorage, so a reload (but not a new tab) keeps it:
// the key or token, and the conversation (agent, contextId, the tasks in the order asked).
// sessionStorage is per tab and is cleared when the tab closes; nothing goes to localStorage.

import { ApiError } from "./api";

const TOKEN_KEY = "hector.token";
const CHAT_KEY = "hector.chat";

export interface SavedChat {
  endpoint: string;
  contextId: string;
  /** Task ids this tab started, in the order they were asked. */
  asked: string[];
}

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function savedChat(): SavedChat | null {
  try {
    const chat = JSON.parse(sessionStorage.getItem(CHAT_KEY) ?? "null") as Partial<SavedChat> | null;
    if (typeof chat?.endpoint !== "string" || typeof chat.contextId !== "string") return null;
    const asked = Array.isArray(chat.asked) ? chat.asked.filter((id) => typeof id === "string") : [];
    return { endpoint: chat.endpoint, contextId: chat.contextId, asked };
  } catch {
    return null; // unreadable (edited by hand): start a new conversation
  }
}

export function saveChat(chat: SavedChat): void {
  sessionStorage.setItem(CHAT_KEY, JSON.stringify(chat));
}

/** An error as the user reads it: the server's reason, with what kind of failure it was. */
export function describe(exc: unknown): string {
  if (exc instanceof ApiError) {
    if (exc.status === 401) return `Not authorized: ${exc.message}`;
    if (exc.status === 429) return `Too many requests: ${exc.message}`;
    // 200: the call went through and the agent answered with a JSON-RPC error.
    return exc.status && exc.status !== 200 ? `Error ${exc.status}: ${exc.message}` : exc.message;
  }
  return exc instanceof Error ? exc.message : String(exc);
}

/** What to tell a user whose key or token was refused (401) after signing in, or on sign-in. */
export function signInAgain(exc: ApiError, typed: boolean): string {
  if (/expired/i.test(exc.message)) return "Your sign-in has expired: sign in again.";
  return typed ? `Sign-in failed: ${exc.message}` : `Sign-in needed: ${exc.message}`;
}
