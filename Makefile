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

.PHONY: all deps python-deps build test lint demo train-default install clean

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

## test: the format check, then every unit and integration test, release-optimized (the engine is too slow
## unoptimized to train in tests).
test: deps python-deps lint
	SUPERNET_PYTHON=$(CURDIR)/$(VENV)/bin/python $(SWIFT) test -c release -Xswiftc -enable-testing --disable-swift-testing

## lint: fails when a Swift file drifts from .swift-format.
lint:
	swift-format lint --strict --recursive Sources Tests Package.swift

## train-default: reproduces models/fmnist-mbv3.supernet (about two hours on 2 cores; logs in models/train.log).
train-default: build
	$(RELEASE_BIN)/supernet train --method sandwich --epochs 15 --seed 0 --epoch-validation 2000 \
	    --predictor-samples 0 --out models/fmnist-mbv3.supernet --run-dir models/fmnist-mbv3-run
	$(RELEASE_BIN)/supernet fit-predictor --model models/fmnist-mbv3.supernet --samples 1000

demo: build
	@scripts/demo.sh "$(RELEASE_BIN)"

clean:
	rm -rf .build $(VENV)
