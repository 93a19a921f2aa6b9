# kiln — build, run, test, bench, install.
#
#   make          build build/kilnd and build/libkiln.{a,so}
#   make run      install missing Debian packages, build, start kilnd in the foreground
#   make test     install missing packages, build, run every test (also under ASan+UBSan, valgrind)
#   make bench    benchmarks (not tests)
#   make stress   long load, fault and soak tests (tests/stress, ~3 min; STRESS=stress_soak for one)
#   make fuzz     libFuzzer targets (tests/fuzz), each run FUZZ_SECONDS (default 60)
#   make mutation break each check in tests/mutation/mutations.json in turn, in a
#                 scratch copy, and show that its tests fail (MUTATIONS="id ..." picks some)
#   make install  kilnd, systemd units, sysusers.d, /etc/kiln/kiln.json, the Python client
#                 (PREFIX=/usr/local, DESTDIR=; see below); make uninstall removes them
#
# BUILD=dir puts objects elsewhere (developers use this to build in parallel).
# SAN=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer; it and
# DEBUG=1 keep the invariant checks (assert) that other builds compile out.

BUILD   ?= build
CC      := gcc
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
DESTDIR ?=

# Debian packages to build and run kilnd (`make deps`, which `make run` uses)...
DEB_PKGS := gcc make pkg-config libuv1-dev libjansson-dev libssl-dev libgmp-dev libpng-dev \
	zlib1g-dev libunistring-dev python3 socat
# ...and to test, fuzz and benchmark it (`make deps-test`, for test, bench, fuzz, stress).
DEB_TEST_PKGS := check libsubunit-dev openssl valgrind systemd procps clang libclang-rt-14-dev
# Optional: used by benchmarks and some tests when present (skipped otherwise).
DEB_OPT_PKGS := python3-gmpy2 python3-cryptography python3-pil

PC_PKGS := libuv jansson libcrypto gmp libpng
# The library (daemon/lib) uses only these: no libuv, no jansson.
LIB_PC_PKGS := libcrypto gmp libpng
# Recursively expanded on purpose: pkg-config runs only when compiling, so
# `make deps` works on a machine that has no pkg-config yet.
PC_CFLAGS = $(shell pkg-config --cflags $(PC_PKGS))
PC_LIBS   = $(shell pkg-config --libs $(PC_PKGS))
LIB_PC_CFLAGS = $(shell pkg-config --cflags $(LIB_PC_PKGS))
LIB_PC_LIBS   = $(shell pkg-config --libs $(LIB_PC_PKGS))
# The check framework links into the unit tests only, never into kilnd.
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS   = $(shell pkg-config --libs check)

# V=1 shows the full compiler command lines.
ifeq ($(V),1)
Q :=
else
Q := @
endif

WARN    := -Wall -Wextra -Werror
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE $(WARN) -fPIC -MMD -MP
# The boundary between daemon and library, enforced here: the daemon sees
# its own headers and include/; the library sees include/ and its own folder
# only, so a daemon header or a libuv/jansson call in it does not compile,
# and libkiln.so links with --no-undefined against just what it uses.
DAEMON_CPPFLAGS = -Iinclude -Idaemon $(PC_CFLAGS)
LIB_CPPFLAGS    = -Iinclude -Idaemon/lib $(LIB_PC_CFLAGS)
LIB_LDLIBS      = $(LIB_PC_LIBS) -lunistring -lm
LDLIBS  = $(PC_LIBS) -lunistring -lm -lpthread
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
else ifneq ($(DEBUG),1)
CFLAGS  += -DNDEBUG
endif

LIB_SRC    := $(wildcard daemon/lib/*.c)
DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps deps-test run test unit proto bench stress clean install uninstall tools fuzz \
	fuzz-build mutation
all: $(BUILD)/kilnd $(BUILD)/libkiln.a $(BUILD)/libkiln.so

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(DAEMON_CPPFLAGS) -c $< -o $@

$(BUILD)/obj/daemon/lib/%.o: daemon/lib/%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(LIB_CPPFLAGS) -c $< -o $@

$(BUILD)/libkiln.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/libkiln.so: $(LIB_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared $(LDFLAGS) -Wl,--no-undefined -o $@ $^ $(LIB_LDLIBS)

$(BUILD)/kilnd: $(BUILD)/obj/daemon/main.o $(DAEMON_OBJ) $(BUILD)/libkiln.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

HARNESS_OBJ := $(BUILD)/obj/tests/unit/harness.o

$(BUILD)/tests/%: tests/unit/%.c $(HARNESS_OBJ) $(DAEMON_OBJ) $(BUILD)/libkiln.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) $(CFLAGS) $(DAEMON_CPPFLAGS) $(CHECK_CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

# Keep intermediate objects (the test harness) between runs.
.SECONDARY:

BENCH_BIN := $(BUILD)/bench/echo_server $(BUILD)/bench/bench_client

$(BUILD)/bench/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -std=c11 -D_GNU_SOURCE $(WARN) -o $@ $<

tools: $(BENCH_BIN)
unit: $(UNIT_BIN)

# $(call install_missing,REQUIRED,OPTIONAL): as root, apt-get installs what is
# missing; otherwise the exact command is printed (and a missing required
# package is an error).
define install_missing
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null | grep -qx installed || missing="$$missing $$p"; \
	done; \
	optional=""; for p in $(2); do \
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
endef

deps:
	$(call install_missing,$(DEB_PKGS),)

deps-test:
	$(call install_missing,$(DEB_PKGS) $(DEB_TEST_PKGS),$(DEB_OPT_PKGS))

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/kilnd --config daemon/kiln.dev.json --foreground

test: deps-test
	@$(MAKE) --no-print-directory all tools unit
	@$(PYTHON) tests/run_all.py --build $(BUILD)

bench: deps-test
	@$(MAKE) --no-print-directory all tools
	@$(PYTHON) tests/bench/run.py --build $(BUILD) $(BENCH)

# --- Fuzzing ---------------------------------------------------------------
# libFuzzer targets tests/fuzz/fuzz_<name>.c, built with clang, ASan and UBSan
# into $(BUILD)/fuzz/ (objects in $(BUILD)/fuzz/obj, instrumented for
# coverage).  `make fuzz` runs each for FUZZ_SECONDS from its committed seed
# corpus tests/fuzz/corpus/<name>/ (new inputs go to $(BUILD)/fuzz/corpus/),
# replays tests/fuzz/regressions/<name>/ and reports executions per target;
# FUZZ_TARGETS="frame obj" picks targets.  clang's warnings differ from
# gcc's, so -Werror stays with the gcc build.
FUZZ_CC      := clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := -O1 -g -std=c11 -D_GNU_SOURCE -Wall -Wextra -fPIC -Iinclude -Idaemon -Itests/fuzz -Itests/unit \
	-MMD -MP $(FUZZ_SAN) -DKILN_FUZZ_DATA='"$(CURDIR)/tests/data"'
FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_OBJ     := $(LIB_SRC:%.c=$(BUILD)/fuzz/obj/%.o) $(DAEMON_SRC:%.c=$(BUILD)/fuzz/obj/%.o) \
	$(BUILD)/fuzz/obj/tests/fuzz/common.o $(BUILD)/fuzz/obj/tests/unit/harness.o

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(PC_CFLAGS) -c $< -o $@

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $(PC_CFLAGS) -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: deps-test
	@$(MAKE) --no-print-directory fuzz-build
	@$(PYTHON) tests/fuzz/run.py --build $(BUILD) --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

stress: deps-test
	@$(MAKE) --no-print-directory all
	@$(PYTHON) tests/stress/run.py --build $(BUILD) $(STRESS)

# Each mutation is an exact edit inside a named function with the tests that
# must catch it; the runner builds a scratch copy (the working tree is not
# touched) and fails if any mutation survives or no longer applies.  `make
# test` only checks that every edit still applies (run.py --check).
MUTATIONS ?=
mutation: deps-test
	@$(PYTHON) tests/mutation/run.py $(MUTATIONS)

# Regenerates proto/actions.json from the action table (a test checks it is current).
proto: $(BUILD)/kilnd
	env -u KILN_CONFIG $(BUILD)/kilnd --describe > proto/actions.json

# Install layout.  PREFIX (default /usr/local) holds the binary, the units
# (in systemd's search path for both /usr and /usr/local), sysusers.d and
# the docs; the configuration is /etc/kiln/kiln.json whatever the prefix,
# because the unit's ConfigurationDirectory=kiln is always under /etc.  The
# Python client goes where /usr/bin/python3 finds it for that prefix
# (/usr/local/lib/python3.X/dist-packages, /usr/lib/python3/dist-packages),
# else into $(PREFIX)/lib/python3.X/site-packages (add it to PYTHONPATH).
BINDIR      ?= $(PREFIX)/bin
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
DOCDIR      ?= $(PREFIX)/share/doc/kiln
PYTHONDIR   ?= $(shell $(PYTHON) -c 'import sys, sysconfig; p = sys.argv[1].rstrip("/"); \
	c = [d for d in sys.path if d.startswith(p + "/lib/") and d.endswith(("dist-packages", "site-packages"))]; \
	print(c[0] if c else sysconfig.get_path("purelib", "posix_prefix", {"base": p}))' '$(PREFIX)')
# The units name /usr/local and /etc paths; install rewrites them.
UNIT_SED = -e 's|/usr/local/bin/kilnd|$(BINDIR)/kilnd|' \
	-e 's|/usr/local/share/doc/kiln|$(DOCDIR)|' \
	-e 's|/etc/kiln/kiln.json|$(SYSCONFDIR)/kiln/kiln.json|'

install: $(BUILD)/kilnd
	@[ -n "$(PYTHONDIR)" ] || { echo "install: set PYTHONDIR (no Python site directory found)"; exit 1; }
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/kiln $(DESTDIR)$(PYTHONDIR)/kiln
	install -m 0755 $(BUILD)/kilnd $(DESTDIR)$(BINDIR)/kilnd
	for u in kilnd.service kilnd.socket; do \
		sed $(UNIT_SED) systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && \
		mv -f $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 systemd/kiln.conf $(DESTDIR)$(SYSUSERSDIR)/kiln.conf
	install -m 0644 daemon/kiln.example.json $(DESTDIR)$(DOCDIR)/kiln.example.json
	[ ! -f README.md ] || install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	@# An existing configuration is the administrator's: never overwrite it.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json ]; then \
		echo "install: keeping existing $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json"; \
	else \
		echo "install -m 0644 daemon/kiln.example.json $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json"; \
		install -m 0644 daemon/kiln.example.json $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json; \
	fi
	install -m 0644 client/kiln/*.py $(DESTDIR)$(PYTHONDIR)/kiln/
	@[ -n "$(DESTDIR)" ] || echo "install: now run: systemd-sysusers; systemctl daemon-reload;" \
		"systemctl enable --now kilnd.socket; usermod -aG kiln YOUR_USER"

uninstall:
	@[ -n "$(PYTHONDIR)" ] || { echo "uninstall: set PYTHONDIR (no Python site directory found)"; exit 1; }
	rm -f $(DESTDIR)$(BINDIR)/kilnd $(DESTDIR)$(UNITDIR)/kilnd.service \
		$(DESTDIR)$(UNITDIR)/kilnd.socket $(DESTDIR)$(SYSUSERSDIR)/kiln.conf
	@# The configuration goes only if it is still the untouched example.
	@if cmp -s daemon/kiln.example.json $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json; then \
		echo "rm -f $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json"; \
		rm -f $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json; \
		rmdir $(DESTDIR)$(SYSCONFDIR)/kiln 2>/dev/null || true; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json ]; then \
		echo "uninstall: keeping modified $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json"; \
	fi
	rm -f $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/kiln.example.json
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	rm -f $(DESTDIR)$(PYTHONDIR)/kiln/*.py
	rm -rf $(DESTDIR)$(PYTHONDIR)/kiln/__pycache__
	rmdir $(DESTDIR)$(PYTHONDIR)/kiln 2>/dev/null || true

clean:
	rm -rf build build-*

-include $(LIB_OBJ:.o=.d) $(DAEMON_OBJ:.o=.d) $(BUILD)/obj/daemon/main.d $(FUZZ_OBJ:.o=.d)
