"""`qa mcp` as an MCP client sees it: the SDK's stdio client spawns the server and times the
handshake and each call (first ones cold, then warm).

    .venv/bin/python bench/bench_mcp.py                      # the bundled corpus, indexed first
    .venv/bin/python bench/bench_mcp.py --config config.toml # an existing project

The bundled corpus is indexed into a temporary folder with the real embedding model; the
server uses the extractive client. Prints one line per step with its time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

ROOT = Path(__file__).resolve().parent.parent
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("search", {"query": "Khrenin India", "k": 5}),
    ("ask", {"question": "What did Khrenin say about India?"}),
    ("ask", {"question": "Who did Rajnath Singh meet in Qingdao?"}),
    ("search", {"query": "SCO summit", "k": 5}),
]


async def run(config: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "qa.cli", "mcp", "--config", str(config)],
        env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"},
    )
    started = time.perf_counter()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        print(f"initialize answered {time.perf_counter() - started:.2f} s after spawning")
        for name, arguments in CALLS:
            t0 = time.perf_counter()
            result = await session.call_tool(name, arguments)
            ms = (time.perf_counter() - t0) * 1000
            data = result.structured_content or {}
            what = "citations" if name == "ask" else "passages"
            print(
                f"{name:7s} {ms:7.0f} ms  error={result.is_error}  {what}={len(data.get(what, []))}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, help="a project's config.toml (default: index corpus/)"
    )
    args = parser.parse_args()
    if args.config:
        anyio.run(run, args.config.resolve())
        return
    from qa.cli import main as qa_main

    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.toml"
        config.write_text(
            f'[paths]\ncorpus = "{ROOT / "corpus"}"\nindex = "{Path(folder) / "index"}"\n'
            '[llm]\nclient = "extractive"\n'
        )
        sys.argv = ["qa", "ingest", "--config", str(config)]
        try:
            qa_main()
        except SystemExit as exit:
            if exit.code:
                raise
        anyio.run(run, config)


if __name__ == "__main__":
    main()
