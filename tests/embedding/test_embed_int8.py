"""``embedding.precision = "int8"`` with the real bundled model: the int8 graph is close to fp32
(cosine above the floor measured in qa.embedding.int8) on the corpus's passages and the gold
questions, its checksum is recorded and checked, an index of one precision is refused by the
other with the usual `qa ingest --rebuild` error, `qa status` shows the precision, and a
`qa serve` embedding service at int8 is refused by an fp32 client."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS
from test_embed_onnx import corpus_texts
from typer.testing import CliRunner

import qa.cli
from qa.answering.assistant import Assistant
from qa.cli import app as cli_app
from qa.core.config import EmbeddingServiceSettings, EmbeddingSettings, Settings, load_settings
from qa.core.types import QAError
from qa.embedding import int8 as embed_int8
from qa.embedding.base import bundled_model_path, identity_precision
from qa.embedding.int8 import INT8_COSINE, ensure_int8, int8_path
from qa.embedding.onnx import OnnxEmbedder, ensure_export
from qa.embedding.remote import RemoteEmbedder
from qa.llm.fake import FakeLLM
from qa.serving.app import create_app, serve_in_thread

pytestmark = pytest.mark.slow  # the real embedding model
HEADLINE = "What did Khrenin say about India?"


@pytest.fixture(scope="module")
def int8() -> OnnxEmbedder:
    return OnnxEmbedder(replace(EmbeddingSettings(), precision="int8"))


@pytest.fixture(scope="module")
def fp32() -> OnnxEmbedder:
    return OnnxEmbedder(EmbeddingSettings())


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("QA_") and name != "QA_CACHE_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setattr(qa.cli.err, "width", 1000)


def test_int8_vectors_are_close_to_fp32(
    corpus_index: Path, int8: OnnxEmbedder, fp32: OnnxEmbedder
) -> None:
    texts = corpus_texts(corpus_index)
    a, b = int8.embed(texts), fp32.embed(texts)
    assert int8.graph.name == f"model.int8-{embed_int8.RECIPE}.onnx"
    assert int8.graph.stat().st_size < 30_000_000  # fp32: 90 MB
    cosines = (a * b).sum(axis=1)
    assert cosines.min() >= INT8_COSINE, texts[int(cosines.argmin())]
    assert cosines.mean() >= 0.99
    assert cosines.max() < 0.99999  # really other weights, not the fp32 graph again
    record = json.loads(int8.graph.with_name(int8.graph.name + ".json").read_text())
    assert record["sha256"] == embed_int8._sha256(int8.graph)
    assert record["size"] == int8.graph.stat().st_size
    # Its own identity: the same weights' fingerprint, marked int8.
    assert int8.identity == f"{fp32.identity}+int8"
    assert identity_precision(int8.identity) == "int8"
    assert identity_precision(fp32.identity) == "fp32"
    assert identity_precision("openai:text-embedding-3-small") == ""


def test_a_changed_int8_file_is_refused_and_a_touched_one_is_not(tmp_path: Path) -> None:
    model = Path(bundled_model_path())
    (tmp_path / "model.onnx").symlink_to(ensure_export(model))
    made = ensure_int8(tmp_path / "model.onnx", model)
    assert made == int8_path(tmp_path / "model.onnx")
    os.utime(made, ns=(1, 1))  # same bytes, another time: hashed once, accepted, re-stamped
    assert ensure_int8(tmp_path / "model.onnx", model) == made
    assert json.loads(made.with_name(made.name + ".json").read_text())["mtime_ns"] == 1
    data = bytearray(made.read_bytes())
    data[len(data) // 2] ^= 0xFF
    made.write_bytes(bytes(data))
    with pytest.raises(QAError, match="changed since it was made"):
        ensure_int8(tmp_path / "model.onnx", model)


def test_an_int8_graph_below_the_floor_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Path(bundled_model_path())
    (tmp_path / "model.onnx").symlink_to(ensure_export(model))
    monkeypatch.setattr(embed_int8, "INT8_COSINE", 1.5)  # no graph reaches it
    with pytest.raises(QAError, match=r'differs too much from fp32.*precision = "fp32"'):
        ensure_int8(tmp_path / "model.onnx", model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # nothing kept


def run(*args: Any, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli_app, [str(a) for a in args], env=env)


def test_an_index_of_one_precision_is_refused_by_the_other(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[paths]\nindex = "idx"\n\n[embedding]\nprecision = "int8"\n')
    built = run("ingest", CORPUS, "--config", cfg, "--json")
    assert built.exit_code == 0, built.output
    status = json.loads(run("status", "--config", cfg, "--json").stdout)
    assert status["build"]["precision"] == "int8"
    assert status["build"]["model_fingerprint"].endswith("+int8")
    shown = run("status", "--config", cfg)
    assert "384 dims, int8" in shown.stdout
    asked = run("ask", HEADLINE, "--config", cfg, "--json")
    assert asked.exit_code == 0 and json.loads(asked.stdout)["citations"], asked.output

    fp32 = {"QA_EMBEDDING_PRECISION": "fp32"}
    for args in (["ask", HEADLINE], ["search", HEADLINE], ["ingest", CORPUS]):
        result = run(*args, "--config", cfg, env=fp32)
        assert result.exit_code == 1, result.output
        message = " ".join(result.stderr.split())
        assert "embedding precision: index has int8, settings say fp32" in message
        assert "qa ingest --rebuild" in message
        assert "model weights" not in message  # said once, as the precision
        assert "Traceback" not in result.output
    rebuilt = run("ingest", CORPUS, "--rebuild", "--config", cfg, env=fp32)
    assert rebuilt.exit_code == 0, rebuilt.output
    status = json.loads(run("status", "--config", cfg, "--json", env=fp32).stdout)
    assert status["build"]["precision"] == "fp32"
    assert "+" not in status["build"]["model_fingerprint"]
    result = run("ask", HEADLINE, "--config", cfg)  # the file says int8
    assert result.exit_code == 1
    assert "index has fp32, settings say int8" in " ".join(result.stderr.split())


def test_an_index_built_before_precision_existed_is_fp32(
    corpus_index: Path, int8: OnnxEmbedder
) -> None:
    settings = load_settings(overrides={"paths.index": str(corpus_index)}, env={})
    manifest = json.loads((next(corpus_index.glob("gen-*")) / "manifest.json").read_text())
    del manifest["build"]["precision"]  # what an older `qa` wrote
    from qa.index.build import BuildSettings

    assert BuildSettings(**manifest["build"]).precision == "fp32"
    asker = Assistant(replace(settings, embedding=replace(settings.embedding, precision="int8")))
    with pytest.raises(QAError, match=r"index has fp32, settings say int8.*--rebuild"):
        asker.retrieve(HEADLINE)


def test_a_service_at_int8_is_refused_by_an_fp32_client(tmp_path: Path, int8: OnnxEmbedder) -> None:
    base = Settings()
    settings = replace(base, paths=replace(base.paths, index=tmp_path / "srv"))
    app = create_app(Assistant(settings, embedder=int8, llm=FakeLLM()))
    with serve_in_thread(app) as url:
        service = EmbeddingServiceSettings(base_urls=(f"{url}/v1",))
        client = replace(base.embedding, backend="openai", openai=service)
        with pytest.raises(QAError, match=r"runs the model at int8 precision.*here is fp32"):
            RemoteEmbedder(client).embed([HEADLINE])
        same = RemoteEmbedder(replace(client, precision="int8"))
        got = same.embed([HEADLINE])
        assert same.identity == int8.identity
        assert float((got * int8.embed([HEADLINE])).sum()) >= 0.9999


def test_precision_settings_are_checked() -> None:
    with pytest.raises(QAError, match=r"embedding\.precision = 'fp16' is not one of: fp32, int8"):
        load_settings(overrides={"embedding.precision": "fp16"}, env={})
    with pytest.raises(QAError, match=r"precision = 'int8'.*needs embedding.runtime = 'onnx'"):
        load_settings(overrides={"embedding.precision": "int8", "embedding.runtime": "torch"})
