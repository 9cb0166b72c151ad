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
# CI runs the whole suite on $(PYTHON) (3.11) and this suite on every other Python the
# classifiers claim, each in its own .venv-pyX.Y (tests/jobs/test_ci.py keeps the two lists equal).
OTHER_PYTHONS := 3.10 3.12 3.13
# The suite without the notebooks, the benchmarks and Ray (their dependencies are not in the
# test-core group), nor the docs site's build and the wheel's, which no Python changes.
CORE_TESTS := tests --ignore=tests/jobs/test_notebooks.py --ignore=tests/jobs/test_benchmarks_smoke.py \
	--ignore=tests/jobs/test_ray.py --ignore=tests/docs/test_docs_site.py \
	--ignore=tests/docs/test_release.py
# The pure modules `make mutation` mutates (tools/mutation.py names the tests of each).
MUTATION_MODULES := _retry _budget _cache _plan _cuts _parts _merge _codec _refusals _outcome
# A seeded sample of this many mutants per module (empty: every mutant).
MUTATION_SAMPLE ?=

.PHONY: demo docs test venvs test-pythons lint bench interop mutation clean

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

# One environment per other Python, from pyenv's versions or pythonX.Y on PATH; a Python
# that is missing fails (.ci/find-python), it is never skipped.
# (A pattern rule cannot make a .PHONY target: test-pyX.Y is not listed there.)
.PRECIOUS: .venv-py%/.installed
.venv-py%/.installed: pyproject.toml
	rm -rf .venv-py$*
	python=$$(.ci/find-python $*) && "$$python" -m venv .venv-py$*
	.venv-py$*/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	.venv-py$*/bin/python -m pip install --quiet -e ".[all]" --group test-core
	touch $@

## venvs: every environment CI uses, one after the other
venvs: $(STAMP) $(foreach version,$(OTHER_PYTHONS),.venv-py$(version)/.installed)

## test-pythons: the suite without notebooks, benchmarks and Ray on every other Python claimed
test-pythons: $(foreach version,$(OTHER_PYTHONS),test-py$(version))

test-py%: .venv-py%/.installed
	@echo "== Python $* (the suite without notebooks, benchmarks and Ray)"
	.venv-py$*/bin/python -m pytest -q -p no:cacheprovider $(CORE_TESTS)

lint: $(STAMP)
	$(BIN)/ruff check rerank_integrations tests notebooks benchmarks interop examples
	$(BIN)/ruff format --check rerank_integrations tests notebooks benchmarks interop examples
	$(BIN)/mypy --strict rerank_integrations

$(BENCH_STAMP): pyproject.toml benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[all,ray,eval]" -r benchmarks/requirements.txt
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

## mutation: mutate the pure modules, run their tests, write MUTATION.md (not part of test)
mutation: $(STAMP)
	$(BIN)/python tools/mutation.py --out MUTATION.md --log .mutation.log \
	  $(if $(MUTATION_SAMPLE),--sample $(MUTATION_SAMPLE)) $(MUTATION_MODULES)

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(BENCH_VENV) $(foreach version,$(OTHER_PYTHONS),.venv-py$(version)) \
	  site .venv-interop-litellm .venv-interop-infinity .venv-interop-xinference .interop \
	  .pytest_cache .mypy_cache .ruff_cache
