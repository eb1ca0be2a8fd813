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
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from qa.core.network_settings import FetchSettings, ServerSettings
from qa.core.settings import (
    AnswerSettings,
    ChunkSettings,
    EmbeddingServiceSettings,
    EmbeddingSettings,
    IndexSettings,
    IngestSettings,
    LimitSettings,
    LLMSettings,
    LocalSettings,
    MilvusSettings,
    OpenAISettings,
    PathSettings,
    RetrievalSettings,
    Settings,
)
from qa.core.types import QAError

# The sections are declared in qa/core/settings.py; they are imported from here too.
__all__ = [
    "ALLOWED",
    "AnswerSettings",
    "ChunkSettings",
    "EmbeddingServiceSettings",
    "EmbeddingSettings",
    "FetchSettings",
    "IndexSettings",
    "IngestSettings",
    "LLMSettings",
    "LimitSettings",
    "LocalSettings",
    "MilvusSettings",
    "OpenAISettings",
    "PathSettings",
    "RetrievalSettings",
    "ServerSettings",
    "Settings",
    "env_names",
    "find_config",
    "load_settings",
    "no_config_note",
    "parse_networks",
    "ranges",
    "set_value",
]

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
