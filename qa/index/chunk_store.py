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
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from qa.core.types import Chunk, Document, QAError

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


def open_for_read(
    path: Path, generation: int, damaged: Callable[[sqlite3.DatabaseError], Exception]
) -> ReadConnection:
    """A read-only connection on which ``docs`` and ``chunks`` are the rows of ``generation``
    (temporary views shadow the tables, so every query reads one generation). A query that
    finds the file corrupt raises ``damaged(error)``.

    In a folder this process cannot write (a read-only mount, another user's index) SQLite
    cannot make the files WAL mode reads through, so the store is opened immutable: right as
    long as no write waits in its log, which is then an error rather than a stale read."""
    options = "mode=ro"
    if not os.access(path.parent, os.W_OK):
        wal = path.with_name(path.name + "-wal")
        if wal.is_file() and wal.stat().st_size:
            raise QAError(
                f"the index folder {path.parent} is read-only and its chunk store has writes "
                f"not yet merged ({wal.name}): run `qa status` once where it can be written"
            )
        options = "immutable=1"
    conn = sqlite3.connect(f"file:{path}?{options}", uri=True, check_same_thread=False)
    visible = f"born <= {int(generation)} AND died > {int(generation)}"
    reader = ReadConnection(conn, damaged)
    reader.execute(
        "CREATE TEMP VIEW docs AS SELECT id, title, text, segments, published, source, url, "
        f"path FROM main.docs WHERE {visible}"
    )
    reader.execute(
        "CREATE TEMP VIEW chunks AS SELECT row, id, doc_id, ordinal, text, start, end "
        f"FROM main.chunks WHERE {visible}"
    )
    return reader


class ReadConnection:
    """A reader's connection whose queries raise ``damaged(error)`` for a corrupt file (SQLite
    finds a bad page only when a query reads it) instead of a traceback."""

    def __init__(
        self, conn: sqlite3.Connection, damaged: Callable[[sqlite3.DatabaseError], Exception]
    ) -> None:
        self.conn = conn
        self.damaged = damaged

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        try:
            return Rows(self.conn.execute(sql, params), self.damaged)
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from None

    def close(self) -> None:
        self.conn.close()


class Rows:
    """A cursor's rows, read under the same guard."""

    def __init__(
        self, cursor: sqlite3.Cursor, damaged: Callable[[sqlite3.DatabaseError], Exception]
    ) -> None:
        self.cursor = cursor
        self.damaged = damaged

    def fetchone(self) -> Any:
        try:
            return self.cursor.fetchone()
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from None

    def fetchall(self) -> list[Any]:
        try:
            return self.cursor.fetchall()
        except sqlite3.DatabaseError as exc:
            raise self.damaged(exc) from None

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row


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
