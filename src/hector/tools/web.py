"""``web_request``: an HTTP(S) request on the model's behalf, fenced against SSRF.

Every hop (the first request and each redirect, followed by hand) must pass, in order: scheme
http/https; ``denied_domains`` then ``allowed_domains`` (denied wins, ``*.x.com`` is a suffix
match, the port is ignored); ``allowed_methods`` (case-insensitive); and — unless
``allow_private_networks`` — every address the host resolves to must be public. The request then
goes to one of those checked addresses, never to a second lookup of the name. TLS trusts the
system store plus the tool's TLS options (or the top-level defaults), as every outbound client
does (``hector.http_client``).
"""

from __future__ import annotations

import asyncio
import codecs
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Any

import httpx

from hector.config.schema import ToolConfig
from hector.config.tls import effective_tls, tool_component
from hector.errors import ToolError
from hector.http_client import create_async_client
from hector.tls import create_ssl_context, describe_tls_error, find_tls_error
from hector.tools import Tool, ToolContext
from hector.tools.registry import ToolEnv

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_TIMEOUT = 30.0
# SPEC §2.7 defaults for keys ToolConfig does not (yet) carry.
MAX_REQUEST_SIZE = 10 * 1024 * 1024
USER_AGENT = "Hector-Agent/1.0"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization"}
    | {"te", "trailer", "transfer-encoding", "upgrade"}
)
# Set by the tool: the length comes from the body, and identity encoding makes the size cap count
# the bytes on the wire, so a small compressed answer cannot inflate past it.
_MANAGED = frozenset({"content-length", "accept-encoding"})
# The model's own credentials go only to the origin it named, as browsers do on redirects.
_CREDENTIALS = frozenset({"authorization", "cookie"})
_SHOWN_HEADERS = ("content-type", "content-length", "location")
_TEXT_SUFFIXES = ("/json", "+json", "/xml", "+xml", "/javascript", "/ecmascript", "/yaml", "/csv")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# The legacy IPv4 spellings inet_aton accepts (2130706433, 0x7f.1, 017700000001, 127.1).
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _unmap(ip: IPAddress) -> IPAddress:
    """``::ffff:a.b.c.d`` is the IPv4 host a.b.c.d on a dual-stack socket: judge and dial it as such."""
    return ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip


def literal_address(host: str) -> IPAddress | None:
    """The address *host* spells, if it is one, including the legacy numeric IPv4 forms that
    resolvers (and so this tool's connections) honour; otherwise None (a name to resolve)."""
    try:
        return _unmap(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address *host* resolves to, in resolver order (tests replace this to fake DNS)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ToolError(f"cannot resolve {host}: {exc.strerror}") from None
    found: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = _unmap(ipaddress.ip_address(str(sockaddr[0]).partition("%")[0]))
        if ip not in found:
            found.append(ip)
    return found


def blocked_reason(ip: IPAddress) -> str | None:
    """What kind of non-public address *ip* is, or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        # 6to4 and NAT64 addresses carry an IPv4 address that gateways will deliver to.
        embedded = ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        inner = blocked_reason(embedded) if embedded else None
        if inner:
            return f"{inner} (embedded in {ip})"
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("shared (CGNAT)", ip in _CGNAT if isinstance(ip, ipaddress.IPv4Address) else False),
        ("site-local", ip.is_site_local if isinstance(ip, ipaddress.IPv6Address) else False),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved or not ip.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def _bare_domain(pattern: str) -> str:
    """A domain pattern without port, brackets or trailing dot: the port is ignored (SPEC §5.7)."""
    p = pattern.strip().lower()
    if p.startswith("["):
        p = p[1 : p.find("]")] if "]" in p else p[1:]
    elif p.count(":") == 1:
        p = p.partition(":")[0]
    return p.rstrip(".")


def domain_matches(host: str, pattern: str) -> bool:
    p = _bare_domain(pattern)
    if p == "*":
        return True
    if p.startswith("*."):
        return host.endswith(p[1:])
    return host == p


def check_domain(host: str, allowed: list[str] | None, denied: list[str] | None) -> None:
    host = _bare_domain(host)
    if denied and any(domain_matches(host, p) for p in denied):
        raise ToolError(f"domain {host} is denied (denied_domains)")
    if allowed and not any(domain_matches(host, p) for p in allowed):
        raise ToolError(f"domain {host} is not allowed (allowed_domains: {', '.join(allowed)})")


@dataclass
class _Fetched:
    response: httpx.Response
    data: bytes
    truncated: bool


class WebRequestTool(Tool):
    description = (
        "Make an HTTP or HTTPS request and return the status line, the content-type, content-length "
        "and location headers, and the body as text."
    )
    parameters = {
        "type": "object",
        "properties": {
            "url": {"type": "string", "description": "http:// or https:// URL"},
            "method": {"type": "string", "description": "HTTP method", "default": "GET"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {"type": "string", "description": "request body"},
        },
        "required": ["url"],
    }

    def __init__(self, name: str, cfg: ToolConfig, env: ToolEnv) -> None:
        self.name = name
        self._cfg = cfg
        self._component = tool_component(name)
        self._timeout = cfg.timeout or DEFAULT_TIMEOUT
        self._methods = frozenset(m.upper() for m in cfg.allowed_methods or METHODS)
        self._tls = effective_tls(cfg, env.tls_defaults)
        # An unreadable CA or client certificate should stop start-up, not the first call.
        create_ssl_context(self._tls, self._component)

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> str:
        method, url, headers, body = self._parse(arguments)
        try:
            # One deadline for everything: lookups, every redirect hop and reading the body.
            async with asyncio.timeout(self._timeout):
                return await self._follow(method, url, headers, body)
        except (TimeoutError, httpx.TimeoutException):
            raise ToolError(f"request timed out after {self._timeout:g}s (timeout)") from None
        except httpx.HTTPError as exc:  # e.g. the server broke the protocol or dropped the connection
            raise ToolError(f"request to {url} failed: {type(exc).__name__}: {exc}") from None

    def _parse(self, arguments: dict[str, Any]) -> tuple[str, httpx.URL, httpx.Headers, bytes | None]:
        unknown = sorted(set(arguments) - {"url", "method", "headers", "body"})
        if unknown:
            raise ToolError(f"unknown arguments {unknown}; expected url, method, headers, body")
        raw_url, method = arguments.get("url"), arguments.get("method") or "GET"
        if not isinstance(raw_url, str) or not raw_url.strip():
            raise ToolError("url is required")
        if not isinstance(method, str) or not _TOKEN.fullmatch(method):
            raise ToolError(f"invalid method {method!r}")
        try:
            url = httpx.URL(raw_url.strip())
        except httpx.InvalidURL as exc:
            raise ToolError(f"invalid url: {exc}") from None
        body = arguments.get("body")
        if body is not None and not isinstance(body, str):
            raise ToolError("body must be a string")
        data = body.encode() if body is not None else None
        if data is not None and len(data) > MAX_REQUEST_SIZE:
            raise ToolError(f"request body too large: {len(data)} bytes (max: {MAX_REQUEST_SIZE})")
        return method.upper(), url, _request_headers(arguments.get("headers")), data

    async def _follow(self, method: str, url: httpx.URL, headers: httpx.Headers, body: bytes | None) -> str:
        redirects = 0
        while True:
            try:
                fetched = await self._fetch(method, url, headers, body)
            except ToolError as exc:
                raise ToolError(f"redirect {redirects} to {url}: {exc}" if redirects else str(exc)) from None
            status, location = fetched.response.status_code, fetched.response.headers.get("location")
            if status not in _REDIRECTS or not location:
                return self._render(url, fetched, redirects, None)
            if redirects >= self._cfg.max_redirects:
                note = f"redirect not followed: max_redirects ({self._cfg.max_redirects}) reached"
                return self._render(url, fetched, redirects, note)
            redirects += 1
            try:
                target = url.join(location)
            except httpx.InvalidURL as exc:
                raise ToolError(f"invalid redirect location {location!r}: {exc}") from None
            if (target.scheme, target.host, target.port) != (url.scheme, url.host, url.port):
                headers = httpx.Headers([(k, v) for k, v in headers.multi_items() if k not in _CREDENTIALS])
            if status == 303 or (status in (301, 302) and method == "POST"):
                # The redirect turns the request into a GET: the body and its type stay behind.
                method = "HEAD" if method == "HEAD" else "GET"
                body = None
                headers.pop("content-type", None)
            url = target

    async def _fetch(
        self, method: str, url: httpx.URL, headers: httpx.Headers, body: bytes | None
    ) -> _Fetched:
        if url.scheme not in ("http", "https"):
            raise ToolError(f"only http and https URLs are allowed, not {url.scheme or 'a relative URL'!r}")
        if not url.host:
            raise ToolError(f"the URL {url} has no host")
        check_domain(url.host, self._cfg.allowed_domains, self._cfg.denied_domains)
        if method not in self._methods:
            raise ToolError(
                f"method {method} is not allowed (allowed_methods: {', '.join(sorted(self._methods))})"
            )
        host = url.raw_host.decode("ascii")
        addresses = await self._addresses(host, url.port or (443 if url.scheme == "https" else 80))
        # Address pinning. The URL's host is replaced by an address checked above, so httpx dials
        # exactly that address and never asks DNS again: a name that answers "public" to our
        # lookup and "127.0.0.1" to a second one (DNS rebinding) gains nothing. What the name
        # still decides travels separately: the Host header, and for TLS the `sni_hostname`
        # request extension, which httpcore passes to `start_tls` as `server_hostname` — so the
        # SNI is the name and the certificate is verified against the name, not the address.
        # Each hop gets its own client: the connection pool is keyed by address, and a
        # connection verified for one name must never be reused for another name on that address.
        pinned_headers = headers.copy()
        pinned_headers["Host"] = url.netloc.decode("ascii")
        extensions = {} if literal_address(host) else {"sni_hostname": host}
        failure: Exception | None = None
        async with create_async_client(
            component=self._component, tls=self._tls, timeout=self._timeout
        ) as client:
            for ip in addresses:
                try:
                    pinned = url.copy_with(host=str(ip))
                    async with client.stream(
                        method, pinned, headers=pinned_headers, content=body, extensions=extensions
                    ) as response:
                        data, truncated = await _read_capped(response, self._cfg.max_response_size)
                        return _Fetched(response, data, truncated)
                except httpx.ConnectError as exc:
                    if find_tls_error(exc) is not None:
                        raise ToolError(self._tls_message(host, exc)) from None
                    failure = exc  # this address refused or is unreachable: try the next one
        raise ToolError(f"cannot connect to {host} ({', '.join(map(str, addresses))}): {failure}")

    async def _addresses(self, host: str, port: int) -> list[IPAddress]:
        literal = literal_address(host)
        addresses = [literal] if literal else await resolve(host, port)
        if not addresses:
            raise ToolError(f"cannot resolve {host}: no addresses")
        if not self._cfg.allow_private_networks:
            # Any bad address refuses the host: a name need not resolve the same way twice.
            for ip in addresses:
                reason = blocked_reason(ip)
                if reason:
                    raise ToolError(
                        f"refused {host}: {ip} is a {reason} address; requests to private networks "
                        f"are blocked (allow_private_networks is off for tool {self.name})"
                    )
        return addresses

    def _tls_message(self, host: str, exc: httpx.ConnectError) -> str:
        return f"TLS connection to {host} failed: {describe_tls_error(exc)} (TLS options of tool {self.name})"

    def _render(self, url: httpx.URL, fetched: _Fetched, redirects: int, note: str | None) -> str:
        response = fetched.response
        lines = [f"{response.http_version} {response.status_code} {response.reason_phrase}".rstrip()]
        if redirects:
            lines.append(f"final URL: {url} (after {redirects} redirect{'s' if redirects > 1 else ''})")
        lines += [f"{name}: {response.headers[name]}" for name in _SHOWN_HEADERS if name in response.headers]
        if note:
            lines.append(f"[{note}]")
        lines += ["", _body_text(response, fetched.data)]
        if fetched.truncated:
            lines.append(
                f"[truncated: the response is larger than max_response_size "
                f"({self._cfg.max_response_size} bytes); only that much was read]"
            )
        return "\n".join(lines)


def _request_headers(given: Any) -> httpx.Headers:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ToolError("headers must be an object of header names to string values")
    headers = httpx.Headers({"User-Agent": USER_AGENT})
    for name, value in given.items():
        if not isinstance(value, str) or not _TOKEN.fullmatch(name) or _CONTROL.search(value):
            # CR/LF in a name or value would let the model write extra headers or a second request.
            raise ToolError(f"invalid header {name!r}: names are tokens, values strings without CR/LF")
        lower = name.lower()
        if lower == "host":
            raise ToolError("the Host header cannot be set: it comes from the URL")
        if lower not in _HOP_BY_HOP and lower not in _MANAGED:
            headers[name] = value
    headers["Accept-Encoding"] = "identity"
    return headers


async def _read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most *limit* bytes of the body, and whether more was on its way (then it stops reading)."""
    data = bytearray()
    async for chunk in response.aiter_raw():
        room = limit - len(data)
        if len(chunk) > room:
            data += chunk[:room]
            return bytes(data), True
        data += chunk
    return bytes(data), False


def _body_text(response: httpx.Response, data: bytes) -> str:
    if not data:
        return "(empty body)"
    content_type = response.headers.get("content-type", "")
    mime = content_type.partition(";")[0].strip().lower()
    encoding = response.headers.get("content-encoding", "identity").lower()
    textual = mime.startswith("text/") or mime.endswith(_TEXT_SUFFIXES) if mime else b"\0" not in data[:8192]
    if not textual or encoding not in ("", "identity"):
        encoded = f", {encoding}-encoded" if encoding not in ("", "identity") else ""
        return f"[binary body: {len(data)} bytes of {mime or 'unknown type'}{encoded}; not shown]"
    charset = response.charset_encoding or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return data.decode(charset, errors="replace")


def build(name: str, cfg: ToolConfig, env: ToolEnv) -> Tool:
    return WebRequestTool(name, cfg, env)
