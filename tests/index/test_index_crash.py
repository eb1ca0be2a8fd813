"""Crash safety of the index writer and garbage collection against running readers.

The commit of a new generation is a sequence of steps (qa.index.store.commit); a writer is killed
(SIGKILL, in a subprocess) after each one, and during garbage collection, and every time the
index must open consistent (the old or the new generation, never a mix) and the next ingest
must converge with nothing lost. A reader holding a generation keeps it, whatever ingests run.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
from index_helpers import FAKE, PYTHON, article, consistent, generations, ingest, search, write
from typer.testing import CliRunner

import qa.index.bm25
import qa.index.chunk_store
import qa.index.local
import qa.index.store
import qa.index.vectors
from qa.core.types import QAError
from qa.embedding.fake import FakeEmbedder
from qa.index import LocalIndex, live_generation
from qa.retrieval.retriever import Retriever


def _boom(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("disk on fire")


@pytest.mark.parametrize(
    "target",
    [
        (qa.index.vectors, "save"),
        (qa.index.bm25, "save"),
        (qa.index.chunk_store, "write_generation"),
        (qa.index.store, "fsync_tree"),  # everything written, just before the switch
    ],
    ids=["vectors.save", "bm25.save", "store.write", "store.fsync_tree"],
)
def test_failed_save_keeps_the_previous_index(
    fake_index: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, target: tuple[Any, str]
) -> None:
    root, corpus = fake_index
    before = LocalIndex.open(root)
    counts = dict(before.manifest["counts"])
    results = search(root, "badger treaty")
    current = (root / "CURRENT").read_text()
    write(corpus, "delta.md", article("Delta pact", "dolphin"))
    (corpus / "bravo.md").unlink()

    with monkeypatch.context() as m:
        m.setattr(*target, _boom)
        with pytest.raises(RuntimeError, match="disk on fire"):
            ingest(root, [corpus])

    assert (root / "CURRENT").read_text() == current
    after = consistent(root, FakeEmbedder(name="fake"))
    assert after.path == before.path and after.manifest["counts"] == counts
    assert search(root, "badger treaty") == results
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-gen-")]

    report = ingest(root, [corpus])  # the lock was released, the next ingest works
    assert (report.added, report.removed) == (1, 1)
    index = consistent(root, FakeEmbedder(name="fake"))
    assert "delta" in index.manifest["docs"] and "bravo" not in index.manifest["docs"]


# ----------------------------------------------------------------------------- each commit step

KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from dataclasses import replace
    from pathlib import Path

    import qa.index
    import qa.index.segments
    from qa.core.config import Settings
    from qa.embedding.fake import FakeEmbedder
    from qa.ingest import read_paths

    root, corpus, step = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    qa.index.segments.REBUILD_SHARE = 1e9 if sys.argv[4] == "delta" else 0.0

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    real_replace, real_fsync, renamed = os.replace, qa.index.store._fsync, []

    def replace_then_maybe_die(src, dst):
        src, dst = Path(src), Path(dst)
        if step == "pointer_written" and dst.name == "CURRENT":
            die()  # .CURRENT.tmp written and synced, not yet renamed over CURRENT
        real_replace(src, dst)
        renamed.append(dst.name)
        if step == "renamed" and dst.name.startswith("gen-"):
            die()  # the generation is in place, the folder not yet synced
        if step == "switched" and dst.name == "CURRENT":
            die()  # CURRENT switched, the folder not yet synced
        if step == "collecting" and dst.name.startswith(".trash-"):
            die()  # an old generation renamed to trash, not yet deleted

    def fsync_then_maybe_die(path):
        real_fsync(path)
        if step == "dir_synced" and Path(path) == root and renamed[-1:] != ["CURRENT"]:
            if any(n.startswith("gen-") for n in renamed):
                die()  # the new name is durable, CURRENT not yet written

    if step == "bm25":
        qa.index.bm25.save = die
    real_write = qa.index.chunk_store.write_generation

    def write_then_die(*args, **kwargs):
        real_write(*args, **kwargs)
        die()  # the shared store has the new rows, no generation names them yet

    if step == "store_written":
        qa.index.chunk_store.write_generation = write_then_die
    if step == "purging":
        qa.index.chunk_store.purge = die  # switched; the collector purges the old rows
    qa.index.store.os.replace = replace_then_maybe_die
    qa.index.store._fsync = fsync_then_maybe_die
    s = Settings()
    s = replace(
        s,
        embedding=replace(s.embedding, model="fake"),
        chunking=replace(s.chunking, max_tokens=60, overlap_tokens=15),
        retrieval=replace(s.retrieval, min_dense_score=0.0),
    )
    docs = read_paths([corpus]).documents
    qa.index.sync(root, docs, FakeEmbedder(name="fake"), s, in_scope=qa.index.scope([corpus]))
    print("not killed")
    """
)

# step -> whether CURRENT already names the new generation when the writer dies
STEPS = {
    "bm25": False,
    "store_written": False,
    "renamed": False,
    "dir_synced": False,
    "pointer_written": False,
    "switched": True,
    "collecting": True,
    "purging": True,
}


@pytest.mark.parametrize("merge", ["delta", "merge"])
@pytest.mark.parametrize("step", list(STEPS))
def test_writer_killed_at_each_step_of_the_commit(
    fake_index: tuple[Path, Path], step: str, merge: str
) -> None:
    """``delta``: the writer links the old segment and adds one; ``merge``: it merges all."""
    root, corpus = fake_index
    before = LocalIndex.open(root)
    old_docs, old_gen = set(before.manifest["docs"]), before.path.name
    results = search(root, "cheetah trade")
    before.close()  # no reader holds it: the collector may remove it
    write(corpus, "delta.md", article("Delta pact", "dolphin"))

    script = root.parent / "kill.py"
    script.write_text(KILL_SCRIPT)
    proc = subprocess.run(
        [PYTHON, str(script), str(root), str(corpus), step, merge],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr

    # Whatever step it died at, the index opens and is consistent: the old or the new one.
    after = consistent(root, FakeEmbedder(name="fake"))
    switched = after.path.name != old_gen
    assert switched == STEPS[step], sorted(p.name for p in root.iterdir())
    expected = old_docs | {"delta"} if switched else old_docs
    if switched:  # the path the writer took
        assert len(after.manifest["segments"]) == (2 if merge == "delta" else 1)
    assert set(after.manifest["docs"]) == expected
    if not switched:
        assert search(root, "cheetah trade") == results
    after.close()

    # The lock died with the writer: the next ingest converges and cleans up.
    report = ingest(root, [corpus])
    assert (report.added, report.removed) == ((0, 0) if switched else (1, 0))
    index = consistent(root, FakeEmbedder(name="fake"))
    assert set(index.manifest["docs"]) == old_docs | {"delta"}
    assert generations(root) == [index.path.name]  # no .tmp-gen, no .trash, no old generation
    assert search(root, "dolphin pact")


def test_the_folder_is_synced_between_each_rename(
    fake_index: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a power loss CURRENT must never name a generation whose own rename was lost."""
    root, corpus = fake_index
    events: list[str] = []
    real_replace, real_fsync = qa.index.store.os.replace, qa.index.store._fsync

    def replace(src: Any, dst: Any) -> None:
        real_replace(src, dst)
        events.append(f"rename {Path(src).name[:9]} -> {Path(dst).name[:4]}")

    def fsync(path: Path) -> None:
        real_fsync(path)
        if Path(path) == root:
            events.append("sync folder")

    monkeypatch.setattr(qa.index.store.os, "replace", replace)
    monkeypatch.setattr(qa.index.store, "_fsync", fsync)
    write(corpus, "delta.md", article("Delta pact", "dolphin"))
    ingest(root, [corpus])
    commit = [e for e in events if not e.endswith(".tra")]  # collection comes after
    assert commit == [
        "rename .tmp-gen- -> gen-",
        "sync folder",
        "rename .CURRENT. -> CURR",
        "sync folder",
    ]


# ----------------------------------------------------------------------------- readers and GC


def test_a_reader_keeps_its_generation_while_ingests_collect(
    fake_index: tuple[Path, Path],
) -> None:
    root, corpus = fake_index
    reader = LocalIndex.open(root)  # as `qa serve` holds it; no part loaded yet
    held = reader.path
    retriever = Retriever(reader, FakeEmbedder(name="fake"), FAKE.retrieval)
    before = [(h.chunk.id, h.chunk.text) for h in retriever.search("badger treaty", 5).hits]
    alpha = reader.document("alpha")
    for i in range(3):
        write(corpus, f"extra{i}.md", article(f"Extra {i}", f"topic{i}"))
        if i == 1:  # a change and a removal: the shared store retires rows the reader sees
            write(corpus, "alpha.md", article("Alpha summit", "alpaca", extra="Moved on."))
            (corpus / "bravo.md").unlink()
        ingest(root, [corpus])
    assert held.is_dir() and live_generation(root) != held
    # Every part of the held generation still loads: nothing was removed under the reader.
    stored = sum(len(s.ids) for s in reader.segments)
    assert stored - len(reader.deleted) == len(reader) == reader.bm25.num_docs
    assert sum(s.dense.ntotal for s in reader.segments) == stored
    assert sorted(reader.manifest["docs"]) == ["alpha", "bravo", "charlie"]
    assert reader.document("alpha") == alpha
    assert reader.db.execute("SELECT count(*) FROM chunks").fetchone() == (len(reader),)
    after = [(h.chunk.id, h.chunk.text) for h in retriever.search("badger treaty", 5).hits]
    assert after == before  # the same answers from the generation it holds
    live = live_generation(root)
    assert live is not None
    assert set(generations(root)) == {held.name, live.name}  # the ones in between are gone

    reader.close()
    write(corpus, "extra9.md", article("Extra 9", "topic9"))
    ingest(root, [corpus])
    assert not held.exists() and len(generations(root)) == 1


def test_a_reader_opening_while_its_generation_is_collected_reads_current_again(
    fake_index: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, corpus = fake_index
    stale = live_generation(root)
    write(corpus, "delta.md", article("Delta pact", "dolphin"))
    ingest(root, [corpus])  # stale is collected: nobody held it
    assert stale is not None and not stale.exists()
    answers = iter([stale, live_generation(root)])  # CURRENT read just before the switch
    monkeypatch.setattr(qa.index.local, "live_generation", lambda root: next(answers))
    index = LocalIndex.open(root)
    assert "delta" in index.manifest["docs"]


# ----------------------------------------------------------------------------- deleted index


def test_a_reader_that_loses_its_index_says_so_in_one_error(fake_index: tuple[Path, Path]) -> None:
    root, _ = fake_index
    index = LocalIndex.open(root)
    shutil.rmtree(root)
    with pytest.raises(QAError, match=r"was deleted or replaced while in use"):
        index.dense_search(FakeEmbedder(name="fake").embed(["alpaca"])[0], 3)


def test_cli_search_with_the_index_deleted_mid_command(
    fake_index: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.cli import app

    root, _ = fake_index
    config = root.parent / "config.toml"
    config.write_text(
        f'[paths]\nindex = "{root}"\n[embedding]\nmodel = "fake"\n'
        "[chunking]\nmax_tokens = 60\noverlap_tokens = 15\n"
    )
    opening = LocalIndex.open.__func__  # type: ignore[attr-defined]

    def open_then_lose_it(cls: type[LocalIndex], *args: Any, **kwargs: Any) -> LocalIndex:
        index = opening(cls, *args, **kwargs)
        shutil.rmtree(root)  # someone deletes the index while the command runs
        return index

    monkeypatch.setattr(LocalIndex, "open", classmethod(open_then_lose_it))
    result = CliRunner().invoke(app, ["search", "alpaca summit", "--config", str(config)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    # One error (rich wraps it at the terminal's width), no traceback.
    assert result.output.startswith("error: ") and result.output.count("error") == 1
    assert "Traceback" not in result.output
    assert "deleted or replaced while in use" in " ".join(result.output.split())
