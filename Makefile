# mobike-rs: entry points. `make test` is the README's test command.
SHELL := /bin/bash
CARGO ?= cargo

# Which strongSwan the library is built for: the installed Debian 12 charon
# (bookworm, 5.9.8), or that of a debootstrap tree of another suite: Debian
# 13's (trixie, 6.0.1) or sid's (6.1.0). Each has its own configured source
# tree, target dir and packages; a suite's unit tests run chrooted in its
# tree (scripts/suite-run.sh), as they link its libstrongswan/libcharon.
SUITE ?= bookworm
SUITES := bookworm trixie sid
ifeq ($(SUITE),bookworm)
TREE_DIR := build/strongswan
TARGET_DIR := target
SWAN_LIBDIR := /usr/lib/ipsec
UNIT_ENV :=
else ifneq ($(filter $(SUITE),$(SUITES)),)
TREE_DIR := build/$(SUITE)/strongswan
TARGET_DIR := target/$(SUITE)
SWAN_ROOT := build/$(SUITE)/root
SWAN_LIBDIR := $(CURDIR)/$(SWAN_ROOT)/usr/lib/ipsec
UNIT_ENV := CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="$(CURDIR)/scripts/suite-run.sh $(CURDIR)/$(SWAN_ROOT)"
else
$(error SUITE must be one of $(SUITES))
endif
# The configured strongSwan tree (its path is the stamp's content).
SRC_STAMP := $(TREE_DIR)/.tree
BUILD_ENV_PLAIN = STRONGSWAN_SRC=$$(cat $(SRC_STAMP)) STRONGSWAN_LIBDIR=$(SWAN_LIBDIR) \
	CARGO_TARGET_DIR=$(TARGET_DIR)
# Profile-guided build, opt-in: `make build PGO=1` (also `make deb PGO=1`,
# `make rpm PGO=1`) first trains a profile (tools/pgo.sh: tools/pgo_train.rs
# built with instrumentation, driving the real adapter and core through the
# fake strongSwan world of src/charon/fake.rs) and lays the library's code
# out from it; the gateway's per-roam step runs with cold caches and gets faster
# (docs/benchmarks.md), an effect under 1% of a gateway's CPU. The profile
# is remade when a source changes; an empty one (no llvm-tools) means an
# ordinary build. `make unit PGO=1` uses the same flags, so that the flags
# alone never make cargo rebuild. The default builds train nothing.
PGO ?= 0
PGO_PROFILE := $(TARGET_DIR)/pgo/mobike-rs.profdata
RUST_SOURCES := $(shell find src -type f) tools/pgo_train.rs build.rs Cargo.toml Cargo.lock
ifeq ($(PGO),1)
PGO_DEP := $(PGO_PROFILE)
PGO_FLAGS = $$(test -s $(PGO_PROFILE) && echo -Cprofile-use=$(CURDIR)/$(PGO_PROFILE))
else
PGO_DEP :=
PGO_FLAGS =
endif
BUILD_ENV = $(BUILD_ENV_PLAIN) RUSTFLAGS="$(PGO_FLAGS)"

.PHONY: all build trixie sid interop-sid unit-sid test unit adapter-memcheck interop memcheck abi-guard demo bench deps docs deb rpm package-test clean \
	hostile hostile-lib fuzz interop-xfrm test-xfrm

all: build

deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: needs root (apt-get)"; exit 1; fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		strongswan-charon strongswan-swanctl libcharon-extra-plugins \
		libstrongswan-standard-plugins iproute2 iptables iputils-ping \
		build-essential dpkg-dev pkg-config binutils ca-certificates rpm cpio \
		debootstrap tcpdump valgrind python3 conntrack \
		qemu-system-x86 busybox-static kmod libclang-dev libssl-dev

ifeq ($(SUITE),bookworm)
$(SRC_STAMP):
	@mkdir -p $(TREE_DIR)
	set -o pipefail; scripts/strongswan-src.sh $(TREE_DIR) | tail -n 1 > $@.tmp && test -s $@.tmp && mv $@.tmp $@
endif

ifneq ($(SWAN_ROOT),)
$(SWAN_ROOT)/.mobike-rs-root:
	scripts/suite-root.sh $(SUITE) $(SWAN_ROOT) >/dev/null

$(SRC_STAMP): $(SWAN_ROOT)/.mobike-rs-root
	@mkdir -p $(TREE_DIR)
	set -o pipefail; scripts/strongswan-src-suite.sh $(SUITE) $(SWAN_ROOT) $(TREE_DIR) | tail -n 1 > $@.tmp && test -s $@.tmp && mv $@.tmp $@
endif

$(PGO_PROFILE): $(SRC_STAMP) $(RUST_SOURCES) tools/pgo.sh
	$(BUILD_ENV_PLAIN) tools/pgo.sh $(TARGET_DIR) $@

build: $(SRC_STAMP) $(PGO_DEP)
	$(BUILD_ENV) $(CARGO) build --release --workspace
	@ls -l $(TARGET_DIR)/release/libmobike_rs.so $(TARGET_DIR)/release/mobike-rs

unit: $(SRC_STAMP) $(PGO_DEP)
	$(BUILD_ENV) $(UNIT_ENV) $(CARGO) test --release --workspace

interop: build
	tests/interop.sh

# The kernel's IPsec (XFRM) data plane: charon with kernel-netlink inside a
# VM that boots Debian's own kernel under TCG (tests/lab/vm.sh; its kernel
# and initramfs are cached in build/vm/), all scenarios in one boot, each
# move also checked in both sides' `ip xfrm state` and `ip xfrm policy`.
# `make test` runs the subset XFRM_CI (about 8 minutes on 2 cores);
# `make test-xfrm` all of tests/interop.sh's XFRM_SCENARIOS.
XFRM_CI := negotiate-rust-rust break-rust-stock break-stock-rust break-rust-rust \
	nat-rust-stock nat-stock-rust nat-rust-rust v4to6-rust-rust v6to4-rust-rust \
	rr-rust-rust xfrmif-rust-rust v4to6back-rust-rust transport46-rust-stock \
	silentnosrc-rust-stock
interop-xfrm: build
	LAB_DATAPLANE=xfrm tests/interop.sh $(XFRM_CI)

test-xfrm: build
	LAB_DATAPLANE=xfrm tests/interop.sh

# The interop scenarios with the rust-flavoured charons under valgrind
# memcheck: no invalid access, no leak of ours (tests/valgrind.supp).
memcheck: build
	tests/memcheck.sh

# The adapter's daemon-free tests (fake strongSwan objects) under valgrind.
adapter-memcheck: $(SRC_STAMP)
	$(BUILD_ENV) tests/adapter-memcheck.sh

# A library built for another charon configuration is refused at runtime.
abi-guard: build build-nome
	tests/abi-guard.sh

# Test-only: the library built as a hostile MOBIKE peer (cargo feature
# hostile-peer, its own target dir; never packaged), and the tests of what
# an honest charon does about it.
hostile-lib: $(SRC_STAMP)
	STRONGSWAN_SRC=$$(cat $(SRC_STAMP)) STRONGSWAN_LIBDIR=$(SWAN_LIBDIR) \
		CARGO_TARGET_DIR=target/hostile $(CARGO) build --release --features hostile-peer

hostile: build hostile-lib
	tests/hostile.sh

# Every cargo-fuzz target (fuzz/) for FUZZ_SECONDS from its seeds in
# fuzz/seeds/; fails on any crash. The core targets need no strongSwan
# tree; the adapter target needs the configured one (`make build` makes
# it) and is skipped, visibly, without it.
FUZZ_SECONDS ?= 60
fuzz:
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The library for Debian 13's strongSwan 6.0.1 (interop scenarios *@trixie).
trixie:
	$(MAKE) build SUITE=trixie

# The library for sid's strongSwan 6.1.0, its interop scenarios (*@sid,
# against 5.9.8 and 6.0.1 in both roles; `make interop` runs them too) and
# its unit tests, chrooted in the sid tree.
sid:
	$(MAKE) build SUITE=sid

interop-sid: build trixie sid
	tests/interop-suite.sh sid

unit-sid:
	$(MAKE) unit SUITE=sid

# sid adds about 10 minutes from a clean clone on 2 cores (measured under
# load: tree, source and build 5.3, unit tests 3.9, its scenarios 0.5); the
# build without mediation about 8 (two trees, two builds, its unit tests and
# the no-ME charon of interop-nome).
test: build trixie sid unit unit-sid unit-nome adapter-memcheck fuzz interop interop-xfrm abi-guard interop-nome hostile memcheck package-test

demo: $(if $(filter 0,$(shell id -u)),deps) build
	tests/lab/demo.sh

# builtin against rust MOBIKE in the lab, several runs each: a table of
# outages and the gateway's cost under many roaming IKE_SAs, also written
# to target/bench/results.md. Not part of `make test` (timings are not
# assertions). BENCH_QUICK=1: one run each, 50 IKE_SAs. BENCH_XFRM=1
# (default) adds the outage rows with the kernel's IPsec, builtin against
# rust in one boot of the VM (tests/lab/vm.sh), as ratios; BENCH_XFRM=only
# runs just those, BENCH_XFRM=0 skips them (tools/bench-xfrm.sh).
bench: build
	tools/bench.sh

# The option docs from their one description, src/mobike/policy.rs
# (OPTIONS): the man page's OPTIONS, the packaged configuration file and the
# README's table (tests/docs.rs, which `make unit` runs as a check). Built
# like `make unit`, so that neither rebuilds the other's artifacts.
docs: $(SRC_STAMP) $(PGO_DEP)
	$(BUILD_ENV) MOBIKE_RS_UPDATE_DOCS=1 $(CARGO) test --release --test docs

# strongswan-mobike-rs_<version>+sw<strongSwan version>_<arch>.deb in dist/
deb: build
	packaging/deb.sh $(TARGET_DIR)/release $$(cat $(SRC_STAMP)) dist

# strongswan-mobike-rs-<version>-1.sw<strongSwan version>.nome.<arch>.rpm in
# dist/: the build without mediation (build-nome), as Fedora's strongSwan.
rpm: build-nome
	packaging/rpm.sh $(NOME_TARGET_DIR)/release $$(cat $(NOME_STAMP)) dist

# Build both packages for 5.9.8 and 6.0.1 and the .deb for 6.1.0 (sid),
# check them, install the .deb for the installed charon and remove it again.
package-test: deb rpm
	$(MAKE) deb rpm SUITE=trixie
	$(MAKE) deb SUITE=sid
	tests/packaging.sh dist

# --- The build without mediation (no ME), as Fedora configures strongSwan ---
# A copy of the suite's configured source, configured --disable-mediation
# (scripts/strongswan-src-nome.sh; build/strongswan-nome for 5.9.8,
# build/trixie/strongswan-nome for 6.0.1), and the library built from it
# in its own target dir. `make rpm` packages this build only (release
# 1.sw<version>.nome): Fedora's charon has no ME, Debian's has.
# `make interop-nome` preloads it into a charon built from the same source
# without mediation (tests/lab/nome-charon.sh builds that charon).
NOME_TREE_DIR := $(dir $(TREE_DIR))strongswan-nome
NOME_STAMP := $(NOME_TREE_DIR)/.tree
NOME_TARGET_DIR := $(TARGET_DIR)/nome
# (`make rpm PGO=1`: the profile trained with the suite's build.)
NOME_ENV = STRONGSWAN_SRC=$$(cat $(NOME_STAMP)) STRONGSWAN_LIBDIR=$(SWAN_LIBDIR) \
	CARGO_TARGET_DIR=$(NOME_TARGET_DIR) RUSTFLAGS="$(PGO_FLAGS)"

.PHONY: build-nome unit-nome nome interop-nome

$(NOME_STAMP): $(SRC_STAMP) scripts/strongswan-src-nome.sh
	@mkdir -p $(NOME_TREE_DIR)
	set -o pipefail; scripts/strongswan-src-nome.sh $(SRC_STAMP) $(NOME_TREE_DIR) | tail -n 1 > $@.tmp && test -s $@.tmp && mv $@.tmp $@

build-nome: $(NOME_STAMP) $(PGO_DEP)
	$(NOME_ENV) $(CARGO) build --release --workspace
	@ls -l $(NOME_TARGET_DIR)/release/libmobike_rs.so

# The unit tests of the build without ME (its own cfg branches).
unit-nome: $(NOME_STAMP) $(PGO_DEP)
	$(NOME_ENV) $(CARGO) test --release --workspace

# Both suites' no-ME builds.
nome:
	$(MAKE) build-nome
	$(MAKE) build-nome SUITE=trixie

interop-nome: build build-nome
	tests/interop-nome.sh

clean:
	$(CARGO) clean
	rm -rf build dist
