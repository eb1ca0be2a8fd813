"""The ONNX embedder gives the vectors of sentence-transformers, so either runtime searches the
other's index: checked on the bundled corpus's passages and sentences and on the gold questions,
at the 256 word-piece cut, in token counts, and in retrieval over an index built by torch."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from qa.answering.assistant import Assistant
from qa.core.config import EmbeddingServiceSettings, EmbeddingSettings, load_settings
from qa.core.types import Hit, QAError
from qa.embedding import create_embedder, load_in_background
from qa.embedding import onnx as embed_onnx
from qa.embedding.base import bundled_model_path
from qa.embedding.model_io import read_model_config
from qa.embedding.onnx import (
    OnnxEmbedder,
    batches,
    ensure_export,
    ensure_optimized,
    fingerprint,
)
from qa.embedding.sentence_transformer import SentenceTransformerEmbedder
from qa.index import LocalIndex
from qa.ingest.chunk import embed_text
from qa.text.evidence import split_sentences

ROOT = Path(__file__).resolve().parents[2]
MIN_COSINE = 0.9999


@pytest.fixture(scope="module")
def onnx_embedder() -> OnnxEmbedder:
    return OnnxEmbedder(EmbeddingSettings())


def corpus_texts(corpus_index: Path) -> list[str]:
    """What the index embeds (title + chunk), every sentence of every chunk, the gold questions."""
    index = LocalIndex.open(corpus_index)
    chunks = list(index.iter_chunks())
    assert len(chunks) > 20
    passages = [embed_text(d.title, c.text, True) for c, d in chunks]
    hits = [Hit(c, d, 0.0, i + 1) for i, (c, d) in enumerate(chunks)]
    sentences = [s.text for s in split_sentences(hits)]
    gold = ROOT / "eval" / "gold.jsonl"
    questions = [json.loads(line)["question"] for line in gold.read_text().splitlines() if line]
    assert len(sentences) > 100 and len(questions) > 20
    return passages + sentences + questions


@pytest.mark.slow
def test_same_vectors_as_sentence_transformers(
    corpus_index: Path, real_embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    texts = corpus_texts(corpus_index)
    torch_vectors = real_embedder.embed(texts)
    onnx_vectors = onnx_embedder.embed(texts)
    assert onnx_embedder.graph.name.startswith("model.opt-ort")  # the graph optimised once,
    assert onnx_embedder.graph.with_suffix(".data").is_file()  # its weights mapped
    assert onnx_vectors.shape == torch_vectors.shape == (len(texts), 384)
    assert onnx_vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)
    cosines = (onnx_vectors * torch_vectors).sum(axis=1)
    assert cosines.min() >= MIN_COSINE, texts[int(cosines.argmin())]
    # Order of the inputs does not matter (batches are formed by length).
    again = onnx_embedder.embed(texts[::-1])[::-1]
    assert ((again * onnx_vectors).sum(axis=1)).min() >= 0.999999


@pytest.mark.slow
def test_cut_at_256_word_pieces_like_sentence_transformers(
    real_embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    article = (ROOT / "corpus").glob("0*.md")
    long_text = " ".join(p.read_text(encoding="utf-8") for p in sorted(article))
    assert onnx_embedder.count_tokens([long_text])[0] > 1000
    tail_changed = long_text + " An entirely different ending about football and weather."
    onnx = onnx_embedder.embed([long_text, tail_changed])
    torch = real_embedder.embed([long_text, tail_changed])
    assert (onnx * torch).sum(axis=1).min() >= MIN_COSINE
    # Words past the cut change nothing, in either runtime.
    assert float(onnx[0] @ onnx[1]) >= 0.999999
    assert onnx_embedder.max_tokens == real_embedder.max_tokens == 256


@pytest.mark.slow
def test_token_counts_match_the_models_tokenizer(
    corpus_index: Path, real_embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    texts = [*corpus_texts(corpus_index)[:200], "", "naïve café – “quotes” 12,000 km²", "x" * 5000]
    assert onnx_embedder.count_tokens(texts) == real_embedder.count_tokens(texts)


@pytest.mark.slow
def test_same_identity_and_same_hits_on_an_index_built_by_torch(
    corpus_index: Path, real_embedder: SentenceTransformerEmbedder, onnx_embedder: OnnxEmbedder
) -> None:
    settings = load_settings(overrides={"paths.index": str(corpus_index)}, env={})
    assert settings.embedding.runtime == "onnx"
    assert isinstance(create_embedder(settings.embedding), OnnxEmbedder)
    onnx_embedder.embed(["load"])
    assert (onnx_embedder.name, onnx_embedder.dim) == (real_embedder.name, real_embedder.dim)
    by_torch = Assistant(settings, embedder=real_embedder)
    by_onnx = Assistant(settings, embedder=onnx_embedder)  # refused if name or dim differed
    gold = (ROOT / "eval" / "gold.jsonl").read_text().splitlines()
    for line in gold[:15]:
        question = json.loads(line)["question"]
        a = by_torch.retrieve(question).hits
        b = by_onnx.retrieve(question).hits
        assert [h.chunk.id for h in a] == [h.chunk.id for h in b], question
        for x, y in zip(a, b, strict=True):
            assert x.dense_score == pytest.approx(y.dense_score, abs=1e-4)


def test_empty_input_gives_no_rows(onnx_embedder: OnnxEmbedder) -> None:
    assert onnx_embedder.embed([]).shape == (0, 384)
    assert onnx_embedder.count_tokens([]) == []


def test_batches_bound_padding_and_size() -> None:
    lengths = [200, 10, 12, 180, 11, 9, 13, 150]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    cut = list(batches(order, lengths, size=3))
    assert sorted(i for b in cut for i in b) == list(range(len(lengths)))
    for b in cut:
        assert len(b) <= 3
        assert len(b) == 1 or len(b) * lengths[b[0]] <= embed_onnx.TOKEN_BUDGET


# ---------------------------------------------------------------- the export and its cache


def _model_copy(tmp_path: Path) -> Path:
    """A model folder whose small files are copies (so they can be changed) and whose weights
    are a link to the bundled ones."""
    source = Path(bundled_model_path())
    target = tmp_path / "model"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors"))
    (target / "model.safetensors").symlink_to(source / "model.safetensors")
    return target


def test_fingerprint_changes_when_a_model_file_changes(tmp_path: Path) -> None:
    model = _model_copy(tmp_path)
    before = fingerprint(model)
    assert fingerprint(model) == before
    config = model / "1_Pooling" / "config.json"
    config.write_text(config.read_text() + " ")
    assert fingerprint(model) != before


def test_a_cached_export_is_reused_and_a_stale_one_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    model = _model_copy(tmp_path)
    exported: list[Path] = []

    def fake_export(model_dir: Path, target: Path) -> None:
        exported.append(target)
        target.write_bytes(b"onnx")

    monkeypatch.setattr(embed_onnx, "export", fake_export)
    first = ensure_export(model)
    assert ensure_export(model) == first and len(exported) == 1
    tokenizer = model / "tokenizer.json"
    os.utime(tokenizer, ns=(tokenizer.stat().st_atime_ns, tokenizer.stat().st_mtime_ns + 10**9))
    second = ensure_export(model)
    assert second != first and len(exported) == 2


def test_only_mean_pooling_is_accepted(tmp_path: Path) -> None:
    model = _model_copy(tmp_path)
    assert read_model_config(model) == (384, 256)
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    config["pooling_mode_mean_tokens"] = False
    config["pooling_mode_cls_token"] = True
    pooling.write_text(json.dumps(config))
    with pytest.raises(QAError, match="mean pooling only"):
        read_model_config(model)


@pytest.mark.slow
def test_the_optimised_graph_gives_the_plain_graphs_vectors(
    corpus_index: Path, onnx_embedder: OnnxEmbedder
) -> None:
    import onnxruntime as ort

    texts = corpus_texts(corpus_index)
    optimised = onnx_embedder.embed(texts)
    plain = OnnxEmbedder(EmbeddingSettings())
    plain._load()
    # The same embedder on the export as it was before: optimised by ONNX Runtime at load.
    plain._session = ort.InferenceSession(
        str(ensure_export(Path(bundled_model_path()))), providers=["CPUExecutionProvider"]
    )
    assert onnx_embedder.graph != ensure_export(Path(bundled_model_path()))
    assert (optimised * plain.embed(texts)).sum(axis=1).min() >= 0.99999


@pytest.mark.slow
def test_an_optimised_graph_that_differs_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Path(bundled_model_path())
    (tmp_path / "model.onnx").symlink_to(ensure_export(model))
    # No graph can reach a cosine above 1 with the plain one: the check must refuse it.
    monkeypatch.setattr(embed_onnx, "VERIFY_COSINE", 1.5)
    assert ensure_optimized(tmp_path / "model.onnx", model) == tmp_path / "model.onnx"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # nothing kept
    monkeypatch.setattr(embed_onnx, "VERIFY_COSINE", 0.9999)
    built = ensure_optimized(tmp_path / "model.onnx", model)
    assert built.name.startswith("model.opt-ort") and built.stat().st_size < 1_000_000
    assert built.with_suffix(".data").stat().st_size > 80_000_000  # the weights, mapped
    assert ensure_optimized(tmp_path / "model.onnx", model) == built  # built once


@pytest.mark.slow
def test_threads_are_the_free_cores_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """0 (the default) asks qa.core.cores when the model loads; a set value is used as it is."""
    monkeypatch.setattr(embed_onnx, "free_cores", lambda sample_s: 2)
    free = OnnxEmbedder(EmbeddingSettings())
    free._load()
    assert free._session.get_session_options().intra_op_num_threads == 2
    monkeypatch.setattr(embed_onnx, "free_cores", lambda sample_s: pytest.fail("asked"))
    fixed = OnnxEmbedder(EmbeddingSettings(threads=1))
    fixed._load()
    assert fixed._session.get_session_options().intra_op_num_threads == 1
    text = ["What did Khrenin say about India?"]
    assert float(free.embed(text)[0] @ fixed.embed(text)[0]) >= 0.999999


def _loaders() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "qa-embedder-load"]


@pytest.mark.slow
def test_an_embedder_loaded_in_the_background_is_loaded_once_and_the_same() -> None:
    for thread in _loaders():
        thread.join()
    embedder = load_in_background(EmbeddingSettings())
    assert isinstance(embedder, OnnxEmbedder)
    started = _loaders()
    assert len(started) == 1  # the model loads in that thread...
    started[0].join()
    session = embedder._session
    assert session is not None
    texts = ["What did Khrenin say about India?", "Rajnath Singh met Belousov in Qingdao."]
    vectors = embedder.embed(texts)
    assert embedder._session is session  # ...and is the one used, not loaded again
    expected = OnnxEmbedder(EmbeddingSettings()).embed(texts)
    assert (vectors * expected).sum(axis=1).min() >= 0.999999


def test_background_loading_raises_where_the_embedder_is_used(tmp_path: Path) -> None:
    embedder = load_in_background(EmbeddingSettings(path=str(tmp_path / "nowhere")))
    for thread in _loaders():
        thread.join()  # the failed load ended quietly
    with pytest.raises(QAError, match="embedding model folder not found"):
        embedder.embed(["x"])


def test_only_a_model_run_here_loads_in_the_background() -> None:
    for thread in _loaders():
        thread.join()
    assert load_in_background(EmbeddingSettings(model="fake")).name == "fake"
    service = EmbeddingServiceSettings(base_urls=("http://127.0.0.1:9/v1",))
    remote = load_in_background(EmbeddingSettings(backend="openai", openai=service))
    assert type(remote).__name__ == "RemoteEmbedder"
    assert _loaders() == []  # a service's first call is a request, made when needed


def test_a_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    embedder = OnnxEmbedder(EmbeddingSettings(path=str(tmp_path / "nowhere")))
    with pytest.raises(QAError, match="embedding model folder not found"):
        embedder.embed(["x"])


@pytest.mark.slow
def test_real_export_reproduces_sentence_transformers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, real_embedder: SentenceTransformerEmbedder
) -> None:
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    embedder = OnnxEmbedder(EmbeddingSettings())
    texts = ["What did Khrenin say about India?", "Rajnath Singh met Belousov in Qingdao."]
    vectors = embedder.embed(texts)
    files = list((tmp_path / "cache" / "onnx").glob("*/model.onnx"))
    assert len(files) == 1 and files[0].stat().st_size > 80_000_000
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    assert (vectors * real_embedder.embed(texts)).sum(axis=1).min() >= MIN_COSINE
