PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv installs from uv.lock; it is bootstrapped with pip into .tools, at the version and
# hashes of uv-requirements.txt
TOOLS := .tools
UV := $(TOOLS)/bin/uv
# CI reaches only package registries: uv must use $(PY), never download a Python
export UV_PYTHON_DOWNLOADS := never
# Debian packages the tests need: a real redis-server, Graphviz to check diagrams, a
# PostgreSQL server (its binaries are off PATH: a glob, expanded by the unquoted check),
# Prometheus and promtool to run the metrics rules, Chromium and its driver to open the
# report page, espeak-ng to speak prompts and make the callers of the speech tests, ffmpeg
# to convert recordings, nginx as the load balancer of the scale-out test (in /usr/sbin,
# off a plain user's PATH)
APT_NEEDS := redis-server:redis-server dot:graphviz /usr/lib/postgresql/*/bin/initdb:postgresql prometheus:prometheus \
	chromium:chromium chromedriver:chromium-driver espeak-ng:espeak-ng ffmpeg:ffmpeg /usr/sbin/nginx:nginx
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: venv lock lock-upgrade check-lock system-deps run test lint bench clean

$(TOOLS)/.installed: uv-requirements.txt
	rm -rf $(TOOLS)
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --require-hashes -r uv-requirements.txt
	touch $@

venv: $(VENV)/.installed

# exactly what uv.lock says, dev tools included, hashes checked; --locked refuses a stale lock
$(VENV)/.installed: pyproject.toml uv.lock $(TOOLS)/.installed
	$(UV) sync --locked --python $(PY)
	touch $@

# after editing the dependencies in pyproject.toml: changes only what the edit needs
lock: $(TOOLS)/.installed
	$(UV) lock

# the newest releases the ranges in pyproject.toml allow
lock-upgrade: $(TOOLS)/.installed
	$(UV) lock --upgrade

check-lock: $(TOOLS)/.installed
	$(UV) lock --check

system-deps:
	@need=""; for pair in $(APT_NEEDS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || need="$$need $${pair##*:}"; done; \
	if [ -n "$$need" ]; then echo "installing:$$need"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$need; fi

run: venv
	$(BIN)/ivr serve --demo

lint: venv
	$(BIN)/ruff check ivr tests bench
	$(BIN)/ruff format --check ivr tests bench
	$(BIN)/mypy ivr

# check-lock first: a lock that disagrees with pyproject.toml fails before anything installs
test: check-lock venv system-deps lint
	$(BIN)/ivr validate flows
	$(BIN)/pytest -q

bench: venv
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/webhook.py --rounds 3  # the median of three rounds: one can be a noisy minute

clean:
	rm -rf $(VENV) $(TOOLS) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
