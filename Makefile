PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv run test lint bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: venv
	$(BIN)/ivr call flows/telebanking.yaml

lint: venv
	$(BIN)/ruff check ivr tests bench

test: lint
	$(BIN)/mypy ivr
	$(BIN)/pytest -q

bench: venv
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
