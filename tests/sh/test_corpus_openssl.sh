#!/usr/bin/env bash
# openssl CLI compatibility by hand, as a user would do it with socat: files
# encrypted with `openssl enc` (pbkdf2, custom -iter, legacy -md sha256) load
# into kilnd and count like grep -ow does; a sealed file written by
# corpus.seal is not readable as openssl-enc and vice versa.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "FAIL: required test tool openssl is missing (make deps-test installs it)"; exit 1; }
start_kilnd "{\"path_roots\": [\"$tmp\"]}"

mkdir "$tmp/plain" "$tmp/enc" "$tmp/iter" "$tmp/legacy" "$tmp/sealed"
for i in 1 2 3; do
	for _ in $(seq 50); do echo "Entry $i: the river was high, the Rivers were higher; riverbank."; done > "$tmp/plain/day$i.txt"
	openssl enc -aes-256-cbc -salt -pbkdf2 -pass pass:s3cret -in "$tmp/plain/day$i.txt" -out "$tmp/enc/day$i"
	openssl enc -aes-256-cbc -salt -pbkdf2 -iter 4321 -pass pass:s3cret -in "$tmp/plain/day$i.txt" -out "$tmp/iter/day$i"
	openssl enc -aes-256-cbc -salt -md sha256 -pass pass:s3cret -in "$tmp/plain/day$i.txt" -out "$tmp/legacy/day$i" 2>/dev/null
done
want=$(cat "$tmp"/plain/*.txt | grep -ow river | wc -l)

count() { # name, dir, extra load args -> total of corpus.count "river" (load first: requests
	# on one connection run concurrently)
	printf '{"job_id":1,"action":"corpus.load","args":{"name":"%s","dir":"%s","passphrase":"s3cret"%s}}\n' "$1" "$2" "$3" |
		send > /dev/null
	printf '{"job_id":2,"action":"corpus.count","args":{"name":"%s","word":"river"}}\n' "$1" | send |
		sed -n 's/.*"total":\([0-9]*\).*/\1/p'
}
[ "$(count enc "$tmp/enc" "")" = "$want" ]; check "openssl enc -pbkdf2 (default iterations)" $?
[ "$(count iter "$tmp/iter" ',"iterations":4321')" = "$want" ]; check "openssl enc -pbkdf2 -iter 4321" $?
[ "$(count legacy "$tmp/legacy" ',"kdf":"legacy"')" = "$want" ]; check "openssl enc -md sha256 (legacy)" $?

out=$(printf '{"job_id":3,"action":"corpus.load","args":{"name":"c","dir":"%s","passphrase":"wrong"}}\n' "$tmp/enc" | send)
grep -q '"reason":"wrong passphrase or corrupted file' <<<"$out"; check "wrong passphrase reported" $?
! grep -q 'wrong"' "$tmp/kilnd.log" && ! grep -q s3cret "$tmp/kilnd.log"; check "passphrases not logged" $?

out=$(printf '{"job_id":4,"action":"corpus.seal","args":{"dir":"%s","out_dir":"%s","passphrase":"s3cret","log2_n":10}}\n' "$tmp/plain" "$tmp/sealed" | send)
grep -q '"result":"success"' <<<"$out"; check "corpus.seal" $?
! openssl enc -d -aes-256-cbc -pbkdf2 -pass pass:s3cret -in "$tmp/sealed/day1.txt.kseal" >/dev/null 2>&1
check "sealed file is not openssl-enc" $?
[ "$(count sealed "$tmp/sealed" "")" = "$want" ]; check "sealed files count the same" $?

exit $fail
