# The README's commands. `make demo` and `make test` each set up what they need.
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DB := demo/govfeed.db
PORT ?= 8001

.PHONY: demo demo-db test lint fmt bench accuracy clean lock lowest

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

accuracy:  ## extraction accuracy per field on the corpus of real bulletins (bench/README.md)
	scripts/bootstrap dev
	$(PY) bench/accuracy.py $(ACCURACY_ARGS)

lock:  ## refresh the hash-pinned requirements/*.txt from pyproject.toml (after any dependency change)
	scripts/lock $(LOCK_ARGS)

# The floors in pyproject.toml are true: every direct dependency at its lowest allowed
# version, in a venv of its own, passes the fast tests (those needing no Dovecot or browser).
LOWEST := .venv-lowest
FAST_TESTS := -m "not slow" --ignore=tests/test_imap.py --ignore=tests/test_sync.py \
	--ignore=tests/test_daemon.py --ignore=tests/test_crash.py --ignore=tests/test_faults.py \
	--ignore=tests/test_site_browser.py
lowest:  ## install every direct dependency at its floor (uv) and run the fast tests
	scripts/bootstrap dev
	rm -rf $(LOWEST)
	$(VENV)/bin/uv venv --quiet --python $(PY) $(LOWEST)
	$(VENV)/bin/uv pip install --quiet --python $(LOWEST)/bin/python --resolution lowest-direct -e ".[dev]"
	$(LOWEST)/bin/python -m pytest -q -p no:cacheprovider $(FAST_TESTS) $(PYTEST_ARGS)

clean:
	rm -rf demo $(LOWEST) .pytest_cache .mypy_cache .ruff_cache
