# awsenv. `make demo` and `make test` run what a user installs: the wheel that
# `make dist` builds (from the sdist, as PyPI would), installed into .venv as pip
# installs it, never the checkout. `make dev` is an editable install for hacking, in a
# virtualenv of its own (.venv-dev), which `make mutants` uses.
VENV     ?= .venv
DEV_VENV ?= .venv-dev
# build and twine, apart: twine's readme-renderer and the AWS CLI want different docutils.
DIST_VENV ?= .venv-dist
PYTHON   ?= python3
BIN       = $(VENV)/bin
PIP       = $(BIN)/python -m pip --quiet --disable-pip-version-check
DEV_PIP   = $(DEV_VENV)/bin/python -m pip --quiet --disable-pip-version-check

# The version lives in awsenv/__init__.py alone; pyproject.toml reads it from there.
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"$$/\1/p' awsenv/__init__.py)
WHEEL    = dist/awsenv_shell-$(VERSION)-py3-none-any.whl
SDIST    = dist/awsenv_shell-$(VERSION).tar.gz
# What goes into them: a change to any of these builds them again.
SOURCES := pyproject.toml README.md $(wildcard completions/*) \
	$(shell find awsenv -type f ! -path '*/__pycache__/*' ! -name '*.pyc')

.PHONY: demo test dist dev lint completions bench mutants system clean

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip

$(DIST_VENV)/bin/python:
	@echo "make: creating $(DIST_VENV) with the build tools (build, twine), once..."
	@$(PYTHON) -m venv $(DIST_VENV)
	@$(DIST_VENV)/bin/python -m pip --quiet --disable-pip-version-check install --upgrade pip build twine

# The sdist, then the wheel built from it: a file the sdist forgot is missing from the
# wheel too, and the tests see that.
$(WHEEL) $(SDIST) &: $(SOURCES) | $(DIST_VENV)/bin/python
	@rm -f $(WHEEL) $(SDIST)
	@echo "make: building the sdist, then the wheel from it, into dist/..."
	@$(DIST_VENV)/bin/python -m build --outdir dist . >build.log 2>&1 || { cat build.log >&2; rm -f build.log; exit 1; }
	@rm -rf build.log awsenv_shell.egg-info

# Each set of extras has a stamp: `make demo` installs only what the demo needs and
# `make test` adds the test tools, in either order. The wheel is installed again (without
# touching its dependencies) whenever it was built anew.
$(VENV)/.demo: $(WHEEL) | $(BIN)/python
	@echo "make demo: installing awsenv (the wheel in dist/), the moto AWS emulator and the AWS CLI into $(VENV)..."
	@$(PIP) install "$(abspath $(WHEEL))[demo]"
	@$(PIP) install --no-deps --force-reinstall "$(abspath $(WHEEL))"
	@touch $@

$(VENV)/.test: $(WHEEL) | $(BIN)/python
	@echo "make: installing awsenv (the wheel in dist/) and its test tools into $(VENV)..."
	@$(PIP) install "$(abspath $(WHEEL))[test]"
	@$(PIP) install --no-deps --force-reinstall "$(abspath $(WHEEL))"
	@touch $@ $(VENV)/.demo

# The Debian packages the suite drives for real (shells, gnome-keyring, D-Bus, pass,
# GnuPG, Go, a JDK and Maven) and the JavaScript SDK: installed when missing and
# possible, else one line with the command to run. The Go and Java consumers
# (tests/consumers/) are built by the tests, once per session, outside the checkout.
system:
	@tools/system-packages
	@cd tests/node && { [ -d node_modules ] || npm ci --no-audit --no-fund --silent; }

demo: $(VENV)/.demo
	@$(BIN)/python demo/demo.py

# pytest's own launcher, not `python -m pytest`: -m would put the checkout first on
# sys.path, and the in-process tests would import the source tree, not the wheel.
# The tests' temporary folders go in .pytest-tmp/, not /tmp, and passing ones are removed.
test: system $(VENV)/.test
	AWSENV_TESTS_INSTALLED=wheel $(BIN)/pytest --basetemp=.pytest-tmp

dist: $(WHEEL) $(SDIST)
	@$(DIST_VENV)/bin/python -m twine check --strict $(WHEEL) $(SDIST)
	@git diff --quiet HEAD -- 2>/dev/null && [ -z "$$(git ls-files --others --exclude-standard)" ] \
		|| echo "make dist: the tree has uncommitted changes; build a release from a clean checkout" >&2

dev: $(DEV_VENV)/.dev

# An editable install in setuptools' compat mode: a plain .pth entry for the checkout, so
# starting Python imports nothing more (the default mode's import hook would load
# pathlib and importlib.util into every process, which the fast path must not pay).
$(DEV_VENV)/.dev: pyproject.toml
	@$(PYTHON) -m venv $(DEV_VENV)
	@$(DEV_PIP) install --upgrade pip
	@echo "make dev: an editable install of the checkout, with the test tools, in $(DEV_VENV)"
	@PYTHONWARNINGS='ignore:Compat editable installs' $(DEV_PIP) install \
		--config-settings editable_mode=compat -e '.[test,mutants]'
	@touch $@

completions: $(VENV)/.demo
	$(BIN)/python tools/completions.py completions

# make bench (not in CI): awsenv against awsume (from PyPI, into bench/.venv-awsume) and
# the Go peers aws-vault and granted, which it installs at pinned versions with Go when Go is
# there (bench/peers.py), into ~/.cache/awsenv-bench, outside the checkout.
bench: $(VENV)/.demo
	$(BIN)/python bench/bench.py

# Mutation testing (optional, slow, not in CI): cosmic-ray changes one thing at a time
# in the units of mutants/run.py (shells/, environ, mfa, session, runtime and the
# agent's safety checks), in place, and runs the tests that cover each; a mutant the
# tests don't notice "survives". It mutates the checkout, so it runs in the editable
# install of `make dev`. Results are kept in .mutants/, so an interrupted run goes on
# where it stopped; `make mutants UNITS=mfa` runs one unit.
UNITS ?=
mutants: system dev
	$(DEV_VENV)/bin/python mutants/run.py $(UNITS)

clean:
	rm -rf $(VENV) $(DEV_VENV) $(DIST_VENV) build dist *.egg-info .pytest_cache .mutants
