# InfAdapter-Gym. `make leaderboard` runs the benchmark; `make test` runs the tests.
# Each target installs what it needs into a local virtual environment (.venv) on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The CPU build of torch that this machine kind carries; pinned before everything else so that
# stable-baselines3 cannot pull a multi-GB CUDA build.
TORCH_PIN := torch==2.13.0
OUT ?= results/leaderboard
PAPER_OUT ?= results/paper-2023

.PHONY: install leaderboard test test-slow test-expensive bench lint format typecheck docs links check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_PIN)" numpy
	$(BIN)/python -c "import torch; print(torch.__version__)" > $(VENV)/.torch-version
	$(BIN)/pip install --quiet -e ".[all,dev,ray,serve,docs,video]"
	@$(BIN)/python -c "import torch, sys; want = open('$(VENV)/.torch-version').read().strip(); \
	sys.exit(0 if torch.__version__ == want else f'pip replaced torch {want} by {torch.__version__}')"
	@touch $(STAMP)

# The benchmark's own protocol (about 2 min on 2 cores; resumable), then the paper's experiment
# (protocol paper-2023, seconds).
leaderboard: $(STAMP)
	$(BIN)/infadapter leaderboard --out $(OUT)
	$(BIN)/infadapter leaderboard --protocol paper-2023 --out $(PAPER_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q --ignore=tests/benchmarks

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow --ignore=tests/benchmarks

test-expensive: $(STAMP)
	$(BIN)/python -m pytest -q -m expensive

# The benchmarks, then the docs' performance page made from their figures (docs/performance.md).
# A missed target fails the run after the page is written (the page says which).
bench: $(STAMP)
	mkdir -p build
	status=0; $(BIN)/python -m pytest -q tests/benchmarks --benchmark-enable --benchmark-only -p no:cacheprovider \
		--benchmark-json=build/bench.json || status=$$?; \
	$(BIN)/python -m tests.benchmarks.report build/bench.json docs/performance.md && exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The packages under their import names (agents/ is infadapter_agents, scripts/ is infadapter_scripts),
# for the tools that read source files rather than import them (mypy, the docs' mkdocstrings).
links:
	mkdir -p build/typecheck
	ln -sfn ../../infadapter_env build/typecheck/infadapter_env
	ln -sfn ../../agents build/typecheck/infadapter_agents
	ln -sfn ../../scripts build/typecheck/infadapter_scripts

typecheck: $(STAMP) links
	$(BIN)/mypy

# The documentation site (mkdocs-material + mkdocstrings), built with --strict into site/.
docs: $(STAMP) links
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

check: lint typecheck test

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .benchmarks
