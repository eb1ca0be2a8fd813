"""Read the RealTime QA benchmark (Kasai et al., 2023) from its own folder layout.

A folder holds, per week, ``YYYYMMDD_qa.jsonl`` (one question per line: ``question_id``,
``question_date``, ``question_sentence``, ``choices``, ``answer`` as a list of index strings)
and ``YYYYMMDD_gcs.jsonl`` (one line per question: ``search_result``, a list of news articles
with ``url``, ``title``, ``text``, ``publish_date``). The data is read in place and never copied
into the project (the benchmark states no licence).

Articles become :class:`qa.core.types.Document`\\ s, one per distinct URL over the chosen weeks (the
first occurrence wins); results with a missing or blank ``text`` or ``url`` are skipped and
counted. A malformed line raises :class:`ValueError` naming the file and line number: the
files are a fixed public release, so a broken line means a broken copy, and silently scoring
fewer questions would skew the results.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from qa.core.types import Document
from qa.ingest import clean

__all__ = [
    "RTData",
    "RTQuestion",
    "doc_id_for_url",
    "list_weeks",
    "load",
    "read",
    "skip_generation",
]

_WEEK_FILE = re.compile(r"^(\d{8})_qa\.jsonl$")


@dataclass(frozen=True)
class RTQuestion:
    """One multiple-choice question; ``gold`` is the correct choice's text (the free-text
    target)."""

    id: str  # the benchmark's question_id, e.g. "20240105_0"
    week: str  # "20240105"
    date: str  # question_date as YYYY-MM-DD ("" if absent)
    question: str
    choices: tuple[str, ...]
    answer: int  # index of the correct choice (the first, if the benchmark lists several)
    gold: str  # text of the correct choice(s); several are joined with spaces in listed order
    skip_generation: bool  # the sentence ends in "except": skipped in the free-text setting


@dataclass(frozen=True)
class RTData:
    """Everything :func:`read` found, with the counts a report should show."""

    weeks: tuple[str, ...]
    questions: list[RTQuestion]
    documents: list[Document]
    # question id -> ids of its search results that were kept, in search order (duplicates of
    # an article seen earlier map to that article's id).
    results: dict[str, tuple[str, ...]] = field(default_factory=dict)
    search_results: int = 0  # search results read, before any filtering
    skipped_empty: int = 0  # results without text (or without url)
    duplicates: int = 0  # results whose URL was already seen


def skip_generation(sentence: str) -> bool:
    """The benchmark's rule for the free-text setting: a question whose lower-cased, trimmed
    sentence has "except" in its last 10 characters ("... all of the following except") has no
    free-text answer and is skipped."""
    return "except" in sentence.lower().strip()[-10:]


def doc_id_for_url(url: str) -> str:
    """A short id that stays the same for the same URL: "rt-" + 12 hex digits of its SHA-1."""
    return "rt-" + hashlib.sha1(url.encode("utf-8")).hexdigest()[:12]


def list_weeks(folder: Path) -> list[str]:
    """The weeks in ``folder``, as sorted "YYYYMMDD" names of its ``YYYYMMDD_qa.jsonl`` files.

    Raises ValueError when the folder does not exist or holds no such file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"RealTime QA folder not found: {folder}")
    weeks = sorted(
        m.group(1) for p in folder.iterdir() if p.is_file() and (m := _WEEK_FILE.match(p.name))
    )
    if not weeks:
        raise ValueError(
            f"{folder} holds no RealTime QA week: expected files named YYYYMMDD_qa.jsonl "
            "(with YYYYMMDD_gcs.jsonl beside them)"
        )
    return weeks


def _select(available: list[str], weeks: Sequence[str] | str | None) -> list[str]:
    if weeks is None:
        return available
    wanted = [weeks] if isinstance(weeks, str) else list(weeks)
    chosen: list[str] = []
    for w in wanted:
        name = w.strip().replace("-", "").replace("/", "")
        if name not in available:
            raise ValueError(f"unknown week {w!r}; available: {', '.join(available)}")
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise ValueError(f"no week chosen; available: {', '.join(available)}")
    return sorted(chosen)


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; ValueError with file:line otherwise."""
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{path}:{n}: expected a JSON object")
            yield n, obj


def _iso_date(value: object) -> str:
    """ "2024/01/05" (or 2024-01-05, with an optional time after) -> "2024-01-05"; "" if not
    a valid date."""
    if not isinstance(value, str):
        return ""
    m = re.match(r"\s*(\d{4})[/-](\d{1,2})[/-](\d{1,2})", value)
    if not m:
        return ""
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return ""


def _domain(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def _question(path: Path, n: int, week: str, obj: dict[str, Any]) -> RTQuestion:
    where = f"{path}:{n}"
    qid, sentence, choices = (
        obj.get("question_id"),
        obj.get("question_sentence"),
        obj.get("choices"),
    )
    if not isinstance(qid, str) or not qid:
        raise ValueError(f"{where}: missing question_id")
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError(f"{where}: missing question_sentence")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
        raise ValueError(f"{where}: choices must be a non-empty list of strings")
    raw = obj.get("answer")
    raw_list = raw if isinstance(raw, list) else [raw]
    try:
        indices = [int(str(a)) for a in raw_list]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: answer must hold choice indices, got {raw!r}") from None
    if not indices or any(not 0 <= i < len(choices) for i in indices):
        raise ValueError(f"{where}: answer {raw!r} out of range for {len(choices)} choices")
    # A few questions list one option twice (2023-12-08 #8, 2024-02-23 #23). The assistant
    # refuses such a question, as it would a user's; the benchmark means one option, so each
    # is kept once and the answer points at the first copy of its text.
    kept: list[str] = []
    position: dict[str, int] = {}
    for choice in choices:
        key = choice.strip().casefold()
        if key and key not in position:
            position[key] = len(kept)
            kept.append(choice)
    answer = position.get(choices[indices[0]].strip().casefold())
    if answer is None or len(kept) < 2:
        raise ValueError(f"{where}: fewer than two different options, or an empty answer")
    return RTQuestion(
        id=qid,
        week=week,
        date=_iso_date(obj.get("question_date")),
        question=sentence.strip(),
        choices=tuple(kept),
        answer=answer,
        gold=" ".join(choices[i] for i in indices),
        skip_generation=skip_generation(sentence),
    )


def read(folder: Path, weeks: Sequence[str] | None = None) -> RTData:
    """Read the questions and the distinct articles of the chosen weeks (all by default).

    ``weeks`` takes names like "20240105" (or "2024-01-05"); an unknown one raises ValueError
    listing those available. Questions keep file order, weeks in date order. Each article
    becomes a Document: ``id`` from :func:`doc_id_for_url`, ``title``, ``text`` as given,
    ``segments`` the spans kept by :func:`qa.ingest.clean` (one per non-blank line, the same
    boilerplate and repeat removal as the project's own corpus), ``published`` as YYYY-MM-DD when
    parseable, ``url``, ``source`` the site's domain without "www.", ``path`` "<gcs file>#<url>".
    """
    folder = Path(folder)
    chosen = _select(list_weeks(folder), weeks)
    questions: list[RTQuestion] = []
    documents: list[Document] = []
    results: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    total = empty = dupes = 0
    for week in chosen:
        qa_path = folder / f"{week}_qa.jsonl"
        gcs_path = folder / f"{week}_gcs.jsonl"
        if not gcs_path.is_file():
            raise ValueError(f"{gcs_path} is missing (the search results for {qa_path.name})")
        questions.extend(_question(qa_path, n, week, obj) for n, obj in _records(qa_path))
        for n, obj in _records(gcs_path):
            found = obj.get("search_result")
            if not isinstance(found, list):
                raise ValueError(f"{gcs_path}:{n}: search_result must be a list")
            kept: list[str] = []
            for article in found:
                if not isinstance(article, dict):
                    raise ValueError(f"{gcs_path}:{n}: a search result is not a JSON object")
                total += 1
                url, text = article.get("url"), article.get("text")
                if not isinstance(url, str) or not url.strip():
                    empty += 1
                    continue
                if not isinstance(text, str) or not text.strip():
                    empty += 1
                    continue
                url = url.strip()
                doc_id = doc_id_for_url(url)
                kept.append(doc_id)
                if url in seen:
                    dupes += 1
                    continue
                seen.add(url)
                title = article.get("title")
                title = title.strip() if isinstance(title, str) else ""
                documents.append(
                    Document(
                        id=doc_id,
                        title=title,
                        text=text,
                        segments=clean(text, title=title),
                        published=_iso_date(article.get("publish_date")),
                        source=_domain(url),
                        url=url,
                        path=f"{gcs_path}#{url}",
                    )
                )
            qid = obj.get("question_id")
            if isinstance(qid, str):
                results[qid] = tuple(kept)
    return RTData(
        weeks=tuple(chosen),
        questions=questions,
        documents=documents,
        results=results,
        search_results=total,
        skipped_empty=empty,
        duplicates=dupes,
    )


def load(
    folder: Path, weeks: Sequence[str] | None = None
) -> tuple[list[RTQuestion], list[Document]]:
    """The questions and distinct articles of the chosen weeks; see :func:`read`, which also
    reports how many search results were skipped as empty or duplicate."""
    data = read(folder, weeks)
    return data.questions, data.documents
