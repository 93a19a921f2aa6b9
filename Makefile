# kiln — build, run, test, bench, install.
#
#   make          build build/kilnd and build/libkiln.{a,so}
#   make run      install missing Debian packages, build, start kilnd in the foreground
#   make test     install missing packages, build, run every test (also under ASan+UBSan,
#                 valgrind, and the .deb under systemd in a container: make test-systemd)
#   make bench    benchmarks (not tests)
#   make stress   long load, fault and soak tests (tests/stress, ~3 min; STRESS=stress_soak for one)
#   make fuzz     libFuzzer targets (tests/fuzz), each run FUZZ_SECONDS (default 60)
#   make mutation break each check in tests/mutation/mutations.json in turn, in a
#                 scratch copy, and show that its tests fail (MUTATIONS="id ..." picks some)
#   make install  kilnd, systemd units (system and user), sysusers.d, tmpfiles.d,
#                 /etc/kiln/kiln.json, the Python client and its `kiln` command, libkiln
#                 with headers and pkg-config files (PREFIX=/usr/local, DESTDIR=; see
#                 below); make uninstall removes them.  Into a venv: pip install ./client
#   make deb      build/kiln_VERSION_ARCH.deb (packaging in systemd/debian/)
#   make test-systemd  boot Debian 12 under systemd-nspawn, install the .deb, test the
#                 units through systemd (root, systemd-nspawn, mmdebstrap; else skipped)
#
# BUILD=dir puts objects elsewhere (developers use this to build in parallel).
# SAN=1 builds with AddressSanitizer + UndefinedBehaviorSanitizer; it and
# DEBUG=1 keep the invariant checks (assert) that other builds compile out.
# DEBUG=1 also compiles debug-only hooks (-DKILN_DEBUG: SIGUSR2 wedges the event
# loop, for the watchdog test); release builds and the .deb never have them.

BUILD   ?= build
CC      := gcc
PYTHON  ?= /usr/bin/python3
PREFIX  ?= /usr/local
DESTDIR ?=

# Debian packages to build and run kilnd (`make deps`, which `make run` uses)...
DEB_PKGS := gcc make pkg-config libuv1-dev libjansson-dev libssl-dev libgmp-dev libpng-dev \
	zlib1g-dev libunistring-dev python3 socat
# ...and to test, fuzz and benchmark it (`make deps-test`, for test, bench, fuzz, stress).
DEB_TEST_PKGS := check libsubunit-dev openssl valgrind systemd procps clang libclang-rt-14-dev \
	dpkg-dev systemd-container mmdebstrap lintian
# Optional: used by benchmarks and some tests when present (skipped otherwise).
DEB_OPT_PKGS := python3-gmpy2 python3-cryptography python3-pil redis-server python3-redis gnupg age \
	python3-numpy python3-venv python3-setuptools python3-wheel openssh-server openssh-client

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
ifeq ($(DEBUG),1)
CFLAGS  += -DKILN_DEBUG
endif
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
	fuzz-build mutation deb deps-deb test-systemd
all: $(BUILD)/kilnd $(BUILD)/libkiln.a $(BUILD)/libkiln.so client/kiln/_version.py

# The Python client's version comes from include/kiln/version.h (the one
# place it is written); the generated file is committed so `pip install
# ./client` works from a plain checkout.
client/kiln/_version.py: include/kiln/version.h
	@$(if $(Q),echo "  GEN     $@")
	$(Q)v=$$(sed -n 's/^#define KILN_VERSION "\(.*\)"$$/\1/p' $<); [ -n "$$v" ] || exit 1; \
	printf '"""Generated from include/kiln/version.h by make: do not edit."""\n\n__version__ = "%s"\n' "$$v" > $@

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

# The library's ABI version: bump KILN_SOVERSION on an incompatible change.
KILN_SOVERSION := 0
$(BUILD)/libkiln.so: $(LIB_OBJ)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared $(LDFLAGS) -Wl,--no-undefined -Wl,-soname,libkiln.so.$(KILN_SOVERSION) -o $@ $^ $(LIB_LDLIBS)

# kilnd exports the module API (kiln_mod_*) to the modules it loads.
MODULE_LDFLAGS := -Wl,--dynamic-list=daemon/module.syms

$(BUILD)/kilnd: $(BUILD)/obj/daemon/main.o $(DAEMON_OBJ) $(BUILD)/libkiln.a daemon/module.syms
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(MODULE_LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

HARNESS_OBJ := $(BUILD)/obj/tests/unit/harness.o

$(BUILD)/tests/%: tests/unit/%.c $(HARNESS_OBJ) $(DAEMON_OBJ) $(BUILD)/libkiln.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CCLD    $@")
	$(Q)$(CC) $(CFLAGS) $(DAEMON_CPPFLAGS) $(CHECK_CFLAGS) -Itests/unit $(LDFLAGS) $(MODULE_LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

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

deps-deb:
	$(call install_missing,$(DEB_PKGS) dpkg-dev,)

run: deps
	@$(MAKE) --no-print-directory all
	$(BUILD)/kilnd --config daemon/kiln.dev.json --foreground

test: deps-test
	@$(MAKE) --no-print-directory all tools unit modules
	@$(PYTHON) tests/run_all.py --build $(BUILD)

bench: deps-test
	@$(MAKE) --no-print-directory all tools modules
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
# (in systemd's search path for both /usr and /usr/local), sysusers.d,
# tmpfiles.d, the library, headers, pkg-config files and the docs; the
# configuration is /etc/kiln/kiln.json whatever the prefix, because the
# unit's ConfigurationDirectory=kiln is always under /etc.  The Python client
# goes where /usr/bin/python3 finds it for that prefix
# (/usr/local/lib/python3.X/dist-packages, /usr/lib/python3/dist-packages),
# else into $(PREFIX)/lib/python3.X/site-packages (add it to PYTHONPATH).
VERSION      := $(shell sed -n 's/^\#define KILN_VERSION "\(.*\)"/\1/p' include/kiln/version.h)
BINDIR       ?= $(PREFIX)/bin
SYSCONFDIR   ?= /etc
UNITDIR      ?= $(PREFIX)/lib/systemd/system
USERUNITDIR  ?= $(PREFIX)/lib/systemd/user
SYSUSERSDIR  ?= $(PREFIX)/lib/sysusers.d
TMPFILESDIR  ?= $(PREFIX)/lib/tmpfiles.d
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DOCDIR       ?= $(PREFIX)/share/doc/kiln
MANDIR       ?= $(PREFIX)/share/man
PYTHONDIR    ?= $(shell $(PYTHON) -c 'import sys, sysconfig; p = sys.argv[1].rstrip("/"); \
	c = [d for d in sys.path if d.startswith(p + "/lib/") and d.endswith(("dist-packages", "site-packages"))]; \
	print(c[0] if c else sysconfig.get_path("purelib", "posix_prefix", {"base": p}))' '$(PREFIX)')
# The units name /usr/local and /etc paths; install rewrites them.
UNIT_SED = -e 's|/usr/local/bin/kilnd|$(BINDIR)/kilnd|g' \
	-e 's|/usr/local/share/doc/kiln|$(DOCDIR)|' \
	-e 's|/etc/kiln/kiln.json|$(SYSCONFDIR)/kiln/kiln.json|'
PC_SED = -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	-e 's|@DOCDIR@|$(DOCDIR)|' -e 's|@VERSION@|$(VERSION)|'
KILN_HEADERS  := $(wildcard include/kiln/*.h)
KILN_SOFILE   := libkiln.so.$(KILN_SOVERSION).$(VERSION)
# kiln-module.pc describes include/kiln/module.h, installed once that exists.
KILN_PC       := kiln.pc $(if $(wildcard include/kiln/module.h),kiln-module.pc)
KILN_EXAMPLES := $(wildcard client/examples/*)

# $(call install_sed,SED-ARGS,SRC,DEST): a rewritten copy, mode 0644, replaced atomically.
define install_sed
	sed $(1) $(2) > $(3).tmp && chmod 0644 $(3).tmp && mv -f $(3).tmp $(3)
endef

install: $(BUILD)/kilnd $(BUILD)/libkiln.a $(BUILD)/libkiln.so
	@[ -n "$(PYTHONDIR)" ] || { echo "install: set PYTHONDIR (no Python site directory found)"; exit 1; }
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(USERUNITDIR) \
		$(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(INCLUDEDIR)/kiln $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(DOCDIR)/examples \
		$(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/kiln $(DESTDIR)$(PYTHONDIR)/kiln
	install -m 0755 $(BUILD)/kilnd $(DESTDIR)$(BINDIR)/kilnd
	install -m 0644 systemd/kilnd.8 $(DESTDIR)$(MANDIR)/man8/kilnd.8
	$(call install_sed,$(UNIT_SED),systemd/kilnd.service,$(DESTDIR)$(UNITDIR)/kilnd.service)
	$(call install_sed,$(UNIT_SED),systemd/kilnd.socket,$(DESTDIR)$(UNITDIR)/kilnd.socket)
	$(call install_sed,$(UNIT_SED),systemd/user/kilnd.service,$(DESTDIR)$(USERUNITDIR)/kilnd.service)
	$(call install_sed,$(UNIT_SED),systemd/user/kilnd.socket,$(DESTDIR)$(USERUNITDIR)/kilnd.socket)
	install -m 0644 systemd/kiln.conf $(DESTDIR)$(SYSUSERSDIR)/kiln.conf
	install -m 0644 systemd/tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/kiln.conf
	install -m 0644 $(BUILD)/libkiln.a $(DESTDIR)$(LIBDIR)/libkiln.a
	install -m 0644 $(BUILD)/libkiln.so $(DESTDIR)$(LIBDIR)/$(KILN_SOFILE)
	ln -sf $(KILN_SOFILE) $(DESTDIR)$(LIBDIR)/libkiln.so.$(KILN_SOVERSION)
	ln -sf libkiln.so.$(KILN_SOVERSION) $(DESTDIR)$(LIBDIR)/libkiln.so
	install -m 0644 $(KILN_HEADERS) $(DESTDIR)$(INCLUDEDIR)/kiln/
	for pc in $(KILN_PC); do \
		$(call install_sed,$(PC_SED),systemd/pkgconfig/$$pc.in,$(DESTDIR)$(PKGCONFIGDIR)/$$pc) || exit 1; \
	done
	install -m 0644 daemon/kiln.example.json $(DESTDIR)$(DOCDIR)/kiln.example.json
	[ ! -f README.md ] || install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	$(if $(KILN_EXAMPLES),install -m 0644 $(KILN_EXAMPLES) $(DESTDIR)$(DOCDIR)/examples/)
	@# An existing configuration is the administrator's: never overwrite it.
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json ]; then \
		echo "install: keeping existing $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json"; \
	else \
		echo "install -m 0644 daemon/kiln.example.json $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json"; \
		install -m 0644 daemon/kiln.example.json $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json; \
	fi
	install -m 0644 client/kiln/*.py client/kiln/*.pyi client/kiln/py.typed $(DESTDIR)$(PYTHONDIR)/kiln/
	@# The `kiln` command, as pip's console script would make it.
	printf '#!$(PYTHON)\nimport sys\nfrom kiln.cli import main\nsys.exit(main())\n' \
		> $(DESTDIR)$(BINDIR)/kiln.tmp && chmod 0755 $(DESTDIR)$(BINDIR)/kiln.tmp && \
		mv -f $(DESTDIR)$(BINDIR)/kiln.tmp $(DESTDIR)$(BINDIR)/kiln
	@[ -n "$(DESTDIR)" ] || echo "install: now run: systemd-sysusers; systemd-tmpfiles --create kiln.conf;" \
		"systemctl daemon-reload; systemctl enable --now kilnd.socket; usermod -aG kiln YOUR_USER"

uninstall:
	@[ -n "$(PYTHONDIR)" ] || { echo "uninstall: set PYTHONDIR (no Python site directory found)"; exit 1; }
	rm -f $(DESTDIR)$(BINDIR)/kilnd $(DESTDIR)$(UNITDIR)/kilnd.service \
		$(DESTDIR)$(UNITDIR)/kilnd.socket $(DESTDIR)$(USERUNITDIR)/kilnd.service \
		$(DESTDIR)$(USERUNITDIR)/kilnd.socket $(DESTDIR)$(SYSUSERSDIR)/kiln.conf \
		$(DESTDIR)$(TMPFILESDIR)/kiln.conf $(DESTDIR)$(MANDIR)/man8/kilnd.8
	rm -f $(DESTDIR)$(LIBDIR)/libkiln.a $(DESTDIR)$(LIBDIR)/libkiln.so $(DESTDIR)$(LIBDIR)/libkiln.so.$(KILN_SOVERSION) \
		$(DESTDIR)$(LIBDIR)/$(KILN_SOFILE) $(DESTDIR)$(PKGCONFIGDIR)/kiln.pc $(DESTDIR)$(PKGCONFIGDIR)/kiln-module.pc
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/kiln/,$(notdir $(KILN_HEADERS)) module.h)
	rmdir $(DESTDIR)$(INCLUDEDIR)/kiln 2>/dev/null || true
	@# The configuration goes only if it is still the untouched example.
	@if cmp -s daemon/kiln.example.json $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json; then \
		echo "rm -f $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json"; \
		rm -f $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json; \
		rmdir $(DESTDIR)$(SYSCONFDIR)/kiln 2>/dev/null || true; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json ]; then \
		echo "uninstall: keeping modified $(DESTDIR)$(SYSCONFDIR)/kiln/kiln.json"; \
	fi
	rm -f $(DESTDIR)$(DOCDIR)/README.md $(DESTDIR)$(DOCDIR)/kiln.example.json
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/examples/,$(notdir $(KILN_EXAMPLES)))
	rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	rm -f $(DESTDIR)$(PYTHONDIR)/kiln/*.py $(DESTDIR)$(PYTHONDIR)/kiln/*.pyi $(DESTDIR)$(PYTHONDIR)/kiln/py.typed $(DESTDIR)$(BINDIR)/kiln
	rm -rf $(DESTDIR)$(PYTHONDIR)/kiln/__pycache__
	rmdir $(DESTDIR)$(PYTHONDIR)/kiln 2>/dev/null || true

# The Debian package: `make install` into a staging tree with Debian's
# paths, plus the control files and maintainer scripts in systemd/debian/.
# Depends: comes from dpkg-shlibdeps.  lintian checks the result in make test.
deb: deps-deb
	@$(MAKE) --no-print-directory $(BUILD)/kilnd $(BUILD)/libkiln.a $(BUILD)/libkiln.so
	@BUILD=$(BUILD) VERSION=$(VERSION) KILN_SOVERSION=$(KILN_SOVERSION) MAKE="$(MAKE)" \
		sh systemd/debian/build-deb.sh

# Booted Debian 12 under systemd-nspawn: the .deb installed with apt-get and
# tested through systemd (tests/systemd/run.sh; skips without root, nspawn,
# mmdebstrap).  The debug build is only for the watchdog check.
test-systemd: deps-test
	@$(MAKE) --no-print-directory deb
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/debug DEBUG=1 $(BUILD)/debug/kilnd
	@BUILD=$(BUILD) bash tests/systemd/run.sh

clean:
	rm -rf build build-*

-include $(LIB_OBJ:.o=.d) $(DAEMON_OBJ:.o=.d) $(BUILD)/obj/daemon/main.d $(FUZZ_OBJ:.o=.d)

# --- Native modules (issue #12): examples, test modules, developer install ---
# `make modules` builds the example modules (daemon/modules/examples/*.c, and
# the Rust one when Debian's cargo is installed) into $(BUILD)/modules/ and
# the test modules (tests/modules/*.c) into $(BUILD)/tests/modules/.
# `make install` also installs the headers, libkiln.{a,so} and the pkg-config
# files kiln.pc and kiln-module.pc (install-dev), so a user builds a module
# with: cc -shared -fPIC $(pkg-config --cflags kiln-module) mymod.c -o mymod.so
# Optional for the tests: the Rust example's toolchain, and numpy for kiln.arrays.
DEB_OPT_PKGS += cargo rustc librust-bindgen-dev libclang-dev python3-numpy
MODULE_EXAMPLES := $(wildcard daemon/modules/examples/*.c)
TEST_MODULES    := $(wildcard tests/modules/*.c)
MODULE_SO       := $(MODULE_EXAMPLES:daemon/modules/examples/%.c=$(BUILD)/modules/%.so) \
	$(TEST_MODULES:tests/modules/%.c=$(BUILD)/tests/modules/%.so)
MODULE_CFLAGS   := -O2 -g -std=c11 $(WARN) -shared -fPIC -Iinclude
MODULE_HDRS     := include/kiln/module.h include/kiln/error.h
# Debian's cargo and rustc (not a rustup toolchain earlier on PATH), offline,
# with crates from /usr/share/cargo/registry (daemon/modules/examples/rust/.cargo).
CARGO ?= $(shell test -x /usr/bin/cargo && echo /usr/bin/cargo)
RUSTC ?= $(shell test -x /usr/bin/rustc && echo /usr/bin/rustc)
RUST_MODULE := daemon/modules/examples/rust
KILN_MODULE_ABI = $(shell sed -n 's/^\#define KILN_MODULE_ABI_VERSION \([0-9]*\)/\1/p' include/kiln/module.h)

.PHONY: modules modules-rust install-dev uninstall-dev
modules: $(MODULE_SO) modules-rust

$(BUILD)/modules/%.so: daemon/modules/examples/%.c $(MODULE_HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  MODULE  $@")
	$(Q)$(CC) $(MODULE_CFLAGS) -o $@ $<

$(BUILD)/tests/modules/%.so: tests/modules/%.c $(MODULE_HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  MODULE  $@")
	$(Q)$(CC) $(MODULE_CFLAGS) -o $@ $<

modules-rust:
	@if [ -z "$(CARGO)" ] || [ -z "$(RUSTC)" ] || ! ls -d /usr/share/cargo/registry/bindgen-0.* >/dev/null 2>&1 || \
		! ls /usr/lib/llvm-*/lib/libclang.so >/dev/null 2>&1; then \
		echo "modules: skipping the Rust example (needs Debian's cargo, rustc, librust-bindgen-dev, libclang-dev)"; \
	else \
		mkdir -p $(BUILD)/modules && \
		cd $(RUST_MODULE) && RUSTC=$(RUSTC) CARGO_TARGET_DIR=$(abspath $(BUILD))/cargo \
			KILN_INCLUDE=$(CURDIR)/include $(CARGO) build --offline --release -q && \
		cp $(abspath $(BUILD))/cargo/release/libkiln_rust_example.so $(abspath $(BUILD))/modules/rust_example.so; \
	fi

INCLUDEDIR ?= $(PREFIX)/include
LIBDIR     ?= $(PREFIX)/lib
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PC_SED = -e 's|@PREFIX@|$(PREFIX)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	-e 's|@VERSION@|$(shell sed -n 's/^\#define KILN_VERSION "\(.*\)"/\1/p' include/kiln/version.h)|' \
	-e 's|@ABI@|$(KILN_MODULE_ABI)|' -e 's|@DOCDIR@|$(DOCDIR)|'

install: install-dev
uninstall: uninstall-dev

install-dev: $(BUILD)/libkiln.a $(BUILD)/libkiln.so
	install -d $(DESTDIR)$(INCLUDEDIR)/kiln $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 0644 include/kiln/*.h $(DESTDIR)$(INCLUDEDIR)/kiln/
	install -m 0644 $(BUILD)/libkiln.a $(DESTDIR)$(LIBDIR)/libkiln.a
	install -m 0755 $(BUILD)/libkiln.so $(DESTDIR)$(LIBDIR)/libkiln.so
	for pc in kiln kiln-module; do \
		sed $(PC_SED) daemon/pkgconfig/$$pc.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/$$pc.pc && \
		chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/$$pc.pc || exit 1; \
	done

uninstall-dev:
	for h in include/kiln/*.h; do rm -f $(DESTDIR)$(INCLUDEDIR)/kiln/$$(basename $$h); done
	rmdir $(DESTDIR)$(INCLUDEDIR)/kiln 2>/dev/null || true
	rm -f $(DESTDIR)$(LIBDIR)/libkiln.a $(DESTDIR)$(LIBDIR)/libkiln.so \
		$(DESTDIR)$(PKGCONFIGDIR)/kiln.pc $(DESTDIR)$(PKGCONFIGDIR)/kiln-module.pc

# The unit tests load the C test modules (test and bench build every module
# in their recipes, after deps-test).
unit: $(MODULE_SO)
