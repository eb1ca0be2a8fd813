"""How many passages hold each BM25 term, kept by the Milvus writer so that a question's term
weights (:meth:`qa.index.milvus.MilvusIndex.term_weights`) cost one lookup.

Milvus has no call that returns a term's document frequency. Counting it per term with a
``TEXT_MATCH`` filter is what Milvus Lite 3.2 does slowest: it evaluates the filter row by row
in Python, re-analysing every passage (2.6 s a term at 11,000 passages on this machine, linear
in the passages), so a question's eight terms cost seconds before this table existed.

One collection per generation, ``qa_g<N>_terms``: ``term`` (primary key) -> ``df``, the number
of passages whose ``keywords`` hold it, with the local backend's tokens (``keywords`` is
:func:`qa.index.bm25.bm25_tokens` joined by spaces). The writer adds what it writes and takes
off what it deletes. Milvus has no transaction over many rows, so the row :data:`STATE` says
whether the counts are exact: 0 from before an ingest's first change until its counts are
written, 1 after. A kill in between leaves 0: readers then count with ``TEXT_MATCH`` (right,
slow) and the next ingest recounts the table from the stored keywords.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from qa.core.config import Settings
from qa.index.milvus_db import all_rows, ensure_loaded, names, quoted

STATE = "#state"  # never a term: bm25_tokens yields \w+ words only
TERM_CHARS = 128  # a longer term is cut (no word is that long); 4 bytes a character at most
BATCH = 1000  # terms per query or upsert


def passage_terms(keywords: str) -> set[str]:
    """The distinct terms of one passage's ``keywords``."""
    return {t[:TERM_CHARS] for t in keywords.split(" ") if t}


def count_terms(keywords: Iterable[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for text in keywords:
        counts.update(passage_terms(text))
    return counts


class TermCounts:
    """The document-frequency table of one generation."""

    def __init__(self, client: Any, settings: Settings, generation: int) -> None:
        self.client = client
        self.chunks_name = names(settings, generation)[0]
        self.name = f"{settings.index.milvus.collection}_g{generation}_terms"

    def create(self, exact: bool = True) -> None:
        """An empty table: exact for a new generation (no passages yet); not exact where the
        generation may hold passages, so that a kill before they are counted leaves a table
        readers do not trust."""
        from pymilvus import DataType, MilvusClient

        if self.client.has_collection(self.name):
            self.client.drop_collection(self.name)
        s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        s.add_field("term", DataType.VARCHAR, is_primary=True, max_length=4 * TERM_CHARS)
        s.add_field("df", DataType.INT64)
        s.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # a collection needs a vector field
        params = self.client.prepare_index_params()
        params.add_index("unused", index_type="FLAT", metric_type="L2")
        self.client.create_collection(
            self.name, schema=s, index_params=params, consistency_level="Strong"
        )
        self._set_state(1 if exact else 0)

    def exact(self) -> bool:
        if not self.client.has_collection(self.name):
            return False  # an index written before the table existed
        ensure_loaded(self.client, self.name)
        return self._read([STATE]).get(STATE) == 1

    def lookup(self, terms: list[str]) -> dict[str, int] | None:
        """Each term's count (0 when no passage holds it), or None while not exact."""
        if not self.exact():
            return None
        found = self._read([t[:TERM_CHARS] for t in terms])
        return {t: found.get(t[:TERM_CHARS], 0) for t in terms}

    def begin(self) -> bool:
        """Mark the counts inexact before the first change; returns whether they were exact
        for :meth:`finish`)."""
        was_exact = self.exact()
        if not self.client.has_collection(self.name):
            self.create(exact=False)
        self._set_state(0)
        return was_exact

    def finish(self, delta: Counter[str], was_exact: bool) -> None:
        """After the changes: add their counts to exact ones, else count everything again."""
        if was_exact:
            self.apply(delta)
        else:
            self.recount()

    def apply(self, delta: Counter[str]) -> None:
        """Add the changes' counts (negative for deleted passages), then mark exact."""
        changed = [t for t, d in delta.items() if d]
        for begin in range(0, len(changed), BATCH):
            part = changed[begin : begin + BATCH]
            now = self._read(part)
            new = {t: now.get(t, 0) + delta[t] for t in part}
            if any(v < 0 for v in new.values()):  # cannot happen from exact counts; be safe
                self.recount()
                return
            self._write({t: v for t, v in new.items() if v > 0})
            gone = [t for t, v in new.items() if v == 0 and t in now]
            if gone:
                self.client.delete(self.name, ids=gone)
        self._set_state(1)

    def recount(self) -> None:
        """Count every stored passage's terms again (after a killed ingest), then mark exact."""
        rows = all_rows(self.client, self.chunks_name, "", ["keywords"])
        counts = count_terms(r["keywords"] for r in rows)
        self.create(exact=False)
        self._write(dict(counts))
        self._set_state(1)

    def stored(self) -> dict[str, int]:
        """The whole table but the state row (for checks)."""
        rows = all_rows(self.client, self.name, f"term != {quoted(STATE)}", ["term", "df"])
        return {r["term"]: int(r["df"]) for r in rows}

    def _read(self, terms: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for begin in range(0, len(terms), BATCH):
            part = terms[begin : begin + BATCH]
            rows = self.client.query(
                self.name,
                filter=f"term in [{', '.join(quoted(t) for t in part)}]",
                output_fields=["term", "df"],
            )
            out.update({r["term"]: int(r["df"]) for r in rows})
        return out

    def _write(self, counts: dict[str, int]) -> None:
        rows = [{"term": t, "df": n, "unused": [0.0, 0.0]} for t, n in counts.items()]
        for begin in range(0, len(rows), 5 * BATCH):
            self.client.upsert(self.name, rows[begin : begin + 5 * BATCH])

    def _set_state(self, exact: int) -> None:
        self._write({STATE: exact})
