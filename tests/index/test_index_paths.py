"""Which article is which: the id rule, paths that survive moving the project, rebuilds that
keep every folder's articles, and the model the vectors really came from."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from index_helpers import FAKE, article, consistent, doc_chunks, ingest, make_corpus, write
from typer.testing import CliRunner

from qa.cli import app
from qa.core.config import EmbeddingSettings, Settings, load_settings
from qa.core.types import Document, QAError
from qa.embedding.base import bundled_model_path
from qa.embedding.fake import FakeEmbedder
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder
from qa.index import LocalIndex, sync
from qa.ingest import read_paths

# ----------------------------------------------------------------------------- ids


def two_folders(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    write(a, "x.md", article("Alpha x", "alpaca"))
    write(b, "x.md", article("Bravo x", "badger"))
    return a, b


def ids_and_titles(root: Path) -> dict[str, str]:
    index = consistent(root, FakeEmbedder(name="fake"))
    return {d: index.document(d).title for d in index.manifest["docs"]}  # type: ignore[union-attr]


def test_one_id_rule_for_one_run_or_several(tmp_path: Path) -> None:
    a, b = two_folders(tmp_path)
    together, apart = tmp_path / "together", tmp_path / "apart"
    assert ingest(together, [a, b]).added == 2  # `qa ingest a b`: b/x.md is not dropped
    ingest(apart, [a])
    assert ingest(apart, [b]).added == 1  # `qa ingest a` then `qa ingest b`
    same = ids_and_titles(together)
    assert same == ids_and_titles(apart)
    assert same["x"] == "Alpha x"
    (other,) = [d for d in same if d != "x"]
    assert other.startswith("x@") and same[other] == "Bravo x"
    # Stable: ingesting either way again embeds nothing, whatever the order of the folders.
    for root in (together, apart):
        report = ingest(root, [b, a])
        assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 0, 2)


def test_an_article_keeps_its_id_by_path(tmp_path: Path) -> None:
    a, b = two_folders(tmp_path)
    root = tmp_path / "index"
    ingest(root, [b])  # b/x.md came first: it is "x"
    ingest(root, [a])
    ids = ids_and_titles(root)
    assert ids["x"] == "Bravo x" and len(ids) == 2
    # An edit of a/x.md updates its own article, not b's.
    write(a, "x.md", article("Alpha x", "alpaca", extra="A walrus was seen."))
    report = ingest(root, [a, b])
    assert (report.updated, report.unchanged) == (1, 1)
    (alpha_id,) = [d for d, t in ids_and_titles(root).items() if t == "Alpha x"]
    assert "walrus" in " ".join(doc_chunks(LocalIndex.open(root), alpha_id))


def test_a_folder_outside_the_project_given_relative_then_absolute_re_ingests_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`qa eval realtimeqa --data ../shared/...` stored its articles as ../shared/...; the same
    folder given as /work/shared/... must find them again, not re-embed the whole quarter."""
    project_dir, data = tmp_path / "project", tmp_path / "shared" / "data"
    write(data, "x.md", article("Alpha x", "alpaca"))
    write(data, "y.md", article("Bravo y", "badger"))
    project_dir.mkdir()
    settings = replace(FAKE, root=project_dir)
    monkeypatch.chdir(project_dir)
    root = project_dir / ".qa" / "index"
    docs = read_paths([data]).documents
    # As the RealTime QA reader gives them: the folder's path as typed, plus "#<url>".
    relative = [replace(d, path=f"../shared/data/{Path(d.path).name}#u") for d in docs]
    absolute = [replace(d, path=f"{d.path}#u") for d in docs]

    def sync_all(documents: list[Document]) -> tuple[int, int, int]:
        report = sync(root, documents, FakeEmbedder(name="fake"), settings)
        return report.added, report.removed, report.unchanged

    assert sync_all(relative) == (2, 0, 0)
    assert sync_all(absolute) == (0, 0, 2)
    assert sync_all(relative) == (0, 0, 2)
    index = LocalIndex.open(root)
    assert {m["path"] for m in index.manifest["docs"].values()} == {
        f"{data / 'x.md'}#u",
        f"{data / 'y.md'}#u",
    }


# ----------------------------------------------------------------------------- moving, rebuild


def project(folder: Path) -> Path:
    make_corpus(folder / "corpus")
    (folder / "config.toml").write_text(
        '[embedding]\nmodel = "fake"\n[chunking]\nmax_tokens = 60\noverlap_tokens = 15\n'
    )
    return folder / "config.toml"


def qa_ingest(config: Path, *args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, ["ingest", *args, "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_a_moved_project_re_ingests_nothing(tmp_path: Path) -> None:
    config = project(tmp_path / "project")
    first = qa_ingest(config)
    assert (first["added"], first["articles"]) == (3, 3)
    moved = tmp_path / "elsewhere" / "renamed-project"
    moved.parent.mkdir()
    shutil.move(tmp_path / "project", moved)

    again = qa_ingest(moved / "config.toml")
    assert (again["added"], again["removed"], again["unchanged"]) == (0, 0, 3)
    assert again["articles"] == 3 and again["chunks_embedded"] == 0
    index = LocalIndex.open(moved / ".qa" / "index")
    assert {m["path"] for m in index.manifest["docs"].values()} == {
        "corpus/alpha.md",
        "corpus/bravo.md",
        "corpus/charlie.md",
    }


def test_a_moved_folder_outside_the_project_is_recognised_by_content(tmp_path: Path) -> None:
    """Issue 22, item 6: moving a folder kept outside the project and ingesting it again kept
    the old articles (their files gone) and added the moved ones as ``x@hash``."""
    config = project(tmp_path / "project")
    news = tmp_path / "news"
    write(news, "x.md", article("Alpha x", "alpaca"))
    write(news / "sub", "y.md", article("Bravo y", "badger"))
    write(news, "z.md", article("Charlie z", "cheetah"))
    first = qa_ingest(config, str(news))
    assert first["added"] == 3
    moved = tmp_path / "archive" / "news-2025"
    moved.parent.mkdir()
    shutil.move(news, moved)
    (moved / "z.md").unlink()  # and one article deleted meanwhile: its entry must not move

    again = qa_ingest(config, str(moved))
    assert (again["added"], again["removed"], again["articles"]) == (0, 0, 3)
    index = LocalIndex.open(tmp_path / "project" / ".qa" / "index")
    paths = {d: m["path"] for d, m in index.manifest["docs"].items()}
    index.close()
    assert paths == {
        "x": str(moved / "x.md"),
        "sub/y": str(moved / "sub" / "y.md"),
        "z": str(news / "z.md"),  # gone, but not under the folder given: kept, as before
    }
    # Stable: a third run embeds nothing.
    third = qa_ingest(config, str(moved))
    assert (third["added"], third["updated"], third["chunks_embedded"]) == (0, 0, 0)


def test_rebuild_keeps_the_articles_of_every_folder(tmp_path: Path) -> None:
    config = project(tmp_path / "project")
    other = tmp_path / "other"
    write(other, "echo.md", article("Echo accord", "eagle"))
    qa_ingest(config)
    assert qa_ingest(config, str(other))["articles"] == 4
    (tmp_path / "project" / "corpus" / "bravo.md").unlink()

    # The settings-mismatch error sends users here: nothing may be dropped silently.
    rebuilt = qa_ingest(config, "--rebuild")
    assert (rebuilt["removed"], rebuilt["restored"], rebuilt["articles"]) == (1, 1, 3)
    index = consistent(tmp_path / "project" / ".qa" / "index", FakeEmbedder(name="fake"))
    assert sorted(index.manifest["docs"]) == ["alpha", "charlie", "echo"]
    assert "eagle" in " ".join(doc_chunks(index, "echo"))

    result = CliRunner().invoke(app, ["ingest", "--rebuild", "--config", str(config)])
    assert "1 articles from folders not given re-embedded from the text stored" in " ".join(
        result.output.split()
    )


def test_rebuild_of_an_unreadable_index_says_what_it_cannot_keep(tmp_path: Path) -> None:
    root = tmp_path / "index"
    corpus = make_corpus(tmp_path / "corpus")
    ingest(root, [corpus])
    live = LocalIndex.open(root).path
    (live / "manifest.json").write_text("{not json")
    report = ingest(root, [corpus], rebuild=True)
    assert report.added == 3
    assert report.warnings and "only the folders given are indexed" in report.warnings[0]


# ----------------------------------------------------------------------------- the model loaded


def small_model(folder: Path, seed: int) -> Path:
    """A real sentence-transformers model of 128 dimensions: the bundled one plus a dense
    layer (weights from ``seed``), saved like any model folder."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    torch.manual_seed(seed)
    base = SentenceTransformer(bundled_model_path(), device="cpu")
    dense = Dense(384, 128, activation_function=torch.nn.Identity())
    SentenceTransformer(modules=[base[0], base[1], dense, Normalize()]).save(str(folder))
    return folder


@pytest.mark.slow
def test_a_128_dimension_model_is_recorded_and_checked_as_loaded(tmp_path: Path) -> None:
    from qa.answering.assistant import Assistant

    corpus = make_corpus(tmp_path / "corpus")
    root = tmp_path / "index"
    settings = load_settings(
        overrides={
            "paths.index": str(root),
            "embedding.model": "small-128",
            # A Dense layer after pooling: only the torch runtime runs such a model.
            "embedding.runtime": "torch",
            "embedding.path": str(small_model(tmp_path / "m1", seed=1)),
        },
        env={},
    )
    report = ingest(root, [corpus], SentenceTransformerEmbedder(settings.embedding), settings)
    assert report.added == 3
    assert LocalIndex.open(root).build.dim == 128

    # A later command with a fresh (not yet loaded) embedder is not refused...
    LocalIndex.open(root, settings, SentenceTransformerEmbedder(settings.embedding).dim)
    hits = Assistant(settings).retrieve("alpaca summit", 3).hits
    assert hits and hits[0].doc.id == "alpha"
    # ... and an ingest of the same corpus embeds nothing.
    again = ingest(root, [corpus], SentenceTransformerEmbedder(settings.embedding), settings)
    assert (again.unchanged, again.chunks_embedded) == (3, 0)

    # Other weights under the same name and dimension are refused, then rebuilt.
    other = replace(
        settings,
        embedding=replace(settings.embedding, path=str(small_model(tmp_path / "m2", seed=2))),
    )
    with pytest.raises(QAError, match=r"model weights: index has [0-9a-f]{16}, the loaded"):
        ingest(root, [corpus], SentenceTransformerEmbedder(other.embedding), other)
    rebuilt = ingest(root, [corpus], SentenceTransformerEmbedder(other.embedding), other, True)
    assert rebuilt.chunks_embedded == rebuilt.chunks_total


def test_an_embedder_reports_what_it_loaded() -> None:
    embedder = SentenceTransformerEmbedder(EmbeddingSettings())
    assert embedder._model is None  # constructors stay cheap
    assert embedder.dim == 384 and embedder._model is not None
    assert embedder.max_tokens == 256 and len(embedder.identity) == 16
    assert FAKE.embedding.model == "fake" and Settings().embedding.model != "fake"
