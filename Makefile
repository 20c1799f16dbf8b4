# mobike-rs: entry points. `make test` is the README's test command.
SHELL := /bin/bash
CARGO ?= cargo
# The configured strongSwan tree of the installed charon (scripts/strongswan-src.sh).
SRC_STAMP := build/strongswan/.tree

.PHONY: all build test unit interop demo deps header clean

all: build

deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make deps: needs root (apt-get)"; exit 1; fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		strongswan-charon strongswan-swanctl libcharon-extra-plugins \
		libstrongswan-standard-plugins iproute2 iptables iputils-ping \
		build-essential dpkg-dev pkg-config binutils ca-certificates

$(SRC_STAMP):
	@mkdir -p build/strongswan
	scripts/strongswan-src.sh build/strongswan | tail -n 1 > $@.tmp && mv $@.tmp $@

build: $(SRC_STAMP)
	STRONGSWAN_SRC=$$(cat $(SRC_STAMP)) $(CARGO) build --release
	@ls -l target/release/libmobike_rs.so

unit: $(SRC_STAMP)
	STRONGSWAN_SRC=$$(cat $(SRC_STAMP)) $(CARGO) test --release

interop: build
	tests/interop.sh

test: build unit interop

demo: $(if $(filter 0,$(shell id -u)),deps) build
	tests/lab/demo.sh

header:
	MOBIKE_RS_UPDATE_HEADER=1 $(CARGO) test --test header

clean:
	$(CARGO) clean
	rm -rf build
