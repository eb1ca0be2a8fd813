"""Tests for qa.ingest: every format, metadata, cleaning on the real corpus, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.core.types import Document
from qa.ingest import ReadResult, clean, normalize_date, read_paths

CORPUS = Path(__file__).resolve().parents[2] / "corpus"


def kept(doc: Document) -> list[str]:
    return [doc.text[s:e] for s, e in doc.segments]


def one(result: ReadResult) -> Document:
    assert len(result.documents) == 1, (result.documents, result.skipped)
    return result.documents[0]


def reasons(result: ReadResult) -> dict[str, str]:
    return {s.path: s.reason for s in result.skipped}


@pytest.fixture(scope="module")
def corpus() -> dict[str, Document]:
    result = read_paths([CORPUS])
    assert result.skipped == []
    return {d.id: d for d in result.documents}


# ----------------------------------------------------------------------------- real corpus


def test_corpus_ids_metadata_and_readme_skipped(corpus: dict[str, Document]) -> None:
    assert sorted(corpus) == [
        "000_722e342871dc40da",
        "001_b56badeed06a7e90",
        "002_065950e8789c274e",
        "003_ed47ca18451f99c8",
        "004_19355b4a2df7b817",
    ]
    d0, d1, d2 = (corpus[k] for k in sorted(corpus)[:3])
    assert d0.title == "Rajnath Singh Strengthens Defence Ties with Belarus at SCO Summit"
    assert d0.published == "2025-06-26"
    assert d1.title.startswith("Khrenin: India a significant focus")
    assert d1.published == "2025-06-28"
    assert d2.source == "Daijiworld Media Network"
    assert d2.published == ""  # "Jun 26" without a year is not a date we can state
    assert d0.path == str(CORPUS.resolve() / "000_722e342871dc40da.md")


def test_corpus_bodies_are_verbatim_seed_text() -> None:
    seeds = CORPUS.parent.parent / "shared" / "seed-articles"  # ../shared beside the clone
    if not seeds.is_dir():
        pytest.skip("seed articles not available")
    docs = {d.id: d for d in read_paths([CORPUS]).documents}
    for seed in sorted(seeds.glob("*.txt")):
        raw = seed.read_text(encoding="utf-8")
        body = raw if seed.stem.startswith("001_") else raw.partition("\n")[2]
        assert docs[seed.stem].text == body


def test_segments_are_exact_trimmed_spans(corpus: dict[str, Document]) -> None:
    for doc in corpus.values():
        assert doc.segments
        last = 0
        for s, e in doc.segments:
            assert last <= s < e <= len(doc.text)
            piece = doc.text[s:e]
            assert piece == piece.strip() and "\n" not in piece
            last = e


def test_corpus_000_drops_comments_source_and_repeated_title(
    corpus: dict[str, Document],
) -> None:
    doc = corpus["000_722e342871dc40da"]
    segs = kept(doc)
    assert doc.title in doc.text  # still stored ...
    assert doc.title not in segs  # ... but not indexed twice
    for junk in ("Post a Comment", "Previous Post", "Source: SCO summit"):
        assert not any(junk in s for s in segs), junk
    # Bullets are content.
    assert segs[0] == "• Rajnath Singh met Viktor Khrenin, boosting bilateral defense cooperation."
    assert segs[-1].startswith("The discussions between Rajnath Singh and Viktor Khrenin")


def test_corpus_001_drops_stray_date_line(corpus: dict[str, Document]) -> None:
    doc = corpus["001_b56badeed06a7e90"]
    assert doc.text.startswith(" date 2025-06-28 \n")
    segs = kept(doc)
    assert not any("2025-06-28" in s for s in segs)
    assert segs[0].startswith("Belarusian Defence Minister Lieutenant General Viktor Khrenin")
    assert len(segs) == 9


def test_corpus_003_drops_image_markup(corpus: dict[str, Document]) -> None:
    segs = kept(corpus["003_ed47ca18451f99c8"])
    assert not any("![" in s or "Image Source" in s for s in segs)
    assert any(s.startswith("The meeting comes at a time") for s in segs)


def test_corpus_004_drops_dashes_and_tags_keeps_list_items(corpus: dict[str, Document]) -> None:
    segs = kept(corpus["004_19355b4a2df7b817"])
    assert "-" not in segs and "- Country:" not in segs and "- India" not in segs
    for item in ("Air defence systems", "Ensure timely execution of ongoing contracts"):
        assert item in segs
    assert "Key discussion points included:" in segs
    assert "Context: India’s Defence Modernisation Drive" in segs


# ----------------------------------------------------------------------------- clean()


def test_clean_offsets_and_trimming() -> None:
    text = "  Title line  \n\n\tFirst para.  \r\nSecond para.\n"
    segs = clean(text)
    assert [text[s:e] for s, e in segs] == ["Title line", "First para.", "Second para."]
    assert segs[1] == (text.index("First"), text.index("First") + len("First para."))


def test_clean_collapses_repeated_paragraphs_keeps_first() -> None:
    text = "Alpha beta gamma.\nOther line.\n  alpha   BETA gamma.  \nAlpha beta gamma.\n"
    segs = clean(text)
    assert [text[s:e] for s, e in segs] == ["Alpha beta gamma.", "Other line."]
    assert segs[0][0] == 0


def test_clean_drops_title_and_heading_equal_to_title() -> None:
    text = "# My Title\nmy  title\nBody text here.\n"
    assert [text[s:e] for s, e in clean(text, title="My Title")] == ["Body text here."]
    assert len(clean(text)) == 2  # without a title only the repeat goes


@pytest.mark.parametrize(
    "line",
    [
        "Post a Comment",
        "Previous Post Next Post",
        "Share this",
        "Read more",
        "Read more »",
        "Advertisement",
        "Also read: Some other headline",
        "![]() |",
        "![alt](https://x/y.png)",
        "Image Source: Raksha Mantri |",
        " date 2025-06-28 ",
        "June 26, 2025",
        "Published: 26 June 2025",
        "Source: SCO summit: Rajnath meets Belarus Defence Minister in Qingdao",
        "-",
        "|",
        "- Country:",
        "- Tags: defence, SCO",
    ],
)
def test_clean_drops_boilerplate_line(line: str) -> None:
    assert clean(f"Real content stays.\n{line}\n") == ((0, len("Real content stays.")),)


@pytest.mark.parametrize(
    "line",
    [
        "• Rajnath Singh met Viktor Khrenin, boosting bilateral defense cooperation.",
        "Air defence systems",
        "- Air defence systems",
        "Key discussion points included:",
        "The meeting was held on June 26, 2025 in Qingdao.",
        "Readers can read more about it in the report.",
        "2025",
        "Context: India’s Defence Modernisation Drive",
    ],
)
def test_clean_keeps_content_line(line: str) -> None:
    text = f"Intro.\n{line}\n"
    assert [text[s:e] for s, e in clean(text)] == ["Intro.", line]


def test_clean_drops_value_under_metadata_label_only() -> None:
    text = "- Country:\n- India\nIndia and Russia met.\n- India\n"
    # The second "- India" is not under a label; it is kept (it is no repeat: the first was
    # dropped, not kept).
    assert [text[s:e] for s, e in clean(text)] == ["India and Russia met.", "- India"]


# ----------------------------------------------------------------------------- formats


def test_txt_title_and_verbatim_body(tmp_path: Path) -> None:
    f = tmp_path / "story.txt"
    f.write_text("\nHeadline Here\nHeadline here\n\nBody line one.\n", encoding="utf-8")
    doc = one(read_paths([f]))
    assert (doc.id, doc.title) == ("story", "Headline Here")
    assert doc.text == "Headline here\n\nBody line one.\n"
    assert kept(doc) == ["Body line one."]
    assert doc.path == str(f.resolve())


def test_md_front_matter(tmp_path: Path) -> None:
    f = tmp_path / "a.md"
    f.write_text(
        "---\ntitle: Front Title\npublished: June 26, 2025\noutlet: The Daily\n"
        "url: https://example.com/a\n---\n\nBody.\n",
        encoding="utf-8",
    )
    doc = one(read_paths([f]))
    assert (doc.title, doc.published, doc.source, doc.url) == (
        "Front Title",
        "2025-06-26",
        "The Daily",
        "https://example.com/a",
    )
    assert doc.text == "\nBody.\n"


def test_md_yaml_date_object_and_heading_title(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("---\ndate: 2025-06-28\n---\n# The Heading\nText.\n")
    (tmp_path / "c.md").write_text("First line title\nMore text.\n")
    docs = {d.id: d for d in read_paths([tmp_path]).documents}
    assert docs["b"].title == "The Heading" and docs["b"].published == "2025-06-28"
    assert kept(docs["b"]) == ["Text."]
    assert docs["c"].title == "First line title" and kept(docs["c"]) == ["More text."]


def test_md_bad_front_matter_skipped(tmp_path: Path) -> None:
    (tmp_path / "open.md").write_text("---\ntitle: x\nno end\n")
    (tmp_path / "bad.md").write_text("---\ntitle: [unclosed\n---\nText\n")
    result = read_paths([tmp_path])
    assert result.documents == []
    got = reasons(result)
    assert "not closed" in got[str((tmp_path / "open.md").resolve())]
    assert "invalid YAML" in got[str((tmp_path / "bad.md").resolve())]


def test_json_object_and_list(tmp_path: Path) -> None:
    (tmp_path / "single.json").write_text(
        json.dumps({"title": "T", "content": "Body.", "publish_date": "2025-06-26T08:00:00Z"})
    )
    (tmp_path / "many.json").write_text(
        json.dumps(
            [
                {"id": "x1", "title": "One", "text": "First.", "source": "S", "date": "x"},
                {"url": "https://e.com/2", "body": "Second.\n"},
                {"text": "Third."},
                {"title": "No text"},
            ]
        )
    )
    result = read_paths([tmp_path])
    docs = {d.id: d for d in result.documents}
    assert set(docs) == {"single", "many#x1", "many#https://e.com/2", "many#3"}
    assert docs["single"].published == "2025-06-26" and docs["single"].title == "T"
    assert docs["many#x1"].source == "S" and docs["many#x1"].published == ""
    assert docs["many#3"].title == "Third."  # no title: the opening line stands in ...
    assert kept(docs["many#3"]) == ["Third."]  # ... and is not dropped as a repeat
    many = str((tmp_path / "many.json").resolve())
    assert docs["many#x1"].path == f"{many}#x1"
    assert "no 'text'" in reasons(result)[f"{many}#4"]


def test_jsonl_malformed_line_reported_rest_read(tmp_path: Path) -> None:
    f = tmp_path / "feed.jsonl"
    f.write_text(
        '{"id": 1, "title": "A", "text": "Alpha."}\n'
        "{not json\n"
        "\n"
        '{"title": "C", "text": "Gamma.", "outlet": "O"}\n'
        "[1, 2]\n"
    )
    result = read_paths([f])
    assert [d.id for d in result.documents] == ["feed#1", "feed#4"]
    assert result.documents[1].source == "O"
    got = reasons(result)
    resolved = str(f.resolve())
    assert got[f"{resolved}#2"].startswith("line 2: invalid JSON")
    assert "not an object" in got[f"{resolved}#5"]


def test_html_extracted_offline(tmp_path: Path) -> None:
    para = "The first paragraph of the article has enough words to be kept by the extractor."
    html = f"""<html><head><title>Big News | The Daily</title>
<meta property="og:site_name" content="The Daily">
<meta property="article:published_time" content="2025-06-26T10:00:00Z">
<link rel="canonical" href="https://example.com/news/big"></head>
<body><nav>Home | World | Sports</nav><article><h1>Big News Today</h1>
<p>{para}</p><p>A second paragraph follows, with plenty of words so it is not dropped.</p>
<p>Share this</p></article><footer>Copyright 2025</footer></body></html>"""
    (tmp_path / "page.html").write_text(html)
    doc = one(read_paths([tmp_path]))
    assert (doc.id, doc.title, doc.published, doc.source, doc.url) == (
        "page",
        "Big News Today",
        "2025-06-26",
        "The Daily",
        "https://example.com/news/big",
    )
    segs = kept(doc)
    assert segs[0] == para and "Share this" not in segs and doc.title not in segs


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-06-26", "2025-06-26"),
        ("2025-06-26T10:00:00Z", "2025-06-26"),
        ("June 26, 2025", "2025-06-26"),
        ("26 Jun 2025", "2025-06-26"),
        ("Sept 3, 2025", "2025-09-03"),
        ("Thu, 26 Jun 2025 10:00:00 +0000", "2025-06-26"),
        ("06/07/2025", ""),
        ("Jun 26", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_date(value: object, expected: str) -> None:
    assert normalize_date(value) == expected
