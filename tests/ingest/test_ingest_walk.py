"""Tests for the walk and decoding of qa.ingest: folders, links and cycles, the size cap,
progress, duplicate files and records, bad files, and encodings."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from qa.core.types import Document, QAError
from qa.ingest import Decoded, Skipped, read_paths


def kept(doc: Document) -> list[str]:
    return [doc.text[s:e] for s, e in doc.segments]


# ----------------------------------------------------------------------------- walking, ids


def test_folder_walk_ids_hidden_readme_unsupported(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "b.txt").write_text("B\nbody\n")
    (tmp_path / "sub" / "article.md").write_text("# A\nbody\n")
    (tmp_path / "sub" / "deep" / "x.y.txt").write_text("X\nbody\n")
    (tmp_path / ".hidden" / "c.txt").write_text("C\nbody\n")
    (tmp_path / ".dot.txt").write_text("D\nbody\n")
    (tmp_path / "README.md").write_text("# Readme\nhow to\n")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    result = read_paths([tmp_path])
    assert [d.id for d in result.documents] == ["b", "sub/article", "sub/deep/x.y"]
    assert result.files == [
        (tmp_path / p).resolve() for p in ("b.txt", "sub/article.md", "sub/deep/x.y.txt")
    ]
    assert result.skipped == [
        Skipped(str((tmp_path / "notes.pdf").resolve()), "unsupported file type .pdf")
    ]


def test_a_file_reached_twice_is_read_once_and_ids_may_repeat(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# From md\nmd body\n")
    (tmp_path / "a.txt").write_text("From txt\ntxt body\n")
    result = read_paths([tmp_path, tmp_path / "a.txt"])
    # Two files, one id: both are read, the index gives the second its own id (qa.index).
    assert [(d.id, d.title) for d in result.documents] == [("a", "From md"), ("a", "From txt")]
    assert result.skipped == [] and len(result.files) == 2


def test_a_repeated_record_is_reported(tmp_path: Path) -> None:
    rows = [{"id": "r1", "text": "First body."}, {"id": "r1", "text": "Second body."}]
    (tmp_path / "feed.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    result = read_paths([tmp_path])
    assert [d.id for d in result.documents] == ["feed#r1"]
    assert [s.reason for s in result.skipped] == [
        "duplicate: already read (a record with the same id or url)"
    ]


def test_nonexistent_path_raises(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(QAError, match="nope"):
        read_paths([missing])


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\n\t\n", "empty"),
        ("title_only.txt", b"Just a title\n", "empty"),
        ("boiler.txt", b"Title\nPost a Comment\n-\n", "empty"),
        ("nul.txt", b"abc\x00def\x00" * 20, "binary"),
        ("controls.txt", bytes(range(1, 9)) * 40, "binary"),
        ("high.txt", bytes(range(0x80, 0x100)) * 4, "undecodable"),
        ("broken.json", b'{"text": "unterminated', "invalid JSON"),
        ("notext.json", b'{"title": "only a title"}', "no 'text'"),
    ],
)
def test_bad_file_skipped_with_reason(tmp_path: Path, name: str, data: bytes, reason: str) -> None:
    (tmp_path / name).write_bytes(data)
    (tmp_path / "zz_good.txt").write_text("Good\nGood body.\n")
    result = read_paths([tmp_path])
    assert [d.id for d in result.documents] == ["zz_good"]
    assert len(result.skipped) == 1
    assert result.skipped[0].path == str((tmp_path / name).resolve())
    assert reason in result.skipped[0].reason


def test_encodings_accepted(tmp_path: Path) -> None:
    body = (
        "Le ministre a déclaré que la coopération était très importante pour les deux pays, "
        "et que les négociations se poursuivraient l'année prochaine à Genève."
    )
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfTitle\n" + body.encode("utf-8"))
    (tmp_path / "u16.txt").write_bytes(("Titre\n" + body).encode("utf-16"))
    (tmp_path / "legacy.txt").write_bytes(("Titre\n" + body + "\n" + body).encode("cp1252"))
    docs = {d.id: d for d in read_paths([tmp_path]).documents}
    assert docs["bom"].title == "Title" and kept(docs["bom"]) == [body]
    assert kept(docs["u16"]) == [body]
    assert "coopération" in kept(docs["legacy"])[0]


# Short Western-European news sentences; as Latin-1 bytes they are not UTF-8.
WESTERN_SAMPLES = {
    "es": "El niño de la señora Muñoz ganó el campeonato en España, según el diario.",
    "fr": "Le ministre a déclaré que la coopération était très importante à Genève.",
    "de": "Die Bürgermeisterin äußerte sich über die Straßenbahn in München.",
    "pt": "O governo português anunciou ações para a educação e a saúde em março.",
    "it": "Il presidente ha ricordato che l'università è aperta più giorni.",
}


@pytest.mark.parametrize("lang", sorted(WESTERN_SAMPLES))
def test_latin1_article_is_read_as_western_and_reported(tmp_path: Path, lang: str) -> None:
    body = WESTERN_SAMPLES[lang]
    (tmp_path / f"{lang}.txt").write_bytes(f"Titular\n{body}\n".encode("latin-1"))
    result = read_paths([tmp_path])
    assert kept(result.documents[0]) == [body]
    assert result.decoded == [Decoded(str((tmp_path / f"{lang}.txt").resolve()), "cp1252")]


def test_spanish_enye_is_not_guessed_as_another_code_page(tmp_path: Path) -> None:
    # The case reported in the issue: "ñ" came back as "ń" (a Central European guess).
    (tmp_path / "a.txt").write_bytes("Año nuevo\nLa señora compró piñas.\n".encode("latin-1"))
    doc = read_paths([tmp_path]).documents[0]
    assert doc.title == "Año nuevo" and kept(doc) == ["La señora compró piñas."]


def test_utf8_is_not_reported_and_cyrillic_legacy_is_not_read_as_western(tmp_path: Path) -> None:
    (tmp_path / "u.txt").write_text("Title\nPlain UTF-8 body with café.\n", encoding="utf-8")
    russian = (
        "Министр обороны заявил, что сотрудничество между двумя странами очень важно, "
        "и переговоры продолжатся в следующем году в Москве."
    )
    (tmp_path / "ru.txt").write_bytes(f"Заголовок\n{russian}\n{russian}\n".encode("cp1251"))
    result = read_paths([tmp_path])
    docs = {d.id: d for d in result.documents}
    assert kept(docs["ru"]) == [russian]
    assert [d.path for d in result.decoded] == [str((tmp_path / "ru.txt").resolve())]
    assert result.decoded[0].encoding != "cp1252"


# ----------------------------------------------------------------------------- links, cycles


def test_a_link_back_to_an_ancestor_is_reported_not_followed(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.txt").write_text("A\nbody a\n")
    (corpus / "sub" / "b.txt").write_text("B\nbody b\n")
    os.symlink(".", corpus / "up")  # `ln -s . corpus/up`
    os.symlink("..", corpus / "sub" / "back")
    result = read_paths([corpus])
    assert [d.id for d in result.documents] == ["a", "sub/b"]
    assert result.skipped == [
        Skipped(str(corpus / "sub" / "back"), f"folder cycle: links back to {corpus}"),
        Skipped(str(corpus / "up"), f"folder cycle: links back to {corpus}"),
    ]


def test_a_linked_folder_is_followed_once(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.txt").write_text("X\nbody x\n")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    os.symlink(elsewhere, corpus / "linked")
    os.symlink(elsewhere, corpus / "twice")
    os.symlink(elsewhere / "x.txt", corpus / "x-link.txt")
    result = read_paths([corpus])
    assert [d.id for d in result.documents] == ["linked/x"]
    assert result.files == [(elsewhere / "x.txt").resolve()]
    assert result.skipped == [
        Skipped(str(corpus / "twice"), f"folder already read as {corpus / 'linked'}")
    ]


# ----------------------------------------------------------------------------- size, progress


def test_a_file_over_the_cap_is_skipped_by_name_without_reading_it(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_text("Small\nA short body.\n")
    big = tmp_path / "big.txt"
    with open(big, "wb") as handle:  # 50 MB of text, written sparsely in an instant
        handle.write(b"Big\n")
        handle.truncate(50_000_000)
    started = time.perf_counter()
    result = read_paths([tmp_path], max_file_bytes=1_000_000)
    assert time.perf_counter() - started < 5
    assert [d.id for d in result.documents] == ["small"]
    assert result.skipped == [
        Skipped(
            str(big.resolve()),
            "too large: 50,000,000 bytes, over the cap of 1,000,000 "
            "(setting ingest.max_file_bytes)",
        )
    ]


def test_progress_names_each_file_before_it_is_read(tmp_path: Path) -> None:
    for name in ("a.txt", "b.md", "c.pdf"):
        (tmp_path / name).write_text("T\nbody\n")
    seen: list[tuple[int, int, str]] = []
    read_paths([tmp_path], progress=lambda done, total, path: seen.append((done, total, path.name)))
    assert seen == [(0, 3, "a.txt"), (1, 3, "b.md")]
