"""The index writer: bring the index in line with the articles read, embedding only what is new
or changed, and commit the result as a new generation (qa.index.generation writes it, at a
cost that follows the change; qa.index.store commits it)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.core.config import Settings
from qa.core.types import Chunk, Document, QAError
from qa.embedding.base import Embedder, embedder_identity
from qa.index import check, generation, store, verify
from qa.index.build import BuildSettings
from qa.index.check import IndexDamaged
from qa.index.local import LocalIndex
from qa.index.paths import absolute_path, assign_ids, stored_path
from qa.index.store import live_generation
from qa.ingest.chunk import chunks_for, embed_text, embedded_title


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    restored: int = 0  # rebuild: re-embedded from the text stored, their folders not given
    rebuilt: bool = False
    chunks_embedded: int = 0
    chunks_total: int = 0
    articles_total: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.rebuilt)

    def summary(self) -> str:
        if not self.changed:
            head = f"nothing to embed: {self.unchanged} articles unchanged"
        else:
            head = (
                f"{self.added} added, {self.updated} updated, {self.removed} removed, "
                f"{self.unchanged} unchanged; {self.chunks_embedded} chunks embedded"
            )
        if self.rebuilt:
            head = f"rebuilt: {head}"
        if self.restored:
            head += (
                f"; {self.restored} articles from folders not given re-embedded from the "
                "text stored in the index"
            )
        return (
            f"{head}; index holds {self.articles_total} articles, {self.chunks_total} chunks "
            f"({self.seconds:.1f} s)"
        )


ProgressHook = Callable[[int, int], None]  # (chunks embedded so far, chunks to embed)


def sync(
    root: Path,
    documents: Iterable[Document],
    embedder: Embedder,
    settings: Settings,
    *,
    in_scope: Callable[[str], bool] = lambda path: True,
    rebuild: bool = False,
    progress: ProgressHook | None = None,
) -> SyncReport:
    """Bring the index at ``root`` in line with ``documents``.

    Only new or changed articles are chunked and embedded. Indexed articles whose path is
    ``in_scope`` (an absolute path under the folders being ingested) but absent from
    ``documents`` are removed; articles outside the scope are kept. Nothing is written when
    nothing changed.

    ``rebuild`` re-embeds everything with the current model and chunking. Articles from
    folders not given this time are not lost: they are re-embedded from the text the index
    stores (``report.restored``). When the previous index cannot be read at all, only the
    folders given are indexed and ``report.warnings`` says so.
    """
    started = time.perf_counter()
    documents = list(documents)  # planned twice when the index proves damaged
    with store.writing(root):
        report = _sync(root, documents, embedder, settings, in_scope, rebuild, progress)
    report.seconds = time.perf_counter() - started
    return report


def _sync(
    root: Path,
    documents: list[Document],
    embedder: Embedder,
    settings: Settings,
    in_scope: Callable[[str], bool],
    rebuild: bool,
    progress: ProgressHook | None,
) -> SyncReport:
    report = SyncReport(rebuilt=rebuild)
    base = settings.root.resolve()
    old: LocalIndex | None = None
    try:
        # Reading these loads the model: what is recorded is what was loaded.
        build = BuildSettings.from_settings(settings, embedder.dim, embedder_identity(embedder))
        damage = ""
        try:
            if generation.convert_v1(root):  # an index of the previous layout, kept
                report.warnings.append("the index was converted to the segment layout (schema 2)")
            if not rebuild:
                old = _open_for_update(root, settings, build)
        except IndexDamaged as exc:
            damage = exc.what  # rebuilt, with a warning saying why
        if rebuild or damage:
            old = _previous(root, [] if damage else report.warnings)
        plan = _plan(documents, old, in_scope, base, report, damage)
        if old is not None and not report.changed:
            # Nothing to embed: first make sure every file is what was written, else
            # rebuild (a damaged index must not be left for the next search to find).
            try:
                verify.check_all(old)
            except IndexDamaged as exc:
                report = SyncReport(rebuilt=True)
                plan = _plan(documents, old, in_scope, base, report, exc.what)
        if report.rebuilt and old is not None:
            old.close()
            old = None  # nothing is copied: the old build's vectors are not reused
        if old is not None and not report.changed:
            # Nothing to write; still clear what a killed writer or collector left behind.
            store.collect_garbage(root, live=old.path.name)
            report.articles_total, report.chunks_total = len(plan.kept), len(old)
            return report
        new_chunks, new_vectors = _chunk_and_embed(plan.fresh, embedder, settings, progress, report)
        t0 = time.perf_counter()
        live = _write_generation(
            root, old, plan.kept, plan.fresh, new_chunks, new_vectors, build, settings
        )
        report.timings["write_s"] = time.perf_counter() - t0
        if old is not None:
            old.close()  # let the collector remove the generation just replaced
            old = None
        store.collect_garbage(root, live=live)
        index = LocalIndex.open(root)
        report.articles_total = index.manifest["counts"]["articles"]
        report.chunks_total = len(index)
        index.close()
    finally:
        if old is not None:
            old.close()
    return report


def _plan(
    documents: list[Document],
    old: LocalIndex | None,
    in_scope: Callable[[str], bool],
    base: Path,
    report: SyncReport,
    damage: str,
) -> Plan:
    """:func:`plan_changes`; for a damaged index a rebuild, which restores the articles of
    folders not given from the text stored when the chunk store still reads."""
    if not damage:
        return plan_changes(documents, old, in_scope, base, report)
    report.rebuilt = True
    try:
        plan = plan_changes(documents, old, in_scope, base, report)
        keeps = "the folders given" + (
            f" and the text it stored of {report.restored} other articles"
            if report.restored
            else ""
        )
    except IndexDamaged:
        for name in ("added", "updated", "unchanged", "removed", "restored"):
            setattr(report, name, 0)
        plan = plan_changes(documents, None, in_scope, base, report)
        keeps = "the folders given (the text it stored does not read)"
    report.warnings.append(f"the index was damaged ({damage}): rebuilt from {keeps}")
    return plan


@dataclass(frozen=True)
class Plan:
    fresh: list[Document]  # to chunk and embed
    kept: dict[str, dict[str, Any]]  # manifest entries copied as they are, vectors reused


class KnownArticles(Protocol):
    """What the planner reads of the index being updated, whichever backend holds it: each
    article's ``hash``, ``path`` and ``chunks`` under ``manifest["docs"]``, and its stored text
    (to restore the articles of folders not given to a rebuild)."""

    @property
    def manifest(self) -> dict[str, Any]: ...

    def document(self, doc_id: str) -> Document | None: ...


def plan_changes(
    documents: Iterable[Document],
    old: KnownArticles | None,
    in_scope: Callable[[str], bool],
    base: Path,
    report: SyncReport,
) -> Plan:
    """Which articles are new, changed, unchanged, gone or kept; counted in ``report``."""
    old_docs: dict[str, dict[str, Any]] = old.manifest["docs"] if old is not None else {}
    incoming = assign_ids(documents, old_docs, base)
    fresh: list[Document] = []
    for doc_id, doc in incoming.items():
        known = old_docs.get(doc_id)
        if known is None:
            report.added += 1
        elif known["hash"] != doc.content_hash or _moved_from(known, doc, base):
            report.updated += 1
        else:
            report.unchanged += 1
            if not report.rebuilt:
                continue
        fresh.append(doc)
    outside = {d for d in old_docs if d not in incoming}
    gone = {d for d in outside if in_scope(absolute_path(old_docs[d]["path"], base))}
    report.removed = len(gone)
    if report.rebuilt and old is not None:
        # A rebuild re-embeds the articles of folders not given from the text stored, rather
        # than drop them.
        for doc_id in sorted(outside - gone):
            stored = old.document(doc_id)
            if stored is not None:
                fresh.append(stored)
                report.restored += 1
        return Plan(fresh, {})
    replaced = gone | {doc.id for doc in fresh}
    return Plan(fresh, {d: m for d, m in old_docs.items() if d not in replaced})


def _moved_from(known: dict[str, Any], doc: Document, base: Path) -> bool:
    """Whether ``doc`` kept the id of an article whose file moved (see ``assign_ids``): its
    stored path and text are rewritten, so the index never names the old file."""
    return stored_path(absolute_path(known["path"], base), base) != doc.path


def _chunk_and_embed(
    fresh: list[Document],
    embedder: Embedder,
    settings: Settings,
    progress: ProgressHook | None,
    report: SyncReport,
) -> tuple[list[tuple[Document, Chunk]], np.ndarray]:
    t0 = time.perf_counter()
    new_chunks = [
        (doc, chunk) for doc in fresh for chunk in chunks_for(doc, embedder, settings.chunking)
    ]
    report.timings["chunk_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # Long titles are cut as chunk_document budgeted them, so no input is truncated.
    titles = {d.id: embedded_title(d.title, embedder.count_tokens) for d in fresh}
    new_vectors = _embed_batched(
        embedder,
        [embed_text(titles[d.id], c.text, settings.chunking.embed_title) for d, c in new_chunks],
        progress,
    )
    report.timings["embed_s"] = time.perf_counter() - t0
    report.chunks_embedded = len(new_chunks)
    return new_chunks, new_vectors


def _previous(root: Path, warnings: list[str]) -> LocalIndex | None:
    """For a rebuild: the previous generation when it can be read (its settings may differ)."""
    try:
        if live_generation(root) is None:
            return None
        return LocalIndex.open(root, verify=False)
    except QAError as exc:
        why = exc.what if isinstance(exc, IndexDamaged) else str(exc)
        warnings.append(
            f"the previous index could not be read ({why}); only the folders given are indexed"
        )
        return None


def _open_for_update(root: Path, settings: Settings, build: BuildSettings) -> LocalIndex | None:
    if live_generation(root) is None:
        return None
    index = LocalIndex.open(root)
    try:  # vectors of another model must never mix in
        index.check(settings, build.dim, build.model_fingerprint)
        generation.recover(root, index)
    except sqlite3.DatabaseError as exc:
        index.close()
        if isinstance(exc, sqlite3.OperationalError):  # a full disk, a read-only folder
            raise
        what = f"the chunk store {index.manifest['store']} fails ({exc})"
        raise check.damaged(root, what) from None
    except BaseException:
        index.close()
        raise
    return index


def _embed_batched(
    embedder: Embedder, texts: list[str], progress: ProgressHook | None
) -> np.ndarray:
    """Embed in slices so a progress bar can follow long runs."""
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    step = 256
    parts = []
    for begin in range(0, len(texts), step):
        parts.append(embedder.embed(texts[begin : begin + step]))
        if progress:
            progress(min(begin + step, len(texts)), len(texts))
    return np.vstack(parts).astype(np.float32)


def _write_generation(
    root: Path,
    old: LocalIndex | None,
    kept_docs: dict[str, dict[str, Any]],
    fresh: list[Document],
    new_chunks: list[tuple[Document, Chunk]],
    new_vectors: np.ndarray,
    build: BuildSettings,
    settings: Settings,
) -> str:
    """Write the next generation (from ``old``, or afresh) and commit it; returns its name."""
    change = generation.Change(kept_docs, fresh, new_chunks, new_vectors)
    return generation.write(root, old, change, build, settings)


def remove(root: Path, doc_ids: Iterable[str], settings: Settings) -> SyncReport:
    """Drop articles from the index by id, in a new generation like any sync. Nothing is
    embedded, so no model is loaded; unknown ids raise :class:`QAError` and change nothing."""
    started = time.perf_counter()
    wanted = set(doc_ids)
    with store.writing(root):
        if live_generation(root) is None:
            raise QAError(f"no index at {root}: run `qa ingest` first")
        generation.convert_v1(root)
        old = LocalIndex.open(root)
        try:
            generation.recover(root, old)
            old_docs: dict[str, dict[str, Any]] = old.manifest["docs"]
            missing = sorted(wanted - old_docs.keys())
            if missing:
                raise QAError(f"no article with id {', '.join(missing)} in the index")
            kept = {d: m for d, m in old_docs.items() if d not in wanted}
            empty = np.zeros((0, old.build.dim), dtype=np.float32)
            live = _write_generation(root, old, kept, [], [], empty, old.build, settings)
        finally:
            old.close()
        store.collect_garbage(root, live=live)
        index = LocalIndex.open(root)
        report = SyncReport(
            removed=len(wanted),
            unchanged=len(kept),
            articles_total=index.manifest["counts"]["articles"],
            chunks_total=len(index),
        )
        index.close()
    report.seconds = time.perf_counter() - started
    return report
