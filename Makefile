# awsenv — every target runs in the project's own virtualenv (.venv), made by `make install`.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin

.PHONY: install demo test lint completions bench clean

$(BIN)/awsenv: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	@touch $@

install: $(BIN)/awsenv

demo: install
	$(BIN)/python demo/demo.py

test: install
	$(BIN)/python -m pytest

completions: install
	$(BIN)/python -m awsenv.completions completions

bench: install
	$(BIN)/python bench/bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
