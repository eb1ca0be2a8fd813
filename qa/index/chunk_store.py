"""The article and chunk store, one SQLite file shared by the generations that use it.

Copying every stored article into each new generation would make a small ingest cost as much
as the whole corpus. Instead each row carries the generation that added it (``born``) and the
one that replaced or removed it (``died``; ``ALIVE`` while it is current), and a generation
``G`` sees exactly the rows with ``born <= G < died``. A writer changes the file in place in
one SQLite transaction (WAL, synchronous=FULL) *before* it commits its generation, so:

* a reader pinned on generation ``G`` reads the same rows however many writers run: the rows
  of later generations are invisible to it, and rows it sees are only deleted (``purge``) once
  no remaining generation folder sees them;
* a writer killed after its transaction but before the switch of CURRENT left rows that no
  committed generation sees; the next writer deletes them first (``forget_after``).

A rebuild starts a new store file; the collector deletes files no generation names.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from qa.types import Chunk, Document

ALIVE = 1 << 62  # "died" of a row no generation has replaced yet

_SCHEMA = """
CREATE TABLE docs (id TEXT, title TEXT, text TEXT, segments TEXT, published TEXT, source TEXT,
                   url TEXT, path TEXT, born INTEGER, died INTEGER, PRIMARY KEY (id, born));
CREATE TABLE chunks (row INTEGER PRIMARY KEY, id TEXT, doc_id TEXT, ordinal INTEGER, text TEXT,
                     start INTEGER, end INTEGER, born INTEGER, died INTEGER);
CREATE INDEX chunks_doc ON chunks(doc_id);
CREATE INDEX docs_died ON docs(died);
CREATE INDEX docs_born ON docs(born);
CREATE INDEX chunks_died ON chunks(died);
CREATE INDEX chunks_born ON chunks(born);
"""


def create(path: Path) -> sqlite3.Connection:
    """A new, empty store (no generation names it until the writer commits)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(_SCHEMA)
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def open_for_write(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk before CURRENT moves
    return conn


def open_for_read(path: Path, generation: int) -> sqlite3.Connection:
    """A read-only connection on which ``docs`` and ``chunks`` are the rows of ``generation``
    (temporary views shadow the tables, so every query reads one generation)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    visible = f"born <= {int(generation)} AND died > {int(generation)}"
    conn.execute(
        "CREATE TEMP VIEW docs AS SELECT id, title, text, segments, published, source, url, "
        f"path FROM main.docs WHERE {visible}"
    )
    conn.execute(
        "CREATE TEMP VIEW chunks AS SELECT row, id, doc_id, ordinal, text, start, end "
        f"FROM main.chunks WHERE {visible}"
    )
    return conn


def forget_after(conn: sqlite3.Connection, generation: int) -> None:
    """Undo what writers of generations after ``generation`` (never committed) did."""
    with transaction(conn):
        for table in ("docs", "chunks"):
            conn.execute(f"DELETE FROM {table} WHERE born > ?", (generation,))  # indexed
            conn.execute(
                f"UPDATE {table} SET died = ? WHERE died > ? AND died < ?",
                (ALIVE, generation, ALIVE),
            )


def write_generation(
    conn: sqlite3.Connection,
    generation: int,
    replaced: Iterable[str],
    fresh: Sequence[Document],
    new_chunks: Sequence[tuple[int, Chunk]],
) -> list[int]:
    """In one transaction: retire the rows of the ``replaced`` articles, add the ``fresh``
    articles and their chunks (with their row ids); returns the chunk rows retired."""
    with transaction(conn):
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS gone (id TEXT PRIMARY KEY)")
        conn.execute("DELETE FROM gone")
        conn.executemany("INSERT OR IGNORE INTO gone VALUES (?)", [(d,) for d in replaced])
        retired = [
            r
            for (r,) in conn.execute(
                # "+died": look up by article (chunks_doc), never scan every live row by died.
                "SELECT row FROM main.chunks WHERE +died = ? AND doc_id IN (SELECT id FROM gone)",
                (ALIVE,),
            )
        ]
        for table, key in (("docs", "id"), ("chunks", "doc_id")):
            conn.execute(
                f"UPDATE main.{table} SET died = ? WHERE +died = ? "
                f"AND {key} IN (SELECT id FROM gone)",
                (generation, ALIVE),
            )
        conn.executemany(
            "INSERT INTO main.docs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d.id,
                    d.title,
                    d.text,
                    json.dumps(d.segments),
                    d.published,
                    d.source,
                    d.url,
                    d.path,
                    generation,
                    ALIVE,
                )
                for d in fresh
            ],
        )
        conn.executemany(
            "INSERT INTO main.chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (row, c.id, c.doc_id, c.ordinal, c.text, c.start, c.end, generation, ALIVE)
                for row, c in new_chunks
            ],
        )
    return retired


def purge(conn: sqlite3.Connection, oldest: int) -> None:
    """Delete the rows no generation from ``oldest`` on sees."""
    with transaction(conn):
        conn.execute("DELETE FROM docs WHERE died <= ?", (oldest,))
        conn.execute("DELETE FROM chunks WHERE died <= ?", (oldest,))


class transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        self.conn.execute("ROLLBACK" if kind is not None else "COMMIT")
