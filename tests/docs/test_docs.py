"""The docs site: every setting described, the generated references complete, figures from
files, and the strict MkDocs build itself (broken links and missing pages fail it)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from qa.cli import app as cli_app
from qa.core.config import ALLOWED, Settings, env_names
from qa.core.types import QAError
from qa.evaluation import figures

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MKDOCS = Path(sys.executable).parent / "mkdocs"
MARKER = re.compile(r"^<!-- figure: ([\w.-]+) -->$", re.MULTILINE)


def load_docs_module(name: str) -> ModuleType:
    """docs/NAME.py imported as a module (not run as mkdocs would run it)."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setting_fields(table: Any, prefix: str = "") -> list[tuple[str, dataclasses.Field[Any]]]:
    out = []
    for f in dataclasses.fields(table):
        if f.name == "root":
            continue
        out.append((f"{prefix}{f.name}", f))
        value = getattr(table, f.name)
        if dataclasses.is_dataclass(value):
            out += setting_fields(value, f"{prefix}{f.name}.")
    return out


def test_every_setting_and_section_has_a_description() -> None:
    missing = [name for name, f in setting_fields(Settings()) if not f.metadata.get("doc")]
    assert missing == []
    # A description is a sentence, not a placeholder.
    short = [name for name, f in setting_fields(Settings()) if len(f.metadata["doc"]) < 8]
    assert short == []


def test_every_key_of_config_toml_is_a_documented_setting() -> None:
    data = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
    documented = {name: f.metadata.get("doc") for name, f in setting_fields(Settings())}

    def keys(table: dict[str, Any], prefix: str = "") -> list[str]:
        out = []
        for key, value in table.items():
            out.append(f"{prefix}{key}")
            if isinstance(value, dict):
                out += keys(value, f"{prefix}{key}.")
        return out

    names = keys(data)
    assert len(names) > 80  # the file holds every tunable
    assert [n for n in names if not documented.get(n)] == []


def test_settings_page_lists_every_setting_its_variable_range_and_names() -> None:
    page = load_docs_module("gen_reference").settings_page()
    for var in env_names(Settings()):
        assert f"`{var}`" in page, var
    assert "| `candidates` | `QA_RETRIEVAL_CANDIDATES` | integer | `50` | 1 to 10,000 |" in page
    for allowed in ALLOWED.values():
        assert "one of " + ", ".join(f"`{a}`" for a in allowed) in page
    assert "## `[llm.openai]`" in page and "## `[index.milvus]`" in page


def test_a_setting_without_a_description_fails_the_settings_page() -> None:
    @dataclasses.dataclass(frozen=True)
    class Undocumented:
        k: int = 3

    with pytest.raises(ValueError, match=r"setting retrieval\.k has no description"):
        load_docs_module("gen_reference").settings_rows(Undocumented(), "retrieval")


def test_cli_and_http_pages_name_every_command_and_route() -> None:
    gen = load_docs_module("gen_reference")
    cli = gen.cli_page()
    for command in cli_app.registered_commands:
        assert f"## `qa {command.name or command.callback.__name__}`" in cli  # type: ignore[union-attr]
    for group in cli_app.registered_groups:
        assert f"## `qa {group.name}`" in cli
    http = gen.http_page()
    for route in ("/api/ask", "/v1/chat/completions", "/v1/embeddings", "/healthz",
                  "/api/articles/{doc_id}", "/api/ingest"):
        assert f"`{route}`" in http
    assert "## AskRequest" in http


def test_a_figure_file_renders_with_its_command_date_and_machine(tmp_path: Path) -> None:
    fig = figures.figure("t", ["a", "b|c"], [[1, "x|y"]], note="One run.")
    path = figures.save(fig, tmp_path / "sub" / "t.json")
    text = figures.to_markdown(figures.load(path))
    assert text.startswith("| a | b\\|c |\n|---|---|\n| 1 | x\\|y |\n")
    assert f"Command: `{fig.command}`; {fig.date}; {fig.machine}. One run." in text
    assert re.search(r"\d+ cores", fig.machine)
    with pytest.raises(QAError, match="has 1 cells, not 2"):
        figures.Figure("t", "c", "d", "m", ["a", "b"], [["only one"]])
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(QAError, match="figure file"):
        figures.load(tmp_path / "bad.json")


def test_every_figure_a_page_names_exists_and_every_file_is_used() -> None:
    named = {m for page in DOCS.rglob("*.md") for m in MARKER.findall(page.read_text("utf-8"))}
    files = {p.stem for p in (DOCS / "figures").glob("*.json")}
    assert named == files
    for stem in files:
        fig = figures.load(DOCS / "figures" / f"{stem}.json")
        assert fig.command.startswith(("python ", "qa ")) and fig.date and fig.machine, stem
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fig.date), stem


def test_truth_of_run_writes_a_figure_the_docs_hook_renders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real script on a tiny RealTime QA run, then the real hook on a page naming it."""
    run = tmp_path / "run"
    run.mkdir()
    records = [
        {"id": "20240105_q1", "gold": "Paris", "gold_index": 0,
         "multiple_choice": {"choice": 1, "answered": True, "confidence": 0.9},
         "free_text": {"question": "q", "answer": "It is Paris [1].", "answered": True,
                       "short_answer": "Paris"}},
        {"id": "20240105_q2", "gold": "Rome", "gold_index": 1,
         "multiple_choice": {"choice": 1, "answered": True, "confidence": 0.4},
         "free_text": {"question": "q", "answer": "No.", "answered": False,
                       "short_answer": ""}},
    ]
    (run / "predictions.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "figures" / "truth.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "eval" / "truth_of_run.py"), str(run), "--save-figures",
         str(out)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    fig = figures.load(out)
    assert fig.command.startswith("python eval/truth_of_run.py ")
    assert fig.rows[0] == ["short answer", "2", "1", "1", "0.500", "1.000", "+0.500"]
    assert fig.rows[1] == ["multiple choice", "2", "2", "1", "1.000", "0.500", "+0.000"]

    hooks = load_docs_module("hooks")
    monkeypatch.setattr(hooks, "FIGURES", out.parent)
    page = "Intro\n\n<!-- figure: truth -->\n\nand `<!-- figure: truth -->` in running text\n"
    rendered = hooks.on_page_markdown(page)
    assert "| short answer | 2 | 1 | 1 | 0.500 | 1.000 | +0.500 |" in rendered
    assert "Command: `python eval/truth_of_run.py " in rendered
    assert "`<!-- figure: truth -->` in running text" in rendered


def test_a_page_naming_a_missing_figure_fails_the_build() -> None:
    from mkdocs.exceptions import PluginError

    with pytest.raises(PluginError, match="no-such-figure"):
        load_docs_module("hooks").on_page_markdown("<!-- figure: no-such-figure -->\n")


def test_the_confidence_report_renders_from_its_file() -> None:
    text = load_docs_module("hooks").on_page_markdown("<!-- confidence-report -->\n")
    report_file = ROOT / "qa" / "answering" / "confidence_models" / "report.json"
    report = json.loads(report_file.read_text("utf-8"))
    assert f"`{report['trained']['command']}`; {report['trained']['date']}" in text
    assert f"| short answer | {report['short']['questions']} | AUC 0.837 |" in text


def test_nav_pages_exist_and_every_page_is_in_the_nav() -> None:
    # mkdocs.yml may carry tags a plain YAML loader refuses; it has none today.
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(nav: Any) -> list[str]:
        if isinstance(nav, str):
            return [nav]
        if isinstance(nav, dict):
            return [p for v in nav.values() for p in pages(v)]
        return [p for item in nav for p in pages(item)]

    listed = pages(config["nav"])
    generated = {p for p in listed if p.startswith("reference/")}
    assert generated == set(load_docs_module("gen_reference").PAGES)
    assert [p for p in listed if p not in generated and not (DOCS / p).is_file()] == []
    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert on_disk - set(listed) == set()


def test_readme_links_into_docs_point_at_files() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(((?:docs|eval|corpus)/[^)#]+)", readme)
    assert links
    assert [link for link in links if not (ROOT / link).is_file()] == []


def test_the_strict_build_succeeds(tmp_path: Path) -> None:
    assert MKDOCS.exists(), "mkdocs is missing: make setup installs it (the docs extra)"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_MKDOCS_2_WARNING": "1",
           "DISABLE_MKDOCS_2_WARNING": "true"}
    done = subprocess.run([str(MKDOCS), "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    site = tmp_path / "site"
    settings = (site / "reference" / "settings.html").read_text("utf-8")
    assert "QA_RETRIEVAL_RECENCY_HALF_LIFE_DAYS" in settings
    assert "qa.Assistant" in (site / "reference" / "python.html").read_text("utf-8")
    search = (site / "benchmarks" / "ingest-and-search.html").read_text("utf-8")
    assert "bench/bench_search.py --sizes 1e4,1e5,1e6" in search
    assert "fonts.googleapis" not in (site / "index.html").read_text("utf-8")


def test_bench_search_writes_its_table_as_a_figure(tmp_path: Path) -> None:
    """The real benchmark, tiny: its figure file holds the rows it printed, exact search too."""
    out = tmp_path / "search.json"
    done = subprocess.run(
        [sys.executable, "bench/bench_search.py", "--sizes", "2000", "--kinds", "auto,flat",
         "--queries", "20", "--save-figures", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    fig = figures.load(out)
    assert fig.command.startswith("python bench/bench_search.py --sizes 2000")
    assert fig.columns[-1] == "exact search p50"
    [row] = fig.rows  # "auto" is exact at 2,000 vectors: one row, measured once
    assert row[0] == "2,000" and row[1] == "auto:flat" and row[5] == "1.000"
    assert row[6] == row[4].split(" / ")[0] + " ms"


def test_the_precision_benchmark_writes_a_figure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import bench_precision

    def row(precision: str, recall: float) -> dict[str, Any]:
        rtqa = {"answer_recall@5": recall, "search_oracle": 0.6, "mc_accuracy": 0.5,
                "short_f1": 0.2, "chunks": 100, "ingest_chunks_per_s": 40.0, "index_mb": 1.0,
                "peak_mb": 300.0}
        return {"precision": precision, "gold": {"evidence_recall@5": 0.92, "mrr": 0.88},
                "realtimeqa": {"2024q1": rtqa}, "warm_question_ms": 6.5, "cold_ask_s": 1.4,
                "cold_ask_peak_mb": 280.0}

    fig = bench_precision.precision_figure([row("fp32", 0.5), row("int8", 0.49)], "6")
    assert fig.columns == ["figure", "fp32", "int8"]
    assert ["2024q1 answer_recall@5", "0.500", "0.490"] in fig.rows
    assert fig.extra["rows"][1]["precision"] == "int8"
    assert "Weeks of each RealTime QA folder: 6" in figures.to_markdown(fig)
