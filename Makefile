# Two commands do all the set-up: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: basemap bundle catalogs run demo test lint typecheck test-js test-py bench-smoke system bench clean lock dist \
	test-release test-host

# Every dependency comes from the hash-pinned locks (requirements/README.md): first
# pip, setuptools and wheel (build.txt), so that PyICU builds with those and pip
# fetches no unpinned build backend; then the rest. The project itself goes in
# last, editable and without dependencies, because pip cannot check a hash of a
# local checkout.
$(STAMP): pyproject.toml requirements/build.txt requirements/runtime.txt requirements/dev.txt
	bash scripts/install-system-deps.sh --build
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/build.txt
	$(BIN)/python -m pip install --quiet --require-hashes --no-build-isolation \
		-r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# axe-core for the accessibility browser tests (tests/axe/: test tooling only, never
# served), exactly as its lock file pins it, with its integrity hash checked by npm.
# Apart from $(STAMP) because `make run` needs no Node.js; `make test` gets it
# through test-py, after `system` has made sure Node.js is there.
AXE := tests/axe/node_modules/.package-lock.json
$(AXE): tests/axe/package.json tests/axe/package-lock.json
	npm ci --prefix tests/axe --no-audit --no-fund --ignore-scripts
	touch $@

# Remake the lock files from pyproject.toml with uv (itself hash-pinned in
# requirements/tools.txt). Versions already in the lock files stay unless
# `make lock UPGRADE=1`.
LOCK_TOOL := build/lock-tool
UV_COMPILE = $(LOCK_TOOL)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 \
	--custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)

$(LOCK_TOOL)/bin/uv: requirements/tools.txt
	$(PYTHON) -m venv $(LOCK_TOOL)
	$(LOCK_TOOL)/bin/python -m pip install --quiet --require-hashes -r requirements/tools.txt
	touch $@

# build.txt: pip, setuptools and wheel, installed first everywhere; runtime.txt: a
# portal host; reviewer.txt: a reviewer's workstation (the reviewer extra, PyICU);
# dev.txt: everything, for make run and make test. Each agrees with the ones before.
lock: $(LOCK_TOOL)/bin/uv
	$(UV_COMPILE) requirements/build.in -o requirements/build.txt
	$(UV_COMPILE) pyproject.toml -o requirements/runtime.txt
	$(UV_COMPILE) pyproject.toml --extra reviewer -c requirements/runtime.txt \
		-o requirements/reviewer.txt
	$(UV_COMPILE) pyproject.toml --extra dev --extra reviewer -c requirements/runtime.txt \
		-c requirements/build.txt -o requirements/dev.txt

# The sdist, and the wheel built from it, in dist/: built from the committed files
# only (git archive HEAD), so nothing untracked or uncommitted in the checkout (a
# key, a .env, a data directory, an editor's backup) can ship.
RELEASE_SRC := build/release-src
dist: $(STAMP)
	rm -rf dist $(RELEASE_SRC) $(RELEASE_SRC).tar
	mkdir -p $(RELEASE_SRC)
	git archive --format=tar -o $(RELEASE_SRC).tar HEAD
	tar -xf $(RELEASE_SRC).tar -C $(RELEASE_SRC)
	$(BIN)/python -m build --no-isolation --outdir dist $(RELEASE_SRC)
	@git diff --quiet HEAD -- . || echo "dist: built from commit $$(git rev-parse --short HEAD);" \
		"uncommitted changes in the checkout are not in it"

# Build the wheel, install it into a fresh venv outside the checkout and run it.
test-release: $(STAMP)
	$(BIN)/pytest -q tests/release

# The installer on a booted Debian 12 under qemu (tests/host/; root, slow).
test-host: $(STAMP)
	bash scripts/host-test.sh

system:
	bash scripts/install-system-deps.sh

# Natural Earth land for the map (incident_db/basemap/land.bin, committed), remade from
# world-atlas exactly as incident_db/basemap/npm/package-lock.json pins it (npm ci
# checks its integrity hash) into build/basemap-npm/.
basemap: $(STAMP)
	$(BIN)/python -m incident_db.basemap.regenerate

# The page bundles a browser runs (portal/web/static/bundle/, committed, so that
# neither `make run` nor the wheel needs Node.js), made from portal/web/static/js/ by
# esbuild exactly as scripts/bundler/package-lock.json pins it. Run it after changing
# a module: tests/integration/test_bundles.py fails on a bundle that is not a fresh build.
bundle: $(STAMP)
	$(BIN)/python scripts/bundle.py

# The message catalogs, compiled beside their .po files (the wheel compiles its own,
# setup.py). Fails on any fuzzy, missing or broken entry in a shipped language.
catalogs: $(STAMP)
	$(BIN)/python scripts/catalogs.py compile

run: $(STAMP) catalogs
	@test -f var/secret_key || $(BIN)/portal --data-dir var init --demo
	$(BIN)/portal --data-dir var serve --host 127.0.0.1 --port $(or $(PORT),8000)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict crypto

test-js: system $(STAMP)
	node --test tests/js/

# Two workers (pytest-xdist), each taking whole test modules (a module's fixtures,
# servers and browsers stay on one worker): the suite is mostly waiting on
# Chromium, PostgreSQL and gunicorn, so on two cores it takes about half as long.
# TEST_WORKERS=0 runs it in one process, as before.
TEST_WORKERS ?= 2
test-py: $(STAMP) $(AXE) catalogs
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# Every benchmark in bench/ at its smoke size (seconds each): each prints its ratio
# against a baseline of the same run and exits non-zero on any error.
# tests/unit/test_bench_layout.py checks that none is left out.
bench-smoke: $(STAMP) system catalogs
	$(BIN)/python -m bench.envelope --smoke
	$(BIN)/python -m bench.reviewer_import --smoke
	$(BIN)/python -m bench.reviewer_desk --smoke
	$(BIN)/python -m bench.incidents --smoke
	$(BIN)/python -m bench.incident_db_web --smoke
	$(BIN)/python -m bench.partner_feeds --smoke
	$(BIN)/python -m bench.intake_throughput --smoke
	$(BIN)/python -m bench.upload_memory --smoke
	$(BIN)/python -m bench.page_weight --smoke
	$(BIN)/python -m bench.satellite --smoke
	$(BIN)/python -m bench.browser_encrypt --smoke
	$(BIN)/python -m bench.pow_browser --smoke
	$(BIN)/python -m bench.fuzz --smoke

test: $(STAMP) system lint typecheck test-js test-py bench-smoke

# Every benchmark at full size: tens of minutes on two cores.
bench: $(STAMP) system catalogs
	$(BIN)/python -m bench.envelope
	$(BIN)/python -m bench.reviewer_import
	$(BIN)/python -m bench.reviewer_desk
	$(BIN)/python -m bench.incidents
	$(BIN)/python -m bench.incident_db_web
	$(BIN)/python -m bench.partner_feeds
	$(BIN)/python -m bench.intake_throughput
	$(BIN)/python -m bench.upload_memory
	$(BIN)/python -m bench.page_weight
	$(BIN)/python -m bench.satellite
	$(BIN)/python -m bench.browser_encrypt
	$(BIN)/python -m bench.pow_browser
	$(BIN)/python -m bench.fuzz

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
