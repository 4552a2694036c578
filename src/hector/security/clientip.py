"""The client's address, trusting ``X-Forwarded-For`` only from configured proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(e, strict=False) for e in entries]


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(scope: Scope, trusted: Sequence[Network]) -> str:
    peer = scope.get("client")
    address = str(peer[0]) if peer else "unknown"
    forwarded: str = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"), "")
    return forwarded_client(address, forwarded, trusted)


def forwarded_client(peer: str, forwarded: str, trusted: Sequence[Network]) -> str:
    """The client behind *peer*: *peer* itself unless it is a trusted proxy, then the nearest
    address of its ``X-Forwarded-For`` (*forwarded*) that is not one (over HTTP and gRPC alike)."""
    if not trusted or not _trusted(peer, trusted):
        return peer
    address = peer
    # Walk from the nearest hop back; the first address we do not trust is the client.
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _trusted(hop, trusted):
            return hop
        address = hop
    return address


def forwarded_proto(scope: Scope, trusted: Sequence[Network]) -> str | None:
    peer = scope.get("client")
    if not peer or not _trusted(peer[0], trusted):
        return None
    value: str | None = next(
        (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-proto"), None
    )
    return value if value in ("http", "https") else None
