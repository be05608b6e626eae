PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests need: a real redis-server, Graphviz to check diagrams
APT_NEEDS := redis-server:redis-server dot:graphviz
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: venv system-deps run test lint bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

system-deps:
	@need=""; for pair in $(APT_NEEDS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || need="$$need $${pair##*:}"; done; \
	if [ -n "$$need" ]; then echo "installing:$$need"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$need; fi

run: venv
	$(BIN)/ivr serve

lint: venv
	$(BIN)/ruff check ivr tests bench
	$(BIN)/ruff format --check ivr tests bench
	$(BIN)/mypy ivr

test: venv system-deps lint
	$(BIN)/ivr validate flows
	$(BIN)/pytest -q

bench: venv
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/webhook.py --rounds 3  # the median of three rounds: one can be a noisy minute

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
