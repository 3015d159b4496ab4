# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1:8000

.PHONY: demo test test-browser test-celery install lint migrations-check serve clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_catalogue
	$(PY) manage.py seed_demo
	@# --insecure: serve static files without DEBUG (a demo; production uses collectstatic)
	$(PY) manage.py runserver --insecure $(HOST)

test: install
	$(PY) -m pytest -q

test-browser: install
	OPENCAS_REQUIRE_SERVICES=1 $(PY) -m pytest -q -m browser

test-celery: install
	OPENCAS_REQUIRE_SERVICES=1 $(PY) -m pytest -q -m redis

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf var media staticfiles
