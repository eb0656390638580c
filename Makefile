# awsenv — every target runs in the project's own virtualenv (.venv). Each set of extras
# has a stamp file in .venv, so `make demo` installs only what the demo needs and
# `make test` adds the test tools, in either order.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin
PIP     = $(BIN)/python -m pip --quiet --disable-pip-version-check
# An editable install in setuptools' compat mode: a plain .pth entry for the checkout, so
# starting Python imports nothing more (the default mode's import hook loads pathlib and
# importlib.util into every process, which the fast path must not pay; strict mode would
# hide a new module until the next install). Its one notice, that the mode is
# transitional, is silenced by its title; if setuptools drops the mode, pip fails loudly.
EDITABLE = PYTHONWARNINGS='ignore:Compat editable installs' $(PIP) install \
	--config-settings editable_mode=compat -e

.PHONY: install demo test lint completions bench mutants clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip

# awsenv with its run-time dependencies, the moto emulator and the AWS CLI.
$(VENV)/.demo: pyproject.toml | $(BIN)/python
	@echo "make demo: installing awsenv, the moto AWS emulator and the AWS CLI into $(VENV) (a few minutes the first time)..."
	@$(EDITABLE) '.[demo]'
	@touch $@

# All of that plus the test tools (the test extra includes the demo extra).
$(VENV)/.test: pyproject.toml | $(BIN)/python
	@echo "make: installing awsenv and its test tools into $(VENV) (a few minutes the first time)..."
	@$(EDITABLE) '.[test]'
	@touch $@ $(VENV)/.demo

install: $(VENV)/.test

demo: $(VENV)/.demo
	@$(BIN)/python demo/demo.py

test: $(VENV)/.test
	$(BIN)/python -m pytest

completions: $(VENV)/.demo
	$(BIN)/python -m awsenv.completions completions

bench: $(VENV)/.demo
	$(BIN)/python bench/bench.py

# Mutation testing (optional, slow, not in CI): cosmic-ray changes one thing at a time
# in the units of mutants/run.py (shells/, environ, mfa, session, runtime and the
# agent's safety checks), in place, and runs the tests that cover each; a mutant the
# tests don't notice "survives". Results are kept in .mutants/, so an interrupted run
# goes on where it stopped; `make mutants UNITS=mfa` runs one unit.
UNITS ?=
mutants: install
	@$(EDITABLE) '.[test,mutants]'
	$(BIN)/python mutants/run.py $(UNITS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mutants
