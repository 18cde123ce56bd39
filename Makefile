# microp2p — two commands do everything on a fresh machine:
#   make demo   set up, then run the emulated fleet + gateway (the main job)
#   make test   set up, then run every test: CPython (pytest), MicroPython unix port, MicroPython
#               WebAssembly port (31-bit ints), and the interop tests against js-libp2p / py-libp2p
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MPY := $(VENV)/bin/micropython
# Heap for the MicroPython unit-test run: the core must fit a device-sized heap.
MP_HEAP ?= 2M

.PHONY: bench-device setup test test-cpython test-micropython test-wasm test-interop demo bench bench-gossip clean

setup: $(VENV)/.stamp interop-setup

$(VENV)/.stamp: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements.txt
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

interop-setup: $(VENV)/.stamp
	$(MAKE) -C tests/interop setup

test: setup
	$(PY) -m pytest tests
	$(MAKE) test-micropython
	$(MAKE) test-wasm

test-cpython: $(VENV)/.stamp
	$(PY) -m pytest tests/core tests/host

test-micropython: $(VENV)/.stamp
	MP_HEAP=$(MP_HEAP) $(PY) tests/run_micropython.py

test-wasm: setup
	node tests/interop/wasm_runner.mjs

demo: setup
	$(VENV)/bin/microp2p emulate --tcp 3 --serial 2 --duration 60 --js-subscriber

bench: setup
	$(PY) bench/crypto.py
	$(PY) bench/handshakes.py
	$(PY) bench/yamux.py
	$(MAKE) bench-gossip
	$(MAKE) bench-device

# Device memory figures for the sensor node in the leaf profile (issue 10's table, bench/device.py).
bench-device: setup
	$(PY) bench/device.py

# Gossipsub over real connections: microp2p, js-libp2p and py-libp2p in one run (bench/gossip.py).
bench-gossip: setup
	$(PY) bench/gossip.py

clean:
	rm -rf $(VENV) tests/interop/node_modules
