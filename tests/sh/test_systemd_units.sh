#!/bin/sh
# systemd units: `systemd-analyze verify` accepts both units as `make install`
# writes them, and the service's offline security exposure stays <= 2.0.
# systemd-analyze (package systemd) is a required test tool.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
MAX_EXPOSURE=2.0

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "FAIL: required test tool systemd-analyze is missing (make deps-test installs it)"
	exit 1
fi
[ -x "$BUILD/kilnd" ] || { echo "FAIL: $BUILD/kilnd not built"; exit 1; }

T=$(mktemp -d /tmp/kiln-units.XXXXXX)
trap 'rm -rf "$T"' EXIT

# verify checks that ExecStart= names an executable, so install into a
# private prefix (no DESTDIR): the units then point at a binary that exists.
make --no-print-directory -s -o "$BUILD/kilnd" BUILD="$BUILD" PREFIX="$T/usr" \
	SYSCONFDIR="$T/etc" PYTHONDIR="$T/python" install >"$T/install.log" 2>&1 ||
	{ cat "$T/install.log"; echo "FAIL: make install"; exit 1; }
UNITS=$T/usr/lib/systemd/system
grep -qx "ExecStart=$T/usr/bin/kilnd --config $T/etc/kiln/kiln.json --foreground" \
	"$UNITS/kilnd.service" || { echo "FAIL: ExecStart= not rewritten for the prefix"; exit 1; }

if ! (cd "$T" && systemd-analyze verify --man=no "$UNITS/kilnd.socket" "$UNITS/kilnd.service") \
	>"$T/verify.log" 2>&1; then
	cat "$T/verify.log"
	echo "FAIL: systemd-analyze verify"
	exit 1
fi
# verify reports some problems without failing: any output is one.
if [ -s "$T/verify.log" ]; then
	cat "$T/verify.log"
	echo "FAIL: systemd-analyze verify printed warnings"
	exit 1
fi

systemd-analyze security --offline=yes --no-pager systemd/kilnd.service >"$T/security.log" 2>&1 || true
score=$(sed -n 's/.*Overall exposure level for kilnd.service: \([0-9.]*\).*/\1/p' "$T/security.log")
if [ -z "$score" ]; then
	cat "$T/security.log"
	echo "FAIL: no exposure level from systemd-analyze security"
	exit 1
fi
if ! awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
	grep '✗' "$T/security.log" || true
	echo "FAIL: exposure $score > $MAX_EXPOSURE"
	exit 1
fi
# --threshold makes systemd-analyze itself agree (it exits non-zero above it).
systemd-analyze security --offline=yes --threshold=20 --no-pager systemd/kilnd.service >/dev/null 2>&1 ||
	{ echo "FAIL: systemd-analyze security --threshold=20 refused the unit"; exit 1; }
echo "ok: units verify; kilnd.service exposure $score (max $MAX_EXPOSURE)"
