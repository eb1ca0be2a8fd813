"""How fast llama.cpp reads a prompt and writes on this CPU, by build: xllamacpp's prebuilt
wheel (what `qa` uses), or llama.cpp compiled for this machine through llama-cpp-python.

    .venv/bin/python bench/bench_llama_build.py [--model PATH] [--threads 2]
    OTHER_VENV/bin/python bench/bench_llama_build.py --runtime llama-cpp-python

The second form needs a virtualenv with llama-cpp-python built from source for this CPU, e.g.
``CMAKE_ARGS="-DGGML_NATIVE=ON" pip install llama-cpp-python`` (about 25 minutes on 2 cores).
Both read the same uncached prompt of about 330 tokens three times, then write 64 tokens, and
print the CPU features the build uses: prompt reading, not writing, decides how soon the first
piece of an answer comes (issue #9).
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from pathlib import Path

PROMPT = (
    "The ministers met in Qingdao on June 26, 2025, and discussed military cooperation "
    "between the two countries. "
) * 12
DEFAULT_MODEL = Path("~/.cache/qa/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")


def xllamacpp_speed(model: Path, threads: int) -> None:
    import xllamacpp

    print(xllamacpp.get_system_info())
    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.n_ctx = 2048
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.n_parallel = 1
    params.cache_prompt = False
    folder = tempfile.mkdtemp(prefix="qa-bench-llama-")
    params.hostnames = [os.path.join(folder, "llama.sock")]
    params.api_keys = [secrets.token_urlsafe(16)]
    params.verbosity = 0
    server = xllamacpp.Server(params)
    for i in range(3):
        messages = [{"role": "user", "content": f"{i} {PROMPT} Summarise."}]
        reply = server.handle_chat_completions(
            {"messages": messages, "max_tokens": 64, "temperature": 0}
        )
        t = reply.get("timings", {})
        print(
            f"prompt {t.get('prompt_n', 0)} tokens at {t.get('prompt_per_second', 0):.1f} "
            f"tokens/s; wrote {t.get('predicted_n', 0)} at {t.get('predicted_per_second', 0):.1f}"
        )


def llama_cpp_python_speed(model: Path, threads: int) -> None:
    from llama_cpp import Llama, llama_print_system_info

    print(llama_print_system_info().decode())
    llm = Llama(
        model_path=str(model), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False
    )
    for i in range(3):
        tokens = llm.tokenize(f"{i} {PROMPT} Summarise.".encode())
        llm.reset()
        start = time.perf_counter()
        llm.eval(tokens)
        read = len(tokens) / (time.perf_counter() - start)
        written, first = 0, 0.0
        for _ in llm.generate(tokens, temp=0.0):  # the prompt's prefix is in the KV cache
            written += 1
            if written == 1:
                first = time.perf_counter()
            if written == 64:
                break
        wrote = (written - 1) / (time.perf_counter() - first)
        print(f"prompt {len(tokens)} tokens at {read:.1f} tokens/s; wrote 63 at {wrote:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runtime", choices=("xllamacpp", "llama-cpp-python"), default="xllamacpp")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = args.model.expanduser()
    if not model.is_file():
        raise SystemExit(f"no model at {model}: run `qa model install` or pass --model")
    print(f"load average {os.getloadavg()[0]:.1f}, {args.threads} threads, {model.name}")
    if args.runtime == "xllamacpp":
        xllamacpp_speed(model, args.threads)
    else:
        llama_cpp_python_speed(model, args.threads)


if __name__ == "__main__":
    main()
