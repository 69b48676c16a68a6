# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run demo test lint typecheck test-js test-py bench-smoke system bench clean

$(STAMP): pyproject.toml
	bash scripts/install-system-deps.sh --build
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

system:
	bash scripts/install-system-deps.sh

run: $(STAMP)
	@test -f var/secret_key || $(BIN)/portal --data-dir var init --demo
	$(BIN)/portal --data-dir var serve --host 127.0.0.1 --port 8000

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict crypto

test-js: system $(STAMP)
	node --test tests/js/

test-py: $(STAMP)
	$(BIN)/pytest

# The benchmarks of the reporter's first visit and of a report sent over a shaped
# satellite link, at their fast smoke sizes: they fail loudly on any error.
bench-smoke: $(STAMP) system
	$(BIN)/python -m bench.page_weight
	$(BIN)/python -m bench.satellite --smoke

test: $(STAMP) system lint typecheck test-js test-py bench-smoke

bench: $(STAMP)
	$(BIN)/python bench/envelope.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
