# Shared by the socat tests: source it, then `start_kilnd CONFIG_JSON`.
# Sets ROOT, KILND, PY, tmp (removed at exit), sock, pid; provides check()
# (prints ok/FAIL and remembers a failure in $fail) and send() (one socat
# connection: stdin in, replies out).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KILND="${KILND:-$ROOT/build/kilnd}"
PY=/usr/bin/python3
command -v socat >/dev/null || { echo "FAIL: required tool socat is missing (make deps installs it)"; exit 1; }

tmp="$(mktemp -d)"
pid=
trap 'if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi; rm -rf "$tmp"' EXIT
sock="$tmp/kiln.sock"
fail=0

check() { # name, condition-result
	if [ "$2" = 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

send() { socat -t 30 - "UNIX-CONNECT:$sock"; }

# Starts kilnd with the given config text and waits until it answers a ping.
start_kilnd() {
	printf '%s\n' "$1" > "$tmp/kiln.json"
	"$KILND" --socket "$sock" --config "$tmp/kiln.json" 2> "$tmp/kilnd.log" &
	pid=$!
	for _ in $(seq 200); do
		echo '{"job_id":0,"action":"ping"}' | socat -t 5 - "UNIX-CONNECT:$sock" 2>/dev/null |
			grep -q '"result":"success"' && return 0
		sleep 0.05
	done
	echo "kilnd did not start:"; cat "$tmp/kilnd.log"; exit 1
}
