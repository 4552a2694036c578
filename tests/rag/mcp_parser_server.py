"""A document-converting MCP server for the tests (official SDK, stdio), in the manner of Docling.

It reads two formats: HTML (tags stripped) and ``.hdoc``, a made-up binary format (a NUL-bearing
header, then zlib-compressed UTF-8) that Hector's native parsers cannot read. Its answers end
with ``MARK`` so a test can tell MCP-parsed text from natively parsed text. A file whose name
contains "broken" makes the conversion fail (a ``ToolError``: the SDK passes its reason on).
"""

from __future__ import annotations

import base64
import zlib
from html.parser import HTMLParser
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

HDOC_HEADER = b"HDOC\x00"
MARK = "(converted by the MCP parser)"

server = MCPServer("hector-test-parser")


def hdoc(text: str) -> bytes:
    return HDOC_HEADER + zlib.compress(text.encode())


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.parts.append(data.strip())


def _convert(name: str, data: bytes) -> str:
    if "broken" in name:
        raise ToolError(f"cannot convert {name}: damaged file")
    if data.startswith(HDOC_HEADER):
        text = zlib.decompress(data[len(HDOC_HEADER) :]).decode()
    elif name.endswith(".html"):
        reader = _Text()
        reader.feed(data.decode())
        text = "\n\n".join(reader.parts)
    else:
        raise ToolError(f"unsupported format: {name}")
    return f"{text}\n\n{MARK}"


@server.tool()
def convert_document(path: str) -> str:
    """Convert the document at a local path to plain text."""
    return _convert(Path(path).name, Path(path).read_bytes())


@server.tool()
def convert_upload(filename: str, content_base64: str) -> str:
    """Convert a document sent as base64 to plain text."""
    return _convert(filename, base64.b64decode(content_base64))


@server.tool()
def word_count(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


if __name__ == "__main__":
    server.run()
