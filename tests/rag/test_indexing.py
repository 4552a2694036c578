"""Document stores: parsing, filtering, chunking and incremental indexing of a folder."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from hector.assembly import build_runtime
from hector.config import parse_config
from hector.config.schema import Config, DocumentStoreConfig, EmbedderConfig
from hector.errors import ConfigError
from hector.rag.documents import DocumentStore
from hector.rag.embedders import Embedder, build_embedder
from hector.rag.sources import DEFAULT_EXCLUDES, FileFilter, chunk_text
from hector.rag.vectors import EmbeddedVectorStore
from tests.rag.corpus import write_mixed


class Counting(Embedder):
    """The local embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.model, self.dimension, self.batch_size = "count", inner.model, inner.dimension, 64
        self.texts: list[str] = []

    @property
    def identity(self) -> str:
        return self.inner.identity

    async def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        self.texts += texts
        return await self.inner.embed(texts)


def store(folder: Path, engine: AsyncEngine, embedder: Embedder, **cfg: object) -> DocumentStore:
    config = DocumentStoreConfig.model_validate({"path": str(folder), **cfg})
    return DocumentStore("docs", config, folder, embedder, EmbeddedVectorStore(engine), engine)


async def test_index_parses_every_kind_and_skips_the_rest(tmp_path: Path, engine: AsyncEngine) -> None:
    write_mixed(tmp_path / "docs")
    embedder = Counting(build_embedder("local", EmbedderConfig(), tmp_path))
    docs = store(tmp_path / "docs", engine, embedder)
    report = await docs.index()
    assert (report.added, report.failed) == (5, 0)
    paths = {c.document for c in await docs.vectors.chunks("docs")}
    assert paths == {"guide.md", "notes.txt", "code.py", "manual.pdf", "report.docx"}
    for query, expected in [
        ("how often to descale the coffee machine", "manual.pdf"),
        ("kayak rental revenue growth", "report.docx"),
        ("northern lights in Norway", "guide.md"),
        ("fibonacci", "code.py"),
    ]:
        hits = await docs.search(query, top_k=1)
        assert hits[0].chunk.document == expected, query
    pdf = (await docs.search("espresso descaling", top_k=1, mode="vector"))[0]
    assert pdf.chunk.meta == {"path": "manual.pdf", "chunk": 0, "start_line": 1, "end_line": 2, "page": 1}


async def test_incremental_reindex_changed_and_deleted_files(tmp_path: Path, engine: AsyncEngine) -> None:
    write_mixed(tmp_path / "docs")
    embedder = Counting(build_embedder("local", EmbedderConfig(), tmp_path))
    docs = store(tmp_path / "docs", engine, embedder)
    await docs.index()
    embedder.texts.clear()
    (tmp_path / "docs" / "notes.txt").touch()  # a new mtime but the same content: nothing to do
    report = await docs.index()
    assert (report.unchanged, report.chunks, embedder.texts) == (5, 0, [])
    (tmp_path / "docs" / "notes.txt").write_text("Remember to water the cactus once a month.\n")
    report = await docs.index()
    assert (report.updated, report.unchanged) == (1, 4)
    assert embedder.texts == ["Remember to water the cactus once a month."]
    assert (await docs.search("cactus watering", top_k=1))[0].chunk.document == "notes.txt"
    (tmp_path / "docs" / "guide.md").unlink()
    report = await docs.index()
    assert report.removed == 1
    assert "guide.md" not in {c.document for c in await docs.vectors.chunks("docs")}


async def test_include_and_exclude_patterns(tmp_path: Path, engine: AsyncEngine) -> None:
    write_mixed(tmp_path / "docs")
    (tmp_path / "docs" / "sub").mkdir()
    (tmp_path / "docs" / "sub" / "deep.md").write_text("Nested markdown.\n")
    embedder = build_embedder("local", EmbedderConfig(), tmp_path)
    only_md = store(tmp_path / "docs", engine, embedder, include_patterns=["*.md"], collection="md")
    await only_md.index()
    assert {c.document for c in await only_md.vectors.chunks("md")} == {"guide.md", "sub/deep.md"}
    extra = store(
        tmp_path / "docs", engine, embedder, additional_exclude_patterns=["sub/", "*.pdf"], collection="x"
    )
    await extra.index()
    assert {c.document for c in await extra.vectors.chunks("x")} == {
        "guide.md",
        "notes.txt",
        "code.py",
        "report.docx",
    }


def test_default_excludes_match_components_and_paths() -> None:
    f = FileFilter([], list(DEFAULT_EXCLUDES), 10)
    assert not f.wanted(PurePosixPath("node_modules/x/index.js"))
    assert not f.wanted(PurePosixPath("a/.git/config"))
    assert not f.wanted(PurePosixPath("img/logo.PNG".lower()))
    assert f.wanted(PurePosixPath("src/app.py"))
    assert FileFilter(["docs/*.md"], [], 10).wanted(PurePosixPath("docs/a.md"))
    assert not FileFilter(["docs/*.md"], [], 10).wanted(PurePosixPath("a.md"))


def test_chunking_on_paragraphs_with_line_ranges_and_overlap() -> None:
    text = "\n".join(["# Title", "", "para one line a", "para one line b", "", "para two", "", "x" * 50])
    pieces = chunk_text(text, size=40)
    # Title and first paragraph fit together; the long line is cut in two.
    assert [(p.start_line, p.end_line) for p in pieces] == [(1, 4), (6, 6), (8, 8), (8, 8)]
    assert pieces[0].text == "# Title\npara one line a\npara one line b"
    assert all(len(p.text) <= 40 for p in pieces)
    overlapped = chunk_text("\n".join(f"line {i:02d}" for i in range(1, 11)), size=32, overlap=8)
    assert [(p.start_line, p.end_line) for p in overlapped][:2] == [(1, 4), (4, 7)]


async def test_index_survives_a_new_runtime_on_the_same_data_dir(tmp_path: Path) -> None:
    write_mixed(tmp_path / "docs")
    config = parse_config(
        {
            "llms": {"t": {"type": "test"}},
            "document_stores": {"docs": {"path": "docs"}},
            "agents": {"a": {"llm": "t", "tools": ["search"]}},
        },
        "<test>",
    ).config
    async with build_runtime(config, tmp_path) as runtime:
        assert runtime.library is not None
        first = await runtime.library.stores["docs"].search("espresso machine", top_k=1)
    async with build_runtime(config, tmp_path) as runtime:
        assert runtime.library is not None
        docs = runtime.library.stores["docs"]
        assert (await docs.index()).unchanged == 5  # the start-up index found nothing to embed
        again = await docs.search("espresso machine", top_k=1)
    assert [h.chunk.id for h in again] == [h.chunk.id for h in first]
    assert (tmp_path / ".hector" / "hector.db").exists()


async def test_changing_the_embedder_reindexes_the_collection(tmp_path: Path, engine: AsyncEngine) -> None:
    write_mixed(tmp_path / "docs")
    local = build_embedder("local", EmbedderConfig(), tmp_path)
    await store(tmp_path / "docs", engine, local).index()

    class Renamed(Counting):
        @property
        def identity(self) -> str:  # another model: stored vectors cannot be compared with its own
            return "other:model"

    renamed = Renamed(local)
    report = await store(tmp_path / "docs", engine, renamed).index()
    assert (report.added, report.unchanged) == (5, 0)


async def test_startup_errors_name_the_store(tmp_path: Path) -> None:
    def config(store: dict[str, object], **extra: object) -> Config:
        data = {"llms": {"t": {"type": "test"}}, "document_stores": {"docs": store}, **extra}
        return parse_config(data, "<test>").config

    runtime = build_runtime(config({"path": "missing"}), tmp_path)
    with pytest.raises(ConfigError, match=r"document store 'docs': folder .*missing does not exist"):
        async with runtime:
            pass
    with pytest.raises(
        ConfigError, match="vector store 'q': unknown type 'faiss' \\(expected one of: embedded, chroma"
    ):
        config({"path": "."}, vector_stores={"q": {"type": "faiss"}})
