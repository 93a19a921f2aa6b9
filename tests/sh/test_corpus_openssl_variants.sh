#!/usr/bin/env bash
# openssl enc as users run it, every variant corpus.load claims: each cipher,
# digest and key derivation, -iter, -a and -a -A base64, -nosalt, -S and
# -K/-iv files written by the real CLI load and count like grep -ow; a
# passphrase with a plain file (or gpg --armor, age -a) fails naming it;
# detect finds the combination and reports it.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "openssl not installed"; exit 77; }
start_kilnd "{\"path_roots\": [\"$tmp\"]}"

mkdir "$tmp/plain"
for i in 1 2; do
	for _ in $(seq 20); do echo "Entry $i: the river rose; café by the river."; done > "$tmp/plain/day$i.txt"
done
want=$(cat "$tmp"/plain/*.txt | grep -ow river | wc -l)
v=0

# load DIR EXTRA-ARGS -> the corpus.count total for "river" (or the load's reply
# when the load fails); the corpus is named after the directory.
load_count() {
	local name
	name=$(basename "$1")
	out=$(printf '{"job_id":1,"action":"corpus.load","args":{"name":"%s","dir":"%s"%s}}\n' "$name" "$1" "$2" | send)
	grep -q '"result":"success"' <<<"$out" || { echo "$out"; return; }
	printf '{"job_id":2,"action":"corpus.count","args":{"name":"%s","word":"river"}}\n' "$name" | send |
		sed -n 's/.*"total":\([0-9]*\).*/\1/p'
}

# variant NAME "OPENSSL-OPTIONS" 'CORPUS.LOAD ARGS': encrypt both files, load, count.
variant() {
	v=$((v + 1))
	local d="$tmp/v$v"
	mkdir "$d"
	for i in 1 2; do
		openssl enc -e $2 -in "$tmp/plain/day$i.txt" -out "$d/day$i" 2>/dev/null || { check "$1 (openssl failed)" 1; return; }
	done
	got=$(load_count "$d" "$3")
	[ "$got" = "$want" ]; check "$1" $?
	[ "$got" = "$want" ] || echo "     got: $got"
}

P='-pass pass:s3cret'
A=',"passphrase":"s3cret"'
for c in aes-128-cbc aes-192-cbc aes-256-cbc aes-128-ctr aes-192-ctr aes-256-ctr aes-128-cfb aes-256-cfb \
	aes-128-ofb aes-256-ofb chacha20 camellia-128-cbc camellia-256-cbc aria-128-cbc aria-256-cbc; do
	variant "-$c -pbkdf2" "-$c -pbkdf2 $P" "$A,\"cipher\":\"$c\""
done
for md in sha1 sha256 sha384 sha512 md5 sha3-256; do
	variant "-pbkdf2 -md $md" "-aes-256-cbc -pbkdf2 -md $md $P" "$A,\"digest\":\"$md\""
	variant "legacy -md $md" "-aes-256-cbc -md $md $P" "$A,\"digest\":\"$md\",\"kdf\":\"legacy\""
done
variant "-iter 2345 (implies pbkdf2)" "-aes-256-cbc -iter 2345 $P" "$A,\"iterations\":2345"
variant "-aes-128-ctr -pbkdf2 -md sha512 -iter 999" "-aes-128-ctr -pbkdf2 -md sha512 -iter 999 $P" \
	"$A,\"cipher\":\"aes-128-ctr\",\"digest\":\"sha512\",\"iterations\":999"
variant "-a (base64)" "-aes-256-cbc -pbkdf2 -a $P" "$A"
variant "-a -A (one-line base64)" "-aes-256-cbc -pbkdf2 -a -A $P" "$A"
variant "-chacha20 -a legacy md5" "-chacha20 -md md5 -a $P" "$A,\"cipher\":\"chacha20\",\"digest\":\"md5\",\"kdf\":\"legacy\""
variant "-nosalt" "-aes-256-cbc -pbkdf2 -nosalt $P" "$A,\"nosalt\":true"
variant "-nosalt -a legacy" "-aes-256-cbc -nosalt -a $P" "$A,\"nosalt\":true,\"kdf\":\"legacy\""
variant "-S 0011223344556677" "-aes-256-cbc -pbkdf2 -S 0011223344556677 $P" "$A,\"salt\":\"0011223344556677\""
K=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
variant "-K/-iv aes-256-cbc" "-aes-256-cbc -K $K -iv 0f0e0d0c" ",\"key\":\"$K\",\"iv\":\"0f0e0d0c\""
variant "-K/-iv -aes-128-ctr -a" "-aes-128-ctr -K 00ff -iv 01 -a" ",\"key\":\"00ff\",\"iv\":\"01\",\"cipher\":\"aes-128-ctr\""
! grep -q "$K" "$tmp/kilnd.log"; check "raw keys not logged" $?

# Wrong settings: the message says what openssl does not record.
d="$tmp/v-sha512"; mkdir "$d"
openssl enc -aes-256-cbc -pbkdf2 -md sha512 $P -in "$tmp/plain/day1.txt" -out "$d/day1"
out=$(load_count "$d" "$A")
grep -q 'does not decrypt with aes-256-cbc, pbkdf2-sha256' <<<"$out" && grep -q 'records none of the cipher' <<<"$out"
check "default settings on a -md sha512 file: reason and the options to try" $?

# detect finds it and says which.
out=$(printf '{"job_id":1,"action":"corpus.load","args":{"name":"det","dir":"%s"%s,"detect":true}}\n' "$d" "$A" | send)
grep -q '"openssl":{[^}]*"cipher":"aes-256-cbc"' <<<"$out" && grep -q '"digest":"sha512"' <<<"$out" &&
	grep -q '"detected":true' <<<"$out"
check "detect: aes-256-cbc pbkdf2 sha512" $?
d="$tmp/v-detect2"; mkdir "$d"
openssl enc -camellia-256-cbc -md md5 $P -in "$tmp/plain/day1.txt" -out "$d/day1" 2>/dev/null
openssl enc -camellia-256-cbc -md md5 $P -in "$tmp/plain/day2.txt" -out "$d/day2" 2>/dev/null
out=$(printf '{"job_id":1,"action":"corpus.load","args":{"name":"det2","dir":"%s"%s,"detect":true}}\n' "$d" "$A" | send)
grep -q '"cipher":"camellia-256-cbc"' <<<"$out" && grep -q '"kdf":"legacy"' <<<"$out" && grep -q '"documents":2' <<<"$out"
check "detect: camellia-256-cbc legacy md5, both files" $?

# A passphrase means encrypted: a plain README beside encrypted files fails, named.
d="$tmp/mixed"; mkdir "$d"
openssl enc -aes-256-cbc -pbkdf2 $P -in "$tmp/plain/day1.txt" -out "$d/day1"
echo "just a readme" > "$d/README.txt"
out=$(load_count "$d" "$A")
grep -q '"code":"invalid_args"' <<<"$out" && grep -q '"message":"1 of 2 files failed[^"]*README.txt: not encrypted[^"]*plain text' <<<"$out"
check "passphrase + plain README.txt fails, named in the message" $?
[ "$(load_count "$d" "$A,\"allow_plain\":true")" = "$(cat "$tmp/plain/day1.txt" | grep -ow river | wc -l)" ]
check "allow_plain loads it" $?
if command -v gpg >/dev/null; then
	d="$tmp/gpg"; mkdir "$d"
	gpg --batch --homedir "$tmp" --passphrase s3cret --pinentry-mode loopback --symmetric --armor \
		-o "$d/day1.asc" "$tmp/plain/day1.txt" 2>/dev/null
	out=$(load_count "$d" "$A")
	grep -q 'day1.asc: not encrypted as openssl enc writes it: a gpg ASCII-armored file' <<<"$out"
	check "gpg --symmetric --armor fails as gpg, never as plain text" $?
fi
if command -v age >/dev/null; then
	d="$tmp/age"; mkdir "$d"
	age-keygen -o "$tmp/age.key" 2>/dev/null
	age -a -r "$(age-keygen -y "$tmp/age.key")" -o "$d/day1.age" "$tmp/plain/day1.txt"
	out=$(load_count "$d" "$A")
	grep -q 'day1.age: not encrypted as openssl enc writes it: an age file' <<<"$out"
	check "age -a fails as age, never as plain text" $?
fi

exit $fail
