# poactl: build, test, demo. `make test` runs every test from a clean checkout.
SHELL := /bin/bash
VENV := .venv
MOTO := $(VENV)/bin/moto_server
PYTHON ?= python3
CARGO ?= cargo

.PHONY: test ci fmt-check clippy build release demo bench fuzz clean-venv man package

# moto (the AWS emulator the tests talk to), in a project-local venv.
$(MOTO):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5'

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# Every test: unit tests and the CLI integration tests (against moto, the Atlas sandbox and a
# scripted MongoDB wire peer; against a real MongoDB too when MONGODB_TEST_URI is set).
test: $(MOTO)
	POACTL_MOTO_PYTHON=$(abspath $(VENV))/bin/python $(CARGO) test --all-targets -- --test-threads=$${TEST_THREADS:-4}

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

ci: fmt-check clippy test

# The loader fuzzer for a longer run (make test runs it for a few seconds).
fuzz:
	POACTL_FUZZ_SECONDS=$${POACTL_FUZZ_SECONDS:-300} $(CARGO) test --test cli fuzz_ -- --nocapture

clean-venv:
	rm -rf $(VENV)

# The whole job on local emulators (README's first command): builds the debug binary (the
# build `make test` shares, so a newcomer's first command shows results after one compile),
# installs moto, runs scripts/demo.sh.
demo: $(MOTO)
	$(CARGO) build
	POACTL=target/debug/poactl MOTO_PYTHON=$(VENV)/bin/python scripts/demo.sh

# Benchmarks: `cost` latency (offline, no credentials), with hyperfine when installed; then
# plan (best of three), apply and validate of a generated ~200-resource environment through a
# proxy adding 50 ms per request, with the release build (POACTL_BENCH_BIN to measure another
# binary; POACTL_BENCH_SCALE=10 for ~2,000 resources; POACTL_BENCH_BREAKDOWN=1 for the
# requests per operation and their timeline).
bench: $(MOTO)
	$(CARGO) build --release
	scripts/bench.sh
	POACTL_BENCH_BIN=$${POACTL_BENCH_BIN:-$(abspath target/release/poactl)} POACTL_MOTO_PYTHON=$(abspath $(VENV))/bin/python $(CARGO) test --test cli bench_ -- --ignored --nocapture

# Man pages, one per command, generated from the CLI's definition into target/man.
man:
	$(CARGO) run --quiet -- man --dir target/man

# The crate as crates.io would get it: `cargo package` builds the packaged sources on their
# own (only what `include` lists), then `cargo install --locked` installs the binary from
# them into target/install, and the binary must run. Timed; not part of `make ci`.
package:
	time $(CARGO) package --locked
	time $(CARGO) install --locked --path target/package/poactl-$$($(CARGO) pkgid | sed 's/.*[#@]//') --root target/install --force
	target/install/bin/poactl --version
