#!/bin/sh
# `make install DESTDIR=...` lays out the binary, the system and user units
# (rewritten for the prefix), sysusers.d, tmpfiles.d, the example config as
# /etc/kiln/kiln.json, libkiln (static, shared with its soname links),
# headers and kiln.pc, the docs with examples and the Python client
# (importable from there); `make uninstall` removes them but keeps a
# configuration the administrator changed.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$BUILD/kilnd" ] || { echo "FAIL: $BUILD/kilnd not built"; exit 1; }

T=$(mktemp -d /tmp/kiln-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
D=$T/dest
fail() { echo "FAIL: $*"; exit 1; }
run_make() {
	make --no-print-directory -o "$BUILD/kilnd" BUILD="$BUILD" DESTDIR="$D" PREFIX=/usr/local \
		"$@" >>"$T/make.log" 2>&1 || { cat "$T/make.log"; fail "make $*"; }
}

run_make install
PYDIR=$("$PYTHON" -c 'import sys; print("/usr/local/lib/python%d.%d/dist-packages" % sys.version_info[:2])')
for f in /usr/local/bin/kilnd \
	/usr/local/lib/systemd/system/kilnd.service \
	/usr/local/lib/systemd/system/kilnd.socket \
	/usr/local/lib/systemd/user/kilnd.service \
	/usr/local/lib/systemd/user/kilnd.socket \
	/usr/local/lib/sysusers.d/kiln.conf \
	/usr/local/lib/tmpfiles.d/kiln.conf \
	/usr/local/lib/libkiln.a \
	/usr/local/lib/libkiln.so.0 \
	/usr/local/lib/libkiln.so \
	/usr/local/lib/pkgconfig/kiln.pc \
	/usr/local/include/kiln/pi.h \
	/usr/local/share/doc/kiln/kiln.example.json \
	/usr/local/share/doc/kiln/examples/render_scene.py \
	/usr/local/share/man/man8/kilnd.8 \
	/etc/kiln/kiln.json \
	"$PYDIR/kiln/__init__.py" \
	"$PYDIR/kiln/client.py"; do
	[ -f "$D$f" ] || fail "missing $f"
done
[ -x "$D/usr/local/bin/kilnd" ] || fail "kilnd not executable"
cmp -s "$BUILD/kilnd" "$D/usr/local/bin/kilnd" || fail "installed kilnd differs from $BUILD/kilnd"
cmp -s daemon/kiln.example.json "$D/etc/kiln/kiln.json" || fail "kiln.json is not the example"
for f in client/kiln/*.py; do
	cmp -s "$f" "$D$PYDIR/kiln/$(basename "$f")" || fail "client file $f not installed"
done
grep -qx 'ExecStart=/usr/local/bin/kilnd --config /etc/kiln/kiln.json --foreground' \
	"$D/usr/local/lib/systemd/system/kilnd.service" || fail "ExecStart= wrong"
grep -qx 'ListenStream=/run/kiln/kiln.sock' "$D/usr/local/lib/systemd/system/kilnd.socket" ||
	fail "ListenStream= wrong"
grep -qx 'ListenStream=%t/kiln/kiln.sock' "$D/usr/local/lib/systemd/user/kilnd.socket" ||
	fail "user ListenStream= wrong"
grep -q 'exec /usr/local/bin/kilnd --foreground' "$D/usr/local/lib/systemd/user/kilnd.service" ||
	fail "user unit's ExecStart= not rewritten"
grep -q '^ExecReload=.*/bin/kill' "$D/usr/local/lib/systemd/system/kilnd.service" &&
	fail "ExecReload= needs /bin/kill (procps)"
for h in include/kiln/*.h; do
	cmp -s "$h" "$D/usr/local/$h" || fail "header $h not installed"
done
[ "$(readlink "$D/usr/local/lib/libkiln.so")" = libkiln.so.0 ] || fail "libkiln.so link wrong"
objdump -p "$D/usr/local/lib/libkiln.so.0" | grep -q 'SONAME *libkiln.so.0$' || fail "libkiln soname is not libkiln.so.0"
PKG_CONFIG_LIBDIR=$D/usr/local/lib/pkgconfig pkg-config --cflags --libs kiln >"$T/pc" 2>&1 || { cat "$T/pc"; fail "pkg-config kiln"; }
grep -q -- '-I/usr/local/include' "$T/pc" && grep -q -- '-L/usr/local/lib -lkiln' "$T/pc" || fail "kiln.pc: $(cat "$T/pc")"
# Nothing outside the prefix and /etc/kiln.
extra=$(cd "$D" && find . -type f | grep -v -e '^\./usr/local/' -e '^\./etc/kiln/' || true)
[ -z "$extra" ] || fail "unexpected files: $extra"

# The installed client imports from the install tree alone.
(cd "$T" && "$PYTHON" -I -c 'import sys; sys.path.insert(0, sys.argv[1]); import kiln; assert kiln.__file__.startswith(sys.argv[1]), kiln.__file__; kiln.Client' "$D$PYDIR") ||
	fail "installed client does not import"

# A second install keeps an edited configuration.
echo '{}' >"$D/etc/kiln/kiln.json"
run_make install
[ "$(cat "$D/etc/kiln/kiln.json")" = '{}' ] || fail "install overwrote an edited kiln.json"

run_make uninstall
[ -f "$D/etc/kiln/kiln.json" ] || fail "uninstall removed an edited kiln.json"
rm "$D/etc/kiln/kiln.json"
run_make install
run_make uninstall
left=$(cd "$D" && find . -type f)
[ -z "$left" ] || fail "uninstall left: $left"
echo "ok: install/uninstall layout under DESTDIR"
