"""Document stores fed by a REST API (``source: api``), against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from hector.config import parse_config
from hector.config.schema import Config, DocumentStoreConfig
from hector.errors import ConfigError, DocumentSourceError
from hector.rag.documents import DocumentStore
from hector.rag.embedders import Embedder
from hector.rag.retrieval import cite
from hector.rag.vectors import EmbeddedVectorStore
from tests.harness import serve_app
from tests.rag.test_indexing import Counting

TOKEN = "tok-4f9a2c71d"
ARTICLES = {
    1: ("Espresso machine care", "Descale the espresso machine every month with citric acid."),
    2: ("Kayak rental", "Kayaks are rented by the hour at the north pier, life vests included."),
    3: ("Aurora season", "The northern lights are best seen in Norway from September to March."),
    4: ("Sourdough", "Feed the sourdough starter with flour and water every day."),
    5: ("Bicycle repair", "Patch a punctured inner tube with glue and a rubber patch."),
}


@dataclass
class FakeAPI:
    items: dict[int, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def ordered(self) -> list[dict[str, Any]]:
        return [self.items[k] for k in sorted(self.items)]


def _app(api: FakeAPI) -> Starlette:
    def authorized(request: Request) -> bool:
        api.requests.append(request)
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    async def by_page(request: Request) -> Response:
        if not authorized(request):
            return JSONResponse({"error": f"bad token, expected Bearer {TOKEN}"}, status_code=401)
        page, size = int(request.query_params["page"]), int(request.query_params["page_size"])
        return JSONResponse(api.ordered()[(page - 1) * size : page * size])

    async def by_offset(request: Request) -> Response:
        authorized(request)
        start, size = int(request.query_params["skip"]), int(request.query_params["take"])
        return JSONResponse({"data": {"items": api.ordered()[start : start + size]}})

    async def by_cursor(request: Request) -> Response:
        authorized(request)
        start = int(request.query_params.get("after", "0"))
        items = api.ordered()[start : start + 2]
        more = start + 2 < len(api.items)
        return JSONResponse({"results": items, "meta": {"next": str(start + 2) if more else None}})

    async def by_link(request: Request) -> Response:
        authorized(request)
        page = int(request.query_params.get("p", "1"))
        items = api.ordered()[(page - 1) * 2 : page * 2]
        headers = {"Link": f'</v1/linked?p={page + 1}>; rel="next"'} if page * 2 < len(api.items) else {}
        return JSONResponse(items, headers=headers)

    async def elsewhere(request: Request) -> Response:
        authorized(request)
        return JSONResponse({"items": api.ordered()[:1], "next": "http://203.0.113.9/v1/steal?p=2"})

    async def stuck(request: Request) -> Response:  # ignores the page parameter
        authorized(request)
        return JSONResponse(api.ordered()[:2])

    async def slow(request: Request) -> Response:
        await asyncio.sleep(2)
        return JSONResponse([])

    async def huge(request: Request) -> Response:  # 4 MiB of items, sent in 64 KiB pieces
        async def body() -> AsyncIterator[bytes]:
            item = b'{"id": 1, "title": "' + b"x" * 65_000 + b'"},'
            yield b"["
            for _ in range(64):
                yield item
            yield b'{"id": 2}]'

        return StreamingResponse(body(), media_type="application/json")

    async def trickle(request: Request) -> Response:  # a byte every 100 ms: no read ever times out
        async def body() -> AsyncIterator[bytes]:
            for _ in range(30):
                yield b" "
                await asyncio.sleep(0.1)
            yield b"[]"

        return StreamingResponse(body(), media_type="application/json")

    async def cycle(request: Request) -> Response:  # cursors a -> b -> a -> ...: never ends
        api.requests.append(request)
        page = request.query_params.get("cursor", "a")
        items = api.ordered()[:2] if page == "a" else api.ordered()[2:4]
        return JSONResponse({"data": items, "next_cursor": "b" if page == "a" else "a"})

    async def ring(request: Request) -> Response:  # Link: p=1 -> p=2 -> p=1 -> ...
        api.requests.append(request)
        page = int(request.query_params.get("p", "1"))
        items = api.ordered()[(page - 1) * 2 : page * 2]
        return JSONResponse(items, headers={"Link": f'</v1/ring?p={3 - page}>; rel="next"'})

    async def echo(request: Request) -> Response:  # an error page that quotes the request URL
        return PlainTextResponse(f"forbidden: {request.url}", status_code=403)

    async def cut(request: Request) -> Response:  # the token where the quoted text is cut
        return PlainTextResponse("." * 196 + TOKEN, status_code=401)

    return Starlette(
        routes=[
            Route("/v1/articles", by_page),
            Route("/v1/offset", by_offset),
            Route("/v1/cursor", by_cursor),
            Route("/v1/linked", by_link),
            Route("/v1/elsewhere", elsewhere),
            Route("/v1/stuck", stuck),
            Route("/v1/slow", slow),
            Route("/v1/huge", huge),
            Route("/v1/trickle", trickle),
            Route("/v1/cycle", cycle),
            Route("/v1/ring", ring),
            Route("/v1/echo", echo),
            Route("/v1/cut", cut),
        ]
    )


@pytest.fixture
async def api() -> AsyncIterator[FakeAPI]:
    fake = FakeAPI(
        {
            k: {"id": k, "title": t, "body": b, "author": {"name": f"writer {k}"}, "updated": "2024-01-01"}
            for k, (t, b) in ARTICLES.items()
        }
    )
    async with serve_app(_app(fake)) as url:
        fake.url = url
        yield fake


def api_store(api: FakeAPI, state: AsyncEngine, embedder: Any, **endpoint: Any) -> DocumentStore:
    return DocumentStore(
        "kb", api_config(api, **endpoint), Path("."), embedder, EmbeddedVectorStore(state), state
    )


def api_config(api: FakeAPI, **endpoint: Any) -> DocumentStoreConfig:
    return DocumentStoreConfig.model_validate(
        {
            "source": "api",
            "api": {
                "base_url": f"{api.url}/v1",
                "auth": {"type": "bearer", "token": TOKEN},
                "timeout": "500ms",
                "endpoints": [
                    {
                        "path": "/articles",
                        "content_field": "title, body",
                        "metadata_fields": ["author.name"],
                        "updated_field": "updated",
                        "pagination": {"type": "page", "page_size": 2},
                        **endpoint,
                    }
                ],
            },
        }
    )


async def documents(store: DocumentStore) -> set[str]:
    return {c.document for c in await store.vectors.chunks(store.collection)}


ALL = {f"articles/{k}" for k in ARTICLES}


async def test_pages_are_indexed_incrementally_and_searchable(
    api: FakeAPI, engine: AsyncEngine, local: Embedder
) -> None:
    embedder = Counting(local)
    store = api_store(api, engine, embedder)
    try:
        assert (await store.index()).added == 5
        # Three pages of two: the last, short page ends the listing.
        assert [(r.query_params["page"], r.query_params["page_size"]) for r in api.requests] == [
            ("1", "2"),
            ("2", "2"),
            ("3", "2"),
        ]
        assert {r.headers["authorization"] for r in api.requests} == {f"Bearer {TOKEN}"}
        assert await documents(store) == ALL
        hit = (await store.search("how do I fix a flat bicycle tire", top_k=1))[0]
        assert hit.chunk.document == "articles/5" and cite(hit) == "articles/5"
        assert (
            hit.chunk.text
            == "title: Bicycle repair\nbody: Patch a punctured inner tube with glue and a rubber patch."
        )
        assert hit.chunk.meta == {
            "path": "articles/5",
            "chunk": 0,
            "source": "api",
            "author.name": "writer 5",
            "updated": "2024-01-01",
        }

        embedder.texts.clear()
        api.items[2]["body"] = "Canoes and kayaks by the day."
        api.items[3]["updated"] = "2024-03-03"
        del api.items[4]
        report = await store.index()
        assert (report.updated, report.removed, report.unchanged) == (2, 1, 2)
        assert sorted(embedder.texts) == [
            f"title: Aurora season\nbody: {ARTICLES[3][1]}",
            "title: Kayak rental\nbody: Canoes and kayaks by the day.",
        ]
        assert await documents(store) == ALL - {"articles/4"}
    finally:
        await store.aclose()


@pytest.mark.parametrize(
    ("path", "pagination", "expected_queries"),
    [
        (
            "/offset",
            {
                "type": "offset",
                "page_param": "skip",
                "size_param": "take",
                "page_size": 2,
                "data_field": "data.items",
            },
            [{"skip": "0", "take": "2"}, {"skip": "2", "take": "2"}, {"skip": "4", "take": "2"}],
        ),
        (
            "/cursor",
            {
                "type": "cursor",
                "page_param": "after",
                "size_param": "n",
                "page_size": 2,
                "next_field": "meta.next",
            },
            [{"n": "2"}, {"n": "2", "after": "2"}, {"n": "2", "after": "4"}],
        ),
        ("/linked", {"type": "link"}, [{}, {"p": "2"}, {"p": "3"}]),
    ],
)
async def test_offset_cursor_and_link_pagination(
    api: FakeAPI,
    engine: AsyncEngine,
    local: Embedder,
    path: str,
    pagination: dict[str, Any],
    expected_queries: list[dict[str, str]],
) -> None:
    store = api_store(api, engine, local, path=path, pagination=pagination)
    try:
        assert (await store.index()).added == 5
        assert [dict(r.query_params) for r in api.requests] == expected_queries
        assert all(r.url.path == f"/v1{path}" for r in api.requests)
        assert await documents(store) == {f"{path.strip('/')}/{k}" for k in ARTICLES}
    finally:
        await store.aclose()


async def test_max_pages_and_auth_kinds(api: FakeAPI, engine: AsyncEngine, local: Embedder) -> None:
    embedder = local
    basic = {"type": "basic", "user": "reader", "pass": "pw-1234", "extra": {"X-Tenant": "acme"}}
    store = api_store(
        api,
        engine,
        embedder,
        path="/offset",
        auth=basic,
        headers={"Accept-Language": "en"},
        pagination={
            "type": "offset",
            "page_param": "skip",
            "size_param": "take",
            "page_size": 2,
            "max_pages": 2,
            "data_field": "data.items",
        },
    )
    try:
        assert (await store.index()).added == 4  # two pages of two, then max_pages stops
        request = api.requests[0]
        assert request.headers["authorization"] == "Basic " + base64.b64encode(b"reader:pw-1234").decode()
        assert (request.headers["x-tenant"], request.headers["accept-language"]) == ("acme", "en")
    finally:
        await store.aclose()
    api.requests.clear()
    key = {"type": "apikey", "token": "key-77aa", "header": "X-Api-Token"}
    store = api_store(api, engine, embedder, path="/cursor", auth=key, pagination={})
    try:
        await store.index()
        assert api.requests[0].headers["x-api-token"] == "key-77aa"
        assert "authorization" not in api.requests[0].headers
        assert len(api.requests) == 1  # no pagination: one request, items under "results"
    finally:
        await store.aclose()


async def test_errors_name_store_and_endpoint_without_secrets(api: FakeAPI, engine: AsyncEngine) -> None:
    async def fails(**endpoint: Any) -> str:
        store = api_store(api, engine, None, **endpoint)
        assert store.source is not None
        try:
            with pytest.raises(DocumentSourceError) as failure:
                await store.source.records()
        finally:
            await store.aclose()
        return str(failure.value)

    message = await fails(auth={"type": "bearer", "token": "wrong-token-value"})
    # The server echoes the expected token in its error body: it must not reach the message.
    assert message.startswith("document store 'kb': endpoint GET /articles answered HTTP 401: ")
    assert "bad token" in message and TOKEN not in message and "wrong-token-value" not in message
    message = await fails(path="/slow")
    assert message == "document store 'kb': endpoint GET /slow: no answer within 0.5s (api.timeout)"
    message = await fails(path="/elsewhere", pagination={"type": "link", "next_field": "next"})
    assert "the next-page link points to another host (203.0.113.9); it is not followed" in message
    message = await fails(
        path="/offset", params={"skip": 0, "take": 2}, pagination={"data_field": "data.rows"}
    )
    assert message == "document store 'kb': endpoint /offset: no list at 'data.rows' (data_field)"


def test_validate_reports_missing_api_settings() -> None:
    def errors(store: dict[str, Any]) -> str:
        with pytest.raises(ConfigError) as failure:
            parse_config({"document_stores": {"kb": store}}, "<test>")
        return str(failure.value)

    text = errors({"source": "api"})
    assert "document store 'kb': source api needs api.base_url" in text
    assert "document store 'kb': source api needs api.endpoints (at least one)" in text
    text = errors(
        {
            "source": "api",
            "api": {
                "base_url": "example.com",
                "auth": {"type": "basic", "user": "u"},
                "endpoints": [{"auth": {"type": "apikey"}}],
            },
        }
    )
    assert "api.base_url must start with http:// or https://" in text
    assert "document store 'kb': api.auth: type basic needs user and pass" in text
    assert "api.endpoints[0] needs path" in text
    assert "api.endpoints[0].auth: type apikey needs token" in text
    text = errors(
        {
            "source": "api",
            "api": {"base_url": "http://x", "endpoints": [{"path": "/a", "pagination": {"type": "pages"}}]},
        }
    )
    assert "pagination.type" in text and "'pages'" in text


async def test_tls_options_of_the_api_and_top_level_defaults(
    api: FakeAPI, engine: AsyncEngine, tmp_path: Path
) -> None:
    authority = trustme.CA()
    authority.cert_pem.write_to_path(tmp_path / "ca.pem")
    server = authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem
    server.write_to_path(tmp_path / "server.pem")
    ca = str(tmp_path / "ca.pem")
    async with serve_app(_app(api), ssl_certfile=str(tmp_path / "server.pem")) as url:
        secure = FakeAPI(api.items, api.requests, url)
        store = api_store(secure, engine, None, pagination={})
        assert store.source is not None
        with pytest.raises(DocumentSourceError) as failure:
            await store.source.records()
        await store.aclose()
        assert "endpoint GET /articles: cannot reach https://127.0.0.1: " in str(failure.value)
        assert "certificate" in str(failure.value)
        # The CA on the store's api section, or as the configuration's top-level default.
        cfg = api_config(secure, pagination={"type": "page", "page_size": 5})
        assert cfg.api is not None
        with_ca = cfg.model_copy(update={"api": cfg.api.model_copy(update={"ca_certificate": ca})})
        for own, top in ((with_ca, None), (cfg, Config(ca_certificate=ca))):
            source = DocumentStore(
                "kb", own, Path("."), None, EmbeddedVectorStore(engine), engine, top
            ).source
            assert source is not None
            assert len(await source.records()) == 5
            await source.aclose()


def test_validate_warns_about_insecure_tls_and_unused_settings() -> None:
    store = {
        "source": "api",
        "sql_tables": [{"table": "t"}],
        "api": {
            "base_url": "https://kb.example",
            "insecure_skip_verify": True,
            "endpoints": [{"path": "/a"}],
        },
    }
    warnings = parse_config({"document_stores": {"kb": store}}, "<test>").warnings
    assert warnings == [
        "document store 'kb': sql_tables is ignored because source is api",
        "TLS certificate verification disabled for document store API (kb) (insecure_skip_verify=true)",
    ]


async def test_a_server_ignoring_the_page_parameter_does_not_loop_forever(
    api: FakeAPI, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    store = api_store(api, engine, None, path="/stuck")
    assert store.source is not None
    try:
        records = await asyncio.wait_for(store.source.records(), 10)
    finally:
        await store.aclose()
    assert [r.id for r in records] == ["stuck/1", "stuck/2"]
    assert len(api.requests) == 2
    assert "endpoint /stuck returned the same page twice; stopping there" in caplog.text


async def test_a_huge_or_trickling_answer_fails_the_read_and_keeps_the_index(
    api: FakeAPI, engine: AsyncEngine, local: Embedder
) -> None:
    store = api_store(api, engine, local)
    assert (await store.index()).added == 5
    await store.aclose()

    async def index(path: str, **api_settings: Any) -> str:
        cfg = api_config(api, path=path, pagination={})
        assert cfg.api is not None
        cfg = cfg.model_copy(update={"api": cfg.api.model_copy(update=api_settings)})
        again = DocumentStore("kb", cfg, Path("."), local, EmbeddedVectorStore(engine), engine)
        try:
            with pytest.raises(DocumentSourceError) as failure:
                await asyncio.wait_for(again.index(), 20)
        finally:
            await again.aclose()
        return str(failure.value)

    # The body is read up to max_response_size (after decompression), not into memory whole.
    message = await index("/huge", max_response_size=1024 * 1024)
    assert message == (
        "document store 'kb': endpoint GET /huge: the answer is larger than 1048576 bytes "
        "(api.max_response_size)"
    )
    # api.timeout bounds the whole answer, not each read of it.
    message = await index("/trickle")
    assert message == "document store 'kb': endpoint GET /trickle: no answer within 0.5s (api.timeout)"
    assert await documents(store) == ALL, "a source that cannot be read removes nothing"


def test_max_response_size_is_a_size() -> None:
    store = {"source": "api", "api": {"base_url": "http://x", "endpoints": [{"path": "/a"}]}}
    store["api"]["max_response_size"] = "2MiB"  # type: ignore[index]
    cfg = parse_config({"document_stores": {"kb": store}}, "<test>").config.document_stores["kb"]
    assert cfg.api is not None and cfg.api.max_response_size == 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("path", "pagination", "step"),
    [("/cycle", {"type": "cursor", "data_field": "data"}, "cursor"), ("/ring", {"type": "link"}, "link")],
)
async def test_a_cursor_or_link_seen_before_ends_the_listing(
    api: FakeAPI, engine: AsyncEngine, caplog: pytest.LogCaptureFixture, path: str, pagination: Any, step: str
) -> None:
    store = api_store(api, engine, None, path=path, pagination=pagination)
    assert store.source is not None
    try:
        records = await asyncio.wait_for(store.source.records(), 10)
    finally:
        await store.aclose()
    assert sorted(r.id for r in records) == [f"{path.strip('/')}/{k}" for k in (1, 2, 3, 4)]
    # The first page again (its cursor or link was not known), then the second one's comes back.
    assert len(api.requests) == 3
    assert f"endpoint {path}: a next-page {step} was already followed; stopping there" in caplog.text


async def test_keys_in_the_query_and_params_stay_out_of_messages(api: FakeAPI, engine: AsyncEngine) -> None:
    store = api_store(
        api, engine, None, path="/echo?api_key=qk-5571d0e2", params={"sig": "pk-0b7f39aa"}, pagination={}
    )
    assert store.source is not None
    try:
        with pytest.raises(DocumentSourceError) as failure:
            await store.source.records()
    finally:
        await store.aclose()
    message = str(failure.value)
    assert message.startswith("document store 'kb': endpoint GET /echo answered HTTP 403: forbidden: http")
    assert "qk-5571d0e2" not in message and "pk-0b7f39aa" not in message
    store = api_store(api, engine, None, path="/cut", pagination={})
    assert store.source is not None
    try:
        with pytest.raises(DocumentSourceError) as failure:
            await store.source.records()
    finally:
        await store.aclose()
    assert "." * 196 + "***" in str(failure.value) and TOKEN[:4] not in str(failure.value)
