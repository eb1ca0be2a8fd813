"""A `qa ingest` into Milvus Lite killed (SIGKILL) mid-way, then a normal `qa ingest`: the index
converges to exactly the articles read, each chunk once, none missing, every article finished.

The subprocess is the real CLI; it kills itself right after the N-th write of the Milvus writer
(small batches, so several writes happen), which places the kill deterministically between
writing an article's rows, its chunks, deleting its stale chunks and marking it done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from backend_helpers import check, expected, stored_chunks
from index_helpers import article, make_corpus, write

from qa.core.config import Settings, load_settings
from qa.embedding.fake import FakeEmbedder
from qa.index import Index, sync
from qa.index.milvus_db import connect, read_live
from qa.index.milvus_writer import _Stored
from qa.ingest import read_paths

ROOT = Path(__file__).resolve().parents[2]
FAKE_EMBEDDER = FakeEmbedder(name="fake")

KILL_AFTER_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    import qa.index.milvus_writer as writer
    from qa.cli import main

    writer.CHUNKS_PER_BATCH = 10  # several batches, so the kill lands mid-ingest
    limit = int(sys.argv[1])
    writes = []
    upsert = writer._upsert

    def upsert_then_maybe_die(*args, **kwargs):
        upsert(*args, **kwargs)
        writes.append(1)
        if len(writes) == limit:
            os.kill(os.getpid(), signal.SIGKILL)

    writer._upsert = upsert_then_maybe_die
    sys.argv = ["qa", "ingest", sys.argv[2]]
    main()
    """
)


def env_for(tmp: Path) -> dict[str, str]:
    """The child's settings; an empty config.toml in ``tmp`` makes it the folder stored paths
    are relative to, for the child and for this process alike."""
    (tmp / "config.toml").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    return env | {
        "PYTHONPATH": str(ROOT),
        "QA_INDEX_BACKEND": "milvus",
        "QA_INDEX_MILVUS_URI": str(tmp / "milvus.db"),
        "QA_PATHS_INDEX": str(tmp / "index"),
        "QA_EMBEDDING_MODEL": "fake",
        "QA_CHUNKING_MAX_TOKENS": "60",
        "QA_CHUNKING_OVERLAP_TOKENS": "15",
    }


def ingest_in_subprocess(tmp: Path, corpus: Path, after_writes: int) -> int:
    """`qa ingest corpus` in a child process that SIGKILLs itself after ``after_writes``
    writes; returns its exit status."""
    done = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_WRITE, str(after_writes), str(corpus)],
        cwd=tmp,
        env=env_for(tmp),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, -signal.SIGKILL), done.stderr
    return done.returncode


def big_corpus(folder: Path) -> Path:
    make_corpus(folder)
    for name, topic in [("delta", "dolphin"), ("echo", "eagle"), ("foxtrot", "ferret")]:
        write(folder, f"{name}.md", article(f"{name.title()} accord", topic, n=14))
    return folder


@pytest.mark.parametrize(
    "after_writes",
    [1, 2, 5],
    ids=["article-rows-only", "chunks-not-marked-done", "second-batch"],
)
def test_killed_first_ingest_converges(tmp_path: Path, after_writes: int) -> None:
    corpus = big_corpus(tmp_path / "corpus")
    assert ingest_in_subprocess(tmp_path, corpus, after_writes) == -signal.SIGKILL
    settings = load_settings(tmp_path / "config.toml", env=env_for(tmp_path))
    converge(settings, corpus)


def test_killed_update_converges(tmp_path: Path) -> None:
    """Killed while replacing changed articles: at the kill, an article's new chunks are
    written beside its old ones; the next ingest removes the old, keeps the new, once."""
    corpus = big_corpus(tmp_path / "corpus")
    assert ingest_in_subprocess(tmp_path, corpus, after_writes=10_000) == 0  # complete
    text = (corpus / "alpha.md").read_text().replace("A walrus was seen.", "A zeppelin flew.")
    (corpus / "alpha.md").write_text(text)
    (corpus / "charlie.md").write_text(article("Charlie trade", "cheetah", n=9))
    (corpus / "bravo.md").unlink()
    write(corpus, "golf.md", article("Golf summit", "gecko"))
    assert ingest_in_subprocess(tmp_path, corpus, after_writes=2) == -signal.SIGKILL
    settings = load_settings(tmp_path / "config.toml", env=env_for(tmp_path))
    index = converge(settings, corpus)
    texts = " ".join(t for _, t in stored_chunks(index))
    assert "zeppelin" in texts and "walrus" not in texts and "badger" not in texts


def converge(settings: Settings, corpus: Path) -> Index:
    """A normal ingest after the kill: it redoes what was unfinished and nothing twice."""
    client = connect(settings)
    live = read_live(client, settings)
    assert live is not None  # the first build is live from its start
    report = sync(settings.index_dir, read_paths([corpus]).documents, FAKE_EMBEDDER, settings)
    assert report.changed  # the killed run left work to finish
    index = check(settings, expected(corpus))
    stored = _Stored(client, index.doc_collection, None).manifest["docs"]  # type: ignore[attr-defined]
    hashes = {d.id: d.content_hash for d in read_paths([corpus]).documents}
    assert {d: m["hash"] for d, m in stored.items()} == hashes  # every article finished
    again = sync(settings.index_dir, read_paths([corpus]).documents, FAKE_EMBEDDER, settings)
    assert not again.changed
    return index
