# The two commands of the README:
#   make run    creates .venv if needed, installs, materializes the whole asset graph (embedded default)
#   make test   creates .venv if needed, installs, runs the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# `dagster dev` finds the definitions through pyproject.toml ([tool.dagster]) / workspace.yaml;
# `dagster asset materialize` (Dagster 1.13) needs its code pointer: -m ecommerce_platform.definitions.
# (Do not export DAGSTER_MODULE_NAME instead: `dagster dev` hands it to its webserver, which then
# sees two targets and stops before serving.)
DEFS := ecommerce_platform.definitions
SELECT ?= *
export OPENBLAS_NUM_THREADS ?= 1
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
# The local Dagster instance's settings (copied into $DAGSTER_HOME; kept out of the repo root so that
# `dagster dev` finds no dagster.yaml in its working folder).
INSTANCE_YAML := deploy/local/dagster.yaml

.PHONY: install run materialize test test-fast bench dev serve lock clean-data system-deps infra-test help

help:
	@echo "make run | make test | make dev | make serve | make bench | make infra-test | make clean-data"

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@grep -q DAGSTER_HOME $(BIN)/activate || printf '\nexport DAGSTER_HOME="$(CURDIR)/.dagster_home"\nexport OPENBLAS_NUM_THREADS=1\n' >> $(BIN)/activate
	$(BIN)/pip install -q --upgrade "pip>=24"
	# the CPU build of torch first, or pip pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: $(INSTANCE_YAML)
	@mkdir -p $(DAGSTER_HOME)
	cp $(INSTANCE_YAML) $(DAGSTER_HOME)/dagster.yaml

# the whole graph; the source is ECOMMERCE_SOURCE, else your files in data/, else data/reference/
run: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ecommerce materialize --select '$(SELECT)'

# a selection: make materialize SELECT='key:clean_parquet+' (FORCE=1 rebuilds what is up to date too)
materialize: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ecommerce materialize --select '$(SELECT)' $(if $(FORCE),--force,)

# System packages the tests use: Chromium (headless, browser tests) and PostgreSQL (the production
# instance storage, tested on a real server). Installed with apt when missing and the user is root.
SYSTEM_PACKAGES := chromium postgresql
system-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "WARNING: could not install$$missing; the tests that need them will fail"; \
	  else echo "WARNING: missing system packages:$$missing (install Debian's packages)"; fi; \
	fi

test: install system-deps
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not graph and not browser"

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

dev: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dg dev -h 127.0.0.1 -p 3000

# the HTTP API (/api/..., schema at /docs) and the web page (/) over what `make run` built, on
# http://127.0.0.1:8000 (ECOMMERCE_SERVE_HOST, ECOMMERCE_SERVE_PORT, ECOMMERCE_SERVE_WORKERS; docs/serving.md)
serve: install
	$(BIN)/ecommerce serve

infra-test:
	$(MAKE) -C infra test

lock: install
	@( echo "# Exact versions of every package the project resolves to (pip freeze), used as constraints by the Makefile."; \
	   echo "# Regenerate with \`make lock\`."; \
	   $(BIN)/pip freeze | grep -v -i -E '^(ecommerce-platform|-e |torch==|#)' \
	   | sed -E 's#^([A-Za-z0-9_.-]+) @ file://.*/[A-Za-z0-9_.]+-([0-9][A-Za-z0-9.]*)-.*[.]whl.*#\1==\2#' ) > requirements.lock

# Start from nothing: the lake, the warehouse, the embedded stream (records and checkpoints), generated
# data sets and Dagster's run history. Kept: your source files in data/, data/reference/ and the
# instance settings ($(DAGSTER_HOME)/dagster.yaml).
clean-data:
	rm -rf data/lake data/warehouse.duckdb data/warehouse.duckdb.wal data/.duckdb_tmp data/stream data/generated
	@if [ -d "$(DAGSTER_HOME)" ]; then find "$(DAGSTER_HOME)" -mindepth 1 -maxdepth 1 ! -name dagster.yaml -exec rm -rf {} +; fi
