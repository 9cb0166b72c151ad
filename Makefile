# Set-up and everyday commands. Every target creates the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[all]" --group dev
	touch $(STAMP)

## demo: rerank a labelled corpus with LangChain and LlamaIndex against the embedded server
demo: $(STAMP)
	$(BIN)/rerank-integrations demo

## test: lint, type-check and run the whole test suite
test: $(STAMP) lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check rerank_integrations tests notebooks benchmarks
	$(BIN)/ruff format --check rerank_integrations tests notebooks benchmarks
	$(BIN)/mypy --strict rerank_integrations

$(BENCH_STAMP): pyproject.toml benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[all]" -r benchmarks/requirements.txt
	touch $(BENCH_STAMP)

## bench: the performance benchmark, with the peer packages in their own environment
bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.run --out BENCHMARKS.md

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache
