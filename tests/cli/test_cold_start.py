"""`qa ask`, `qa search` and `qa status` with the extractive client never import torch,
sentence-transformers or transformers (nor bm25s and scipy, nor pymilvus on the local backend):
a question is answered by ONNX Runtime on the exported model, which is what makes a cold
`qa ask` take about a second."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qa.answering.assistant import Assistant
from qa.core.config import EmbeddingSettings, load_settings
from qa.embedding.onnx import OnnxEmbedder

ROOT = Path(__file__).resolve().parents[2]
HEAVY = (
    "torch",
    "sentence_transformers",
    "transformers",
    "bm25s",
    "scipy",
    "sklearn",
    "pymilvus",
    "milvus_lite",
)

# Modules a read-only question never needs (each costs start-up time): the ingest side of the
# index, the answering code for a search, spaCy's command line.
WRITER = ("qa.index.writer", "qa.index.generation")
ANSWERING = ("qa.answering.check", "qa.llm.extractive", "qa.reading.short_answer", "spacy")

# Runs the CLI's own entry point, then reports which modules it imported.
RUN_CLI = """
import json, sys
from qa.cli import main
sys.argv = ["qa", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exit:
    code = exit.code or 0
else:
    code = 0
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
sys.exit(code)
"""


def run_cli(args: list[str], index: Path) -> tuple[dict[str, object], list[str]]:
    """The JSON the command printed, and the heavy modules it imported."""
    result, modules = run_cli_modules(args, index)
    return result, sorted(m for m in modules if m.split(".")[0] in HEAVY)


def run_cli_modules(args: list[str], index: Path) -> tuple[dict[str, object], set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_")}
    env |= {"PYTHONPATH": str(ROOT), "QA_PATHS_INDEX": str(index), "QA_LLM_CLIENT": "extractive"}
    if "QA_CACHE_DIR" in os.environ:
        env["QA_CACHE_DIR"] = os.environ["QA_CACHE_DIR"]
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLI, json.dumps([*args, "--json"])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    modules = json.loads(done.stderr.rsplit("MODULES ", 1)[1])
    return json.loads(done.stdout), set(modules)


@pytest.fixture(scope="module")
def exported() -> None:
    # The export (which needs torch) happens at ingest or first use; make sure it is done, so
    # the subprocesses below show the question path itself.
    OnnxEmbedder(EmbeddingSettings()).embed(["export now"])


@pytest.mark.slow
def test_ask_imports_no_torch(corpus_index: Path, exported: None) -> None:
    answer, heavy = run_cli(["ask", "What did Khrenin say about India?"], corpus_index)
    assert answer["answered"] is True and "India" in str(answer["answer"])
    assert heavy == []


@pytest.mark.slow
def test_search_imports_no_torch(corpus_index: Path, exported: None) -> None:
    result, heavy = run_cli(["search", "Belarus defence minister"], corpus_index)
    hits = result["hits"]
    assert isinstance(hits, list) and hits and hits[0]["dense_score"] > 0.3
    assert heavy == []


@pytest.mark.slow
def test_status_imports_no_torch(corpus_index: Path) -> None:
    status, heavy = run_cli(["status"], corpus_index)
    assert status["chunks"] and status["build"]["embedding_model"].endswith("all-MiniLM-L6-v2")
    assert heavy == []


@pytest.mark.slow
def test_a_question_loads_only_what_it_reads(corpus_index: Path, exported: None) -> None:
    result, modules = run_cli_modules(["search", "Belarus defence minister"], corpus_index)
    assert result["hits"]
    assert not modules.intersection(WRITER + ANSWERING)
    answer, modules = run_cli_modules(["ask", "Who met Khrenin in Qingdao?"], corpus_index)
    assert answer["answered"] is True and answer["short_answer"]  # spaCy was used...
    assert "spacy" not in modules  # ...in a process of its own
    assert not modules.intersection(WRITER)
    assert not modules.intersection({"qa.llm.openai", "qa.llm.local"})  # nor other clients


@pytest.mark.slow
def test_a_cold_ask_loading_in_the_background_gives_the_same_answer(
    corpus_index: Path, exported: None
) -> None:
    # The CLI loads the embedder and spaCy in threads of their own; an Assistant here loads
    # them in turn, when first used.
    settings = load_settings(
        overrides={"paths.index": str(corpus_index), "llm.client": "extractive"}, env={}
    )
    assistant = Assistant(settings)
    for question in (
        "What did Khrenin say about India?",
        "Who met Khrenin in Qingdao?",
        "Which country's defence minister met Rajnath Singh?",
    ):
        cold, _ = run_cli_modules(["ask", question], corpus_index)
        expected = assistant.ask(question).to_dict()
        for key in ("answer", "answered", "short_answer", "short_answer_citation", "citations"):
            assert cold[key] == expected[key], (question, key)


@pytest.mark.slow
def test_a_one_question_process_embeds_on_one_thread_unless_told(
    corpus_index: Path, exported: None
) -> None:
    """Finding the free cores watches the machine for 0.1 s: more than a second thread saves
    on one question. A set embedding.threads is still obeyed."""
    from qa.cli.ask import loading_assistant

    for threads, expected in ((0, 1), (2, 2)):
        settings = load_settings(
            overrides={"paths.index": str(corpus_index), "embedding.threads": threads}, env={}
        )
        embedder = loading_assistant(settings, answers=False).embedder
        assert isinstance(embedder, OnnxEmbedder) and embedder.threads == expected
        embedder.dim  # noqa: B018 - waits for the background load
        assert embedder._session.get_session_options().intra_op_num_threads == expected


def test_the_server_module_loads_neither_the_fetcher_nor_the_index_writer() -> None:
    # `qa serve` is ready sooner for each module it does not import; removing an article
    # (which remembers its URL with qa.web.pages) and ingesting import theirs when used.
    code = "import json, sys, qa.serving.app; print(json.dumps(sorted(sys.modules)))"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout))
    assert "qa.serving.app" in modules
    assert not modules.intersection({"qa.web.pages", "qa.web.fetch", "yaml", *WRITER})
