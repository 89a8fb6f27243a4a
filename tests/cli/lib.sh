# tests/cli/lib.sh - sourced by every CLI test script.
#
#   . "$(dirname "$0")/lib.sh"
#   begin "inspect lists tensors"          # one test case
#   run isq-inspect "$MODEL"              # stdout/stderr/status captured
#   expect_exit 0
#   expect_stdout_contains "BF16"
#   expect_stderr_empty
#   end                                    # prints PASS/FAIL for the case
#
# Each case gets a scratch directory $W (the current directory during run).
# $SHARED is ../shared when present; cases that need it call need_shared first,
# which prints SKIP and makes the rest of the case a no-op.

top=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-build}
case "$BIN" in /*) ;; *) BIN="$top/$BIN" ;; esac
SHARED=${ISQ_SHARED:-$top/../shared}
[ -d "$SHARED" ] || SHARED=
export PATH="$BIN:$BIN/tests:$PATH"
# Tools leave through exit() on errors without freeing what they hold, which
# LeakSanitizer would report; leak checking stays on for the unit tests.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/isq-cli.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
n_case=0
case_name=
case_fail=0
case_skip=
W=

begin() {
	n_case=$((n_case + 1))
	case_name=$1
	case_fail=0
	case_skip=
	W="$scratch/case$n_case"
	mkdir -p "$W"
}

_note() {
	[ -n "$case_skip" ] && return 0
	echo "  $case_name: $*"
	case_fail=1
}

need_shared() {
	if [ -z "$SHARED" ] || [ ! -e "$SHARED/$1" ]; then
		case_skip="../shared/$1 not present"
		return 1
	fi
	return 0
}

# run CMD ARGS... : run in $W, capturing stdout, stderr and the exit status.
run() {
	[ -n "$case_skip" ] && return 0
	(cd "$W" && "$@" > "$W/.stdout" 2> "$W/.stderr" < /dev/null)
	status=$?
}

# run_stdin FILE CMD ARGS... : same with stdin from FILE.
run_stdin() {
	[ -n "$case_skip" ] && return 0
	in=$1; shift
	(cd "$W" && "$@" > "$W/.stdout" 2> "$W/.stderr" < "$in")
	status=$?
}

expect_exit() {
	[ -n "$case_skip" ] && return 0
	[ "$status" = "$1" ] || _note "exit status $status, expected $1 (stderr: $(head -c 300 "$W/.stderr"))"
}
expect_stdout_contains() {
	[ -n "$case_skip" ] && return 0
	grep -qF -- "$1" "$W/.stdout" || _note "stdout lacks '$1'"
}
expect_stdout_match() {
	[ -n "$case_skip" ] && return 0
	grep -qE -- "$1" "$W/.stdout" || _note "stdout does not match /$1/"
}
expect_stdout_lacks() {
	[ -n "$case_skip" ] && return 0
	! grep -qF -- "$1" "$W/.stdout" || _note "stdout contains '$1'"
}
expect_stderr_contains() {
	[ -n "$case_skip" ] && return 0
	grep -qF -- "$1" "$W/.stderr" || _note "stderr lacks '$1' (stderr: $(head -c 300 "$W/.stderr"))"
}
expect_stderr_match() {
	[ -n "$case_skip" ] && return 0
	grep -qE -- "$1" "$W/.stderr" || _note "stderr does not match /$1/ (stderr: $(head -c 300 "$W/.stderr"))"
}
expect_stdout_empty() {
	[ -n "$case_skip" ] && return 0
	[ ! -s "$W/.stdout" ] || _note "stdout is not empty"
}
expect_stderr_empty() {
	[ -n "$case_skip" ] && return 0
	[ ! -s "$W/.stderr" ] || _note "stderr is not empty: $(head -c 300 "$W/.stderr")"
}
# One line on stderr (the one-line error rule).
expect_stderr_lines() {
	[ -n "$case_skip" ] && return 0
	n=$(wc -l < "$W/.stderr")
	[ "$n" -eq "$1" ] || _note "stderr has $n lines, expected $1: $(head -c 300 "$W/.stderr")"
}
expect_stdout_file() {
	[ -n "$case_skip" ] && return 0
	cmp -s "$1" "$W/.stdout" || _note "stdout differs from $1: $(diff "$1" "$W/.stdout" | head -5)"
}
expect_file() {
	[ -n "$case_skip" ] && return 0
	[ -e "$W/$1" ] || [ -e "$1" ] || _note "file $1 was not written"
}
expect_no_file() {
	[ -n "$case_skip" ] && return 0
	[ ! -e "$W/$1" ] || _note "file $1 exists but should not"
}
# No temporary leftovers (".name.XXXXXX") in the case directory.
expect_no_temp() {
	[ -n "$case_skip" ] && return 0
	left=$(find "$W" -name '.*.??????' 2>/dev/null | head -1)
	[ -z "$left" ] || _note "temporary file left behind: $left"
}
# jq EXPR must print "true" for stdout.
expect_json() {
	[ -n "$case_skip" ] && return 0
	r=$(jq -e "$1" "$W/.stdout" 2>&1) || _note "jq '$1' failed: $r"
}
stdout() { cat "$W/.stdout"; }
stderr() { cat "$W/.stderr"; }

end() {
	if [ -n "$case_skip" ]; then
		echo "SKIP $case_name: $case_skip"
	elif [ $case_fail -eq 0 ]; then
		echo "PASS $case_name"
	else
		echo "FAIL $case_name"
	fi
}
