# The README's commands. `make demo` and `make test` each set up what they need.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DB := demo/govfeed.db
PORT ?= 8001

.PHONY: demo demo-db test lint fmt bench clean

demo: demo-db  ## import the bundled example mail and read it on http://127.0.0.1:8001
	$(VENV)/bin/govfeed --config config/demo.toml site --host 127.0.0.1 --port $(PORT)

demo-db:
	scripts/bootstrap site
	mkdir -p demo
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	$(VENV)/bin/govfeed --config config/demo.toml import examples/demo-maildir

test: lint  ## lint, type-check and run every test (installs what is missing)
	$(PY) -m pytest $(PYTEST_ARGS)

lint:
	scripts/bootstrap dev
	$(VENV)/bin/ruff check daemon tests bench examples
	$(VENV)/bin/ruff format --check daemon tests bench examples
	$(VENV)/bin/mypy

fmt:
	$(VENV)/bin/ruff format daemon tests bench examples
	$(VENV)/bin/ruff check --fix daemon tests bench examples

bench:  ## every speed and memory figure in one report (bench/README.md); BENCH_ARGS=--quick
	scripts/bootstrap dev
	$(PY) bench/all.py $(BENCH_ARGS)

clean:
	rm -rf demo .pytest_cache .mypy_cache .ruff_cache
