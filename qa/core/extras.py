"""Optional parts of qa are installed as extras (pyproject.toml); using one that is missing is
one line that says which extra to install, not an ImportError deep in a traceback."""

from __future__ import annotations

import importlib.util

from qa.core.types import QAError

# extra -> the modules it brings (checked by name, without importing them: they are heavy)
EXTRAS: dict[str, tuple[str, ...]] = {
    "export": ("torch", "transformers", "sentence_transformers"),
    "milvus": ("pymilvus", "milvus_lite"),
    "local": ("xllamacpp",),
}


def require(extra: str, what: str) -> None:
    """Raise a QAError naming ``extra`` when a module of it is not installed; ``what`` says
    what needed it (``index.backend = "milvus"``)."""
    missing = [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise QAError(
            f"{what} needs the optional '{extra}' packages ({', '.join(missing)} missing): "
            f"pip install -e '.[{extra}]' in the qa checkout (or pip install 'qa[{extra}]')"
        )
