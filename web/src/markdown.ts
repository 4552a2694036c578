// Agent replies are Markdown written by a model: rendered with marked, then sanitized with
// DOMPurify, because the text may carry HTML that the user (or a prompt injection) put there.

import DOMPurify from "dompurify";
import { Marked } from "marked";

const marked = new Marked({ gfm: true, breaks: false, async: false });

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  // Links open in a new tab, and the page they open gets no handle back to this one.
  if (node.tagName === "A" && node.getAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function renderMarkdown(text: string): string {
  // DOMPurify hands back its input untouched where it cannot run: show plain text instead.
  if (!DOMPurify.isSupported) return `<p>${escape(text)}</p>`;
  const html = marked.parse(text) as string;
  return DOMPurify.sanitize(html, { FORBID_TAGS: ["style", "form", "input", "button"] });
}
