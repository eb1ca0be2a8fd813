"""One bad file never aborts an ingest (issue 22, items 4 and 5): hostile nesting, impossible
dates, YAML alias bombs and stray bytes are each reported by name and skipped (or, for a stray
byte, replaced and reported), with memory bounded, and every other article goes in."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

import qa.cli
from qa.cli import app
from qa.index import LocalIndex
from qa.ingest import ReadResult, read_paths

GOOD = "---\ntitle: Harbour reopens\ndate: 2025-06-02\n---\nThe harbour reopened on Monday.\n"
DEEP = "[" * 100_000 + "]" * 100_000


def laughs() -> str:
    """A ~900-byte "billion laughs": nine levels of nine aliases, 9**9 "lol"s as a title."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "---\n" + "\n".join(lines) + "\ntitle: *i\n---\nBody text of the article.\n"


def reasons(result: ReadResult) -> dict[str, str]:
    return {
        Path(s.path.split("#")[0]).name + "#" * ("#" in s.path): s.reason for s in result.skipped
    }


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = folder / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
    return folder


# ----------------------------------------------------------------------------- item 4


def test_json_nested_100000_deep_is_skipped_by_name(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "c",
        {
            "deep.json": DEEP,
            "mixed.jsonl": json.dumps({"text": "A fine record about the harbour."})
            + "\n"
            + DEEP
            + "\n",
            "digits.json": '{"text": "A record.", "n": ' + "9" * 5000 + "}",
            "good.md": GOOD,
        },
    )
    result = read_paths([folder])
    assert sorted(d.id for d in result.documents) == ["good", "mixed#1"]
    got = reasons(result)
    assert got["digits.json"].startswith("invalid JSON: Exceeds the limit (4300 digits)")
    assert got["deep.json"] == "invalid JSON: nested too deeply"
    assert got["mixed.jsonl#"] == "line 2: invalid JSON: nested too deeply"


@pytest.mark.parametrize(
    ("date", "why"),
    [
        ("2024-02-30", "invalid date '2024-02-30': day is out of range for month"),
        ("2024-02-03 25:00:00", "invalid date '2024-02-03 25:00:00': hour must be in 0..23"),
    ],
)
def test_an_impossible_date_in_front_matter_skips_the_file_by_name(
    tmp_path: Path, date: str, why: str
) -> None:
    folder = write(
        tmp_path / "c",
        {"bad.md": f"---\ntitle: Bad date\ndate: {date}\n---\nSome text.\n", "good.md": GOOD},
    )
    result = read_paths([folder])
    assert [d.id for d in result.documents] == ["good"]
    assert reasons(result) == {"bad.md": f"invalid YAML front matter: {why}"}


def test_a_billion_laughs_title_is_refused_without_expanding(tmp_path: Path) -> None:
    bomb = laughs()
    assert len(bomb) < 1000
    folder = write(tmp_path / "c", {"bomb.md": bomb, "good.md": GOOD})
    tracemalloc.start()
    try:
        result = read_paths([folder])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000  # expanded, the title was 2.5 GB
    assert [d.id for d in result.documents] == ["good"]
    assert reasons(result) == {
        "bomb.md": "invalid YAML front matter: found an alias (*a): aliases are not allowed "
        "in front matter"
    }


def test_other_hostile_front_matter_is_skipped_by_name(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "c",
        {
            "nested.md": "---\ntitle: " + "[" * 100_000 + "]" * 100_000 + "\n---\nText.\n",
            "digits.md": "---\ntitle: " + "9" * 5000 + "\n---\nText.\n",
            "python.md": "---\ntitle: !!python/object/apply:os.system ['true']\n---\nText.\n",
            "good.md": GOOD,
        },
    )
    result = read_paths([folder])
    assert [d.id for d in result.documents] == ["good"]
    got = reasons(result)
    assert got["nested.md"] == "invalid YAML front matter: nested too deeply"
    assert got["digits.md"].startswith("invalid YAML front matter: Exceeds the limit")
    assert got["python.md"].startswith("invalid YAML front matter: could not determine")


def project(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(
        '[embedding]\nmodel = "fake"\n[chunking]\nmax_tokens = 60\noverlap_tokens = 15\n'
    )
    return folder / "config.toml"


def test_qa_ingest_skips_each_hostile_file_by_name_and_indexes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI on a real index on disk: exit 0, one line per bad file, the good one indexed."""
    monkeypatch.setattr(qa.cli.err, "width", 1000)  # one line per file, however long its path
    config = project(tmp_path / "p")
    corpus = write(
        tmp_path / "p" / "corpus",
        {
            "deep.json": DEEP,
            "deep.jsonl": DEEP + "\n",
            "feb30.md": "---\ndate: 2024-02-30\n---\nText.\n",
            "hour25.md": "---\ndate: 2024-02-03 25:00:00\n---\nText.\n",
            "bomb.md": laughs(),
            "good.md": GOOD,
        },
    )
    result = CliRunner().invoke(app, ["ingest", str(corpus), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 5, result.stderr
    for name in ("deep.json", "deep.jsonl", "feb30.md", "hour25.md", "bomb.md"):
        assert any(name in line for line in skipped), name
    index = LocalIndex.open(tmp_path / "p" / ".qa" / "index")
    assert list(index.manifest["docs"]) == ["good"]
    index.close()


# ----------------------------------------------------------------------------- item 5

UTF8 = "Café société: the café reopened.\n".encode()


def test_utf8_with_one_stray_cp1252_byte_stays_utf8_with_the_byte_replaced(
    tmp_path: Path,
) -> None:
    folder = write(tmp_path / "c", {"a.txt": b"Title\n" + UTF8 + b"Caf\xe9 again.\n" + UTF8})
    result = read_paths([folder])
    text = result.documents[0].text
    assert "Café société" in text and "Ã" not in text
    assert "Caf\ufffd again." in text
    (note,) = result.decoded
    assert (note.encoding, note.replaced, note.lines) == ("utf-8", 1, (3,))
    assert note.describe() == (
        "read as UTF-8 with 1 invalid byte sequence replaced by U+FFFD (line 3)"
    )


def test_a_jsonl_bundle_with_one_cp1252_line_keeps_its_other_lines_utf8(tmp_path: Path) -> None:
    good = [json.dumps({"text": f"Café société number {i}."}, ensure_ascii=False) for i in (1, 3)]
    bad = '{"text": "Soci\xe9t\xe9 number 2."}'.encode("cp1252")
    data = good[0].encode() + b"\n" + bad + b"\n" + good[1].encode() + b"\n"
    folder = write(tmp_path / "c", {"bundle.jsonl": data})
    result = read_paths([folder])
    texts = {d.id: d.text for d in result.documents}
    assert texts["bundle#1"] == "Café société number 1."
    assert texts["bundle#3"] == "Café société number 3."
    assert texts["bundle#2"] == "Soci\ufffdt\ufffd number 2."
    (note,) = result.decoded
    assert (note.replaced, note.lines) == (2, (2,))


def test_legacy_text_without_valid_utf8_is_still_read_as_western(tmp_path: Path) -> None:
    """An ASCII file with one cp1252 byte has no UTF-8 to keep: cp1252 reads it right."""
    folder = write(tmp_path / "c", {"a.txt": b"Title\nThe caf\xe9 reopened.\n"})
    result = read_paths([folder])
    assert "The café reopened." in result.documents[0].text
    assert [(d.encoding, d.replaced) for d in result.decoded] == [("cp1252", 0)]


def test_qa_ingest_reports_replaced_bytes_by_line_and_indexes_the_utf8(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qa.cli.err, "width", 1000)
    config = project(tmp_path / "p")
    corpus = write(tmp_path / "p" / "corpus", {"a.txt": b"Title\n" + UTF8 + b"Caf\xe9.\n"})
    result = CliRunner().invoke(app, ["ingest", str(corpus), "--config", str(config)])
    assert result.exit_code == 0, result.output
    path = (corpus / "a.txt").resolve()
    assert (
        f"read as UTF-8 with 1 invalid byte sequence replaced by U+FFFD (line 3): {path}"
        in result.stderr
    )
    index = LocalIndex.open(tmp_path / "p" / ".qa" / "index")
    doc = index.document("a")
    index.close()
    assert doc is not None and "Café société" in doc.text
