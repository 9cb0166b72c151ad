# Set-up and everyday commands. Every target creates the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

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
	$(BIN)/ruff check rerank_integrations tests notebooks
	$(BIN)/ruff format --check rerank_integrations tests notebooks
	$(BIN)/mypy --strict rerank_integrations

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
