# awsenv — every target runs in the project's own virtualenv (.venv), made by `make install`.
VENV   ?= .venv
PYTHON ?= python3
BIN     = $(VENV)/bin

.PHONY: install demo test lint completions bench mutants clean

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

# Mutation testing (optional, slow, not in CI): mutmut changes one thing at a time in
# the modules below, in place, and runs the tests that cover them; a mutant the tests
# don't notice "survives". MUTATE and MUTANT_TESTS may be narrowed on the command line,
# e.g. `make mutants MUTATE=awsenv/mfa.py MUTANT_TESTS=tests/test_audit.py`.
MUTATE       ?= awsenv/shells/,awsenv/mfa.py,awsenv/session.py,awsenv/environ.py,awsenv/runtime.py,awsenv/agent.py
MUTANT_TESTS ?= tests/test_quoting.py tests/test_audit.py tests/test_core.py tests/test_edges.py \
                tests/test_hostile_profile.py tests/test_shells.py
mutants: install
	$(BIN)/pip install --quiet -e '.[test,mutants]' --config-settings editable_mode=compat
	find awsenv -name __pycache__ -prune -exec rm -rf {} +
	PYTHONDONTWRITEBYTECODE=1 CI=true $(BIN)/mutmut run --paths-to-mutate '$(MUTATE)' \
	    --runner '$(BIN)/python -m pytest -x -q -p no:cacheprovider $(MUTANT_TESTS)' || true
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mutmut-cache html
