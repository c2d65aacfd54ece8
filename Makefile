# The two commands of the README: `make demo` (main job) and `make test`.
PY := .venv/bin/python

.PHONY: setup demo test test-all bench lint clean

setup:
	@bin/setup

demo: setup
	$(PY) bin/demo.py

test: setup
	$(PY) -m pytest -q

test-all: setup
	$(PY) -m pytest -q -m "slow or not slow"

bench: setup
	$(PY) bench/run_all.py

lint: setup
	$(PY) -m ruff check src tests bench bin

clean:
	rm -rf demo-out bench/out .pytest_cache
