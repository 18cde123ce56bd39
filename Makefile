# microp2p — two commands do everything on a fresh machine:
#   make demo   set up, then run the emulated fleet + gateway (the main job)
#   make test   set up, then run every test: CPython (pytest), MicroPython unix port, MicroPython
#               WebAssembly port (31-bit ints), and the interop tests against js-libp2p / py-libp2p /
#               go-libp2p / rust-libp2p
#   make interop-matrix   ping over every dialer x listener pair of microp2p, microp2p-mpy, js, py,
#               go, rust (libp2p test-plans shape); non-zero exit on any failed cell
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
MPY := $(VENV)/bin/micropython
# Heap for the MicroPython unit-test run: the core must fit a device-sized heap.
MP_HEAP ?= 2M

.PHONY: setup mosquitto-setup bench-mqtt bench-device test test-cpython test-micropython test-wasm test-interop interop-matrix demo bench bench-gossip bench-relay bench-soak fuzz clean

setup: $(VENV)/.stamp interop-setup mosquitto-setup

# The MQTT broker the bridge tests and `make demo` start privately (Debian package `mosquitto`;
# tests run their own on a free 127.0.0.1 port, the system service is never used or started).
# Installed when missing and we are root with apt-get (a temporary policy-rc.d keeps apt from
# starting the system broker on 1883); otherwise setup says what to install.
mosquitto-setup:
	@if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || [ -x /usr/local/sbin/mosquitto ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "setup: installing the Debian package mosquitto (MQTT broker for the bridge tests and demo; its system service is not started)"; \
	  export DEBIAN_FRONTEND=noninteractive; policy=; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1; fi; \
	  apt-get install -y -q mosquitto >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q mosquitto >/dev/null; } \
	    || echo "setup: WARNING: apt-get install mosquitto failed; the MQTT tests and demo need it"; \
	  if [ -n "$$policy" ]; then rm -f /usr/sbin/policy-rc.d; fi; \
	else echo "setup: WARNING: mosquitto is missing; install it for the MQTT tests and demo (Debian/Ubuntu: sudo apt-get install mosquitto; macOS: brew install mosquitto)"; fi

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

interop-matrix: setup
	$(PY) tests/interop/matrix.py

demo: setup
	$(VENV)/bin/microp2p emulate --tcp 3 --serial 2 --duration 60 --js-subscriber --mqtt --relay

bench: setup
	$(PY) bench/crypto.py
	$(PY) bench/handshakes.py
	$(PY) bench/yamux.py
	$(MAKE) bench-gossip
	$(MAKE) bench-mqtt
	$(MAKE) bench-device
	$(PY) bench/kad.py
	$(MAKE) bench-relay

# Circuit relay v2: relayed vs direct, a microp2p hop vs a js-libp2p hop, in one run (bench/relay.py).
bench-relay: setup
	$(PY) bench/relay.py

# Device memory figures for the sensor node in the leaf profile (issue 10's table, bench/device.py).
bench-device: setup
	$(PY) bench/device.py

# Gossipsub over real connections: microp2p, js-libp2p and py-libp2p in one run (bench/gossip.py).
bench-gossip: setup
	$(PY) bench/gossip.py

# MQTT bridge: readings/s gossip -> gateway -> Mosquitto, added latency vs straight to Mosquitto.
bench-mqtt: setup
	$(PY) bench/mqtt.py

# Soak, churn and attack under load (bench/soak.py): 200 MicroPython devices x 1 reading/s x 10 min
# through one gateway with reboots and link drops, then issue 11's attacks against its public port
# while 20 devices publish. Long (about 15 min), so not part of `make bench`; SOAK_ARGS=--quick is
# a 2-minute smoke run, SOAK_ARGS="--devices 50 --minutes 2" anything between.
bench-soak: setup
	$(PY) bench/soak.py $(SOAK_ARGS)

# Coverage-guided fuzzing (atheris) of every parser and machine, FUZZ_SECONDS per target (default
# 60); crashes land in tests/fuzz/corpus/<target>/ and `make test` replays them on every runtime.
FUZZ_SECONDS ?= 60
fuzz: $(VENV)/.stamp
	FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) tests/fuzz/run.py $(TARGETS)

clean:
	rm -rf $(VENV) peers/js/node_modules
