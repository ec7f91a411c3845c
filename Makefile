# Two commands for a newcomer: `make demo` and `make test`.
# The CPU set-up pins the CPU build of torch through constraints-cpu.txt (no CUDA wheels).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-demo: pyproject.toml constraints-cpu.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints-cpu.txt -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints-cpu.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints-cpu.txt -e '.[test,export]'
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/rnnvision demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -n 2 --durations=10 tests

clean:
	rm -rf $(VENV) runs .pytest_cache
