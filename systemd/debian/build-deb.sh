#!/bin/sh
# Builds $BUILD/kiln_$VERSION_$ARCH.deb (called by `make deb`, which passes
# BUILD, VERSION, KILN_SOVERSION and MAKE).  The files come from
# `make install` into a staging tree with Debian's paths; the control file,
# maintainer scripts and the rest of DEBIAN/ from this directory.  Depends:
# is dpkg-shlibdeps' answer for the ELF files plus systemd, which the
# maintainer scripts and units need.
set -eu
cd "$(dirname "$0")/../.."
: "${BUILD:=build}" "${VERSION:?}" "${KILN_SOVERSION:?}" "${MAKE:=make}"
D=systemd/debian

for tool in dpkg-deb dpkg-shlibdeps dpkg-architecture; do
	command -v "$tool" >/dev/null 2>&1 ||
		{ echo "deb: $tool not found (apt-get install dpkg-dev)" >&2; exit 1; }
done
ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null)
WORK=$PWD/$BUILD/deb
STAGE=$WORK/root
OUT=$BUILD/kiln_${VERSION}_${ARCH}.deb
rm -rf "$WORK"
mkdir -p "$STAGE/DEBIAN" "$WORK/src/debian"

$MAKE --no-print-directory -s BUILD="$BUILD" DESTDIR="$STAGE" PREFIX=/usr \
	UNITDIR=/lib/systemd/system USERUNITDIR=/usr/lib/systemd/user \
	SYSUSERSDIR=/usr/lib/sysusers.d TMPFILESDIR=/usr/lib/tmpfiles.d \
	LIBDIR="/usr/lib/$MULTIARCH" PYTHONDIR=/usr/lib/python3/dist-packages install >"$WORK/install.log" 2>&1 ||
	{ cat "$WORK/install.log" >&2; echo "deb: make install failed" >&2; exit 1; }

# Debian ships stripped objects (debug symbols would go to a -dbgsym package).
SOFILE=$(cd "$STAGE/usr/lib/$MULTIARCH" && ls libkiln.so.*.*)
strip --remove-section=.comment --remove-section=.note "$STAGE/usr/bin/kilnd"
strip --remove-section=.comment --remove-section=.note --strip-unneeded "$STAGE/usr/lib/$MULTIARCH/$SOFILE"
strip --strip-debug --remove-section=.comment "$STAGE/usr/lib/$MULTIARCH/libkiln.a"

# Debian compresses manual pages.
gzip -9n "$STAGE/usr/share/man/man8/kilnd.8"

# Debian's doc layout: copyright, a compressed changelog.  The date is the
# last commit's (reproducible), else now.
DOC=$STAGE/usr/share/doc/kiln
DATE=$(git log -1 --format=%aD 2>/dev/null || date -R)
install -m 0644 "$D/copyright" "$DOC/copyright"
sed -e "s|@VERSION@|$VERSION|" -e "s|@DATE@|$DATE|" "$D/changelog.in" | gzip -9n >"$DOC/changelog.gz"
chmod 0644 "$DOC/changelog.gz"

# Depends: from the shared libraries the ELF files link (run from a
# throwaway source tree, which dpkg-shlibdeps wants).
printf 'Source: kiln\n\nPackage: kiln\nArchitecture: any\n' >"$WORK/src/debian/control"
shlibs=$(cd "$WORK/src" && dpkg-shlibdeps -O -e"$STAGE/usr/bin/kilnd" \
	-e"$STAGE/usr/lib/$MULTIARCH/$SOFILE" 2>"$WORK/shlibdeps.log" | sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { cat "$WORK/shlibdeps.log" >&2; echo "deb: dpkg-shlibdeps found nothing" >&2; exit 1; }

size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@SIZE@|$size|" \
	-e "s|@SHLIBS_DEPENDS@|$shlibs|" "$D/control.in" >"$STAGE/DEBIAN/control"
sed -e "s|@VERSION@|$VERSION|" -e "s|@SOVERSION@|$KILN_SOVERSION|" "$D/shlibs.in" >"$STAGE/DEBIAN/shlibs"
install -m 0644 "$D/conffiles" "$D/triggers" "$STAGE/DEBIAN/"
install -m 0755 "$D/postinst" "$D/prerm" "$D/postrm" "$STAGE/DEBIAN/"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
	xargs -0 md5sum) >"$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/md5sums" "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/shlibs"

rm -f "$BUILD"/kiln_*.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$OUT" >/dev/null
echo "deb: $OUT"
echo "deb: Depends: $shlibs, systemd"
