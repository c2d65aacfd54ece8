# The two commands of the README: `make demo` (main job) and `make test`.
PY := .venv/bin/python

.PHONY: setup demo test test-all bench lint mutate clean

setup:
	@bin/setup

demo: setup
	$(PY) bin/demo.py

test: setup
	$(PY) -m pytest -q

test-all: setup
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -m "slow or not slow"

bench: setup
	$(PY) bench/run_all.py

# A scripted mutation run (bin/mutate.py): kill rate per module in mutate-out/report.md; ~1 h on 2 cores.
mutate: setup
	nice $(PY) bin/mutate.py --out mutate-out

lint: setup
	$(PY) -m ruff check src tests bench bin

clean:
	rm -rf demo-out bench/out mutate-out .pytest_cache
