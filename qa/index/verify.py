"""`qa status --check`: every file of the live generation against its checksum, every segment
loaded and counted, the chunk store checked by SQLite; the first fault is damage
(:class:`qa.index.check.IndexDamaged`)."""

from __future__ import annotations

import functools
from typing import Any

from qa.index.check import check_sizes, damaged, part, sha256
from qa.index.local import LocalIndex
from qa.index.segments import Segment


def _segment_shape(segment: Segment) -> tuple[set[int], tuple[int, ...], int]:
    """Rows in each part of a segment (one number when they agree), the vectors' shape past
    the rows, and the FAISS dimension."""
    dense = segment.dense
    sizes = {len(segment.ids), segment.vectors.shape[0], int(dense.ntotal)}
    sizes.add(len(segment.postings.lengths))
    return sizes, tuple(segment.vectors.shape[1:]), int(dense.d)


def check_all(index: LocalIndex) -> list[str]:
    """Everything :func:`check_sizes` checks, then every recorded checksum, every part of
    every segment loaded and counted, and the chunk store's integrity and row counts. Returns
    what was checked, one line each; raises :class:`IndexDamaged` at the first fault."""
    root, gen, manifest = index.root, index.path, index.manifest
    check_sizes(root, gen, manifest)
    done = []
    files: dict[str, list[Any]] = manifest.get("files", {})
    for name, (_, digest) in files.items():
        if sha256(gen / name) != digest:
            raise damaged(root, f"{gen.name}/{name} does not match its checksum")
    done.append(f"{len(files)} files match their checksums" if files else "no checksums recorded")
    dim = index.build.dim
    for segment in part(root, "the segments", lambda: index.segments):
        where = f"segment {gen.name}/{segment.path.name}"
        sizes, shape, d = part(root, where, functools.partial(_segment_shape, segment))
        if len(sizes) != 1 or shape != (dim,) or d != dim:
            raise damaged(root, f"{where}: its ids, vectors, FAISS and BM25 parts disagree")
    done.append(f"{len(index.segments)} segments load and agree")
    db = index.db
    result = part(root, "the chunk store", lambda: db.execute("PRAGMA quick_check").fetchone())
    if not result or result[0] != "ok":
        raise damaged(root, f"the chunk store {manifest['store']} fails SQLite's check")
    chunks = part(root, "the chunk store", lambda: db.execute("SELECT COUNT(*) FROM chunks"))
    docs = part(root, "the chunk store", lambda: db.execute("SELECT COUNT(*) FROM docs"))
    counts = manifest["counts"]
    have = (chunks.fetchone()[0], docs.fetchone()[0])
    if have != (counts["chunks"], counts["articles"]) or len(index.ids) != counts["chunks"]:
        raise damaged(
            root,
            f"the chunk store holds {have[1]} articles and {have[0]} chunks of this generation, "
            f"the manifest {counts['articles']} and {counts['chunks']}",
        )
    done.append(f"the chunk store passes SQLite's check: {have[1]} articles, {have[0]} chunks")
    return done
