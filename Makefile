# Flowgate: build, run, test, install.
#   make run      install what is needed, build (release), run flowgated on config/flowgate.yaml
#   make test     install what is needed, build (debug), run every Swift and integration test
#   make install  PREFIX=/usr/local DESTDIR=  binaries, systemd unit, example config
#   make bench    install the comparison tools, run bench/run.sh
SHELL := /bin/bash
.DEFAULT_GOAL := build

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= /lib/systemd/system
SYSCONFDIR ?= /etc
CONFIG ?= config/flowgate.yaml
SWIFT ?= swift
# Where `make install` takes the binaries from (the release build).
RELEASE_DIR ?= .build/release
VENV := .venv
PYTEST_ARGS ?= -q

# The toolchain lives in /opt/swift on this project's machines; append it so a
# swift already on PATH keeps precedence.
ifneq ($(wildcard /opt/swift/usr/bin/swift),)
export PATH := $(PATH):/opt/swift/usr/bin
endif

.PHONY: all setup setup-build build release run test check install uninstall bench clean distclean

all: build

# System packages and the test venv (idempotent, fast when nothing is missing).
setup:
	bash .ci/setup.sh

# Only what building needs (no venv, no test tools).
setup-build:
	bash .ci/setup.sh --no-venv

build: setup-build
	$(SWIFT) build

release: setup-build
	$(SWIFT) build -c release --product flowgated
	$(SWIFT) build -c release --product flowgatectl

run: setup-build
	$(SWIFT) build -c release --product flowgated
	mkdir -p /var/lib/flowgate /run/flowgate
	exec .build/release/flowgated --config $(CONFIG)

test: setup
	$(SWIFT) build
	$(SWIFT) test
	FLOWGATED=.build/debug/flowgated FLOWGATECTL=.build/debug/flowgatectl FLOWGATE_REQUIRE_BINARIES=1 \
		$(VENV)/bin/pytest $(PYTEST_ARGS) Tests/IntegrationTests

check: test

install: release
	install -d $(DESTDIR)$(BINDIR)
	install -m 0755 $(RELEASE_DIR)/flowgated $(RELEASE_DIR)/flowgatectl $(DESTDIR)$(BINDIR)/
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/etc/flowgate/|$(SYSCONFDIR)/flowgate/|g' systemd/flowgated.service > $(DESTDIR)$(UNITDIR)/flowgated.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/flowgated.service
	install -d $(DESTDIR)$(SYSCONFDIR)/flowgate
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/flowgate/flowgate.yaml ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/flowgate/flowgate.yaml"; \
	else \
		install -m 0644 config/flowgate.yaml $(DESTDIR)$(SYSCONFDIR)/flowgate/flowgate.yaml; \
	fi
	@echo "installed; then: systemctl daemon-reload && systemctl enable --now flowgated"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/flowgated $(DESTDIR)$(BINDIR)/flowgatectl $(DESTDIR)$(UNITDIR)/flowgated.service
	@echo "left $(DESTDIR)$(SYSCONFDIR)/flowgate and /var/lib/flowgate in place"

bench: setup
	bash .ci/setup.sh --bench
	@if [ -f bench/run.sh ]; then bash bench/run.sh; else echo "bench/run.sh does not exist yet"; fi

clean:
	rm -rf .build

distclean: clean
	rm -rf $(VENV) .pytest_cache
