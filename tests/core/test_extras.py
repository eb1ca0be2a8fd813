"""A missing optional part is one clear error naming the extra to install, raised where the
part is first needed (the real call sites, with the part's modules hidden)."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from qa.core import extras
from qa.core.config import IndexSettings, MilvusSettings, Settings
from qa.core.types import QAError


def hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name in modules else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(extras.importlib.util, "find_spec", find_spec)


def test_an_installed_extra_passes() -> None:
    extras.require("local", "the local model")  # xllamacpp is in the dev install


def test_a_missing_extra_names_itself_and_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hide(monkeypatch, "xllamacpp")
    with pytest.raises(QAError) as caught:
        extras.require("local", 'llm.client = "local"')
    message = str(caught.value)
    assert "\n" not in message
    assert "'local'" in message and "xllamacpp" in message
    assert "pip install -e '.[local]'" in message and "qa[local]" in message


def test_the_milvus_backend_without_pymilvus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from qa.index import milvus_db

    hide(monkeypatch, "pymilvus")
    settings = replace(
        Settings(),
        index=IndexSettings(backend="milvus", milvus=MilvusSettings(uri=str(tmp_path / "x.db"))),
    )
    with pytest.raises(QAError, match=r"index.backend = \"milvus\" needs the optional 'milvus'"):
        milvus_db.connect(settings)


def test_the_local_client_without_llama_cpp(monkeypatch: pytest.MonkeyPatch) -> None:
    from qa.llm.local import create_local

    hide(monkeypatch, "xllamacpp")
    with pytest.raises(QAError, match=r"llm.client = \"local\" needs the optional 'local'"):
        create_local(Settings())


def test_the_onnx_export_without_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from qa.embedding.onnx import export

    hide(monkeypatch, "torch")
    with pytest.raises(QAError, match=r"needs the optional 'export' packages \(torch missing\)"):
        export(tmp_path / "model", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
