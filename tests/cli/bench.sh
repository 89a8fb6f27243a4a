#!/bin/sh
# CLI tests for isq-bench (--ppl and --kl-model).
. "$(dirname "$0")/lib.sh"

F32="$SHARED/models/stories260K-f32"
REF="$SHARED/ref/llamacpp-stories260K"
TEXT="$SHARED/data/tinystories-valid-1000.txt"

# The first 30000 bytes of the text, -c 256: 14703 tokens, 57 chunks, 7239
# scored tokens.  PPL measured by `isq-bench -m stories260K-f32 --ppl -f SUB
# -c 256` (an exact F32 pass, as on the whole text, where it gives 7.7945).
SUB_PPL=6.5792912

# json_num KEY: the number KEY in the JSON on stdout.
json_num() {
	jq -r ".$1" "$W/.stdout"
}

# near NAME GOT WANT TOL: |GOT - WANT| <= TOL * |WANT| (relative), else a note.
near() {
	[ -n "$case_skip" ] && return 0
	awk -v g="$2" -v w="$3" -v t="$4" 'BEGIN { d = g - w; if (d < 0) d = -d; a = w < 0 ? -w : w;
		exit !(g == g + 0 && d <= t * a) }' || _note "$1 is $2, expected $3 within $4 (relative)"
}

# between NAME GOT LO HI: LO <= GOT <= HI, else a note.
between() {
	[ -n "$case_skip" ] && return 0
	awk -v g="$2" -v lo="$3" -v hi="$4" 'BEGIN { exit !(g == g + 0 && g >= lo && g <= hi) }' ||
		_note "$1 is $2, expected between $3 and $4"
}

sub_text() {
	[ -n "$case_skip" ] || head -c 30000 "$TEXT" > "$W/sub.txt"
}

begin "bench --help is pinned byte for byte"
run isq-bench --help
expect_exit 0
expect_stdout_file "$top/tests/cli/golden/isq-bench.help"
end

begin "bench --version"
run isq-bench --version
expect_exit 0
expect_stdout_contains "isq-bench 0.1.0"
end

begin "bench: no model is a usage error"
run isq-bench --ppl -f x.txt
expect_exit 2
expect_stderr_contains "isq-bench: no model given (-m)"
expect_stdout_empty
end

begin "bench: no mode, or two, is a usage error"
run isq-bench -m x -f x.txt
expect_exit 2
expect_stderr_contains "give one mode"
run isq-bench -m x -f x.txt --ppl --kl-model y
expect_exit 2
expect_stderr_contains "give one mode"
end

begin "bench: no text, a bad -c, an unknown format are usage errors"
run isq-bench -m x --ppl
expect_exit 2
expect_stderr_contains "no text given (-f)"
run isq-bench -m x --ppl -f t -c 0
expect_exit 2
expect_stderr_contains "-c must be between"
run isq-bench -m x --ppl -f t --format xml
expect_exit 2
expect_stderr_contains "unknown format 'xml'"
end

begin "bench: a missing model is one line and exit 1"
run isq-bench -m nonexistent.gguf --ppl -f x.txt
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "isq-bench: "
expect_stdout_empty
end

begin "bench: a missing text file is one line and exit 1"
need_shared models/stories260K-f32
run isq-bench -m "$F32" --ppl -f nonexistent.txt
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "nonexistent.txt"
expect_stdout_empty
end

begin "bench: a text shorter than two chunks is one line and exit 1"
need_shared models/stories260K-f32
[ -n "$case_skip" ] || echo "Once upon a time there was a cat." > "$W/short.txt"
run isq-bench -m "$F32" --ppl -f short.txt -c 256
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "short.txt: "
expect_stderr_contains "fewer than 2 x 256"
expect_stdout_empty
end

begin "bench: a truncated GGUF is one line and exit 1"
need_shared ref/llamacpp-stories260K/stories260K-f32.gguf
[ -n "$case_skip" ] || head -c 5000 "$REF/stories260K-f32.gguf" > "$W/cut.gguf"
[ -n "$case_skip" ] || printf 'some text\n' > "$W/t.txt"
run isq-bench -m cut.gguf --ppl -f t.txt
expect_exit 1
expect_stderr_lines 1
end

begin "bench --ppl stories260K F32 on 30 KB, -c 256: the measured value"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
sub_text
run isq-bench -q -m "$F32" --ppl -f sub.txt -c 256
expect_exit 0
expect_stdout_match '^PPL = [0-9]+\.[0-9]{4} \+/- [0-9]+\.[0-9]{5}$'
if [ -z "$case_skip" ]; then
	got=$(sed -n 's/^PPL = \([0-9.]*\) .*/\1/p' "$W/.stdout")
	between "PPL" "$got" 2 20
	near "PPL" "$got" "$SUB_PPL" 0.001
fi
end

begin "bench --ppl --json: chunks, scored tokens and the same PPL"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
sub_text
run isq-bench -q -m "$F32" --ppl -f sub.txt -c 256 --json
expect_exit 0
expect_json '.mode == "ppl" and .ctx == 256 and .chunks == 57 and .scored_tokens == 57 * 127 and .ppl_err > 0'
[ -n "$case_skip" ] || near "ppl" "$(json_num ppl)" "$SUB_PPL" 0.001
end

begin "bench --ppl --chunks limits the chunks; --format csv"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
sub_text
run isq-bench -q -m "$F32" --ppl -f sub.txt -c 256 --chunks 3 --format csv
expect_exit 0
expect_stdout_contains "model,ctx,chunks,scored_tokens,ppl,ppl_err"
expect_stdout_contains ",256,3,381,"
end

begin "bench --kl-model: a model against itself is KL 0 and top-1 100%"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
sub_text
run isq-bench -q -m "$F32" --kl-model "$F32" -f sub.txt -c 256 --chunks 10 --json
expect_exit 0
expect_json '.mode == "kl" and .kl_mean < 1e-9 and .kl_max < 1e-9 and .top1_pct == 100 and .rms_dp_pct < 1e-6
	and .ppl == .ppl_base'
end

begin "bench --kl-model: llama.cpp's Q8_0 against F32 is close but not equal"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
need_shared ref/llamacpp-stories260K/stories260K-Q8_0.gguf
sub_text
run isq-bench -q -m "$REF/stories260K-Q8_0.gguf" --kl-model "$F32" -f sub.txt -c 256 --json
expect_exit 0
# measured: mean KL 0.00130, top-1 98.08 %, base PPL the F32 value above
expect_json '.kl_mean > 1e-5 and .kl_mean < 0.01 and .top1_pct > 95 and .top1_pct < 100
	and .kl_p99 >= .kl_mean and .kl_max >= .kl_p99 and .chunks == 57'
[ -n "$case_skip" ] || near "ppl_base" "$(json_num ppl_base)" "$SUB_PPL" 0.001
end

begin "bench --kl-model: a base with another vocabulary is one line and exit 1"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
sub_text
genmodel_ok=1
[ -n "$case_skip" ] || isq-genmodel -q --arch qwen2 -o "$W/g" > /dev/null 2>&1 || genmodel_ok=0
[ $genmodel_ok = 1 ] || case_skip="isq-genmodel not built"
run isq-bench -q -m "$F32" --kl-model g -f sub.txt -c 256
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "vocabulary"
end

if [ "$ISQ_CHECK_LEVEL" = full ]; then
	begin "bench --ppl -c 256, whole text, F32: 7.7951 (llama-perplexity) within 0.1%"
	need_shared data/tinystories-valid-1000.txt
	need_shared models/stories260K-f32
	run isq-bench -q -m "$F32" --ppl -f "$TEXT" -c 256 --json
	expect_exit 0
	[ -n "$case_skip" ] || near "ppl" "$(json_num ppl)" 7.7951 0.001
	end

	# llama.cpp's own files against the perplexities llama-perplexity listed for them (README.md there)
	for tp in Q8_0:7.8329 Q4_K_M:7.9335 Q4_0:8.5966; do
		t=${tp%%:*}
		begin "bench --ppl -c 256, whole text, llama.cpp's $t: ${tp#*:} within 0.5%"
		need_shared data/tinystories-valid-1000.txt
		need_shared ref/llamacpp-stories260K/stories260K-$t.gguf
		run isq-bench -q -m "$REF/stories260K-$t.gguf" --ppl -f "$TEXT" -c 256 --json
		expect_exit 0
		[ -n "$case_skip" ] || near "ppl" "$(json_num ppl)" "${tp#*:}" 0.005
		end
	done
fi
