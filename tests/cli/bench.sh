#!/bin/sh
# CLI tests for isq-bench (--ppl, --kl-model, --kl-base/--kl, --per-document, --sweep, --tensors, --quant, --speed).
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
# measured: mean KL 0.000652, top-1 98.80 %, base PPL the F32 value above
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

# --per-document on the same 30 KB (44 documents, 14102 tokens with their
# BOS): every token after a document's BOS is scored, whatever -c is.
# Measured with `isq-bench -m stories260K-f32 --ppl --per-document -f SUB`.
SUB_DOC_PPL=3.5760963154
SUB_DOC_PPL_C64=4.4255287468

begin "bench --ppl --per-document, 30 KB: the measured value"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
sub_text
run isq-bench -q -m "$F32" --ppl --per-document -f sub.txt --json
expect_exit 0
expect_json '.method == "per-document" and .documents == 44 and .tokens == 14102 and .scored_tokens == 14102 - 44'
[ -n "$case_skip" ] || near "ppl" "$(json_num ppl)" "$SUB_DOC_PPL" 0.0001
end

begin "bench --per-document -c 64: long documents in windows, the prediction across each window edge scored"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
sub_text
run isq-bench -q -m "$F32" --ppl --per-document -f sub.txt -c 64 --json
expect_exit 0
# skipping the edge predictions would score one token fewer per extra window
expect_json '.chunks > 200 and .scored_tokens == 14102 - 44'
[ -n "$case_skip" ] || near "ppl" "$(json_num ppl)" "$SUB_DOC_PPL_C64" 0.0001
end

begin "bench --kl-model --per-document: llama.cpp's Q8_0 against F32"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
need_shared ref/llamacpp-stories260K/stories260K-Q8_0.gguf
sub_text
run isq-bench -q -m "$REF/stories260K-Q8_0.gguf" --kl-model "$F32" --per-document -f sub.txt -c 128 --json
expect_exit 0
expect_json '.mode == "kl" and .documents == 44 and .scored_tokens == 14058 and .kl_mean > 1e-5 and .kl_mean < 0.01
	and .kl_median <= .kl_p90 and .kl_p90 <= .kl_p95 and .kl_p95 <= .kl_p99 and .kl_p99 <= .kl_max
	and .top1_pct > 95 and .ppl_base_exact'
end

begin "bench: --per-document with a .kld mode, --chunks, --plot or --imatrix alone are usage errors"
run isq-bench -m x --kl-base o.kld -f t --per-document
expect_exit 2
expect_stderr_contains "--per-document goes with"
expect_no_file o.kld
run isq-bench -m x --ppl -f t --per-document --chunks 3
expect_exit 2
expect_stderr_contains "--chunks does not apply"
run isq-bench -m x --ppl -f t --plot p.svg
expect_exit 2
expect_stderr_contains "--plot goes with --sweep"
run isq-bench -m x --ppl -f t --imatrix i.gguf
expect_exit 2
expect_stderr_contains "--imatrix goes with --sweep"
run isq-bench -m x --kl b.kld -f t
expect_exit 2
expect_stderr_contains "-f is not used"
run isq-bench -m x --kl-base - -f t
expect_exit 2
expect_stderr_contains "--kl-base needs a file"
expect_stdout_empty
end

begin "bench --kl-base then --kl: the saved file gives --kl-model's figures, and the exact base PPL"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
need_shared ref/llamacpp-stories260K/stories260K-Q8_0.gguf
sub_text
run isq-bench -q -m "$F32" --kl-base base.kld -f sub.txt -c 256 --chunks 20 --json
expect_exit 0
expect_json '.mode == "kl-base" and .output == "base.kld" and .chunks == 20 and .scored_tokens == 20 * 127'
expect_file base.kld
expect_no_temp
# header, 20 x 256 tokens, 2540 records of 516 uint16, trailer of 16 + 12 per record
[ -n "$case_skip" ] || [ "$(wc -c < "$W/base.kld")" -eq $((20 + 4 * 20 * 256 + 2540 * 516 * 2 + 16 + 2540 * 12)) ] ||
	_note "base.kld is $(wc -c < "$W/base.kld") bytes"
run isq-bench -q -m "$REF/stories260K-Q8_0.gguf" --kl-model "$F32" -f sub.txt -c 256 --chunks 20 --json
expect_exit 0
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/direct.json"
run isq-bench -q -m "$REF/stories260K-Q8_0.gguf" --kl base.kld --json
expect_exit 0
expect_json '.mode == "kl" and .base == "base.kld" and .ctx == 256 and .scored_tokens == 2540 and .ppl_base_exact'
if [ -z "$case_skip" ]; then
	for k in ppl ppl_base top1_pct; do
		near "$k" "$(json_num $k)" "$(jq -r ".$k" "$W/direct.json")" 1e-9
	done
	# 16-bit base log-probabilities against exact ones
	near "kl_mean" "$(json_num kl_mean)" "$(jq -r .kl_mean "$W/direct.json")" 0.02
fi
end

begin "bench --kl: a llama.cpp-style file (no trailer) takes the base from the 16-bit values, and says so"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
sub_text
run isq-bench -q -m "$F32" --kl-base base.kld -f sub.txt -c 64 --chunks 4
expect_exit 0
[ -n "$case_skip" ] || head -c $((20 + 4 * 4 * 64 + 4 * 31 * 516 * 2)) "$W/base.kld" > "$W/llama.kld"
run isq-bench -m "$F32" --kl llama.kld --json
expect_exit 0
expect_json '.ppl_base_exact == false and .scored_tokens == 124 and .top1_pct == 100 and (.kl_mean | fabs) < 1e-4'
expect_stderr_contains "16-bit"
end

begin "bench --kl against llama-perplexity's own KLD run (llamacpp-notes 8.5): the clipped and the exact PPL(base)"
need_shared data/tinystories-valid-1000.txt
need_shared ref/llamacpp-stories260K/stories260K-f32.gguf
need_shared ref/llamacpp-stories260K/stories260K-Q4_K_M.gguf
run isq-bench -q -m "$REF/stories260K-f32.gguf" --kl-base base.kld -f "$TEXT" -c 128 --chunks 40 --json
expect_exit 0
# llama-perplexity -c 128 --chunks 40: F32 PPL 4.9342; Q4_K_M: KLD 0.02715, RMS dp 5.33 %, PPL(Q) 5.001
[ -n "$case_skip" ] || near "ppl" "$(json_num ppl)" 4.9342 0.001
[ -n "$case_skip" ] || head -c $((20 + 4 * 128 * 40 + 40 * 63 * 516 * 2)) "$W/base.kld" > "$W/llama.kld"
run isq-bench -q -m "$REF/stories260K-Q4_K_M.gguf" --kl llama.kld --json
expect_exit 0
# without the trailer PPL(base) is llama-perplexity's 16-bit figure, 4.721, not the base's 4.934
expect_json '.ppl_base_exact == false and .scored_tokens == 2520'
if [ -z "$case_skip" ]; then
	near "ppl_base" "$(json_num ppl_base)" 4.721 0.001
	near "kl_mean" "$(json_num kl_mean)" 0.02715 0.03
	near "rms_dp_pct" "$(json_num rms_dp_pct)" 5.33 0.01
	near "ppl" "$(json_num ppl)" 5.001 0.002
fi
run isq-bench -q -m "$REF/stories260K-Q4_K_M.gguf" --kl base.kld --json
expect_exit 0
expect_json '.ppl_base_exact'
[ -n "$case_skip" ] || near "ppl_base" "$(json_num ppl_base)" 4.9342 0.001
end

begin "bench --kl: bad magic, truncation, another vocabulary, another -c: one line and exit 1"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
sub_text
run isq-bench -q -m "$F32" --kl-base base.kld -f sub.txt -c 64 --chunks 4
expect_exit 0
[ -n "$case_skip" ] || { printf 'xlogits_' > "$W/bad.kld"; tail -c +9 "$W/base.kld" >> "$W/bad.kld"; }
run isq-bench -m "$F32" --kl bad.kld
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "bad.kld: not a llama-perplexity .kld file"
[ -n "$case_skip" ] || head -c 5000 "$W/base.kld" > "$W/cut.kld"
run isq-bench -m "$F32" --kl cut.kld
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "cut.kld: truncated"
run isq-bench -m "$F32" --kl base.kld -c 128
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "saved with -c 64"
genmodel_ok=1
[ -n "$case_skip" ] || isq-genmodel -q --arch qwen2 -o "$W/g" > /dev/null 2>&1 || genmodel_ok=0
[ $genmodel_ok = 1 ] || case_skip="isq-genmodel not built"
run isq-bench -m g --kl base.kld
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "base.kld: vocabulary of 512 tokens, but g has"
expect_stdout_empty
end

begin "bench --kl-base: a failed run leaves no file"
need_shared models/stories260K-f32
[ -n "$case_skip" ] || echo "Once upon a time there was a cat." > "$W/short.txt"
run isq-bench -m "$F32" --kl-base base.kld -f short.txt -c 256
expect_exit 1
expect_stderr_lines 1
expect_no_file base.kld
expect_no_temp
run isq-bench -m "$F32" --kl-base nodir/base.kld -f short.txt -c 4
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "nodir/base.kld"
end

begin "bench --sweep: quantizes, measures against MODEL, takes peers' files; --plot writes the chart"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
need_shared ref/llamacpp-stories260K/stories260K-Q4_0.gguf
sub_text
run isq-bench -q -m "$F32" --sweep q8_0,q4_0,"$REF/stories260K-Q4_0.gguf" -f sub.txt -c 128 --chunks 4 --json \
	--plot sweep.svg
expect_exit 0
expect_json '.mode == "sweep" and (.rows | length) == 4 and .rows[0].type == "base" and .rows[0].kl_mean == 0
	and ([.rows[1:][] | .kl_mean > 0 and .bytes > 100000 and .bits_per_weight < 32] | all)
	and .rows[1].type == "q8_0" and .rows[2].type == "q4_0" and .rows[1].kl_mean < .rows[2].kl_mean
	and .rows[1].bits_per_weight > .rows[2].bits_per_weight and .rows[3].series == "llama.cpp"
	and .rows[3].bytes == 277024'
expect_file sweep.svg
expect_no_temp
if [ -z "$case_skip" ]; then
	grep -q '^<svg xmlns' "$W/sweep.svg" && [ "$(grep -c '</svg>' "$W/sweep.svg")" -ge 3 ] || _note "sweep.svg is not an SVG document"
	grep -q 'llama.cpp' "$W/sweep.svg" || _note "sweep.svg lacks the llama.cpp series"
	left=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'isq-bench.*' -newer "$W/sub.txt" 2>/dev/null | head -1)
	[ -z "$left" ] || _note "temporary sweep directory left behind: $left"
fi
end

begin "bench --sweep --imatrix: each type twice, with and without; --format csv"
need_shared data/tinystories-valid-1000.txt
need_shared models/stories260K-f32
sub_text
[ -n "$case_skip" ] || isq-imatrix -q -m "$F32" -f "$W/sub.txt" -c 128 --chunks 8 -o "$W/im.gguf" > /dev/null 2>&1 ||
	_note "isq-imatrix failed"
run isq-bench -q -m "$F32" --sweep q4_0 --imatrix im.gguf -f sub.txt -c 128 --chunks 3 --format csv
expect_exit 0
expect_stdout_contains "type,series,imatrix,bytes,bits_per_weight,ppl,"
expect_stdout_match '^base,base,0,'
expect_stdout_match '^q4_0,isq,0,'
expect_stdout_match '^q4_0,isq \+ imatrix,1,'
end

begin "bench --sweep: an unknown type is a usage error before any work; a failed sweep writes no plot"
run isq-bench -m x --sweep q8_0,q9_9 -f t --plot p.svg
expect_exit 2
expect_stderr_contains "unknown type 'q9_9'"
expect_no_file p.svg
run isq-bench -m x --sweep q8_0,,q4_0 -f t
expect_exit 2
expect_stderr_contains "an empty entry"
need_shared models/stories260K-f32
[ -n "$case_skip" ] || echo "Once upon a time there was a cat." > "$W/short.txt"
run isq-bench -m "$F32" --sweep q8_0 -f short.txt -c 256 --plot p.svg
expect_exit 1
expect_stderr_lines 1
expect_no_file p.svg
expect_no_temp
end

# ---- --tensors, --quant, --speed: generated models, no ../shared needed -----------

# gen_small: a 4-layer model whose rows fit the K-quants (hidden 256), F16 so
# that -t f16 must reproduce it exactly, and an imatrix of it; made once and
# linked into each case.
gen_small() {
	[ -n "$case_skip" ] && return 0
	g="$scratch/gen-small"
	if [ ! -f "$g/small.imatrix" ]; then
		mkdir -p "$g" &&
		isq-genmodel -q --preset small --dtype f16 -o "$g/small" &&
		for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
			echo "Once upon a time there was a little cat who liked to play in the garden."
		done > "$g/t.txt" &&
		isq-imatrix -q -m "$g/small" -f "$g/t.txt" -c 64 --chunks 2 -o "$g/small.imatrix" ||
			{ _note "cannot make the test model"; return 0; }
	fi
	ln -s "$g/small" "$g/t.txt" "$g/small.imatrix" "$W/"
}

begin "bench --tensors: per-type summary then per-tensor rows; q8_0 beats q4_0; f16 of an F16 model is exact"
gen_small
run isq-bench -q -m small --tensors -t q4_0,q8_0,f16
expect_exit 0
expect_stderr_empty
expect_stdout_match '^| type | bpw | RMSE | cosine | tensors |$'
expect_stdout_match '^| q8_0 | 8.500 | .* | 30 |$'
expect_stdout_match '^| q4_0 | blk.3.ffn_down.weight | q4_0 | 4.500 |'
[ -n "$case_skip" ] || [ "$(grep -c '^| q4_0 | [a-z]' "$W/.stdout")" -eq 30 ] || _note "expected 30 q4_0 tensor rows"
run isq-bench -q -m small --tensors -t q4_0,q8_0,f16 --json
expect_exit 0
expect_json '.mode == "tensors" and (.types | length) == 3 and (.types[0].tensors | length) == 30'
expect_json '.types[1].rmse < .types[0].rmse / 4 and .types[0].cosine < .types[1].cosine and .types[1].cosine < 1'
expect_json '.types[2].rmse == 0 and .types[2].cosine == 1'
# the total is size-weighted: its square is the mean of the tensors' squares weighted by elements
expect_json '(.types[0] | ([.tensors[] | .rmse * .rmse * .elements] | add) / .elements | sqrt) as $r | ((.types[0].rmse - $r) | fabs) < 1e-9'
# tensors go to threads in no fixed order; the figures must not notice
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/t2.json"
run isq-bench -q -m small --tensors -t q4_0,q8_0,f16 --json --threads 1
[ -n "$case_skip" ] || cmp -s "$W/.stdout" "$W/t2.json" || _note "--threads 1 and the default differ"
end

begin "bench --tensors --imatrix: weighted RMSE, and the imatrix feeds the quantizer"
gen_small
run isq-bench -q -m small --tensors -t q4_k --json
expect_exit 0
[ -n "$case_skip" ] || plain=$(jq '.types[0].rmse' "$W/.stdout")
run isq-bench -q -m small --tensors -t q4_k --imatrix small.imatrix --json
expect_exit 0
expect_json '.imatrix == "small.imatrix" and .types[0].weighted_tensors == 28 and .types[0].weighted_rmse > 0'
expect_json '[.types[0].tensors[] | select(.imatrix | not) | .name] == ["output.weight", "token_embd.weight"]'
[ -n "$case_skip" ] || [ "$(jq '.types[0].rmse' "$W/.stdout")" != "$plain" ] || _note "the imatrix changed nothing"
run isq-bench -q -m small --tensors -t q4_k --imatrix small.imatrix --format csv
expect_exit 0
expect_stdout_match '^type,tensor,stored_type,elements,bytes,bits_per_weight,rmse,weighted_rmse,cosine$'
expect_stdout_match '^q4_k,total,q4_k,4194304,2359296,4.5000,'
[ -n "$case_skip" ] || [ "$(wc -l < "$W/.stdout")" -eq 32 ] || _note "expected a header, 30 tensors and a total"
end

begin "bench --tensors: rows that do not fit a K-quant fall back, and say so"
run isq-genmodel -q --preset tiny -o tiny
run isq-bench -q -m tiny --tensors -t q4_k
expect_exit 0
expect_stdout_match '^| q4_k | 5.500 | .* | 15 (15 fallbacks) |$'
expect_stdout_match '^| q4_k | blk.0.attn_q.weight | q5_0 |'
end

begin "bench --tensors: MoE experts are measured as one stacked tensor"
run isq-genmodel -q --experts 4 --hidden 256 --intermediate 512 --layers 1 --untied --dtype f16 -o moe
run isq-bench -q -m moe --tensors -t q8_0,f16 --json
expect_exit 0
expect_json '[.types[0].tensors[] | select(.name == "blk.0.ffn_down_exps.weight") | .elements] == [524288]'
# four sources of 512 x 256 each, read whole: F16 to F16 is then exact
expect_json '.types[1].rmse == 0 and .types[1].cosine == 1 and .types[0].rmse > 0'
end

begin "bench --tensors: errors"
gen_small
run isq-bench -m small --tensors -t q4_0,q9_9
expect_exit 2
expect_stderr_contains "q9_9"
expect_stdout_empty
run isq-bench -m small --tensors -t q4_0,
expect_exit 2
run isq-bench -m small --ppl -f t.txt -t q4_0
expect_exit 2
expect_stderr_contains "-t goes with --tensors or --quant"
run isq-bench -m small --tensors -f t.txt
expect_exit 2
expect_stderr_contains "needs no text"
run isq-bench -m small --tensors --imatrix missing.imatrix
expect_exit 1
expect_stderr_lines 1
expect_stdout_empty
run isq-bench -m missing --tensors
expect_exit 1
expect_stderr_lines 1
run isq-bench -m small --tensors --speed
expect_exit 2
expect_stderr_contains "give one mode"
end

begin "bench --quant: MB/s per type"
gen_small
run isq-bench -q -m small --quant -t q4_0,q6_k --threads 1
expect_exit 0
expect_stdout_match '^| type | threads | fp16 MB | seconds | MB/s |$'
expect_stdout_match '^| q6_k | 1 | 8.4 | '
run isq-bench -q -m small --quant -t q4_k --imatrix small.imatrix --json
expect_exit 0
expect_json '.mode == "quant" and .types[0].type == "q4_k" and .types[0].elements == 4194304 and .types[0].mb_per_s > 0'
expect_json '((.types[0].fp16_mb / .types[0].seconds - .types[0].mb_per_s) | fabs) < 0.01 * .types[0].mb_per_s'
end

begin "bench --speed: llama-bench's pp and tg rows"
gen_small
run isq-bench -q -m small --speed -p 16 -n 4 -r 2 --threads 1
expect_exit 0
expect_stdout_match '^| model | size | params | backend | threads | test | t/s | t/s per CPU s |$'
expect_stdout_match '^| small | 8.00 MiB | 4.20 M | cpu | 1 | pp16 | [0-9.]* ± [0-9.]* | [0-9.]* |$'
expect_stdout_match '^| small | .* | tg4 | '
run isq-bench -q -m small --speed -p 0 -n 3 -r 1 --format csv
expect_exit 0
expect_stdout_match '^model,bytes,params,backend,threads,test,avg_ts,stddev_ts,cpu_ts$'
expect_stdout_match '^small,.*,tg3,'
[ -n "$case_skip" ] || [ "$(wc -l < "$W/.stdout")" -eq 2 ] || _note "-p 0: expected the tg row only"
run isq-bench -q -m small --speed -p 8 -n 0 -r 1 --json
expect_exit 0
expect_json '.mode == "speed" and .repetitions == 1 and (.tests | length) == 1 and .tests[0].test == "pp8" and .tests[0].avg_ts > 0 and .tests[0].stddev_ts == 0 and .cache_type == "f32"'
run isq-bench -q -m small --speed -p 8 -n 2 -r 1 --json --cache-type f16
expect_exit 0
expect_json '.cache_type == "f16" and (.tests | length) == 2'
end

begin "bench --speed: errors"
run isq-bench -m x --speed -p 0 -n 0
expect_exit 2
expect_stderr_contains "nothing to measure"
run isq-bench -m x --speed -r 0
expect_exit 2
expect_stderr_contains "-r must be between"
run isq-bench -m x --ppl -f t.txt -p 5
expect_exit 2
expect_stderr_contains "-p, -n and -r go with --speed"
run isq-bench -m x --speed --imatrix y
expect_exit 2
run isq-bench -m x --speed --cache-type q8_0
expect_exit 2
expect_stderr_contains "isq-bench: --cache-type must be f32 or f16, not 'q8_0'"
run isq-bench -m x --speed -c 64
expect_exit 2
run isq-bench -m missing --speed
expect_exit 1
expect_stderr_lines 1
expect_stdout_empty
end

if [ "$ISQ_CHECK_LEVEL" = full ]; then
	begin "bench --ppl -c 256, whole text, F32: 7.7951 (llama-perplexity) within 0.1%"
	need_shared data/tinystories-valid-1000.txt
	need_shared models/stories260K-f32
	run isq-bench -q -m "$F32" --ppl -f "$TEXT" -c 256 --json
	expect_exit 0
	[ -n "$case_skip" ] || near "ppl" "$(json_num ppl)" 7.7951 0.001
	end

	# measured: 4.57765157 over 389,336 tokens in 101 s on one thread
	begin "bench --ppl --per-document, whole text, F32: 4.57765 (../shared/README.md) within 0.01%"
	need_shared data/tinystories-valid-1000.txt
	need_shared models/stories260K-f32
	run isq-bench -q -m "$F32" --ppl --per-document -f "$TEXT" --json
	expect_exit 0
	expect_json '.documents == 1000 and .scored_tokens == 389336'
	[ -n "$case_skip" ] || near "ppl" "$(json_num ppl)" 4.57765 0.0001
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
