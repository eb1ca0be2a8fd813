"""How a setting is declared: its default, its range or allowed form, and what it does. The
settings reference of the docs is generated from these (docs/gen_reference.py), so each field
says what it does where it is declared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import TypeVar

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
