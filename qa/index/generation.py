"""Write the next generation from the live one and a change: the shared chunk store updated in
place (rows of later generations are invisible to earlier ones), the unchanged segments linked,
one small segment for the new chunks, the rows replaced or removed marked deleted, and the
segments merged when they pile up (qa.index.segments). Then commit (qa.index.store.commit).

What a 1% ingest costs is the new chunks (tokenised and added to FAISS once) plus work that
grows with the number of articles only in small constants (the manifest, the deleted set,
links), not a copy or re-analysis of the whole corpus.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa.core.config import Settings
from qa.core.types import Chunk, Document, QAError
from qa.index import bm25, check, chunk_store, segments, store, vectors
from qa.index.build import BuildSettings
from qa.index.store import SCHEMA_VERSION

if TYPE_CHECKING:
    from qa.index.local import LocalIndex


@dataclass(frozen=True)
class Change:
    kept_docs: dict[str, dict[str, Any]]  # manifest entries of the articles kept as they are
    fresh: list[Document]  # added or changed articles, chunked and embedded
    new_chunks: list[tuple[Document, Chunk]]
    new_vectors: np.ndarray


def next_number(root: Path) -> int:
    return 1 + max(
        (int(p.name.split("-")[1]) for p in root.glob("gen-*") if p.name.split("-")[1].isdigit()),
        default=0,
    )


def recover(root: Path, live: LocalIndex) -> None:
    """Forget what a writer killed before committing left in the live store (its rows are
    invisible to every reader, but must not linger or collide with the next rows)."""
    conn = chunk_store.open_for_write(root / live.manifest["store"])
    try:
        chunk_store.forget_after(conn, live.generation)
    finally:
        conn.close()


def write(
    root: Path, old: LocalIndex | None, change: Change, build: BuildSettings, settings: Settings
) -> str:
    """Write a complete generation beside the live one (``old``; None: start afresh, as a
    rebuild does) and commit it; returns its name."""
    number = next_number(root)
    final = root / f"gen-{number:06d}"
    tmp = root / f".tmp-gen-{number:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        manifest = _write(root, tmp, number, old, change, build, settings)
        # Sizes (checked on every open) and checksums (`qa status --check`); the segments
        # kept from the live generation keep their records, only new files are read.
        known = old.manifest.get("files", {}) if old is not None else {}
        manifest["files"] = check.record_files(tmp, known)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        store.fsync_tree(tmp)  # linked files are already on disk: only new data is flushed
        store.commit(root, tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final.name


def _write(
    root: Path,
    tmp: Path,
    number: int,
    old: LocalIndex | None,
    change: Change,
    build: BuildSettings,
    settings: Settings,
) -> dict[str, Any]:
    next_row = old.manifest["next_row"] if old is not None else 1
    new_rows = np.arange(next_row, next_row + len(change.new_chunks), dtype=np.int64)
    new_x = np.asarray(change.new_vectors, dtype=np.float32).reshape(-1, build.dim)
    replaced = sorted(set(old.manifest["docs"]) - set(change.kept_docs)) if old is not None else []

    # Which stored chunks this generation no longer has (tombstones over the kept segments).
    deleted = np.asarray(old.deleted if old is not None else [], dtype=np.int64)
    if replaced and old is not None:
        retired = _rows_of(old, replaced)
        deleted = np.union1d(deleted, np.asarray(retired, dtype=np.int64))
    old_segments = old.segments if old is not None else []
    live_total = len(new_rows) + (len(old) - _count_in(old, replaced) if old is not None else 0)

    # The new chunks' postings: only their text is tokenised.
    postings = bm25.Postings.from_tokens(
        [
            bm25.bm25_tokens(bm25.indexed_text(d.title, d.published, c.text))
            for d, c in change.new_chunks
        ]
    )
    wanted = vectors.choose_kind(live_total, settings.index.kind)
    base_kind = old.manifest["vector_index"]["kind"] if old_segments and old is not None else None
    sizes = [len(s.ids) for s in old_segments] + ([len(new_rows)] if len(new_rows) else [])
    plan = segments.plan_merge(
        sizes, live_total, len(deleted), base_kind is not None and base_kind != wanted
    )

    names: list[str] = []
    vector_index: dict[str, Any] = dict(old.manifest["vector_index"]) if old is not None else {}
    for i, seg in enumerate(old_segments):
        if i not in plan.merge:
            segments.link(seg.path, tmp / seg.path.name)
            names.append(seg.path.name)
    merged = [old_segments[i] for i in plan.merge if i < len(old_segments)]
    masks = [segments.live_mask(s, deleted) for s in merged]
    if merged or len(new_rows) or not old_segments:
        rows = np.concatenate([*(s.ids[m] for s, m in zip(merged, masks, strict=True)), new_rows])
        x = np.concatenate(
            [*(np.asarray(s.vectors[m]) for s, m in zip(merged, masks, strict=True)), new_x]
        )
        if merged:
            postings = bm25.merge(
                [
                    *((s.postings, m) for s, m in zip(merged, masks, strict=True)),
                    (postings, np.ones(len(new_rows), dtype=bool)),
                ]
            )
        base = old_segments[0] if old_segments and 0 not in plan.merge else None
        ivf = None
        kind = settings.index.kind if base is None else str(base_kind)
        if base is not None and base_kind == "ivf":
            ivf = (base.centroids(), int(vector_index["params"]["nprobe"]))
        name = f"seg-{number:06d}"
        dense = segments.write(tmp / name, rows, x, postings, kind, ivf)
        names.append(name)
        if base is None:  # a new base: its kind and parameters describe the index
            vector_index = vectors.describe(dense)
        # Merged segments take their deleted rows with them.
        if merged:
            gone = np.concatenate([s.ids for s in merged])
            deleted = np.setdiff1d(deleted, gone)
    vector_index["n"] = live_total
    np.save(tmp / "deleted.npy", deleted)

    # The chunk store last: what a failure above leaves is only a folder to delete.
    if old is not None:
        store_name = old.manifest["store"]
        conn = chunk_store.open_for_write(root / store_name)
    else:
        store_name = f"store-{number:06d}.sqlite"
        for leftover in root.glob(store_name + "*"):
            leftover.unlink()
        conn = chunk_store.create(root / store_name)
    try:
        chunk_store.write_generation(
            conn,
            number,
            replaced,
            change.fresh,
            [(int(r), c) for r, (_, c) in zip(new_rows, change.new_chunks, strict=True)],
        )
    finally:
        conn.close()

    doc_meta = dict(change.kept_docs)
    chunk_counts: dict[str, int] = {}
    for _, chunk in change.new_chunks:
        chunk_counts[chunk.doc_id] = chunk_counts.get(chunk.doc_id, 0) + 1
    for d in change.fresh:
        doc_meta[d.id] = {
            "hash": d.content_hash,
            "path": d.path,
            "chunks": chunk_counts.get(d.id, 0),
        }
    return {
        "schema": SCHEMA_VERSION,
        "generation": number,
        "build": asdict(build),
        "vector_index": vector_index,
        "counts": {"articles": len(doc_meta), "chunks": live_total},
        "next_row": next_row + len(new_rows),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "store": store_name,
        "segments": names,
        "deleted": len(deleted),
        "docs": doc_meta,
    }


def _rows_of(index: LocalIndex, doc_ids: list[str]) -> list[int]:
    """Chunk rows of these articles in ``index``'s generation."""
    rows: list[int] = []
    for begin in range(0, len(doc_ids), 500):
        part = doc_ids[begin : begin + 500]
        marks = ",".join("?" * len(part))
        rows += [
            r
            for (r,) in index.db.execute(f"SELECT row FROM chunks WHERE doc_id IN ({marks})", part)
        ]
    return rows


def _count_in(index: LocalIndex, doc_ids: list[str]) -> int:
    docs = index.manifest["docs"]
    return sum(int(docs[d]["chunks"]) for d in doc_ids)


def convert_v1(root: Path) -> bool:
    """Turn a live schema-1 generation (one copy of everything: vectors.npy, ids.npy,
    dense.faiss, store.sqlite) into a schema-2 one without embedding anything: the vector files
    become the one segment by hard links, the rows move into a shared store and the chunk texts
    are tokenised once for the postings. Committed like any generation; False when the live
    generation is not schema 1."""
    live = store.live_generation(root)
    if live is None:
        return False
    try:
        raw = (live / "manifest.json").read_bytes()
    except OSError:
        return False  # unreadable: LocalIndex.open says so
    try:
        manifest = check.read_manifest(root, live, raw, SCHEMA_VERSION)
    except QAError:
        return False  # damaged or newer: LocalIndex.open says so
    if manifest.get("schema") != 1:
        return False
    try:
        _convert_v1(root, live, manifest)
    except (*check.LOAD_ERRORS, TypeError) as exc:  # a schema-1 index with parts missing, or forged
        if isinstance(exc, OSError) and exc.errno in store.WRITE_ERRNOS:
            raise  # the disk, not the index
        what = f"its schema-1 generation {live.name} does not convert ({check.reason(exc)})"
        raise check.damaged(root, what) from None
    return True


def _convert_v1(root: Path, live: Path, manifest: dict[str, Any]) -> None:
    number = next_number(root)
    final = root / f"gen-{number:06d}"
    tmp = root / f".tmp-gen-{number:06d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    segment = tmp / f"seg-{number:06d}"
    segment.mkdir(parents=True)
    store_name = f"store-{number:06d}.sqlite"
    try:
        for name in ("ids.npy", "vectors.npy", "dense.faiss"):
            os.link(live / name, segment / name)
        dense = vectors.load(segment / "dense.faiss")
        if vectors.describe(dense)["kind"] == "ivf":
            vectors.save(vectors.centroids(dense), segment / "centroids.faiss")
        for leftover in root.glob(store_name + "*"):
            leftover.unlink()
        conn = chunk_store.create(root / store_name)
        try:
            conn.execute("ATTACH DATABASE ? AS old", (f"file:{live / 'store.sqlite'}?mode=ro",))
            with chunk_store.transaction(conn):
                conn.execute(
                    f"INSERT INTO main.docs SELECT *, {number}, ? FROM old.docs",
                    (chunk_store.ALIVE,),
                )
                conn.execute(
                    f"INSERT INTO main.chunks SELECT *, {number}, ? FROM old.chunks",
                    (chunk_store.ALIVE,),
                )
            texts = dict(
                conn.execute(
                    "SELECT c.row, d.title || ' ' || d.published || ' ' || c.text "
                    "FROM old.chunks c JOIN old.docs d ON d.id = c.doc_id"
                ).fetchall()
            )
        finally:
            conn.close()
        ids = np.load(segment / "ids.npy")
        postings = bm25.Postings.from_tokens([bm25.bm25_tokens(texts[int(r)]) for r in ids])
        bm25.save(postings, segment / "bm25")
        np.save(tmp / "deleted.npy", np.zeros(0, dtype=np.int64))
        manifest.update(
            schema=SCHEMA_VERSION,
            generation=number,
            store=store_name,
            segments=[segment.name],
            deleted=0,
        )
        manifest["files"] = check.record_files(tmp, {})
        problem = check.manifest_problem(manifest)
        if problem:
            raise ValueError(f"its manifest {problem}")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        store.fsync_tree(tmp)
        store.commit(root, tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
