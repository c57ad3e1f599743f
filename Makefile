# Model Hub: one entry point for installing, testing, benchmarking and the demo.
# Every target installs what is missing first; a second run skips the installs.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

# The npm packages carry anvil, forge, cast and solc; tools/solc lets ape-solidity use solc.
export PATH := $(CURDIR)/node_modules/.bin:$(BIN):$(PATH)
export SOLCX_BINARY_PATH := $(CURDIR)/tools/solc
export APE_DATA_FOLDER ?= $(CURDIR)/.ape

.PHONY: install compile postgres test test-invariants slither demo up up-clean wheel wheelhouse bench bench-gas bench-relayer bench-fast bench-indexer clean
.PHONY: sim bench-sim

install: $(PY_STAMP) $(NPM_STAMP)

$(PY_STAMP): requirements.lock pyproject.toml
	@echo "==> installing Python packages into $(VENV) (first run only)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

$(NPM_STAMP): package.json package-lock.json
	@echo "==> installing npm tools: solc, anvil, forge, cast, OpenZeppelin (first run only)"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Recompiles (with --force: Ape does not notice changed compiler settings on its own) only
# when a contract or the configuration changed since the last build.
BUILD_STAMP := .build/.compiled
ABI_STAMP := src/modelhub/abi/.written
CONTRACTS := $(shell find contracts -name '*.sol' -not -path '*/.cache/*')

compile: $(BUILD_STAMP) $(ABI_STAMP)

# Ape copies OpenZeppelin (~500 files) into contracts/.cache to compile, but lists at most 500
# files under contracts/ when it looks for sources: with the copy left there, our own contracts
# in sub-folders can drop out of that list. It is removed after compiling; Ape recreates it
# whenever it compiles again.
$(BUILD_STAMP): $(PY_STAMP) $(NPM_STAMP) $(CONTRACTS) ape-config.yaml
	$(BIN)/ape compile --force
	rm -rf contracts/.cache
	@touch $@

# The contracts' ABIs as the package's data (src/modelhub/abi/, generated, never committed): an
# installed modelhub reads them when it runs outside this checkout, where there is no Ape build.
$(ABI_STAMP): $(BUILD_STAMP)
	$(BIN)/python -c 'from modelhub.contracts import write_packaged_abis; write_packaged_abis()'
	@touch $@

# The modelhub wheel (dist/), with the ABIs: built offline by the venv's own setuptools.
wheel: compile
	rm -rf build dist
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist .

# The locked packages as wheels (.venv/wheelhouse), for installing the modelhub wheel into a
# fresh venv with pip --no-index (tests/packaging): fetched from the registry once, like `install`.
WHEELHOUSE := $(VENV)/wheelhouse
WHEELHOUSE_STAMP := $(WHEELHOUSE)/.complete

wheelhouse: $(WHEELHOUSE_STAMP)

$(WHEELHOUSE_STAMP): requirements.lock $(PY_STAMP)
	@echo "==> collecting the locked packages as wheels into $(WHEELHOUSE) (first run only)"
	$(BIN)/python -m pip wheel --quiet -r requirements.lock --wheel-dir $(WHEELHOUSE)
	@touch $@

# APE_FOUNDRY_HOST=auto: the tests start their own anvil on a free port, so they never touch a
# chain already running on 8545 (say one left up by `modelhub up`), nor another test run's.
# The CLI tests run in a session of their own: they drive their own chain through subprocesses,
# and run before the others they were seen to stop Ape's per-test snapshots from reverting.
# PostgreSQL for the indexer's tests, which start a throwaway server of their own: Debian's
# package, installed when missing (needs root, as on these machines and in CI).
PG_INITDB := /usr/lib/postgresql/15/bin/initdb

postgres:
	@test -x $(PG_INITDB) || { echo "==> installing PostgreSQL (first run only)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

# Chromium and its WebDriver for the hub's page tests (tests/web, Selenium): Debian's packages,
# installed when missing (needs root, as PostgreSQL above).
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver

.PHONY: chromium bench-hub

chromium:
	@test -x $(CHROMIUM) -a -x $(CHROMEDRIVER) || { echo "==> installing chromium and chromedriver (first run only)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

test: chromium wheelhouse
test: compile postgres
	APE_FOUNDRY_HOST=auto $(BIN)/ape test tests --ignore=tests/cli
	APE_FOUNDRY_HOST=auto $(BIN)/ape test tests/cli
	$(MAKE) test-invariants
	$(MAKE) slither

# Foundry invariant tests (tests/foundry, foundry.toml), built by forge with the compiler front.
test-invariants: $(NPM_STAMP)
	forge test --offline --use $(CURDIR)/tools/solc/solc-v0.8.37

# Slither on the contracts, from forge's build info (cache/slither); fails on any high or medium
# finding not explained by a `slither-disable-next-line` comment beside the code. Slither lives
# in a venv of its own (requirements-slither.lock), so that its pins never move Ape's.
SLITHER_VENV := $(VENV)/slither
SLITHER_STAMP := $(SLITHER_VENV)/.installed

$(SLITHER_STAMP): requirements-slither.lock
	@test -x $(SLITHER_VENV)/bin/python || $(PYTHON) -m venv $(SLITHER_VENV)
	$(SLITHER_VENV)/bin/python -m pip install --quiet -r requirements-slither.lock
	@touch $@

slither: $(SLITHER_STAMP) $(NPM_STAMP)
	forge build --force --offline --use $(CURDIR)/tools/solc/solc-v0.8.37 --build-info --skip test \
		--out cache/slither/out --cache-path cache/slither/cache
	$(SLITHER_VENV)/bin/slither . --foundry-ignore-compile --foundry-out-directory cache/slither/out \
		--filter-paths "tests/foundry/|node_modules/|contracts/testing/" --exclude-informational --exclude-low --fail-medium

# The main job: a local chain, a deployment, a relayer, the example models, paid calls and who
# earned what; everything it starts is stopped at the end (also on Ctrl-C).
demo: compile
	$(BIN)/modelhub demo

# The same, left running on 127.0.0.1:8545 (chain), :8700 (relayer) and :8800 (the hub) until Ctrl-C.
# Its state (chain, relayer, index) is kept in var/up/ between runs; up-clean starts afresh.
up: compile
	$(BIN)/modelhub up

up-clean: compile
	$(BIN)/modelhub up --fresh

bench-gas: compile
	$(BIN)/python bench/gas.py
	$(BIN)/python bench/receipts_gas.py

bench-relayer: compile
	$(BIN)/python bench/relayer.py

bench-fast: compile
	$(BIN)/python bench/fast_path.py

bench-indexer: compile postgres
	$(BIN)/python bench/indexer.py

# The market simulator (docs/simulator.md): fast-mode paid calls per minute beside the chain mode's per second.
bench-sim: compile
	$(BIN)/python bench/sim.py

# Page and API latency of the hub with 2,000 models and 1,000,000 calls, on SQLite and PostgreSQL.
bench-hub: install postgres
	$(BIN)/python bench/hub_latency.py

bench: bench-gas bench-relayer bench-fast bench-indexer
bench: bench-hub
bench: bench-sim

# Every bundled scenario, its report in var/sim/<scenario>/report.html.
SIM_SCENARIOS := defaults random-discovery high-fee low-fee many-bad-models cold-start

sim: install
	for scenario in $(SIM_SCENARIOS); do $(BIN)/modelhub sim run $$scenario --quiet || exit 1; done

clean:
	rm -rf .build .ape .pytest_cache .hypothesis src/modelhub/abi build dist
