#!/bin/sh
# tests/run.sh - run every unit test binary and CLI test script; print one
# PASS/FAIL/SKIP line per test and the closing "N passed, N failed, N skipped".
# Environment: BIN (build directory, default build), ISQ_CHECK_LEVEL (quick|full).
BIN=${BIN:-build}
export BIN
ISQ_CHECK_LEVEL=${ISQ_CHECK_LEVEL:-quick}
export ISQ_CHECK_LEVEL
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 2
ISQ_TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/isq-check.XXXXXX") || exit 2
export TMPDIR="$ISQ_TEST_TMP"
trap 'rm -rf "$ISQ_TEST_TMP"' EXIT INT TERM
log="$ISQ_TEST_TMP/log"
: > "$log"
crashed=0

for t in "$BIN"/tests/test-*; do
	[ -x "$t" ] || continue
	echo "== $(basename "$t")"
	"$t" > "$ISQ_TEST_TMP/out" 2>&1
	rc=$?
	cat "$ISQ_TEST_TMP/out"
	cat "$ISQ_TEST_TMP/out" >> "$log"
	# A crash (or a sanitizer abort) before the summary line is a failure of its own.
	if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$ISQ_TEST_TMP/out"; then
		echo "FAIL $(basename "$t"): exited with status $rc" | tee -a "$log"
		crashed=$((crashed + 1))
	fi
done

for s in tests/cli/*.sh; do
	[ -f "$s" ] || continue
	case "$s" in */lib.sh) continue ;; esac
	echo "== $s"
	sh "$s" > "$ISQ_TEST_TMP/out" 2>&1
	rc=$?
	cat "$ISQ_TEST_TMP/out"
	cat "$ISQ_TEST_TMP/out" >> "$log"
	if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$ISQ_TEST_TMP/out"; then
		echo "FAIL $s: exited with status $rc" | tee -a "$log"
	fi
done

pass=$(grep -c '^PASS ' "$log")
fail=$(grep -c '^FAIL ' "$log")
skip=$(grep -c '^SKIP ' "$log")
if [ "$fail" -gt 0 ]; then
	echo
	echo "failed:"
	grep '^FAIL ' "$log" | sed 's/^/  /'
fi
if [ "$skip" -gt 0 ]; then
	echo "skipped:"
	grep '^SKIP ' "$log" | sed 's/^/  /'
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
