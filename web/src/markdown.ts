// Agent replies are Markdown written by a model, which the user (or a prompt injection) may have
// steered: HTML in them is shown as the text it is, and what Markdown renders is then sanitized
// with DOMPurify (link URLs such as javascript:, images from other sites).

import DOMPurify from "dompurify";
import { Marked } from "marked";

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  async: false,
  renderer: {
    // Raw HTML, inline or as a block, is text: the sanitizer never has to judge it.
    html: ({ text, block }) => (block ? `<p>${escape(text)}</p>` : escape(text)),
  },
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  // Links open in a new tab, and the page they open gets no handle back to this one.
  if (node.tagName === "A" && node.getAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
  // An image from another site would tell it that the reply was read, and whatever the URL
  // carries (a prompt injection's way out); the content security policy refuses it too.
  if (node.tagName === "IMG" && !sameOrigin(node.getAttribute("src") ?? "")) node.removeAttribute("src");
});

function sameOrigin(src: string): boolean {
  try {
    return /^data:image\//i.test(src) || new URL(src, document.baseURI).origin === window.location.origin;
  } catch {
    return false;
  }
}

export function renderMarkdown(text: string): string {
  // DOMPurify hands back its input untouched where it cannot run: show plain text instead.
  if (!DOMPurify.isSupported) return `<p>${escape(text)}</p>`;
  const html = marked.parse(text) as string;
  return DOMPurify.sanitize(html, {
    // Markdown makes neither inline SVG or MathML (where sanitizer bypasses usually live, and
    // whose links the hook above would miss) nor forms or styles.
    USE_PROFILES: { html: true },
    FORBID_TAGS: ["style", "form", "input", "button"],
    FORBID_ATTR: ["style"],
  });
}
