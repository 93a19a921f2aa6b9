#!/usr/bin/env bash
# The protocol by hand, as a user would with socat: golden examples, malformed
# JSON, binary garbage, a line over the limit, a partial line then
# disconnect, 1000 pipelined requests, two clients at once.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
start_kilnd "{\"path_roots\": [\"$ROOT/tests/data\"], \"max_line_bytes\": 65536}"

# Golden examples: one connection per case, replies checked by the shared matcher.
for f in "$ROOT"/proto/examples/*.json; do
	n=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$f")
	: > "$tmp/replies"
	for i in $(seq 0 $((n - 1))); do
		$PY -c 'import json, sys; sys.path.insert(0, sys.argv[3]); import golden; cases = golden.load(sys.argv[1]); i = int(sys.argv[2]); got = [json.loads(l) for l in open(sys.argv[4], "rb").read().splitlines() if l.strip()]; sys.stdout.buffer.write(golden.request_line(cases[i], golden.captures_from(cases[:i], got)))' \
			"$f" "$i" "$ROOT/tests/python" "$tmp/replies" > "$tmp/req"
		send < "$tmp/req" >> "$tmp/replies"
	done
	$PY "$ROOT/tests/python/golden.py" check "$f" < "$tmp/replies" > "$tmp/check" 2>&1; rc=$?
	cat "$tmp/check"
	check "golden $(basename "$f")" $rc
done

# Malformed JSON and binary garbage: one parse_error each, daemon alive.
out=$(printf '{"job_id":1,\n\x00\x01\x02\xff\xfe\n' | send)
[ "$(grep -c '"code":"parse_error"' <<<"$out")" = 2 ]; check "malformed and binary garbage" $?

# A line over the limit: too_large, then the connection closes.
out=$( { head -c 70000 /dev/zero | tr '\0' 'x'; printf '\n{"job_id":2,"action":"ping"}\n'; } | send)
grep -q '"code":"too_large"' <<<"$out" && ! grep -q '"job_id":2' <<<"$out"; check "line over max_line_bytes" $?

# A partial line then disconnect: nothing is answered, the daemon stays up.
printf '{"job_id":3,"action":"pi' | socat -t 0.1 - "UNIX-CONNECT:$sock" > "$tmp/partial" || true
[ ! -s "$tmp/partial" ]; check "partial line then disconnect" $?

# 1000 pipelined requests in one write, all answered.
$PY -c 'import sys; sys.stdout.write("".join("{\"job_id\":%d,\"action\":\"double\",\"args\":{\"x\":%d}}\n" % (i, i) for i in range(1, 1001)))' > "$tmp/many"
out=$(send < "$tmp/many")
[ "$(grep -c '"result":"success"' <<<"$out")" = 1000 ] && grep -q '"job_id":1000,"result":"success","message":"doubled","failed_hosts":\[\],"data":{"x":2000}' <<<"$out"
check "1000 pipelined requests" $?

# Two clients at once, each gets its own replies.
send < "$tmp/many" > "$tmp/a" & a=$!
send < "$tmp/many" > "$tmp/b" & b=$!
wait $a $b
[ "$(grep -c success "$tmp/a")" = 1000 ] && [ "$(grep -c success "$tmp/b")" = 1000 ]; check "two clients at once" $?

# Base64 attachments are the socat-friendly form.
out=$(printf '{"job_id":4,"action":"ping","raw_b64":"aGVsbG8="}\n' | send)
grep -q '"job_id":4,"result":"success"' <<<"$out"; check "raw_b64 attachment" $?

# Still alive, and a clean shutdown removes the socket.
out=$(printf '{"job_id":5,"action":"ping"}\n' | send)
grep -q '"message":"pong"' <<<"$out"; check "alive after abuse" $?
kill -TERM "$pid"; wait "$pid"; rc=$?
[ $rc = 0 ] && [ ! -e "$sock" ]; check "SIGTERM exits 0 and removes the socket" $?
exit $fail
