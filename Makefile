# TenOps. `make demo` and `make test` do all of the setup on a fresh Debian machine.
SHELL := /bin/bash
SYSTEM_PACKAGES := libcurl4-openssl-dev libncurses-dev libssl-dev postgresql tmux curl openssl ca-certificates
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SWIFT_BUILD_FLAGS ?=
DEMO_DIR ?= tenops-state

.PHONY: all deps build test demo bench clean

all: build

# Installs the Debian packages that are missing, and only those.
deps:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "==> installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "==> system packages present"; \
	fi
	@# The tests use the real kubectl as an independent client. This image kind ships it as the
	@# `kubectl` package; Debian's own `kubernetes-client` is the fallback.
	@command -v kubectl >/dev/null 2>&1 || { \
	  echo "==> installing kubectl"; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq kubectl || \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq kubernetes-client; }

build: deps
	swift build --build-tests $(SWIFT_BUILD_FLAGS)

test: build
	@# A hung test must fail the run with its output, not eat the CI budget. Suites run one at
	@# a time: they start real servers, nodes and PostgreSQL, and on two cores in parallel they
	@# would measure the machine's contention instead of TenOps (about 2 minutes in all).
	timeout -k 30 1500 swift test --skip-build --disable-xctest --no-parallel $(SWIFT_BUILD_FLAGS)

# The local cluster on loopback; DEMO_DIR keeps its state across runs. Ctrl-C stops it.
demo: deps
	swift build --product tenops $(SWIFT_BUILD_FLAGS)
	.build/debug/tenops local --dir $(DEMO_DIR)

# Benchmarks print their figures; they are not part of `make test`.
bench: deps
	swift build -c release --product tenops-bench
	swift build -c release --product tenops
	.build/release/tenops-bench

clean:
	rm -rf .build
