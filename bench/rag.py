"""RAG benchmark: indexing throughput, search latency over ~10k chunks, recall on a labelled set.

Prints figures; it is not a test. Usage: ``.venv/bin/python bench/rag.py [--index-files N]
[--chunks N] [--queries N]``. Everything runs offline: the local MiniLM embedder and the embedded
vector store (SQLite in a temporary data dir).

- indexing: a synthetic folder of Markdown files, indexed from scratch (parse, chunk, embed, store);
- search: the indexed chunks' real vectors, repeated with a little noise up to ``--chunks``, are
  written to one collection, then searched; a query's latency includes embedding it;
- recall@5: the labelled set of the tests (12 files, 12 queries), vector and hybrid.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for the labelled set the tests use

from tests.rag.corpus import QUERIES, write_labelled  # noqa: E402

from hector.config.schema import DocumentStoreConfig, EmbedderConfig  # noqa: E402
from hector.rag.documents import DocumentStore  # noqa: E402
from hector.rag.embedders import build_embedder  # noqa: E402
from hector.rag.vectors import Chunk, EmbeddedVectorStore  # noqa: E402
from hector.stores.db import create_engine, migrate, sqlite_url  # noqa: E402

VOCABULARY = (
    "the service request server client agent token policy refund order invoice payment account user "
    "password delivery parcel warehouse database pool connection query index vector search document "
    "chunk embedding model latency throughput error retry timeout backoff cache memory disk network "
    "config file folder path release version deploy cluster node container image build test report "
    "customer support ticket email phone office holiday price plan seat billing tax receipt export"
)
WORDS = VOCABULARY.split()


def paragraph(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(2, 5)):
        words = rng.choices(WORDS, k=rng.randint(8, 18))
        sentences.append(" ".join(words).capitalize() + ".")
    return " ".join(sentences)


def write_corpus(folder: Path, files: int, rng: random.Random) -> None:
    folder.mkdir(parents=True)
    for i in range(files):
        sections = [f"## Section {s}\n\n{paragraph(rng)}\n\n{paragraph(rng)}" for s in range(3)]
        (folder / f"doc{i:04d}.md").write_text(f"# Document {i}\n\n" + "\n\n".join(sections) + "\n")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


async def run(args: argparse.Namespace) -> None:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        engine = create_engine(sqlite_url(base / "data"))
        await migrate(engine)
        embedder = build_embedder("local", EmbedderConfig(), base)
        vectors = EmbeddedVectorStore(engine)

        write_corpus(base / "corpus", args.index_files, rng)
        cfg = DocumentStoreConfig.model_validate({"path": str(base / "corpus"), "chunk_size": 500})
        corpus = DocumentStore("corpus", cfg, base, embedder, vectors, engine)
        start = time.perf_counter()
        report = await corpus.index()
        took = time.perf_counter() - start
        print(
            f"indexing: {report.added} files, {report.chunks} chunks (~500 chars) in {took:.1f} s "
            f"= {report.chunks / took:.1f} chunks/s"
        )

        # Scale up with the real vectors (plus noise, so no two rows are equal): embedding 10k
        # chunks from scratch would only measure the embedder again.
        source = await vectors.chunks("corpus")
        matrix = np.asarray(await embedder.embed([c.text for c in source]), dtype=np.float32)
        await vectors.open_collection("big", embedder.identity, matrix.shape[1])
        big: list[Chunk] = []
        rows: list[list[float]] = []
        for i in range(args.chunks):
            k = i % len(source)
            big.append(Chunk(f"c{i:06d}", f"file{i // 5}.md", source[k].text, {"path": f"file{i // 5}.md"}))
            noisy = matrix[k] + np.random.default_rng(i).normal(0, 0.02, matrix.shape[1]).astype(np.float32)
            rows.append(noisy.tolist())
        for start_row in range(0, len(big), 1000):
            await vectors.upsert("big", big[start_row : start_row + 1000], rows[start_row : start_row + 1000])
        store = DocumentStore(
            "big", DocumentStoreConfig.model_validate({"path": str(base), "collection": "big"}),
            base, embedder, vectors, engine,
        )  # fmt: skip
        queries = [" ".join(rng.choices(WORDS, k=6)) for _ in range(args.queries)]
        await store.search(queries[0], mode="hybrid")  # loads the matrix and builds the BM25 index
        for mode in ("vector", "hybrid"):
            latencies = []
            for query in queries:
                t0 = time.perf_counter()
                await store.search(query, top_k=5, mode=mode)
                latencies.append(time.perf_counter() - t0)
            print(
                f"search {mode:6} over {args.chunks} chunks: p50 {pct(latencies, 0.5):.1f} ms, "
                f"p99 {pct(latencies, 0.99):.1f} ms, mean {statistics.mean(latencies) * 1000:.1f} ms"
            )
        raw = []
        query_vector = (await embedder.embed(["refund policy"]))[0]
        for _ in range(args.queries):
            t0 = time.perf_counter()
            await vectors.query("big", query_vector, 5)
            raw.append(time.perf_counter() - t0)
        print(f"vector store query alone: p50 {pct(raw, 0.5):.2f} ms, p99 {pct(raw, 0.99):.2f} ms")

        write_labelled(base / "labelled")
        labelled = DocumentStore(
            "labelled", DocumentStoreConfig.model_validate({"path": str(base / "labelled")}),
            base, embedder, vectors, engine,
        )  # fmt: skip
        await labelled.index()
        for mode in ("vector", "hybrid"):
            found = 0
            for query, expected in QUERIES:
                hits = await labelled.search(query, top_k=5, mode=mode)
                found += expected in [h.chunk.document for h in hits]
            print(f"recall@5 {mode:6}: {found}/{len(QUERIES)} = {found / len(QUERIES):.2f}")
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-files", type=int, default=100, help="Markdown files to index (default 100)")
    parser.add_argument("--chunks", type=int, default=10_000, help="chunks in the searched collection")
    parser.add_argument("--queries", type=int, default=200, help="queries per search mode")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
