"""Writes the generated reference pages when the docs are built (mkdocs-gen-files).

- reference/settings.md: every setting, walked from the settings dataclasses (section, TOML key,
  ``QA_*`` variable, type, default, range, allowed names, and the description on the field);
- reference/cli.md: every command and option, from the typer app;
- reference/http.md: every route and request body, from the FastAPI app's OpenAPI schema;
- reference/python.md: the Python API, rendered by mkdocstrings from the docstrings.

Generated, so none of them can drift from the code; a missing description fails the build.
"""

from __future__ import annotations

import dataclasses
import json
import types
from typing import Any

import mkdocs_gen_files
import typer
from typer.cli import get_docs_for_click

# Every qa module these pages are made from, in one place (the package's layout may move).
from qa.cli import app as cli_app
from qa.core.config import ALLOWED, Settings
from qa.serving.app import create_app

# What reference/python.md renders, by the names users import.
PYTHON_API = ["qa.Assistant", "qa.core.types.Answer", "qa.core.types.Citation", "qa.core.types.Hit"]


# ------------------------------------------------------------------------------ settings


def _value(value: Any) -> str:
    if isinstance(value, tuple):
        return "`[" + ", ".join(json.dumps(v) for v in value) + "]`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f"`{json.dumps(value)}`"
    if isinstance(value, int):
        return f"`{value}`"
    return f"`{value}`"


def _type(value: Any) -> str:
    if isinstance(value, tuple):
        return "list of strings"
    return {bool: "bool", int: "integer", float: "number"}.get(type(value), "string")


def _range(low: float, high: float) -> str:
    def number(x: float) -> str:
        return f"{x:,}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"

    return f"{number(low)} to {number(high)}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def settings_rows(table: Any, section: str) -> list[tuple[str, list[list[str]], str]]:
    """One (section, rows, description) per settings table, nested ones after their parent."""
    rows: list[list[str]] = []
    nested: list[tuple[str, list[list[str]], str]] = []
    for f in dataclasses.fields(table):
        if f.name == "root":
            continue
        doc = f.metadata.get("doc")
        if not doc:
            raise ValueError(f"setting {section}.{f.name} has no description (doc=)")
        value = getattr(table, f.name)
        dotted = f"{section}.{f.name}" if section else f.name
        if dataclasses.is_dataclass(value):
            nested += [(dotted, *settings_rows(value, dotted)[0][1:])]
            nested += settings_rows(value, dotted)[1:]
            continue
        var = "QA_" + dotted.replace(".", "_").upper()
        bounds = f.metadata.get("range")
        allowed = ALLOWED.get((section, f.name))
        limits = _range(*bounds) if bounds else ""
        if allowed:
            limits = "one of " + ", ".join(f"`{a}`" for a in allowed)
        rows.append([f"`{f.name}`", f"`{var}`", _type(value), _value(value), limits, _cell(doc)])
    return [(section, rows, ""), *nested]


def settings_page() -> str:
    out = [
        "# Settings reference",
        "",
        "Generated from the settings model (`docs/gen_reference.py`). Precedence: command-line "
        "flag > `QA_<SECTION>_<KEY>` environment variable > `config.toml` > these defaults; "
        "how to set them: [the guide](../guide/settings.md). Secrets come from the environment "
        "only: `OPENAI_API_KEY`, `QA_API_KEY`, `QA_EMBEDDING_API_KEY`, `QA_MILVUS_TOKEN`.",
    ]
    settings = Settings()
    for f in dataclasses.fields(settings):
        if f.name == "root":
            continue
        for section, rows, _ in settings_rows(getattr(settings, f.name), f.name):
            doc = _section_doc(settings, section)
            out += ["", f"## `[{section}]`", "", doc, ""]
            out += ["| key | environment | type | default | range | description |",
                    "|---|---|---|---|---|---|"]
            out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def _section_doc(settings: Settings, dotted: str) -> str:
    table: Any = settings
    doc = ""
    for part in dotted.split("."):
        field = {f.name: f for f in dataclasses.fields(table)}[part]
        doc, table = field.metadata.get("doc", ""), getattr(table, part)
    return doc


# ------------------------------------------------------------------------------ CLI


def cli_page() -> str:
    command = typer.main.get_command(cli_app)
    text = get_docs_for_click(obj=command, ctx=typer.Context(command), name="qa",
                              title="Command-line reference")
    intro = ("Generated from the command-line app (`docs/gen_reference.py`, as "
             "`typer qa.cli utils docs` would). Every command takes `--config FILE`; errors go "
             "to stderr with a non-zero exit.\n\n")
    head, _, rest = text.partition("\n\n")
    return f"{head}\n\n{intro}{rest}"


# ------------------------------------------------------------------------------ HTTP


def _app_schema() -> dict[str, Any]:
    # The schema needs the routes, not a model: a stand-in with the settings and no embedder
    # builds the app without loading anything.
    stand_in = types.SimpleNamespace(settings=Settings(), embedder=None)
    return create_app(stand_in).openapi()  # type: ignore[arg-type]


def _schema_type(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in prop:
        return " or ".join(_schema_type(p) for p in prop["anyOf"])
    if prop.get("type") == "array":
        return f"list of {_schema_type(prop.get('items', {}))}"
    return str(prop.get("type", "any"))


def http_page() -> str:
    schema = _app_schema()
    out = [
        "# HTTP API reference",
        "",
        "Generated from the app's OpenAPI schema (`GET /openapi.json` of `qa serve`; "
        "`docs/gen_reference.py`). How to run it and what it guards: "
        "[`qa serve`](../guide/serve.md).",
        "",
        "| method | path | what it does |",
        "|---|---|---|",
    ]
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            # The handler's docstring says what it does; FastAPI's summary is only its name.
            what = (op.get("description") or op.get("summary", "")).split("\n")[0]
            out.append(f"| {method.upper()} | `{path}` | {_cell(what)} |")
    for name, model in sorted(schema.get("components", {}).get("schemas", {}).items()):
        if "properties" not in model:
            continue
        required = set(model.get("required", ()))
        out += ["", f"## {name}", ""]
        if model.get("description"):
            out += [_cell(model["description"]), ""]
        out += ["| field | type | required | default | description |", "|---|---|---|---|---|"]
        for field, prop in model["properties"].items():
            default = f"`{json.dumps(prop['default'])}`" if "default" in prop else ""
            out.append(f"| `{field}` | {_schema_type(prop)} | "
                       f"{'yes' if field in required else ''} | {default} | "
                       f"{_cell(prop.get('description', ''))} |")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------ Python


def python_page() -> str:
    out = ["# Python API reference", "",
           "Generated from the docstrings by mkdocstrings. How to use it: "
           "[From Python](../guide/python.md).", ""]
    out += [f"::: {name}\n" for name in PYTHON_API]
    return "\n".join(out)


PAGES = {
    "reference/settings.md": settings_page,
    "reference/cli.md": cli_page,
    "reference/http.md": http_page,
    "reference/python.md": python_page,
}


def main() -> None:
    for page, make in PAGES.items():
        with mkdocs_gen_files.open(page, "w") as out:
            out.write(make())


if __name__ == "<run_path>":  # run by mkdocs-gen-files; tests import the page makers instead
    main()
