import { describe, expect, it } from "vitest";
import type { StreamResponse } from "./api";
import type { Task } from "./api";
import { applyEvent, conversationOrder, decide, newTurn, refreshed, turnFromTask } from "./turn";

const T = "task-1";

function status(state: string, parts?: object[]): StreamResponse {
  const message = parts ? { role: "ROLE_AGENT", parts } : undefined;
  return { statusUpdate: { taskId: T, status: { state: `TASK_STATE_${state}`, message } } };
}

function artifact(text: string, append: boolean): StreamResponse {
  return { artifactUpdate: { taskId: T, artifact: { artifactId: "response", parts: [{ text }] }, append } };
}

function tagged(data: object, eventType: string): object {
  return { data, metadata: { event_type: eventType } };
}

function run(events: StreamResponse[]) {
  return events.reduce(applyEvent, newTurn("k", "hi", "ctx"));
}

describe("applyEvent", () => {
  it("streams text chunks, then the final replacement", () => {
    const turn = run([
      { task: { id: T, contextId: "ctx", status: { state: "TASK_STATE_SUBMITTED" } } },
      status("WORKING"),
      artifact("Hel", false),
      artifact("lo", true),
      artifact("Hello!", false),
      status("COMPLETED", [{ text: "Hello!" }]),
    ]);
    expect(turn.taskId).toBe(T);
    expect(turn.state).toBe("completed");
    expect(turn.items).toEqual([{ kind: "text", text: "Hello!", artifactId: "response" }]);
    expect(turn.error).toBeUndefined();
  });

  it("keeps text said before a tool call, and puts the answer after it", () => {
    const turn = run([
      artifact("Let me check.", false),
      status("WORKING", [tagged({ id: "c1", name: "lookup", arguments: { city: "Oslo" } }, "tool_call")]),
      status("WORKING", [tagged({ tool_call_id: "c1", name: "lookup", content: "709000", is_error: false }, "tool_result")]),
      artifact("Oslo has 709000 people.", false),
      status("COMPLETED", [{ text: "Oslo has 709000 people." }]),
    ]);
    expect(turn.items).toEqual([
      { kind: "text", text: "Let me check.", artifactId: "response" },
      { kind: "tool", id: "c1", name: "lookup", args: { city: "Oslo" }, result: "709000", isError: false },
      { kind: "text", text: "Oslo has 709000 people.", artifactId: "response" },
    ]);
  });

  it("shows text said before a tool call once, though the call's status message carries it too", () => {
    const call = (id: string) => tagged({ id, name: "lookup", arguments: {} }, "tool_call");
    const result = (id: string) => tagged({ tool_call_id: id, name: "lookup", content: "ok" }, "tool_result");
    const turn = run([
      artifact("Let me ", false),
      artifact("check both.", true),
      status("WORKING", [{ text: "Let me check both." }, call("c1")]),
      status("WORKING", [result("c1")]),
      status("WORKING", [call("c2")]),
      status("WORKING", [result("c2")]),
      artifact("Done.", false),
      status("COMPLETED", [{ text: "Done." }]),
    ]);
    const done = { kind: "tool", name: "lookup", args: {}, result: "ok", isError: false };
    expect(turn.items).toEqual([
      { kind: "text", text: "Let me check both.", artifactId: "response" },
      { ...done, id: "c1" },
      { ...done, id: "c2" },
      { kind: "text", text: "Done.", artifactId: "response" },
    ]);
  });

  it("shows text said before a tool call that did not stream, before the call", () => {
    const turn = run([
      status("WORKING", [{ text: "Looking it up." }, tagged({ id: "c1", name: "lookup", arguments: {} }, "tool_call")]),
      status("WORKING", [tagged({ tool_call_id: "c1", name: "lookup", content: "709000" }, "tool_result")]),
      status("COMPLETED", [{ text: "709000 people." }]),
    ]);
    expect(turn.items).toEqual([
      { kind: "text", text: "Looking it up." },
      { kind: "tool", id: "c1", name: "lookup", args: {}, result: "709000", isError: false },
      { kind: "text", text: "709000 people." },
    ]);
  });

  it("does not repeat text said before an approval once the approved call carries it", () => {
    const ask = tagged({ approval_id: "a1", tool_name: "deploy", tool_input: { env: "prod" } }, "approval_request");
    let turn = run([artifact("I will deploy.", false), status("INPUT_REQUIRED", [{ text: "Deploy to prod?" }, ask])]);
    turn = decide(turn, "approve");
    turn = [
      status("WORKING"),
      status("WORKING", [{ text: "I will deploy." }, tagged({ id: "c1", name: "deploy", arguments: {} }, "tool_call")]),
    ].reduce(applyEvent, turn);
    expect(turn.items.map((i) => i.kind)).toEqual(["text", "approval", "tool"]);
    expect(turn.items[0]).toMatchObject({ text: "I will deploy." });
  });

  it("shows an approval question once, and the decision", () => {
    const ask = tagged(
      { interaction_type: "tool_approval", approval_id: "a1", tool_name: "deploy", tool_input: { env: "prod" } },
      "approval_request",
    );
    let turn = run([status("INPUT_REQUIRED", [{ text: "Deploy to prod?" }, ask])]);
    turn = applyEvent(turn, status("INPUT_REQUIRED", [{ text: "Please answer: Deploy to prod?" }, ask]));
    expect(turn.state).toBe("input-required");
    expect(turn.items).toEqual([
      { kind: "approval", approvalId: "a1", prompt: "Please answer: Deploy to prod?", tool: "deploy", input: { env: "prod" } },
    ]);
    turn = decide(turn, "deny");
    expect(turn.items[0]).toMatchObject({ decided: "deny" });
  });

  it("turns a failed task into an error with the server's reason", () => {
    const turn = run([status("WORKING"), status("FAILED", [{ text: "Agent failed: HTTP 503 model overloaded" }])]);
    expect(turn.error).toBe("Agent failed: HTTP 503 model overloaded");
    expect(run([status("REJECTED")]).error).toBe("The task ended: rejected");
  });

  it("shows a stopped task as canceled, not as an error, and its open call as stopped", () => {
    const turn = run([
      status("WORKING", [tagged({ id: "c1", name: "slow", arguments: {} }, "tool_call")]),
      status("CANCELED", [{ text: "Canceled by the user." }]),
    ]);
    expect(turn.state).toBe("canceled");
    expect(turn.error).toBeUndefined();
    expect(turn.canceled).toBe("Canceled by the user.");
    expect(turn.items).toEqual([{ kind: "tool", id: "c1", name: "slow", args: {}, stopped: true }]);
  });

  it("uses the status message when no artifact streamed", () => {
    const turn = run([status("COMPLETED", [{ text: "done" }])]);
    expect(turn.items).toEqual([{ kind: "text", text: "done" }]);
  });
});

function message(role: string, parts: object[]) {
  return { role, parts };
}

describe("turnFromTask", () => {
  it("rebuilds a finished task: question, tool call with result, answer", () => {
    const task: Task = {
      id: T,
      contextId: "ctx",
      status: { state: "TASK_STATE_COMPLETED", message: message("ROLE_AGENT", [{ text: "Oslo: 709000." }]) },
      history: [
        message("ROLE_USER", [{ text: "How many in Oslo?" }]),
        message("ROLE_AGENT", [tagged({ id: "c1", name: "lookup", arguments: { city: "Oslo" } }, "tool_call")]),
        message("ROLE_AGENT", [tagged({ tool_call_id: "c1", name: "lookup", content: "709000" }, "tool_result")]),
      ],
      artifacts: [{ artifactId: "response", parts: [{ text: "Oslo: 709000." }] }],
    };
    const turn = turnFromTask(task);
    expect(turn).toMatchObject({ key: T, taskId: T, contextId: "ctx", user: "How many in Oslo?" });
    expect(turn).toMatchObject({ state: "completed", streaming: false });
    expect(turn.items).toEqual([
      { kind: "tool", id: "c1", name: "lookup", args: { city: "Oslo" }, result: "709000", isError: false },
      { kind: "text", text: "Oslo: 709000.", artifactId: "response" },
    ]);
  });

  it("shows what the agent said before its tool calls, in order with them", () => {
    const task: Task = {
      id: T,
      status: { state: "TASK_STATE_COMPLETED", message: message("ROLE_AGENT", [{ text: "Oslo: 709000." }]) },
      history: [
        message("ROLE_USER", [{ text: "How many in Oslo?" }]),
        message("ROLE_AGENT", [{ text: "Let me look." }, tagged({ id: "c1", name: "lookup", arguments: {} }, "tool_call")]),
        message("ROLE_AGENT", [tagged({ tool_call_id: "c1", name: "lookup", content: "709000" }, "tool_result")]),
        message("ROLE_AGENT", [tagged({ id: "c2", name: "lookup", arguments: {} }, "tool_call")]),
        message("ROLE_AGENT", [tagged({ tool_call_id: "c2", name: "lookup", content: "709000" }, "tool_result")]),
      ],
      artifacts: [{ artifactId: "response", parts: [{ text: "Oslo: 709000." }] }],
    };
    expect(turnFromTask(task).items).toEqual([
      { kind: "text", text: "Let me look." },
      { kind: "tool", id: "c1", name: "lookup", args: {}, result: "709000", isError: false },
      { kind: "tool", id: "c2", name: "lookup", args: {}, result: "709000", isError: false },
      { kind: "text", text: "Oslo: 709000.", artifactId: "response" },
    ]);
    // Without an artifact, the answer is the status message (what was said before a call is not it).
    expect(turnFromTask({ ...task, artifacts: [] }).items.at(-1)).toEqual({ kind: "text", text: "Oslo: 709000." });
  });

  it("shows a running task's streamed text once: what its history has is not repeated", () => {
    const task: Task = {
      id: T,
      status: { state: "TASK_STATE_WORKING" },
      history: [
        message("ROLE_USER", [{ text: "How many in Oslo?" }]),
        message("ROLE_AGENT", [{ text: "Let me look." }, tagged({ id: "c1", name: "lookup", arguments: {} }, "tool_call")]),
        message("ROLE_AGENT", [tagged({ tool_call_id: "c1", name: "lookup", content: "709000" }, "tool_result")]),
      ],
      // Until the answer replaces it, the artifact holds all text streamed so far.
      artifacts: [{ artifactId: "response", parts: [{ text: "Let me look." }, { text: "Oslo has" }] }],
    };
    const turn = turnFromTask(task);
    expect(turn.items).toEqual([
      { kind: "text", text: "Let me look." },
      { kind: "tool", id: "c1", name: "lookup", args: {}, result: "709000", isError: false },
      { kind: "text", text: "Oslo has", artifactId: "response" },
    ]);
    // Followed again, the next chunks extend the answer.
    expect(applyEvent(turn, artifact(" 709000.", true)).items.at(-1)).toMatchObject({ text: "Oslo has 709000." });
  });

  it("keeps a pending approval open, and shows an answered one as decided", () => {
    const ask = tagged({ approval_id: "a1", tool_name: "deploy", tool_input: { env: "prod" } }, "approval_request");
    const asking = message("ROLE_AGENT", [{ text: "Deploy to prod?" }, ask]);
    const pending = turnFromTask({
      id: T,
      status: { state: "TASK_STATE_INPUT_REQUIRED", message: asking },
      history: [message("ROLE_USER", [{ text: "deploy" }])],
    });
    expect(pending.state).toBe("input-required");
    expect(pending.items).toEqual([
      { kind: "approval", approvalId: "a1", prompt: "Deploy to prod?", tool: "deploy", input: { env: "prod" } },
    ]);
    const answered = turnFromTask({
      id: T,
      status: { state: "TASK_STATE_COMPLETED", message: message("ROLE_AGENT", [{ text: "Not deployed." }]) },
      history: [message("ROLE_USER", [{ text: "deploy" }]), asking, message("ROLE_USER", [{ data: { decision: "deny" } }])],
    });
    expect(answered.user).toBe("deploy");
    expect(answered.items[0]).toMatchObject({ kind: "approval", decided: "deny" });
    expect(answered.items[1]).toEqual({ kind: "text", text: "Not deployed." });
  });
});

describe("conversationOrder", () => {
  const task = (id: string): Task => ({ id });
  it("puts the oldest update first, and tasks this tab asked in the order asked", () => {
    // Newest update first, as ListTasks answers: b was answered (approved) after c was asked.
    expect(conversationOrder([task("b"), task("c"), task("a")], []).map((t) => t.id)).toEqual(["a", "c", "b"]);
    expect(conversationOrder([task("b"), task("c"), task("a")], ["a", "b", "c"]).map((t) => t.id)).toEqual([
      "a",
      "b",
      "c",
    ]);
    // x came from elsewhere (another client on the same contextId): it keeps its place.
    expect(conversationOrder([task("b"), task("x"), task("a")], ["b", "a"]).map((t) => t.id)).toEqual(["b", "x", "a"]);
  });
});

describe("refreshed", () => {
  it("shows the task as it stands, keeping the turn's key and question", () => {
    const before = run([{ task: { id: T, contextId: "ctx", status: { state: "TASK_STATE_SUBMITTED" } } }]);
    const task: Task = {
      id: T,
      contextId: "ctx",
      status: { state: "TASK_STATE_WORKING" },
      artifacts: [{ artifactId: "response", parts: [{ text: "Half an ans" }] }],
    };
    const after = refreshed(before, task);
    expect(after).toMatchObject({ key: "k", user: "hi", taskId: T, state: "working", streaming: true });
    expect(after.items).toEqual([{ kind: "text", text: "Half an ans", artifactId: "response" }]);
  });
});
