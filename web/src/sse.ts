// Server-sent events from a fetch body: the `data:` payload of each event, as it arrives.
// EventSource cannot POST or send an Authorization header, so the stream is parsed here.

export async function* sseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        // A held-back "\r" is a line end after all: the blank line that completes the event.
        if (buffer === "\r" && data.length) yield data.join("\n");
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      // Lines end with \n, \r\n or \r; a trailing \r may be the first half of \r\n, so it waits.
      const lines = buffer.split(/\r\n|\n|\r(?!$)/);
      buffer = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "") {
          if (data.length) yield data.join("\n");
          data = [];
        } else if (line.startsWith("data:")) {
          data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        }
        // Comments (":" keep-alives), event names, ids and retry hints carry nothing we use.
      }
    }
    // An event is complete only at its blank line: one cut off by the end of the stream (a
    // dropped connection) is discarded, as the SSE standard says, and never half-parsed.
  } finally {
    reader.releaseLock();
  }
}
