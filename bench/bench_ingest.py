"""Benchmark ingestion: ``qa.index.sync`` next to raw ``model.encode`` on the same chunk texts.

    .venv/bin/python bench/bench_ingest.py                     # bundled corpus/, 3 runs, medians
    .venv/bin/python bench/bench_ingest.py --runs 5
    .venv/bin/python bench/bench_ingest.py \\
        --realtimeqa ../shared/benchmarks/realtimeqa/2024q1 --weeks 1 --runs 1

Each run ingests into a fresh index in a temporary folder (deleted afterwards; the RealTime QA
files are read in place, never copied) with the embedding model of config.toml, then:

* times the stages: read (files -> Documents), chunk, embed, write (store, vectors, FAISS, BM25,
  manifest, fsync, switch), and the whole ``sync`` call;
* encodes exactly the texts the pipeline embedded (title + passage, in the same order) with
  ``model.encode`` at the same batch size, so the ratio sync / encode is the pipeline's overhead
  over the model itself;
* re-ingests the unchanged corpus (read + sync), which must embed nothing.

The model is loaded and warmed up once before the runs; its load time is reported on its own.
Figures are medians over the runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.core.config import Settings, load_settings
from qa.core.types import Document
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder
from qa.evaluation import figures
from qa.index import LocalIndex, sync
from qa.ingest import read_paths
from qa.ingest.chunk import embed_text, embedded_title

ROOT = Path(__file__).resolve().parent.parent


def read_corpus(args: argparse.Namespace) -> tuple[list[Document], str]:
    """The documents to ingest and a description of where they came from."""
    if args.realtimeqa:
        from qa.evaluation import realtime_qa

        folder = Path(args.realtimeqa)
        weeks = realtime_qa.list_weeks(folder)[: args.weeks]
        if not weeks:
            sys.exit(f"no RealTime QA weeks found in {folder}")
        _, documents = realtime_qa.load(folder, weeks)
        return documents, f"RealTime QA {folder} weeks {', '.join(weeks)}"
    result = read_paths([Path(args.corpus)])
    for skipped in result.skipped:
        print(f"  skipped {skipped.path}: {skipped.reason}")
    return result.documents, str(args.corpus)


def embedded_texts(
    index: LocalIndex, embedder: SentenceTransformerEmbedder, with_title: bool
) -> list[str]:
    """What sync handed the model: title + passage of every chunk, in row (= embedding) order."""
    rows = index.db.execute(
        "SELECT d.title, c.text FROM chunks c JOIN docs d ON d.id = c.doc_id ORDER BY c.row"
    ).fetchall()
    titles: dict[str, str] = {}
    texts: list[str] = []
    for title, text in rows:
        if title not in titles:
            titles[title] = embedded_title(title, embedder.count_tokens)
        texts.append(embed_text(titles[title], text, with_title))
    return texts


def one_run(args: argparse.Namespace, settings: Settings, embedder: Any) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        root = Path(tmp) / "index"

        t0 = time.perf_counter()
        documents, _ = read_corpus(args)
        read_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        report = sync(root, documents, embedder, settings)
        sync_s = time.perf_counter() - t0
        chunks = report.chunks_embedded

        texts = embedded_texts(LocalIndex.open(root), embedder, settings.chunking.embed_title)
        assert len(texts) == chunks, (len(texts), chunks)
        t0 = time.perf_counter()
        embedder.model.encode(
            texts,
            batch_size=settings.embedding.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        encode_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        documents, _ = read_corpus(args)
        again = sync(root, documents, embedder, settings)
        reingest_s = time.perf_counter() - t0
        assert again.chunks_embedded == 0 and not again.changed, again

    timings = report.timings
    staged = timings["chunk_s"] + timings["embed_s"] + timings["write_s"]
    return {
        "articles": float(report.articles_total),
        "chunks": float(chunks),
        "read_s": read_s,
        "chunk_s": timings["chunk_s"],
        "embed_s": timings["embed_s"],
        "write_s": timings["write_s"],
        "other_s": sync_s - staged,  # diffing against the manifest, opening the new index
        "sync_s": sync_s,
        "encode_s": encode_s,
        "reingest_s": reingest_s,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpus", default=str(ROOT / "corpus"), help="folder of articles")
    ap.add_argument("--realtimeqa", metavar="DIR", help="RealTime QA folder instead of --corpus")
    ap.add_argument("--weeks", type=int, default=1, help="first N weeks of --realtimeqa")
    ap.add_argument("--runs", type=int, default=3, help="runs; medians are reported")
    ap.add_argument("--config", default=str(ROOT / "config.toml"))
    ap.add_argument("--save-figures", metavar="FILE",
                    help="also write the table as JSON for the docs (docs/figures/NAME.json)")
    args = ap.parse_args(argv)

    settings = load_settings(args.config)
    embedder = SentenceTransformerEmbedder(settings.embedding)
    t0 = time.perf_counter()
    model = embedder.model
    load_s = time.perf_counter() - t0
    model.encode(["warm up"] * 8, batch_size=settings.embedding.batch_size)

    documents, source = read_corpus(args)
    import torch

    print(f"corpus      {source}: {len(documents)} articles")
    print(
        f"model       {settings.embedding.model} on {settings.embedding.device}, "
        f"batch {settings.embedding.batch_size}, torch threads {torch.get_num_threads()}, "
        f"loaded in {load_s:.1f} s"
    )
    print(
        f"chunking    {settings.chunking.max_tokens} tokens, "
        f"{settings.chunking.overlap_tokens} overlap, title embedded: "
        f"{settings.chunking.embed_title}"
    )
    del documents

    runs = []
    for i in range(args.runs):
        r = one_run(args, settings, embedder)
        runs.append(r)
        print(
            f"run {i + 1}/{args.runs}: {int(r['chunks'])} chunks, sync {r['sync_s']:.2f} s, "
            f"encode {r['encode_s']:.2f} s, re-ingest {r['reingest_s']:.3f} s"
        )

    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    chunks = med["chunks"]
    print(
        f"\nmedians over {args.runs} run(s), {int(med['articles'])} articles, {int(chunks)} chunks"
    )
    for label, seconds in (
        ("ingest (qa.index.sync)", med["sync_s"]),
        ("raw model.encode", med["encode_s"]),
    ):
        print(f"  {label:<26} {chunks / seconds:8.1f} chunks/s  {seconds:8.2f} s")
    print(f"  overhead ratio sync/encode {med['sync_s'] / med['encode_s']:8.2f}")
    print(f"  embed stage / encode       {med['embed_s'] / med['encode_s']:8.2f}")
    print("  stages:")
    for stage in ("read", "chunk", "embed", "write", "other"):
        seconds = med[f"{stage}_s"]
        share = seconds / (med["sync_s"] + med["read_s"])
        print(f"    {stage:<6} {seconds:8.3f} s  {share:6.1%}")
    print(f"  re-ingest unchanged (read + sync, nothing embedded)  {med['reingest_s']:.3f} s")
    if args.save_figures:
        columns = ["corpus", "articles", "chunks", "ingest", "raw model.encode", "overhead ratio",
                   "re-ingest unchanged"]
        row = [source, f"{int(med['articles']):,}", f"{int(chunks):,}",
               f"{chunks / med['sync_s']:.1f} chunks/s", f"{chunks / med['encode_s']:.1f} chunks/s",
               f"{med['sync_s'] / med['encode_s']:.2f}", f"{med['reingest_s']:.3f} s"]
        note = f"Medians of {args.runs} run(s)."
        figures.save(figures.figure("ingest", columns, [row], note), args.save_figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
