// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { ApiError, endpointOf } from "./api";
import { describe as describeError } from "./session";

function card(url: string) {
  return { name: "helper", supportedInterfaces: [{ url, protocolBinding: "JSONRPC", protocolVersion: "1.0" }] };
}

describe("endpointOf", () => {
  it("is the agent's path relative to the page, whatever host the card names", () => {
    expect(endpointOf(card("http://127.0.0.1:8080/agents/helper"))).toBe("agents/helper");
    expect(endpointOf(card("https://elsewhere.example/agents/helper"))).toBe("agents/helper");
    expect(endpointOf({ name: "old", url: "//evil.example/agents/old" })).toBe("agents/old");
  });

  it("does not repeat a base_url's path prefix, which the page's own URL already has", () => {
    expect(endpointOf(card("https://example.com/hector/agents/helper"))).toBe("agents/helper");
  });

  it("gives no endpoint for a card URL that is not one, instead of failing the page", () => {
    expect(endpointOf(card("http://[broken"))).toBe("");
  });
});

describe("describe", () => {
  it("names the HTTP status of a refused call, not that of an answered one", () => {
    expect(describeError(new ApiError("Payload too large", 413))).toBe("Error 413: Payload too large");
    expect(describeError(new ApiError("Task not found", 200))).toBe("Task not found");
    expect(describeError(new ApiError("Invalid token", 401))).toBe("Not authorized: Invalid token");
  });
});
