# supernetd — build, test, demo and install. `make demo` and `make test` set up a fresh Debian machine.
SHELL := /bin/bash
PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift
VENV ?= .venv
# Older OpenBLAS builds misbehave on these AVX-512 processors; the Haswell kernels are right and fast.
export OPENBLAS_CORETYPE ?= Haswell

DEBIAN_PACKAGES := liblz4-dev libsystemd-dev libopenblas-dev zlib1g-dev dataset-fashion-mnist pkg-config
RELEASE_BIN = $(shell $(SWIFT) build -c release --show-bin-path)

.PHONY: all deps python-deps build test demo install clean

all: build

## deps: install the Debian packages the build and the tests need (only those missing).
deps:
	@scripts/install-deps.sh $(DEBIAN_PACKAGES)

## python-deps: a virtualenv with the interoperability-test packages (safetensors, numpy).
python-deps: $(VENV)/.ready
$(VENV)/.ready:
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet safetensors numpy
	touch $@

build: deps
	$(SWIFT) build -c release

## test: every unit and integration test, release-optimized (the engine is too slow unoptimized).
test: deps python-deps
	SUPERNET_PYTHON=$(CURDIR)/$(VENV)/bin/python $(SWIFT) test -c release -Xswiftc -enable-testing --disable-swift-testing

demo: build
	@scripts/demo.sh "$(RELEASE_BIN)"

clean:
	rm -rf .build $(VENV)
