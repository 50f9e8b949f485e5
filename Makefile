# nbcov's two commands: `make demo` and `make test`. Both set themselves up from nothing.

# The interpreters: pyenv's (as on CI), else whatever python3.X is on PATH.
find_python = $(firstword $(wildcard /root/.pyenv/versions/$(1).*/bin/python$(1)) $(shell command -v python$(1) 2>/dev/null))
PY311 := $(call find_python,3.11)
PY312 := $(call find_python,3.12)
PY313 := $(call find_python,3.13)

VENV := .venv
# Two workers: most of a test is waiting for a kernel or a subprocess, so 2 cores run 2 well.
PYTEST_ARGS ?= -n 2 --dist loadgroup

.PHONY: demo test typecheck test-unit test-3.11 test-3.12 test-3.13 test-floors bench clean browser

# .venv is the main environment (Python 3.12); .venv-3.11 and .venv-3.13 exist for the test matrix.
$(VENV)/.installed: pyproject.toml
	@test -n "$(PY312)" || { echo "Python 3.12 not found (looked in /root/.pyenv/versions and PATH)"; exit 2; }
	$(PY312) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	touch $@

.venv-%/.installed: pyproject.toml
	@test -n "$(call find_python,$*)" || { echo "Python $* not found (looked in /root/.pyenv/versions and PATH)"; exit 2; }
	$(call find_python,$*) -m venv .venv-$*
	.venv-$*/bin/python -m pip install -q --upgrade pip
	.venv-$*/bin/python -m pip install -q -e '.[test]'
	touch $@

# The demo needs nbcov and its own dependencies only, not the test tools (JupyterLab, pandas, ...).
$(VENV)/.demo-installed: pyproject.toml
	@test -n "$(PY312)" || { echo "Python 3.12 not found (looked in /root/.pyenv/versions and PATH)"; exit 2; }
	$(PY312) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e .
	touch $@

demo: $(VENV)/.demo-installed
	$(VENV)/bin/python scripts/demo.py

# The four environments first, side by side (installing is mostly waiting on files and one core each);
# then the cheapest checks first, so a mistake fails in seconds: the type check, the unit tests, the kernels.
# The four environments first, side by side (installing is mostly waiting on files, one core each);
# then the cheapest checks first, so a mistake fails in seconds: the type check, the unit tests, the kernels.
test:
	$(MAKE) -j 4 $(VENVS) .venv-floors/.installed
	$(MAKE) typecheck test-unit test-3.12 test-3.11 test-3.13 test-floors

# Only .venv is needed: mypy checks the sources against the packages installed there (config: pyproject.toml).
typecheck: $(VENV)/.installed
	$(VENV)/bin/python -m mypy

# Tests needing no kernel and no other process (marker `unit`; all of tests/unit/ has it), on Python 3.12.
test-unit: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -m unit $(PYTEST_ARGS)

# Every suite needs all three environments: some tests combine data measured by two Pythons.
VENVS := $(VENV)/.installed .venv-3.11/.installed .venv-3.13/.installed

# The dependency floors: every direct dependency at the lowest version pyproject.toml allows (scripts/floors.py),
# on Python 3.12 (sys.monitoring, where coverage.py's internals moved most). The JupyterLab and Notebook 7 tests (e2e) are
# left out: those frontends bring their own newest kernel-side packages.
.venv-floors/.installed: pyproject.toml scripts/floors.py
	@test -n "$(PY312)" || { echo "Python 3.12 not found (looked in /root/.pyenv/versions and PATH)"; exit 2; }
	$(PY312) -m venv .venv-floors
	.venv-floors/bin/python -m pip install -q --upgrade pip
	.venv-floors/bin/python scripts/floors.py > .venv-floors/constraints.txt
	.venv-floors/bin/python -m pip install -q -c .venv-floors/constraints.txt -e '.[test]'
	touch $@

# Headless Chromium for the HTML report's browser tests (tests/test_html.py): Debian's package, driven by
# Python Playwright with executable_path=/usr/bin/chromium. Never `playwright install` (no browser download).
browser:
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# Run on Python 3.12 only: tests whose subject is the same whatever the Python the kernel runs on, left out
# on 3.11, 3.13 and at the floors (each run costs the 25-minute budget of `make test`).
# - e2e: what JupyterLab, Notebook 7 and terminal IPython send the kernel (cell ids, the session's notebook) does
#   not depend on the kernel's Python, and the kernel's side of it runs on every Python in the LiveKernel tests
#   (tests/kernels.py). At the floors the frontends would also bring their own newest kernel-side packages.
# - tests/test_soak.py: the data file's lock, journal and held signals under random SIGINT/SIGTERM/SIGKILL, one
#   code path on every Python (file locks, signal handlers, SQLite); ~80 s.
# - the two hypothesis tests of tests/test_combine_security.py (slow: one nbcov process per example): which
#   names combine, report and html accept is string and file-system logic (names, O_NOFOLLOW).
# The unit tests (seconds) stay in every run: they are where Python versions differ cheaply (ast, tokenize).
ONCE_ONLY := -m "not e2e" --deselect tests/test_soak.py \
	--deselect tests/test_combine_security.py::test_combine_writes_only_its_data_file_and_store \
	--deselect tests/test_combine_security.py::test_report_and_html_of_hostile_data_write_only_the_report \
	--deselect tests/test_packaging.py
# And at the floors but not on 3.11/3.13: the bad-input table (one `nbcov` process per row) checks the CLI's
# arguments and coverage.py's reading of damaged data files: the packages' versions matter, the Python's do not.
# Its live-kernel magics test runs everywhere.
# tests/test_runners.py too: the runners reach kernels through IPython's PYTHONSTARTUP and jupyter_client,
# whose versions matter (the floors run it), not the Python's.
OTHER_PYTHONS := $(ONCE_ONLY) --deselect tests/test_bad_input.py::test_bad_input_is_one_line_and_exit_2 \
	--deselect tests/test_runners.py

# The unit tests ran first (test-unit, same Python and packages).
test-3.12: $(VENVS) browser test-unit
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) -m "not unit"

test-3.11: $(VENVS) browser
	.venv-3.11/bin/python -m pytest $(PYTEST_ARGS) $(OTHER_PYTHONS)

test-3.13: $(VENVS) browser
	.venv-3.13/bin/python -m pytest $(PYTEST_ARGS) $(OTHER_PYTHONS)

test-floors: $(VENVS) .venv-floors/.installed browser
	.venv-floors/bin/python -m pytest $(PYTEST_ARGS) $(ONCE_ONLY)

# slipcover is only the outside reference in branch_bench.py's table.
bench: $(VENV)/.installed .venv-3.13/.installed
	$(VENV)/bin/python -m pip install -q pyperformance slipcover
	.venv-3.13/bin/python -m pip install -q pyperformance slipcover
	$(VENV)/bin/python bench/run.py
	.venv-3.13/bin/python bench/run.py
	$(VENV)/bin/python bench/branch_bench.py
	.venv-3.13/bin/python bench/branch_bench.py
	$(VENV)/bin/python bench/covtest_bench.py
	COVERAGE_CORE=sysmon $(VENV)/bin/python bench/run_bench.py
	COVERAGE_CORE=sysmon .venv-3.13/bin/python bench/run_bench.py
	$(VENV)/bin/python bench/exec_bench.py
	.venv-3.13/bin/python bench/exec_bench.py
	$(VENV)/bin/python bench/html_bench.py

clean:
	rm -rf .venv .venv-3.11 .venv-3.13 .venv-floors reports test-artifacts .coverage .nbcov
