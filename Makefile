# supernetd — build, test, demo and install. `make demo` and `make test` set up a fresh Debian machine.
SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift
VENV ?= .venv
# Older OpenBLAS builds misbehave on these AVX-512 processors; the Haswell kernels are right and fast.
export OPENBLAS_CORETYPE ?= Haswell
# The engine runs OpenBLAS on one thread; without this OpenBLAS starts an idle pool that spins (see OpenBLASCore).
export OPENBLAS_NUM_THREADS ?= 1

DEBIAN_PACKAGES := liblz4-dev libsystemd-dev libopenblas-dev zlib1g-dev dataset-fashion-mnist pkg-config
RELEASE_BIN = $(shell $(SWIFT) build -c release --show-bin-path)
PLUGINS := target-analytic target-host-cpu target-lut \
    strategy-evolution strategy-random strategy-reinforce strategy-relaxed

.PHONY: all deps python-deps build test lint demo train-default install clean

all: build

## deps: install the Debian packages the build and the tests need (only those missing).
deps:
	@scripts/install-deps.sh $(DEBIAN_PACKAGES)

## python-deps: a virtualenv with the interoperability-test packages (safetensors, numpy, lz4).
python-deps: $(VENV)/.ready
$(VENV)/.ready:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet safetensors numpy lz4
	touch $@

build: deps
	$(SWIFT) build -c release
	for plugin in $(PLUGINS); do $(SWIFT) build -c release --product $$plugin; done
	$(MAKE) -C plugins/target-roofline
	cp plugins/target-roofline/libtarget-roofline.so $(RELEASE_BIN)/

## test: the format check, then every unit and integration test, release-optimized (the engine is too slow
## unoptimized to train in tests).
TEST_FLAGS := -c release -Xswiftc -enable-testing
test: deps python-deps lint
	for plugin in $(PLUGINS); do $(SWIFT) build $(TEST_FLAGS) --product $$plugin; done
	SUPERNET_PYTHON=$(CURDIR)/$(VENV)/bin/python $(SWIFT) test $(TEST_FLAGS) --disable-swift-testing

## lint: fails when a Swift file drifts from .swift-format.
lint:
	swift-format lint --strict --recursive Sources Tests Package.swift plugins

## train-default: reproduces models/fmnist-mbv3.supernet (progress on stderr, per-epoch metrics and plots in
## models/fmnist-mbv3-run/), then fits its accuracy predictor.
## An interrupted run resumes from its last epoch's checkpoint (models/fmnist-mbv3.supernet.checkpoint).
DEFAULT_CHECKPOINT := models/fmnist-mbv3.supernet.checkpoint
train-default: build
	$(RELEASE_BIN)/supernet train --method sandwich --epochs 15 --seed 0 --epoch-validation 2000 \
	    --predictor-samples 0 --out models/fmnist-mbv3.supernet --run-dir models/fmnist-mbv3-run \
	    $(if $(wildcard $(DEFAULT_CHECKPOINT)),--resume $(DEFAULT_CHECKPOINT))
	$(RELEASE_BIN)/supernet fit-predictor --model models/fmnist-mbv3.supernet --samples 1000

demo: build
	@scripts/demo.sh "$(RELEASE_BIN)"

## install: binaries, plugins, the shipped models, systemd units, sysusers and an example config, under
## $(DESTDIR)$(PREFIX); the units name the installed paths.
# Rewrites the units' /usr paths to the installed ones.
UNIT_PATHS := s\#/usr/bin/\#$(PREFIX)/bin/\#g; s\#/usr/lib/supernetd\#$(PREFIX)/lib/supernetd\#g; \
    s\#/usr/share/supernetd\#$(PREFIX)/share/supernetd\#g
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/supernetd/plugins \
	    $(DESTDIR)$(PREFIX)/share/supernetd/models $(DESTDIR)$(PREFIX)/lib/systemd/system \
	    $(DESTDIR)$(PREFIX)/lib/sysusers.d $(DESTDIR)$(PREFIX)/share/doc/supernetd
	install -m 755 $(RELEASE_BIN)/supernet $(RELEASE_BIN)/supernetd $(RELEASE_BIN)/supernetctl $(DESTDIR)$(PREFIX)/bin/
	for plugin in $(PLUGINS) target-roofline; do \
	    install -m 644 $(RELEASE_BIN)/lib$$plugin.so $(DESTDIR)$(PREFIX)/lib/supernetd/plugins/; \
	done
	install -m 644 models/*.supernet $(DESTDIR)$(PREFIX)/share/supernetd/models/
	for unit in supernetd.service supernetd.socket supernetd-admin.socket; do \
	    sed '$(UNIT_PATHS)' systemd/$$unit > $(DESTDIR)$(PREFIX)/lib/systemd/system/$$unit; done
	install -m 644 systemd/sysusers.d/supernetd.conf $(DESTDIR)$(PREFIX)/lib/sysusers.d/supernetd.conf
	install -m 644 systemd/supernetd.conf $(DESTDIR)$(PREFIX)/share/doc/supernetd/supernetd.conf.example

clean:
	rm -rf .build $(VENV)
