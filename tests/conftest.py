"""Shared fixtures. Tests may talk to loopback servers only: any other connection fails."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from qa.answering.assistant import Assistant
from qa.core.config import EmbeddingSettings, Settings, load_settings
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder
from qa.index import sync
from qa.ingest import read_paths

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"

# The keys of `qa ask --json` (Answer.to_dict), checked by the CLI, server and eval tests.
ASK_JSON_KEYS = frozenset(
    {
        "question",
        "short_answer",
        "short_answer_citation",
        "confidence",
        "answer",
        "answered",
        "citations",
        "passages",
        "model",
        "usage",
        "timings_ms",
        "unsupported",
    }
)


# The index backends every parametrised index, retrieval, answer and server test runs against.
BACKENDS = ("local", "milvus")
_collections = itertools.count()


def on_backend(settings: Settings, backend: str, milvus_db: Path) -> Settings:
    """``settings`` with ``index.backend = backend``; on Milvus, a collection of its own in the
    shared Milvus Lite file ``milvus_db`` (one embedded Milvus per test run: each file starts
    a server thread in the process that stays until exit)."""
    if backend == "local":
        return replace(settings, index=replace(settings.index, backend="local"))
    milvus = replace(settings.index.milvus, uri=str(milvus_db), collection=f"t{next(_collections)}")
    return replace(settings, index=replace(settings.index, backend="milvus", milvus=milvus))


def fake_settings(max_tokens: int, overlap_tokens: int) -> Settings:
    """Settings for fast tests: the hash-seeded fake embedder, small chunks, no floor."""
    base = Settings()
    return replace(
        base,
        embedding=replace(base.embedding, model="fake"),
        chunking=replace(base.chunking, max_tokens=max_tokens, overlap_tokens=overlap_tokens),
        retrieval=replace(base.retrieval, min_dense_score=0.0),
    )


# The config.toml of web_project: a corpus/ and an index beside it, the fake embedder (no model
# to load), and fetching that fails fast and may reach the tests' news site on loopback.
WEB_PROJECT_CONFIG = """
[paths]
corpus = "corpus"
index = "idx"

[embedding]
model = "fake"

[fetch]
timeout = 1.0
allowed_networks = ["127.0.0.0/8"]  # the news site (tests/news_site.py) is on loopback
"""


@pytest.fixture
def web_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder, made the working directory, for the feed and article tests (CLI and
    server): WEB_PROJECT_CONFIG in config.toml and, in corpus/, one article a user wrote
    beside the fetched ones to come. No QA_* variable of the developer's leaks in."""
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    (tmp_path / "config.toml").write_text(WEB_PROJECT_CONFIG, encoding="utf-8")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "belarus.md").write_text(
        (CORPUS / "000_722e342871dc40da.md").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


_real_connect = socket.socket.connect


def _guarded_connect(self: socket.socket, address: object) -> None:
    host = address[0] if isinstance(address, tuple) else address
    local = ("127.0.0.1", "localhost", "::1", "0.0.0.0")
    if (
        isinstance(host, str)
        and host not in local
        and self.family in (socket.AF_INET, socket.AF_INET6)
    ):
        raise RuntimeError(f"tests must not use the network (tried {address!r})")
    return _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def real_embedder() -> SentenceTransformerEmbedder:
    """The bundled all-MiniLM-L6-v2, loaded once for the whole run."""
    embedder = SentenceTransformerEmbedder(EmbeddingSettings())
    embedder.model  # noqa: B018 - load now, not inside the first test's timing
    return embedder


@pytest.fixture(scope="session")
def corpus_index(
    tmp_path_factory: pytest.TempPathFactory, real_embedder: SentenceTransformerEmbedder
) -> Path:
    """A real FAISS index of corpus/ on disk, built once with the default settings.
    Tests only read it; a test that changes an index builds its own."""
    root = tmp_path_factory.mktemp("corpus-index") / "index"
    settings = load_settings(overrides={"paths.index": str(root)}, env={})
    sync(root, read_paths([CORPUS]).documents, real_embedder, settings)
    return root


@pytest.fixture(scope="session")
def milvus_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one Milvus Lite database of the test run (collections per test, see on_backend)."""
    return tmp_path_factory.mktemp("milvus") / "milvus.db"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def milvus_corpus(
    milvus_db: Path, real_embedder: SentenceTransformerEmbedder, corpus_index: Path
) -> Settings:
    """Settings of the bundled corpus indexed in Milvus Lite with the real model, built once
    (the Milvus twin of corpus_index)."""
    settings = load_settings(
        overrides={"paths.index": str(corpus_index), "llm.client": "extractive"}, env={}
    )
    settings = on_backend(settings, "milvus", milvus_db)
    lock = milvus_db.parent / "corpus-lock"
    sync(lock, read_paths([CORPUS]).documents, real_embedder, settings)
    return settings


@pytest.fixture(scope="session", params=BACKENDS)
def backend_assistant(
    request: pytest.FixtureRequest,
    corpus_index: Path,
    real_embedder: SentenceTransformerEmbedder,
) -> Assistant:
    """The shipped default over the bundled corpus, on each backend in turn."""
    if request.param == "milvus":
        settings = request.getfixturevalue("milvus_corpus")
    else:
        settings = load_settings(
            overrides={"paths.index": str(corpus_index), "llm.client": "extractive"}, env={}
        )
    return Assistant(settings, embedder=real_embedder)


@pytest.fixture(scope="session")
def assistant(corpus_index: Path, real_embedder: SentenceTransformerEmbedder) -> Assistant:
    """The shipped default (real model, extractive client) over the corpus index."""
    settings = load_settings(
        overrides={"paths.index": str(corpus_index), "llm.client": "extractive"}, env={}
    )
    return Assistant(settings, embedder=real_embedder)


@pytest.fixture
def fake_index(tmp_path: Path) -> tuple[Path, Path]:
    """Three generated articles in tmp_path/corpus, indexed with the fake embedder in
    tmp_path/index (the index tests' starting point)."""
    from index_helpers import consistent, ingest, make_corpus

    from qa.embedding.fake import FakeEmbedder

    corpus = make_corpus(tmp_path / "corpus")
    root = tmp_path / "index"
    report = ingest(root, [corpus])
    assert report.added == 3 and report.chunks_total == report.chunks_embedded
    consistent(root, FakeEmbedder(name="fake"))
    return root, corpus


@pytest.fixture(autouse=True)
def _block_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    yield
