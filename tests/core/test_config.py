"""Tests for qa.core.config: precedence, environment variables, paths, and clear errors."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.core.config import (
    Settings,
    _table,
    env_names,
    find_config,
    load_settings,
    no_config_note,
    ranges,
    set_value,
)
from qa.core.types import QAError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_qa_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The developer's own QA_* variables must not leak into these tests."""
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)
    yield


def write(folder: Path, text: str, name: str = "config.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- precedence


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./config.toml here
    settings = load_settings(env={})
    assert settings == Settings(root=Path.cwd())
    assert settings.retrieval.k == 5
    assert settings.embedding.model == "sentence-transformers/all-MiniLM-L6-v2"
    assert settings.chunking.max_tokens == 200
    assert settings.llm.openai.model == "gpt-4o-mini"
    assert settings.root == Path.cwd()


def test_bundled_config_file_loads() -> None:
    settings = load_settings(ROOT / "config.toml", env={})
    assert settings.root == ROOT
    assert settings.corpus_dir == ROOT / "corpus"
    assert settings.embedding.model == "sentence-transformers/all-MiniLM-L6-v2"


def test_precedence_defaults_file_env_overrides(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        """
        [retrieval]
        k = 7
        candidates = 30
        fusion = "dense"
        [llm]
        temperature = 0.5
        """,
    )
    # File over defaults; defaults where the file is silent.
    s = load_settings(config, env={})
    assert (s.retrieval.k, s.retrieval.candidates, s.retrieval.fusion) == (7, 30, "dense")
    assert s.retrieval.rrf_k == 60
    assert s.llm.temperature == 0.5

    # Environment over the file.
    env = {"QA_RETRIEVAL_K": "8", "QA_LLM_TEMPERATURE": "0.25"}
    s = load_settings(config, env=env)
    assert (s.retrieval.k, s.retrieval.candidates, s.llm.temperature) == (8, 30, 0.25)

    # Explicit overrides over the environment; None means "not given".
    s = load_settings(config, {"retrieval.k": 9, "retrieval.candidates": None}, env=env)
    assert (s.retrieval.k, s.retrieval.candidates) == (9, 30)


def test_process_environment_is_read_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, "[retrieval]\nk = 7\n")
    monkeypatch.setenv("QA_RETRIEVAL_K", "11")
    assert load_settings(config).retrieval.k == 11


def test_nested_env_variable_and_bool_values(tmp_path: Path) -> None:
    config = write(tmp_path, '[llm]\nclient = "openai"\n[llm.openai]\nmodel = "from-file"\n')
    s = load_settings(config, env={})
    assert s.llm.openai.model == "from-file"
    s = load_settings(
        config,
        env={
            "QA_LLM_OPENAI_MODEL": "from-env",
            "QA_LLM_OPENAI_MAX_RETRIES": "2",
            "QA_CHUNKING_EMBED_TITLE": "false",
        },
    )
    assert s.llm.openai.model == "from-env"
    assert s.llm.openai.max_retries == 2
    assert s.llm.client == "openai"  # QA_LLM_OPENAI_* does not touch llm.client
    assert s.chunking.embed_title is False


def test_config_file_found_through_qa_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path / "elsewhere", "[retrieval]\nk = 3\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QA_CONFIG", str(config))
    assert load_settings(env={}).retrieval.k == 3


def test_set_value_by_dotted_name() -> None:
    s = set_value(Settings(), "llm.openai.timeout", "12.5")
    assert s.llm.openai.timeout == 12.5
    with pytest.raises(QAError, match=r"unknown setting 'llm\.nope'"):
        set_value(Settings(), "llm.nope", 1)


# ----------------------------------------------------------------------------- paths


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project"
    absolute = tmp_path / "abs-index"
    config = write(folder, f'[paths]\ncorpus = "articles"\nindex = "{absolute}"\n')
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_settings(config, env={})
    assert s.root == folder.resolve()
    assert s.corpus_dir == folder.resolve() / "articles"
    assert s.index_dir == absolute  # absolute paths are kept
    assert s.resolve(Path("runs")) == folder.resolve() / "runs"

    # A relative config path, and a relative index given on the command line / environment.
    monkeypatch.chdir(tmp_path)
    s = load_settings(Path("project/config.toml"), env={"QA_PATHS_INDEX": "here/idx"})
    assert s.index_dir == folder.resolve() / "here" / "idx"


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[retrieval]\nkk = 3\n", "unknown setting 'retrieval.kk' in config file"),
        ("[nosuch]\nx = 1\n", "unknown setting 'nosuch' in config file"),
        ("root = '/'\n", "unknown setting 'root'"),
        ("retrieval = 3\n", "setting 'retrieval' must be a table"),
        ('[retrieval]\nk = "many"\n', "setting retrieval.k = 'many' is not a valid int"),
        ("[retrieval]\nk = 2.5\n", "retrieval.k = 2.5 is not a valid int"),
        ("[retrieval]\nk = true\n", "retrieval.k = True is not a valid int"),
        ("[retrieval]\nk = [1]\n", "retrieval.k = [1] is not a valid int"),
        ('[retrieval]\nmin_dense_score = "high"\n', "min_dense_score = 'high' is not a valid"),
        ('[chunking]\nembed_title = "maybe"\n', "chunking.embed_title = 'maybe'"),
        ("[chunking]\nembed_title = 1\n", "chunking.embed_title = 1 is not a valid bool"),
        ("[retrieval\nk = 3\n", "is not valid TOML"),
        ("k = = 3\n", "is not valid TOML"),
    ],
)
def test_bad_config_files_raise_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(QAError) as info:
        load_settings(config, env={})
    assert message in str(info.value)


def test_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(b"[retrieval]\nk = 3 # \xff\xfe\n")
    with pytest.raises(QAError, match="not valid TOML"):
        load_settings(config, env={})


def test_integral_float_is_accepted_for_an_int(tmp_path: Path) -> None:
    config = write(tmp_path, "[retrieval]\nk = 4.0\ncandidates = 20\nmin_dense_score = 0\n")
    s = load_settings(config, env={})
    assert s.retrieval.k == 4 and isinstance(s.retrieval.k, int)
    assert s.retrieval.min_dense_score == 0.0 and isinstance(s.retrieval.min_dense_score, float)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(QAError, match="config file not found"):
        load_settings(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QA_RETRIEVAL_K": "eight"}, "setting QA_RETRIEVAL_K = 'eight' is not a valid int"),
        ({"QA_CHUNKING_EMBED_TITLE": "perhaps"}, "QA_CHUNKING_EMBED_TITLE = 'perhaps'"),
        ({"QA_LLM_OPENAI_TIMEOUT": "soon"}, "QA_LLM_OPENAI_TIMEOUT = 'soon' is not a valid float"),
    ],
)
def test_bad_environment_values(tmp_path: Path, env: dict[str, str], message: str) -> None:
    config = write(tmp_path, "")
    with pytest.raises(QAError) as info:
        load_settings(config, env=env)
    assert message in str(info.value)


def test_bad_override_values(tmp_path: Path) -> None:
    config = write(tmp_path, "")
    with pytest.raises(QAError, match=r"retrieval\.k = 'x' is not a valid int"):
        load_settings(config, {"retrieval.k": "x"}, env={})
    with pytest.raises(QAError, match=r"unknown setting 'retrieval\.kay'"):
        load_settings(config, {"retrieval.kay": 1}, env={})


@pytest.mark.parametrize(("key", "value"), [("retrieval.fusion", "foo"), ("index.kind", "lsh")])
def test_enumerated_settings_reject_unknown_names(key: str, value: str) -> None:
    with pytest.raises(QAError, match=f"{key} = '{value}' is not one of"):
        load_settings(overrides={key: value}, env={})


# ----------------------------------------------------------------------------- QA_* variables


def test_unknown_environment_variable_fails_like_an_unknown_file_key(tmp_path: Path) -> None:
    config = write(tmp_path, "")
    with pytest.raises(QAError) as info:
        load_settings(config, env={"QA_INDEX_BACKNED": "flat"})
    message = str(info.value)
    assert "unknown environment variable QA_INDEX_BACKNED" in message
    assert "did you mean QA_INDEX_BACKEND?" in message  # the typo of a real setting
    # Variables that are not settings, and other programs' variables, are left alone.
    env = {"QA_API_KEY": "k", "QA_CONFIG": str(config), "QAX": "1", "PATH": "/bin"}
    assert load_settings(config, env=env) == load_settings(config, env={})


def test_a_typo_in_the_file_gets_the_same_hint_as_in_the_environment(tmp_path: Path) -> None:
    for text, hint in (
        ("[retrieval]\nrecency_wieght = 0.3\n", "did you mean retrieval.recency_weight?"),
        ("[retreival]\nk = 3\n", "did you mean retrieval?"),
        ("[llm.openai]\nbase_ulr = 'http://x'\n", "did you mean llm.openai.base_url?"),
    ):
        with pytest.raises(QAError) as info:
            load_settings(write(tmp_path, text), env={})
        assert str(info.value).endswith(f"in config file; {hint}"), str(info.value)
    with pytest.raises(QAError) as info:
        load_settings(write(tmp_path, "[retrieval]\nqqqqqqqq = 1\n"), env={})
    assert str(info.value) == "unknown setting 'retrieval.qqqqqqqq' in config file"


def test_config_toml_is_found_in_the_folder_or_its_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QA_CONFIG", raising=False)
    project = tmp_path / "project"
    deep = project / "corpus" / "web"
    deep.mkdir(parents=True)
    write(project, '[paths]\nindex = "idx"\n')
    assert find_config(start=deep) == project / "config.toml"
    assert find_config(start=project) == project / "config.toml"
    assert find_config(start=tmp_path) is None  # no parent of tmp_path holds one
    monkeypatch.chdir(deep)
    settings = load_settings(env={})
    assert settings.index_dir == (project / "idx").resolve()  # from the file's folder
    assert no_config_note(tmp_path) == (
        f"no config.toml in {tmp_path.resolve()} or its parents: using the defaults here "
        "(pass --config FILE or set QA_CONFIG)"
    )
    other = write(tmp_path, "", name="other.toml")
    monkeypatch.setenv("QA_CONFIG", str(other))
    assert find_config(start=deep) == other  # QA_CONFIG wins over the search


def test_every_setting_has_a_known_environment_name() -> None:
    names = env_names(Settings())
    assert "QA_LLM_OPENAI_BASE_URL" in names and "QA_SERVER_ALLOWED_HOSTS" in names
    assert "QA_ROOT" not in names
    env = {name: "1" for name in ("QA_RETRIEVAL_K", "QA_SERVER_MAX_CONNECTIONS")}
    s = load_settings(overrides={}, env=env)
    assert (s.retrieval.k, s.server.max_connections) == (1, 1)


def test_list_settings_from_file_and_environment(tmp_path: Path) -> None:
    config = write(tmp_path, '[server]\nallowed_hosts = ["qa.lan", "box.local"]\n')
    assert load_settings(config, env={}).server.allowed_hosts == ("qa.lan", "box.local")
    env = {"QA_SERVER_CORS_ORIGINS": "http://a.example, http://b.example"}
    s = load_settings(config, env=env)
    assert s.server.cors_origins == ("http://a.example", "http://b.example")
    bad = write(tmp_path / "bad", "[server]\nallowed_hosts = [1]\n")
    with pytest.raises(QAError, match=r"server\.allowed_hosts = \[1\] is not a valid tuple"):
        load_settings(bad, env={})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("QA_RETRIEVAL_K", "0"),
        ("QA_RETRIEVAL_RERANK_DEPTH", "-3"),
        ("QA_RETRIEVAL_SENTENCE_WEIGHT", "-2"),
        ("QA_RETRIEVAL_RECENCY_WEIGHT", "5"),
        ("QA_RETRIEVAL_RECENCY_HALF_LIFE_DAYS", "0"),
    ],
)
def test_a_retrieval_number_out_of_range_is_refused_by_name(name: str, value: str) -> None:
    setting = name.removeprefix("QA_RETRIEVAL_").lower()
    with pytest.raises(QAError, match=rf"retrieval\.{setting} = .* must be"):
        load_settings(env={name: value})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("QA_LLM_LOCAL_PASSAGE_TOKENS", "-5", "llm.local.passage_tokens = -5 (from the "),
        ("QA_LLM_LOCAL_THREADS", "-2", "llm.local.threads = -2 (from the environment variable"),
    ],
)
def test_local_model_numbers_out_of_range_are_refused_by_name(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(QAError, match=re.escape(message)):
        load_settings(env={variable: value})


def test_every_numeric_setting_has_bounds_and_is_checked_against_them() -> None:
    numeric = ranges()
    assert len(numeric) > 40 and "retrieval.candidates" in numeric and "server.port" in numeric
    for name, bounds in numeric.items():
        assert bounds is not None, f"{name} has no range: declare it with bounded()"
        low, high = bounds
        default = _table(Settings(), name)
        assert math.isfinite(low) and math.isfinite(high) and low <= default <= high, name
        var = "QA_" + name.replace(".", "_").upper()
        above = high + 1 if isinstance(default, int) else high * 2 + 1
        for bad in (above, low - 1, *([] if isinstance(default, int) else [math.nan])):
            with pytest.raises(QAError, match=re.escape(f"setting {name} = ")):
                load_settings(env={var: str(bad)})


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        (
            "[retrieval]\ncandidates = 1e9\n",
            {},
            "setting retrieval.candidates = 1000000000 (from CONFIG) must be between 1 and 10,000",
        ),
        (
            "",
            {"QA_SERVER_MAX_BODY_BYTES": "-1"},
            "setting server.max_body_bytes = -1 (from the environment variable "
            "QA_SERVER_MAX_BODY_BYTES) must be between 1,024 and 1,000,000,000",
        ),
        (
            "[server]\nmax_connections = 0\n",
            {},
            "setting server.max_connections = 0 (from CONFIG) must be between 1 and 100,000",
        ),
        (
            "[server]\nport = 70000\n",
            {},
            "setting server.port = 70000 (from CONFIG) must be between 0 and 65,535",
        ),
        (
            "[chunking]\nmax_tokens = 0\n",
            {},
            "setting chunking.max_tokens = 0 (from CONFIG) must be between 16 and 65,536",
        ),
        (
            "[chunking]\nmax_tokens = 30\n",
            {},
            "setting chunking.overlap_tokens = 40 (the default) must be below chunking.max_tokens "
            "= 30 (from CONFIG)",
        ),
    ],
)
def test_an_out_of_range_number_names_the_setting_its_source_and_range(
    tmp_path: Path, toml: str, env: dict[str, str], message: str
) -> None:
    config = write(tmp_path / "c", toml)
    with pytest.raises(QAError) as raised:
        load_settings(config, env=env)
    assert str(raised.value) == message.replace("CONFIG", str(config))


def test_a_number_from_the_command_line_says_so() -> None:
    with pytest.raises(QAError, match=r"retrieval\.k = 500 \(from the command line\)"):
        load_settings(None, {"retrieval.k": 500}, env={})


def test_the_shipped_retrieval_settings_are_in_range() -> None:
    load_settings(env={})  # the defaults and config.toml pass the same check


@pytest.mark.parametrize("variable", ["QA_LLM_OPENAI_BASE_URL", "QA_EMBEDDING_OPENAI_BASE_URLS"])
def test_a_service_url_without_a_scheme_is_refused_before_any_request(variable: str) -> None:
    with pytest.raises(QAError, match="is not an http:// or https:// URL"):
        load_settings(env={variable: "localhost:8000/v1"})
    assert load_settings(env={variable: "http://localhost:8000/v1"})


def test_allowed_networks_are_read_as_networks_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    config = write(tmp_path, '[fetch]\nallowed_networks = ["10.20.0.0/16", "fd00::/8"]\n')
    assert load_settings(config, env={}).fetch.allowed_networks == ("10.20.0.0/16", "fd00::/8")
    env = {"QA_FETCH_ALLOWED_NETWORKS": "127.0.0.1, 192.168.0.0/16"}
    assert load_settings(config, env=env).fetch.allowed_networks == ("127.0.0.1", "192.168.0.0/16")
    for bad, message in [
        ("10.0.0.1/8", "10.0.0.1/8 has host bits set"),
        ("intranet.lan", "'intranet.lan' does not appear to be an IPv4 or IPv6 network"),
    ]:
        with pytest.raises(QAError) as info:
            load_settings(config, env={"QA_FETCH_ALLOWED_NETWORKS": bad})
        assert str(info.value) == f"setting fetch.allowed_networks: {message}"
