# The two commands of the README: `make demo` (main job) and `make test`.
PY := .venv/bin/python

.PHONY: setup demo test test-all test-stats-slow test-messy test-bare bench lint typecheck mutate clean

setup:
	@bin/setup

demo: setup
	$(PY) bin/demo.py

test: setup
	$(PY) -m pytest -q

# The slow statistical tests (calibration, interval coverage; seeds in the tests): CI runs them after `test`.
test-stats-slow: setup
	$(PY) -m pytest -q -m slow tests/stats

# the messy-data path end to end (audio-only and audio-visual segments, 3 classes; ~1 min): slow-marked, run by CI
test-messy: setup
	$(PY) -m pytest -q -m slow tests/test_messy_data.py

test-all: setup
	HYPOTHESIS_PROFILE=thorough $(PY) -m pytest -q -m "slow or not slow"

bench: setup
	$(PY) bench/run_all.py

# A scripted mutation run (bin/mutate.py): kill rate per module in mutate-out/report.md; ~1 h on 2 cores.
mutate: setup
	nice $(PY) bin/mutate.py --out mutate-out

lint: setup
	$(PY) -m ruff check src tests bench bin
	$(PY) -m mypy

# mypy over src/ ([tool.mypy] in pyproject.toml) alone; `lint` runs it too
typecheck: setup
	$(PY) -m mypy

clean:
	rm -rf demo-out bench/out mutate-out .pytest_cache .venv-bare

# What `pip install ambiguity` without extras must run (CI: a second, bare virtual environment).
BARE_TESTS := tests/stats tests/models/test_predictions.py tests/stores tests/test_api.py tests/test_architecture.py
test-bare:
	rm -rf .venv-bare && python3 -m venv .venv-bare
	.venv-bare/bin/python -m pip install -q -c requirements/constraints.txt . pytest pytest-timeout hypothesis
	.venv-bare/bin/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is not None)" || (echo "error: torch is in the bare environment" && exit 1)
	AMBIGUITY_BARE=1 .venv-bare/bin/python -m pytest -q $(BARE_TESTS)
