# Set-up and everyday commands. Every target creates the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demo has its own lean environment: the package with its demo extra, no test tools.
DEMO_VENV ?= .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
INTEROP_SERVERS := litellm infinity xinference
INTEROP_STAMPS := $(foreach server,$(INTEROP_SERVERS),.venv-interop-$(server)/.installed)

.PHONY: demo docs test lint bench interop clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[all]" --group dev
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(DEMO_VENV)/bin/python -m pip install --quiet -e ".[demo]"
	touch $(DEMO_STAMP)

## demo: rerank a labelled corpus with LangChain and LlamaIndex against the embedded server
demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/rerank-integrations demo

## docs: build the documentation site into site/, strict (a broken link or reference fails)
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

## test: lint, type-check and run the whole test suite
test: $(STAMP) lint
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check rerank_integrations tests notebooks benchmarks interop examples
	$(BIN)/ruff format --check rerank_integrations tests notebooks benchmarks interop examples
	$(BIN)/mypy --strict rerank_integrations

$(BENCH_STAMP): pyproject.toml benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[all,ray]" -r benchmarks/requirements.txt
	touch $(BENCH_STAMP)

## bench: the performance benchmark, with the peer packages in their own environment
bench: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m benchmarks.run --out BENCHMARKS.md

# One environment per server: their pins clash (Infinity needs transformers < 4.49,
# Xinference 4.1 wants transformers 5). Our client runs from $(VENV); only the servers run here.
.venv-interop-%/.installed: interop/requirements-%.txt
	rm -rf .venv-interop-$*
	$(PYTHON) -m venv .venv-interop-$*
	.venv-interop-$*/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	.venv-interop-$*/bin/python -m pip install --quiet -r interop/requirements-$*.txt
	if [ "$*" = xinference ]; then .venv-interop-$*/bin/python -m pip uninstall --quiet -y torchvision; fi
	@# A package that starts code at every interpreter start is how the compromised LiteLLM
	@# releases worked: refuse any .pth file but setuptools' own.
	@bad=$$(find .venv-interop-$*/lib -name '*.pth' ! -name 'distutils-precedence.pth' ! -name '_virtualenv.pth' ! -name '__editable__*'); \
	  if [ -n "$$bad" ]; then echo "unexpected .pth files: $$bad"; exit 1; fi
	touch $@

## interop: run the client against LiteLLM, Infinity and Xinference and record their answers
interop: $(STAMP) $(INTEROP_STAMPS)
	$(BIN)/python -m interop

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(BENCH_VENV) site .venv-interop-litellm .venv-interop-infinity \
	  .venv-interop-xinference .interop .pytest_cache .mypy_cache .ruff_cache
