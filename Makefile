# Two commands for a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -qq
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: install system-deps test test-unit test-integration demo up down status bench lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing into $(VENV) (torch CPU build first) ..."
	$(PIP) install --upgrade pip
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

# The official client of the seed documents' plugin API (1.3.1), kept apart from the newest
# one the dev extras install: tests drive both plugin eras (tests/integration/test_plugins_api.py).
CLIENT_131 := $(VENV)/mixpeek-client-1.3.1
$(CLIENT_131)/.installed: $(STAMP)
	$(PIP) install --no-deps --target $(CLIENT_131) mixpeek==1.3.1
	@touch $@

install: $(STAMP) $(CLIENT_131)/.installed system-deps

# The plugin sandboxes (bubblewrap, and gVisor's runsc) and the media tools plugins may call
# through `run_tool` (sox is enough for the tests). Debian packages, installed when missing.
SYSTEM_PACKAGES := bwrap:bubblewrap runsc:runsc sox:sox
system-deps:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
	  command -v $${entry%%:*} >/dev/null 2>&1 || missing="$$missing $${entry#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  { command -v apt-get >/dev/null 2>&1 && (apt-get update -qq && \
	    apt-get install -y -qq $$missing) >/dev/null 2>&1; } || \
	  echo "note: could not install$$missing (plugin hosts need bubblewrap, or MIXPEEK_SANDBOX=gvisor with runsc)"; \
	fi

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
define run_pytest
	@$(PY) -m pytest $(1) -ra --durations=25; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests in $(1)"; exit 1; fi; exit $$rc
endef

test: install
	$(call run_pytest,tests)

test-unit: install
	$(call run_pytest,tests/unit)

test-integration: install
	$(call run_pytest,tests/integration)

DEMO_LLM_PORT ?= 18765
DEMO_LLM_PROVIDERS := [{"name": "stand-in", "kind": "openai", "base_url": "http://127.0.0.1:$(DEMO_LLM_PORT)/v1", "api_key_secret": "demo_llm_key", "default": true, "models": {"stand-in-chat": {"input_usd_per_million": 150, "output_usd_per_million": 600}, "stand-in-embed": {"input_usd_per_million": 20}}}]

# Without a configured LLM provider, the demo's stack gets a local OpenAI-compatible stand-in
# (examples/services/openai_stand_in.py), and says so.
demo: install
	@if [ -z "$$MIXPEEK_LLM_PROVIDERS" ]; then \
	  echo "No LLM provider configured (MIXPEEK_LLM_PROVIDERS): starting an OpenAI-compatible stand-in on 127.0.0.1:$(DEMO_LLM_PORT) (keyword labels, hash embeddings; not a model)"; \
	  (nohup $(PY) examples/services/openai_stand_in.py $(DEMO_LLM_PORT) >/dev/null 2>&1 &); \
	  export MIXPEEK_LLM_PROVIDERS='$(DEMO_LLM_PROVIDERS)'; \
	fi; \
	$(VENV)/bin/mixpeek up && $(PY) examples/demo.py

up: install
	$(VENV)/bin/mixpeek up

down:
	$(VENV)/bin/mixpeek down

status:
	$(VENV)/bin/mixpeek status

bench: install
	@for script in bench/*.py; do [ -e "$$script" ] || continue; echo "== $$script"; $(PY) $$script || exit 1; done

# ruff (lint + format), the layer contracts of docs/ARCHITECTURE.md (import-linter), mypy.
lint: install
	$(PY) -m ruff check mixpeek_orchestration plugin_assets tests examples bench docs
	$(PY) -m ruff format --check mixpeek_orchestration plugin_assets tests examples bench docs
	$(VENV)/bin/lint-imports
	$(PY) -m mypy mixpeek_orchestration plugin_assets

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
