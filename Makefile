# Two commands for a newcomer: `make demo` and `make test`.
# The CPU set-up pins the CPU build of torch through constraints-cpu.txt (no CUDA wheels).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test clean chromium fashion-mnist compiler

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-demo: pyproject.toml constraints-cpu.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints-cpu.txt -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints-cpu.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints-cpu.txt -e '.[test,export,serve]'
	touch $@

# The browser tests (tests/serve/test_e2e.py) drive Debian's chromium; Playwright's own browser
# download is never used. Installed here when missing (root on Debian), else the command to run.
chromium:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -q && apt-get install -y -q chromium; \
	  else echo "make test needs Chromium for the browser tests; run: sudo apt-get install -y chromium" >&2; exit 1; fi; }

# The Fashion-MNIST weights test reads Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist);
# installed here when missing (root on Debian); elsewhere that test is skipped with the command to run.
fashion-mnist:
	@test -d /usr/share/datasets/fashion-mnist || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -q && apt-get install -y -q dataset-fashion-mnist; \
	  else echo "note: the Fashion-MNIST weights test is skipped; to run it: sudo apt-get install -y dataset-fashion-mnist" >&2; fi; }

# The LRU's C++ kernel (src/rnnvision/ops/csrc) is built on first use by a C++ compiler; installed here
# when missing (root on Debian); elsewhere its tests are skipped and the layer runs its scan.
compiler:
	@command -v c++ >/dev/null || command -v g++ >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -q && apt-get install -y -q g++; \
	  else echo "note: the LRU kernel tests are skipped without a C++ compiler; to run them: sudo apt-get install -y g++" >&2; fi; }

demo: $(VENV)/.installed-demo
	$(BIN)/rnnvision demo

# The lint and type gates first (seconds), then the tests. Configured in pyproject.toml.
test: $(VENV)/.installed-test chromium fashion-mnist compiler
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy src
	$(BIN)/python -m pytest -q -n 2 --durations=10 tests

clean:
	rm -rf $(VENV) runs .pytest_cache
