#!/bin/sh
# tests/fuzz/run.sh FUZZER... - run each libFuzzer harness for $FUZZ_TIME
# seconds from its seed corpus (tests/fuzz/corpus/<name>/, read-only: new
# inputs go to a scratch directory).  Prints PASS/FAIL per harness and exits 1
# if any harness found a crash.
FUZZ_TIME=${FUZZ_TIME:-20}
top=$(cd "$(dirname "$0")/../.." && pwd)
pass=0
fail=0
for f in "$@"; do
	name=$(basename "$f")
	name=${name#fuzz-}
	seeds="$top/tests/fuzz/corpus/$name"
	work=$(mktemp -d "${TMPDIR:-/tmp}/isq-fuzz.XXXXXX")
	mkdir -p "$work/corpus" "$work/artifacts"
	[ -d "$seeds" ] || seeds=
	if "$f" -max_total_time="$FUZZ_TIME" -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
		-artifact_prefix="$work/artifacts/" "$work/corpus" $seeds > "$work/log" 2>&1; then
		echo "PASS fuzz-$name ($(grep -o 'Done [0-9]* runs' "$work/log" | awk '{print $2}') runs, $(ls "$work/corpus" | wc -l) new inputs)"
		pass=$((pass + 1))
	else
		echo "FAIL fuzz-$name:"
		tail -30 "$work/log"
		ls "$work/artifacts"
		fail=$((fail + 1))
	fi
	rm -rf "$work"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
