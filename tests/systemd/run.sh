#!/bin/bash
# kiln under a real systemd: boots Debian 12 (systemd 252 as PID 1) with
# systemd-nspawn, installs build/kiln_*.deb the way README tells users to
# (apt-get install ./kiln_*.deb), and checks the units' behaviour through
# systemd (tests/systemd/checks.py, run inside the container).  Host-side
# checks first: lintian on the .deb, and a program built against the
# packaged libkiln with pkg-config.
#
# Every check prints one line "SYSTEMD-RESULT NAME PASS|FAIL|SKIP detail",
# which tests/run_all.py counts.  Exit: 0 when nothing failed (checks that
# cannot run here, e.g. without root, say SKIP and why), 1 on a failure.
#
# Needs root, systemd-nspawn (systemd-container) and mmdebstrap (make
# deps-test installs them).  The container's root filesystem is built once
# with mmdebstrap (the .deb's dependencies and recommends pre-installed, so
# the install inside works without network) and cached under
# $BUILD/systemd-root/KEY, KEY being a hash of the package list; each run
# boots it with a throwaway overlay (--volatile=overlay), so the cache stays
# pristine.  The container is always torn down (trap); every wait has a
# timeout.
#
# Env: BUILD (default build), KILN_SYSTEMD_KEEP=1 keeps the run directory.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOTDIR=$PWD
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOTDIR/$BUILD ;; esac
SUITE=bookworm
# Packages the tests need beyond the .deb's Depends and Recommends: systemd
# as PID 1, the system bus (logind for the lingering user), sshd for the ssh
# procedure.  procps comes with openssh-server; the reload check hides
# /bin/kill while it runs.
EXTRA_PKGS="systemd-sysv dbus libpam-systemd openssh-server"

result() { echo "SYSTEMD-RESULT $1 $2 ${3:-}"; }
note() { echo "systemd-test: $*"; }

DEB=$(ls "$BUILD"/kiln_*_*.deb 2>/dev/null | head -n1)
DEBUG_KILND=$BUILD/debug/kilnd
if [ -z "$DEB" ] || [ ! -x "$DEBUG_KILND" ]; then
	echo "FAIL: need $BUILD/kiln_*.deb and $DEBUG_KILND (make deb; make BUILD=$BUILD/debug DEBUG=1 $BUILD/debug/kilnd)"
	result setup FAIL "missing build products"
	exit 1
fi

T=$(mktemp -d /tmp/kiln-systemd.XXXXXX)
NSPAWN_PID=
LEADER=
cleanup() {
	if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
		# SIGTERM asks nspawn to halt the container; after 20 s, SIGKILL to
		# the container's init (which ends its whole pid namespace) and to
		# nspawn end it regardless.
		kill -TERM "$NSPAWN_PID" 2>/dev/null
		for _ in $(seq 200); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$NSPAWN_PID" 2>/dev/null; then
			[ -z "$LEADER" ] || kill -KILL "$LEADER" 2>/dev/null
			kill -KILL "$NSPAWN_PID" 2>/dev/null
		fi
		wait "$NSPAWN_PID" 2>/dev/null
	fi
	if [ "${KILN_SYSTEMD_KEEP:-0}" = 1 ]; then
		note "kept $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failed=0
check_line() { # name status detail: print a result, remember a failure
	result "$1" "$2" "${3:-}"
	[ "$2" != FAIL ] || failed=1
}

# --- host side: the package itself -----------------------------------------
if command -v lintian >/dev/null 2>&1; then
	# Errors fail; warnings are shown (E: lines only count).
	timeout 300 lintian --allow-root --tag-display-limit 0 "$DEB" >"$T/lintian.log" 2>&1
	cat "$T/lintian.log"
	if grep -q '^E: ' "$T/lintian.log"; then
		check_line lintian FAIL "$(grep -c '^E: ' "$T/lintian.log") errors"
	else
		check_line lintian PASS "no errors, $(grep -c '^W: ' "$T/lintian.log") warnings"
	fi
else
	check_line lintian SKIP "lintian not installed (apt-get install lintian)"
fi

# libkiln from the package: headers, pkg-config file and shared library are
# enough to build and run a program.
mkdir -p "$T/x" && dpkg-deb -x "$DEB" "$T/x"
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
cat >"$T/use_lib.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kiln/pi.h"
int main(void)
{
	char *out = NULL, err[256];
	size_t len = 0;
	int rc = kiln_pi(10, NULL, &out, &len, err, sizeof(err));
	if (rc) { fprintf(stderr, "kiln_pi: %d %s\n", rc, err); return 1; }
	puts(out);
	rc = strcmp(out, "3.1415926535") != 0;
	free(out);
	return rc;
}
EOF
pcflags=$(PKG_CONFIG_SYSROOT_DIR="$T/x" PKG_CONFIG_LIBDIR="$T/x/usr/lib/$MA/pkgconfig" \
	pkg-config --cflags --libs kiln 2>"$T/pc.err")
if [ -z "$pcflags" ]; then
	check_line deb_library FAIL "pkg-config kiln: $(cat "$T/pc.err")"
elif ! gcc -o "$T/use_lib" "$T/use_lib.c" $pcflags >"$T/cc.log" 2>&1; then
	cat "$T/cc.log"
	check_line deb_library FAIL "cannot build against the packaged libkiln ($pcflags)"
elif ! out=$(LD_LIBRARY_PATH="$T/x/usr/lib/$MA" "$T/use_lib" 2>&1); then
	check_line deb_library FAIL "program using libkiln.so: $out"
elif ! readelf -d "$T/use_lib" | grep -q 'NEEDED.*libkiln.so.0'; then
	check_line deb_library FAIL "program does not link libkiln.so.0"
else
	check_line deb_library PASS "pkg-config kiln -> $pcflags; pi(10) = $out"
fi
# The module header (include/kiln/module.h, once it exists) ships with its
# own pkg-config file.
if [ -f include/kiln/module.h ]; then
	if cmp -s include/kiln/module.h "$T/x/usr/include/kiln/module.h" &&
		PKG_CONFIG_SYSROOT_DIR="$T/x" PKG_CONFIG_LIBDIR="$T/x/usr/lib/$MA/pkgconfig" \
			pkg-config --cflags kiln-module >/dev/null 2>&1; then
		check_line deb_module_header PASS "kiln/module.h and kiln-module.pc packaged"
	else
		check_line deb_module_header FAIL "kiln/module.h or kiln-module.pc missing from the package"
	fi
fi

# --- the container -----------------------------------------------------------
skip_all() {
	note "skip: $1"
	check_line container SKIP "$1"
	[ "$failed" = 0 ] || exit 1
	exit 0
}
[ "$(id -u)" = 0 ] || skip_all "not root (systemd-nspawn needs root)"
for tool in systemd-nspawn mmdebstrap nsenter; do
	command -v "$tool" >/dev/null 2>&1 ||
		skip_all "$tool not installed (make deps-test installs systemd-container and mmdebstrap)"
done

# The root filesystem: everything the .deb depends on or recommends, plus
# the test's own packages; keyed on that list.
dep_names() { # "a (>= 1), b | c" -> "a b"
	dpkg-deb -f "$DEB" "$1" | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' -e '/^$/d'
}
PKGS=$( (dep_names Depends; dep_names Recommends; printf '%s\n' $EXTRA_PKGS) | sort -u | tr '\n' ',' | sed 's/,$//')
KEY=$(printf '%s %s %s' "$SUITE" "$PKGS" "$(dpkg --print-architecture)" | sha256sum | cut -c1-16)
CACHE=$BUILD/systemd-root
ROOTFS=$CACHE/$KEY
t_root=$(date +%s.%N)
if [ ! -f "$ROOTFS/.kiln-complete" ]; then
	note "building the Debian $SUITE root with mmdebstrap (cached as $ROOTFS): $PKGS"
	rm -rf "$CACHE"
	mkdir -p "$CACHE"
	if ! timeout 600 mmdebstrap --variant=minbase --include="$PKGS" "$SUITE" "$ROOTFS.tmp" \
		>"$T/mmdebstrap.log" 2>&1; then
		tail -n 30 "$T/mmdebstrap.log"
		rm -rf "$ROOTFS.tmp"
		check_line container FAIL "mmdebstrap failed (is a Debian mirror reachable?)"
		exit 1
	fi
	touch "$ROOTFS.tmp/.kiln-complete"
	mv "$ROOTFS.tmp" "$ROOTFS"
	note "root filesystem built in $(awk -v a="$t_root" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
else
	note "using cached root filesystem $ROOTFS"
fi

# What the container sees: /run/kiln is a host directory (host-side clients
# reach the system socket there), /srv/kiln-test the test files read-only.
HOSTRUN=$T/run-kiln
SHARE=$T/share
mkdir -p "$HOSTRUN" "$SHARE"
cp "$DEB" "$SHARE/"
cp "$DEBUG_KILND" "$SHARE/kilnd-debug"
cp -r tests/data "$SHARE/data"
cp tests/systemd/checks.py "$SHARE/"
chmod -R a+rX "$SHARE"

# Where systemd is not running (a chroot, a container without init), the
# package still installs: the maintainer scripts create the user and enable
# the socket offline and skip what needs a running systemd.
if timeout 180 systemd-nspawn -q -D "$ROOTFS" --volatile=overlay --register=no --keep-unit --private-network \
	-M "kiln-chroot-$$" --bind-ro="$SHARE:/srv/kiln-test" --chdir=/srv/kiln-test \
	/bin/sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y ./$(basename "$DEB") &&
		getent passwd kiln && [ -L /etc/systemd/system/sockets.target.wants/kilnd.socket ] &&
		[ -d /var/lib/kiln ] && /usr/bin/kilnd --version" >"$T/offline.log" 2>&1; then
	check_line install_without_systemd PASS "apt-get install in a container without init: user created, socket enabled"
else
	tail -n 30 "$T/offline.log"
	check_line install_without_systemd FAIL "apt-get install without a running systemd failed"
fi

# The booted container keeps CAP_IPC_LOCK, without which nspawn's own seccomp
# filter refuses mlock() to every process in it, and CAP_SYS_RESOURCE, which
# lets its systemd apply LimitMEMLOCK= (where the host has it), as on a
# real machine; kilnd itself still runs with no capabilities.
t_boot=$(date +%s.%N)
systemd-nspawn -q -D "$ROOTFS" -b --volatile=overlay --register=no --keep-unit \
	--private-network --console=passive -M "kiln-test-$$" --capability=CAP_SYS_RESOURCE,CAP_IPC_LOCK \
	--bind="$HOSTRUN:/run/kiln" --bind-ro="$SHARE:/srv/kiln-test" >"$T/console.log" 2>&1 &
NSPAWN_PID=$!

in_ct() { # runs a command inside the container, 120 s at most
	timeout 120 nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}
# The leader is nspawn's child running systemd; nspawn's short-lived
# intermediate child must not be mistaken for it, so look again until
# systemd answers (60 s at most).
find_leader() {
	local p
	for p in $(pgrep -P "$NSPAWN_PID" 2>/dev/null); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = systemd ] && { echo "$p"; return 0; }
	done
	return 1
}
state=
for _ in $(seq 600); do
	kill -0 "$NSPAWN_PID" 2>/dev/null || break
	if LEADER=$(find_leader); then
		state=$(in_ct systemctl is-system-running 2>/dev/null)
		case $state in running | degraded) break ;; esac
	fi
	sleep 0.1
done
boot_s=$(awk -v a="$t_boot" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
case $state in
running) check_line boot PASS "systemd reached running in $boot_s s ($(in_ct systemd-analyze time 2>/dev/null | head -n1))" ;;
degraded)
	# Nothing of kiln's is installed yet: a unit of the base system that
	# cannot work in a container is not this test's concern.
	check_line boot PASS "systemd up in $boot_s s, degraded by: $(in_ct systemctl --failed --plain --no-legend 2>/dev/null | awk '{print $1}' | tr '\n' ' ')"
	;;
*)
	tail -n 40 "$T/console.log"
	check_line boot FAIL "container state '${state:-none}' after $boot_s s"
	exit 1
	;;
esac

# --- install and test inside ---------------------------------------------------
t_tests=$(date +%s.%N)
checks() { # limit phase [args]: runs checks.py inside, its results counted
	local limit=$1 phase=$2 rc
	shift 2
	timeout "$limit" nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
		/usr/bin/python3 /srv/kiln-test/checks.py "$phase" "$@" >"$T/checks-$phase.log" 2>&1
	rc=$?
	cat "$T/checks-$phase.log"
	grep -q '^SYSTEMD-RESULT .* FAIL' "$T/checks-$phase.log" && failed=1
	if [ "$rc" = 124 ]; then
		check_line "checks_$phase" FAIL "checks.py $phase timed out after $limit s"
	elif ! grep -q '^SYSTEMD-RESULT ' "$T/checks-$phase.log"; then
		check_line "checks_$phase" FAIL "checks.py $phase reported nothing (exit $rc)"
	elif [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
		check_line "checks_$phase" FAIL "checks.py $phase exited with $rc"
	fi
}
checks 420 main "/srv/kiln-test/$(basename "$DEB")"

# The system socket as a host-side client sees it, through the bind mount;
# then upgrade, remove and purge.  Both need the install to have worked.
if grep -q '^SYSTEMD-RESULT install PASS' "$T/checks-main.log"; then
	reply=$(printf '{"job_id":1,"action":"ping"}\n' | timeout 30 socat -t 20 - "UNIX-CONNECT:$HOSTRUN/kiln.sock" 2>&1)
	# The pid in the reply is the container's view (its own pid namespace),
	# which is what MainPID inside says.
	main_pid=$(in_ct /usr/bin/python3 /srv/kiln-test/checks.py pid 2>/dev/null)
	if echo "$reply" | grep -q '"result": *"success"' && echo "$reply" | grep -q "\"pid\": *$main_pid[,}]"; then
		check_line host_socket PASS "ping from the host via $HOSTRUN/kiln.sock answered by MainPID $main_pid"
	else
		check_line host_socket FAIL "host-side ping: $reply (MainPID $main_pid)"
	fi
	checks 300 final "/srv/kiln-test/$(basename "$DEB")"
fi
tests_s=$(awk -v a="$t_tests" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
note "container boot ${boot_s} s, install + checks ${tests_s} s"
[ "$failed" = 0 ] || { [ -s "$T/console.log" ] && tail -n 20 "$T/console.log"; exit 1; }
exit 0
