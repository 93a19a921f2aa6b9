# kiln — build, run, test, bench, install.
#
#   make          build build/kilnd and build/libkiln.{a,so}
#   make run      install missing Debian packages, build, start kilnd in the foreground
#   make test     install missing packages, build, run every test (also under ASan+UBSan, valgrind)
#   make bench    benchmarks (not tests)
#
# BUILD=dir puts objects elsewhere (developers use this to build in parallel).
# SAN=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer.

BUILD   ?= build
CC      := gcc
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
DESTDIR ?=

# Debian packages needed to build and test.  deps installs the missing ones.
DEB_PKGS := gcc make pkg-config libuv1-dev libjansson-dev libssl-dev openssl \
	check libsubunit-dev libgmp-dev libpng-dev zlib1g-dev libunistring-dev \
	socat python3 valgrind systemd procps
# Optional: used by benchmarks and some tests when present (skipped otherwise).
DEB_OPT_PKGS := python3-gmpy2 python3-cryptography python3-pil

PC_PKGS := libuv jansson libcrypto check gmp libpng
# Recursively expanded on purpose: pkg-config runs only when compiling, so
# `make deps` works on a machine that has no pkg-config yet.
PC_CFLAGS = $(shell pkg-config --cflags $(PC_PKGS))
PC_LIBS   = $(shell pkg-config --libs $(PC_PKGS))

WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -fPIC -Iinclude -Idaemon -MMD -MP
LDLIBS  = $(PC_LIBS) -lunistring -lm -lpthread
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

LIB_SRC    := $(wildcard daemon/lib/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_SRC   := $(wildcard tests/tools/*.c)
TOOL_BIN   := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tools/%)

.PHONY: all deps run test unit proto test-unit test-python test-sh test-asan test-valgrind \
	bench clean install uninstall tools
all: $(BUILD)/kilnd $(BUILD)/libkiln.a $(BUILD)/libkiln.so

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PC_CFLAGS) -c $< -o $@

$(BUILD)/libkiln.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libkiln.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/kilnd: $(BUILD)/obj/daemon/main.o $(DAEMON_OBJ) $(BUILD)/libkiln.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

HARNESS_OBJ := $(BUILD)/obj/tests/unit/harness.o

$(BUILD)/tests/%: tests/unit/%.c $(HARNESS_OBJ) $(DAEMON_OBJ) $(BUILD)/libkiln.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PC_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tools/%: tests/tools/%.c $(DAEMON_OBJ) $(BUILD)/libkiln.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(PC_CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Keep intermediate objects (the test harness) between runs.
.SECONDARY:

BENCH_BIN := $(BUILD)/bench/echo_server $(BUILD)/bench/bench_client

$(BUILD)/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -std=c11 -D_GNU_SOURCE $(WARN) -o $@ $<

tools: $(TOOL_BIN) $(BENCH_BIN)
unit: $(UNIT_BIN)

deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null | grep -qx installed || missing="$$missing $$p"; \
	done; \
	optional=""; for p in $(DEB_OPT_PKGS); do \
		dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null | grep -qx installed || optional="$$optional $$p"; \
	done; \
	if [ -z "$$missing$$optional" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		[ -n "$$optional" ] && echo "deps: optional packages missing (tests using them will skip):$$optional"; \
		[ -z "$$missing" ] && exit 0; \
		echo "deps: missing Debian packages:$$missing"; \
		echo "deps: run: sudo apt-get install -y$$missing"; exit 1; \
	fi; \
	echo "deps: installing:$$missing$$optional"; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	[ -z "$$optional" ] || apt-get install -y -qq --no-install-recommends $$optional >/dev/null || \
		echo "deps: optional packages could not be installed:$$optional (tests using them will skip)"

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/kilnd --config daemon/kiln.dev.json --foreground

test: deps
	@$(MAKE) --no-print-directory all tools
	@$(PYTHON) tests/run_all.py --build $(BUILD)

bench: deps
	@$(MAKE) --no-print-directory all tools
	@$(PYTHON) tests/bench/run.py --build $(BUILD) $(BENCH)

# Regenerates proto/actions.json from the action table (a test checks it is current).
proto: $(BUILD)/kilnd
	env -u KILN_CONFIG $(BUILD)/kilnd --describe > proto/actions.json

clean:
	rm -rf build build-*

-include $(LIB_OBJ:.o=.d) $(DAEMON_OBJ:.o=.d) $(BUILD)/obj/daemon/main.d
