"""``source: api``: the items a REST API lists, as documents, through Hector's HTTP client.

Each endpoint is read page by page (page numbers, offsets, cursors or next links) and each item
becomes the document ``<endpoint path>/<id>``. Requests go through
``hector.http_client.create_async_client``, so the store's TLS options (and the top-level
defaults) apply and redirects are not followed. ``api.timeout`` bounds each request with its whole
answer (a server trickling bytes cannot hold a read open), and an answer is read up to
``api.max_response_size`` only, so a huge one cannot fill the memory.

Credentials never reach a message: errors name the store, the method and the endpoint path
without its query (the URL's query may carry a key), and a response body quoted in an error is
scrubbed of every configured secret, query values and ``params`` included. A next-page link to
another host is refused rather than followed, since following it would hand the credentials to
that host; a cursor or link seen before ends the listing, as the server is going round in circles.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any
from urllib.parse import quote

import httpx

from hector.config.base import TLSClientOptions
from hector.config.schema import DocumentStoreConfig
from hector.config.sources import APIAuthConfig, APIEndpointConfig, api_component
from hector.config.tls import effective_tls
from hector.errors import ConfigError, DocumentSourceError
from hector.http_client import create_async_client
from hector.rag.sources_base import Record, plain, record_text, scrub
from hector.tls import describe_tls_error, find_tls_error

log = logging.getLogger("hector.rag")

LIST_KEYS = ("data", "items", "results")
"""Where the items are when a response is an object and no data_field is given."""
DEFAULT_PAGE_PARAM = {"page": "page", "offset": "offset", "cursor": "cursor"}
ERROR_DETAIL_CHARS = 200


def dot(value: Any, path: str) -> Any:
    """The value at a dot path (``meta.author.name``, ``items.0``); None where there is none."""
    if isinstance(value, dict) and path in value:  # a key that itself contains dots
        return value[path]
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def auth_headers(auth: APIAuthConfig | None) -> dict[str, str]:
    if auth is None:
        return {}
    headers = {name: value.get_secret_value() for name, value in auth.extra.items()}
    token = auth.token.get_secret_value() if auth.token else ""
    if auth.type == "bearer":
        headers["Authorization"] = f"Bearer {token}"
    elif auth.type == "apikey":
        headers[auth.header] = token
    else:
        password = auth.pass_.get_secret_value() if auth.pass_ else ""
        pair = base64.b64encode(f"{auth.user or ''}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {pair}"
    return headers


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


class APISource:
    kind = "api"

    def __init__(self, name: str, cfg: DocumentStoreConfig, tls_defaults: TLSClientOptions | None) -> None:
        self.owner = f"document store {name!r}"
        api = cfg.api
        if api is None or not api.base_url or not api.endpoints:
            raise ConfigError(f"{self.owner}: source api needs api.base_url and api.endpoints")
        self.api = api
        base = httpx.URL(api.base_url)
        self.origin = _origin(base)
        self.client = create_async_client(
            component=api_component(name),
            tls=effective_tls(api, tls_defaults),
            timeout=api.timeout,
            base_url=api.base_url,
        )
        # Keys also travel in query strings and params: their values count as secrets too.
        secrets = [base.password or "", *(v for _, v in base.params.multi_items())]
        for auth in [api.auth, *(e.auth for e in api.endpoints)]:
            secrets += auth_headers(auth).values()
            if auth is not None:
                secrets += [s.get_secret_value() for s in (auth.token, auth.pass_) if s is not None]
        for endpoint in api.endpoints:
            secrets += [v.get_secret_value() for v in endpoint.headers.values()]
            secrets += [v for _, v in httpx.URL(endpoint.path or "/").params.multi_items()]
            secrets += [str(v) for v in endpoint.params.values() if isinstance(v, str)]
        self._secrets = [form for s in secrets if len(s) >= 4 for form in (s, quote(s, safe=""))]

    async def records(self) -> list[Record]:
        found: dict[str, Record] = {}
        for endpoint in self.api.endpoints:
            prefix = _label(endpoint).strip("/")
            skipped = 0
            for item in await self._items(endpoint):
                key = dot(item, endpoint.id_field)
                if key is None or isinstance(key, dict | list):
                    skipped += 1
                    continue
                record = _record(f"{prefix}/{plain(key)}", item, endpoint)
                found[record.id] = record
            if skipped:
                log.warning(
                    "%s: endpoint %s: %d items without %s skipped",
                    self.owner,
                    _label(endpoint),
                    skipped,
                    endpoint.id_field,
                )
        return list(found.values())

    async def _items(self, endpoint: APIEndpointConfig) -> list[Any]:
        paging = endpoint.pagination
        page_param = paging.page_param or DEFAULT_PAGE_PARAM.get(paging.type or "", "")
        size_param = paging.size_param or ("page_size" if paging.type == "page" else "limit")
        headers = auth_headers(endpoint.auth or self.api.auth)
        headers |= {name: value.get_secret_value() for name, value in endpoint.headers.items()}
        target: str | httpx.URL = endpoint.path or "/"
        params: dict[str, Any] = dict(endpoint.params)
        if paging.type in ("page", "offset", "cursor") or (paging.type == "link" and paging.size_param):
            params[size_param] = paging.page_size
        items: list[Any] = []
        previous: list[Any] | None = None
        cursor: Any = None
        seen: set[str] = set()  # cursors and links followed: one coming back means a cycle
        page = 0
        while True:
            page += 1
            if paging.type == "page":
                params[page_param] = page
            elif paging.type == "offset":
                params[page_param] = (page - 1) * paging.page_size
            elif paging.type == "cursor" and cursor is not None:
                params[page_param] = cursor
            response, body = await self._get(endpoint, target, params, headers)
            batch = self._batch(endpoint, body)
            if batch and batch == previous:  # a server that ignores the page parameter
                log.warning(
                    "%s: endpoint %s returned the same page twice; stopping there",
                    self.owner,
                    _label(endpoint),
                )
                break
            items += batch
            previous = batch
            if paging.type is None or not batch or (paging.max_pages and page >= paging.max_pages):
                break
            if paging.type in ("page", "offset") and len(batch) < paging.page_size:
                break
            if paging.type == "cursor":
                cursor = dot(body, paging.next_field or "next_cursor")
                if cursor in (None, "", False):
                    break
                if not isinstance(cursor, str | int | float):
                    raise DocumentSourceError(
                        f"{self.owner}: endpoint {_label(endpoint)}: the next cursor at "
                        f"{paging.next_field or 'next_cursor'!r} is not a string or a number"
                    )
                if self._again(endpoint, f"cursor {cursor}", seen):
                    break
            elif paging.type == "link":
                if paging.next_field:
                    link = dot(body, paging.next_field)
                else:  # RFC 8288: Link: <https://…?page=2>; rel="next"
                    link = response.links.get("next", {}).get("url")
                if not link:
                    break
                target = self._same_origin(endpoint, response.url.join(str(link)))
                if self._again(endpoint, f"link {target}", seen):
                    break
                params = {}  # the link carries its own query
        return items

    def _again(self, endpoint: APIEndpointConfig, step: str, seen: set[str]) -> bool:
        """Whether the next *step* was taken before (then the listing would never end)."""
        if step in seen:
            log.warning(
                "%s: endpoint %s: a next-page %s was already followed; stopping there",
                self.owner, _label(endpoint), step.split(" ", 1)[0],
            )  # fmt: skip
            return True
        seen.add(step)
        return False

    def _same_origin(self, endpoint: APIEndpointConfig, url: httpx.URL) -> httpx.URL:
        if _origin(url) != self.origin:
            raise DocumentSourceError(
                f"{self.owner}: endpoint {_label(endpoint)}: the next-page link points to another host "
                f"({url.host}); it is not followed, as the request would carry the store's credentials"
            )
        return url

    async def _get(
        self,
        endpoint: APIEndpointConfig,
        target: str | httpx.URL,
        params: dict[str, Any],
        headers: dict[str, str],
    ) -> tuple[httpx.Response, Any]:
        where = f"{self.owner}: endpoint {endpoint.method} {_label(endpoint)}"
        body = endpoint.body if endpoint.method == "POST" else None
        limit = self.api.max_response_size
        try:
            # The deadline covers the whole answer: httpx's own timeouts are per read, which a
            # server sending a byte at a time never trips.
            async with asyncio.timeout(self.api.timeout):
                request = self.client.build_request(
                    endpoint.method, target, params=params or None, headers=headers, json=body
                )
                response = await self.client.send(request, stream=True)
                try:
                    data = await _read_capped(response, limit)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TimeoutException):
            raise DocumentSourceError(
                f"{where}: no answer within {self.api.timeout:g}s (api.timeout)"
            ) from None
        except httpx.HTTPError as exc:
            # httpx's own text may hold the request URL (and a key in its query): not shown.
            reason = describe_tls_error(exc) if find_tls_error(exc) else type(exc).__name__
            raise DocumentSourceError(
                f"{where}: cannot reach {self.origin[0]}://{self.origin[1]}: {reason}"
            ) from None
        if response.status_code >= 300:
            # Scrubbed before it is cut: a secret across the cut would otherwise keep its start.
            text = scrub((data or b"")[: ERROR_DETAIL_CHARS * 8].decode("utf-8", "replace"), self._secrets)
            detail = " ".join(text.split())[:ERROR_DETAIL_CHARS]
            raise DocumentSourceError(
                f"{where} answered HTTP {response.status_code}" + (f": {detail}" if detail else "")
            )
        if data is None:
            raise DocumentSourceError(
                f"{where}: the answer is larger than {limit} bytes (api.max_response_size)"
            )
        try:
            # Off the event loop: a page of several megabytes takes a while to parse.
            return response, await asyncio.to_thread(json.loads, data)
        except ValueError:
            raise DocumentSourceError(f"{where}: the answer is not JSON") from None

    def _batch(self, endpoint: APIEndpointConfig, body: Any) -> list[Any]:
        field = endpoint.pagination.data_field
        if field:
            found = dot(body, field)
            if not isinstance(found, list):
                raise DocumentSourceError(
                    f"{self.owner}: endpoint {_label(endpoint)}: no list at {field!r} (data_field)"
                )
            return found
        if isinstance(body, list):
            return body
        if isinstance(body, dict):
            for key in LIST_KEYS:
                if isinstance(body.get(key), list):
                    return list(body[key])
            return [body]  # one object: one document
        raise DocumentSourceError(f"{self.owner}: endpoint {_label(endpoint)}: the answer holds no items")

    async def aclose(self) -> None:
        await self.client.aclose()


def _label(endpoint: APIEndpointConfig) -> str:
    """The endpoint's path for ids and messages: without its query, which may hold a key."""
    return (endpoint.path or "").split("?")[0]


async def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The decoded body, or None once it grows past *limit* bytes (the rest is not read)."""
    data = bytearray()
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) > limit:
            return None
    return bytes(data)


def _record(doc_id: str, item: Any, endpoint: APIEndpointConfig) -> Record:
    if endpoint.content_field:
        text = record_text((f, dot(item, f)) for f in endpoint.content_field)
    else:
        text = record_text(item.items() if isinstance(item, dict) else [("value", item)])
    meta = {f: plain(dot(item, f)) for f in endpoint.metadata_fields}
    if endpoint.updated_field:
        meta[endpoint.updated_field] = plain(dot(item, endpoint.updated_field))
    return Record(doc_id, text, meta)
