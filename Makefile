# Both targets install what they need first (idempotent), as root on Debian 12 / Ubuntu.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: bootstrap test test-unit test-integration test-model lint demo clean-lab

bootstrap:
	./scripts/bootstrap.sh

# NETSHADOW_REQUIRE_LAB=1: bootstrap installed OVS and Mininet, so the integration tier must run.
test: bootstrap
	$(VENV)/bin/ruff check .
	NETSHADOW_REQUIRE_LAB=1 NETSHADOW_REQUIRE_TF=1 $(PY) -m pytest $(PYTEST_ARGS)

test-unit: bootstrap
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: bootstrap
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-model: bootstrap
	$(PY) -m pytest tests/model $(PYTEST_ARGS)

lint: bootstrap
	$(VENV)/bin/ruff check .

demo: bootstrap
	$(VENV)/bin/netshadow demo

clean-lab: bootstrap
	$(VENV)/bin/netshadow lab down
