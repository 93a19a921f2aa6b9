#!/bin/sh
# Test procedure for tests/python/test_proc.py and test_jobs.py: the host
# name's prefix selects the behaviour.  Usage: host.sh HOST ATTEMPT STATE_DIR
#   ok*        prints a line, exits 0
#   fail*      prints to stderr, exits 3
#   flaky*     fails twice, then succeeds (runs counted in STATE_DIR/HOST.count)
#   hang*      sleeps until killed
#   stubborn*  ignores SIGTERM (and so does its sleep) until SIGKILL
#   spawn*     leaves a grandchild sleeping in the background, then exits 0
#   spawnhang* leaves a grandchild and hangs
#   conc*      records how many conc hosts run at once in STATE_DIR/concurrency
#              (at its start and at its end, 0.5 s later)
#   slow*      sleeps 0.3 s, then exits 0
host=$1
attempt=$2
state=$3
case $host in
ok*)
	echo "hello from $host attempt $attempt"
	exit 0 ;;
fail*)
	echo "failing $host" >&2
	exit 3 ;;
flaky*)
	n=$(cat "$state/$host.count" 2>/dev/null || echo 0)
	n=$((n + 1))
	echo "$n" > "$state/$host.count"
	if [ "$n" -gt 2 ]; then
		echo "ok on run $n"
		exit 0
	fi
	echo "run $n fails" >&2
	exit 1 ;;
hang*)
	echo $$ > "$state/$host.pid"
	sleep 1000
	exit 0 ;;
stubborn*)
	trap '' TERM
	echo $$ > "$state/$host.pid"
	while :; do sleep 0.1; done ;;
spawnhang*)
	sleep 1000 &
	echo $! > "$state/$host.grandchild"
	echo $$ > "$state/$host.pid"
	sleep 1000
	exit 0 ;;
spawn*)
	sleep 1000 &
	echo $! > "$state/$host.grandchild"
	exit 0 ;;
conc*)
	# Counted when it starts and again before it ends: a host that starts
	# while others still run sees them at one of the two counts.
	touch "$state/run.$$"
	ls "$state" | grep -c '^run\.' >> "$state/concurrency"
	sleep 0.5
	ls "$state" | grep -c '^run\.' >> "$state/concurrency"
	rm -f "$state/run.$$"
	exit 0 ;;
slow*)
	sleep 0.3
	exit 0 ;;
esac
echo "unknown behaviour for $host" >&2
exit 2
