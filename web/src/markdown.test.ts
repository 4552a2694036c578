// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { renderMarkdown } from "./markdown";

describe("renderMarkdown", () => {
  it("renders code blocks and emphasis", () => {
    const html = renderMarkdown("Some **bold** text\n\n```python\nprint('<hi>')\n```");
    expect(html).toContain("<strong>bold</strong>");
    expect(html).toContain(`<pre><code class="language-python">print('&lt;hi&gt;')`);
  });

  it("removes scripts and event handlers a reply may carry", () => {
    const html = renderMarkdown('<img src="x" onerror="alert(1)"><script>alert(2)</script>[a](javascript:alert(3))');
    expect(html).not.toMatch(/onerror|<script|javascript:/);
  });

  it("opens links in a new tab without an opener", () => {
    const html = renderMarkdown("[docs](https://example.org/)");
    expect(html).toContain('target="_blank"');
    expect(html).toContain('rel="noopener noreferrer"');
  });
});
