import { describe, expect, it } from "vitest";
import { sseData } from "./sse";

function stream(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

async function collect(chunks: string[]): Promise<string[]> {
  const out: string[] = [];
  for await (const data of sseData(stream(chunks))) out.push(data);
  return out;
}

describe("sseData", () => {
  it("yields each event's data, whatever the chunking", async () => {
    const text = 'data: {"a":1}\n\n: ping\n\nevent: x\ndata: {"b":2}\n\n';
    expect(await collect([text])).toEqual(['{"a":1}', '{"b":2}']);
    expect(await collect(text.split(""))).toEqual(['{"a":1}', '{"b":2}']);
  });

  it("accepts CRLF and CR line ends, split anywhere", async () => {
    expect(await collect(["data: one\r", "\n\r\ndata:two\r\r"])).toEqual(["one", "two"]);
  });

  it("joins multi-line data", async () => {
    expect(await collect(["data: a\ndata: b\n\n"])).toEqual(["a\nb"]);
  });

  it("discards an event cut off by the end of the stream", async () => {
    expect(await collect(['data: {"a":1}\n\ndata: {"b":', "2"])).toEqual(['{"a":1}']);
    expect(await collect(['data: {"a":1}\n\ndata: {"b":2}\n'])).toEqual(['{"a":1}']);
  });

  it("decodes UTF-8 split across chunks", async () => {
    const bytes = new TextEncoder().encode("data: 🔐 ok\n\n");
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes.slice(0, 8));
        controller.enqueue(bytes.slice(8));
        controller.close();
      },
    });
    const out: string[] = [];
    for await (const data of sseData(body)) out.push(data);
    expect(out).toEqual(["🔐 ok"]);
  });
});
