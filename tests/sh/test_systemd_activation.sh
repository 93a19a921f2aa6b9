#!/bin/sh
# Socket activation through systemd-socket-activate: kilnd serves the socket
# it is handed on fd 3 (not the one its config names), answers a request on
# it, and leaves the socket file, which it did not create, in place at exit.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
KILND=${KILND:-$BUILD/kilnd}

for tool in systemd-socket-activate socat; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: required test tool $tool is missing (make deps-test installs it)"
		exit 1
	fi
done

T=$(mktemp -d /tmp/kiln-activate.XXXXXX)
PID=
cleanup() {
	[ -z "$PID" ] || kill -KILL "$PID" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ ! -f "$T/stderr" ] || cat "$T/stderr"; exit 1; }

SOCK=$T/activated.sock
printf '{"socket": "%s/configured.sock"}\n' "$T" >"$T/config.json"

# $KILND may carry a wrapper (valgrind ...): split it into words on purpose.
# shellcheck disable=SC2086
systemd-socket-activate -l "$SOCK" $KILND --config "$T/config.json" --foreground \
	2>"$T/stderr" &
PID=$!
i=0
while [ ! -S "$SOCK" ]; do
	i=$((i + 1))
	[ "$i" -le 100 ] || fail "systemd-socket-activate did not create $SOCK"
	sleep 0.1
done

# The first connection starts kilnd; valgrind can take a while to answer.
reply=$(printf '{"job_id":7,"action":"ping"}\n' | socat -t 60 -T 60 - "UNIX-CONNECT:$SOCK") ||
	fail "no connection to $SOCK"
echo "$reply" | grep -q '"job_id": *7' || fail "bad reply: $reply"
echo "$reply" | grep -q '"result": *"success"' || fail "bad reply: $reply"
# systemd-socket-activate exec()s kilnd, so the pid in the reply is $PID.
echo "$reply" | grep -q "\"pid\": *$PID[,}]" || fail "reply not from pid $PID: $reply"
[ ! -e "$T/configured.sock" ] || fail "kilnd bound its configured socket despite activation"

kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=
[ "$rc" -eq 0 ] || fail "kilnd exited with $rc"
[ -S "$SOCK" ] || fail "kilnd removed the activated socket file"
echo "ok: socket activation answered; $SOCK survives kilnd's exit"
