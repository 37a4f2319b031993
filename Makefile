# InferOps — the two promises: `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_ARGS ?=

.PHONY: setup system-deps demo test check bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "InferOps needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	@# torch first and pinned: here it is the CPU build; unpinned it pulls a multi-GB CUDA build.
	$(VENV)/bin/pip install -q --disable-pip-version-check "torch==2.13.0"
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

system-deps:
	@scripts/install-system-deps

demo: setup
	$(VENV)/bin/inferops demo $(DEMO_ARGS)

test: setup system-deps
	$(PY) -m pytest -q -p no:cacheprovider

check: setup
	scripts/check

bench: setup
	$(PY) -m bench

clean:
	rm -rf $(VENV) .inferops .pytest_cache .mypy_cache .ruff_cache
