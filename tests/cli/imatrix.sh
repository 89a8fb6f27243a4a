#!/bin/sh
# CLI tests for isq-imatrix.
. "$(dirname "$0")/lib.sh"

F32="$SHARED/models/stories260K-f32"
TEXT="$SHARED/data/tinystories-valid-1000.txt"

# tensor_bytes FILE NAME: the raw bytes of one tensor, located with isq-inspect --json.
tensor_bytes() {
	isq-inspect --json --tensor "$2" "$1" > "$W/.tb.json" || return 1
	off=$(jq '.tensors[0].offset' "$W/.tb.json")
	len=$(jq '.tensors[0].bytes' "$W/.tb.json")
	tail -c +$((off + 1)) "$1" | head -c "$len"
}

# A calibration text that needs no ../shared: a few hundred words of plain English.
mktext() {
	i=0
	while [ $i -lt 60 ]; do
		echo "Once upon a time there was a little dog named Max number $i. He liked to run in the park"
		echo "and play with his ball. One day the sun was warm and Max found a big red box under a tree."
		i=$((i + 1))
	done > "$1"
}

# mean importances of a --json summary as "name value" lines
means() { jq -r '.entries[] | "\(.name) \(.mean_importance)"' "$1"; }

begin "imatrix --help is pinned byte for byte"
run isq-imatrix --help
expect_exit 0
expect_stdout_file "$top/tests/cli/golden/isq-imatrix.help"
end

begin "imatrix --version"
run isq-imatrix --version
expect_exit 0
expect_stdout_contains "isq-imatrix 0.1.0"
end

begin "imatrix: usage errors exit 2 with one reason and the synopsis"
run isq-imatrix -m x -f y
expect_exit 2
expect_stderr_contains "no output given (-o)"
expect_stdout_empty
run isq-imatrix -m x -o out.gguf
expect_exit 2
expect_stderr_contains "no calibration text given (-f)"
run isq-imatrix -m x -f y -o out.imat --format npz
expect_exit 2
expect_stderr_contains "unknown format 'npz' (gguf, dat, cimatrix)"
run isq-imatrix --merge -o out.gguf
expect_exit 2
expect_stderr_contains "--merge needs the imatrix files"
run isq-imatrix -m x -f y -o - --json
expect_exit 2
expect_stderr_contains "--json needs -o FILE"
run isq-imatrix -m x -f y -c 0 -o out.gguf
expect_exit 2
expect_no_file out.gguf
end

# ---- on a generated model: no ../shared needed ------------------------------------

begin "imatrix on a generated model: an entry per linear weight, llama.cpp's metadata"
run isq-genmodel -q --seed 3 -o tiny
mktext "$W/cal.txt"
run isq-imatrix -m tiny -f cal.txt -c 32 --chunks 4 -o tiny.gguf --json
expect_exit 0
expect_json '.chunk_count == 4 and .chunk_size == 32 and .tokens == 128 and .datasets == ["cal.txt"]'
# 2 layers x (q k v o gate up down); ffn_down reads the 128-wide MLP, the rest the 64-wide hidden state
expect_json '(.entries | length) == 14 and ([.entries[] | select(.count != 128)] | length) == 0'
expect_json '[.entries[] | select(.name | test("ffn_down")) | .columns] == [128, 128]'
expect_json '[.entries[] | select(.name | test("ffn_down") | not) | .columns] | unique == [64]'
# Q, K and V see one input, as do gate and up: identical vectors
expect_json '[.entries[] | select(.name | test("blk.0.attn_[qkv]\\.")) | .mean_importance] | unique | length == 1'
run isq-inspect --json --metadata tiny.gguf
expect_exit 0
expect_json '.metadata["general.type"] == "imatrix" and .metadata["imatrix.chunk_count"] == 4 and .metadata["imatrix.chunk_size"] == 32'
expect_json '.metadata["imatrix.datasets"] == ["cal.txt"] and .tensor_count == 28'
expect_json '[.tensors[] | select(.name == "blk.1.ffn_down.weight.in_sum2") | .shape] == [[128]]'
expect_json '[.tensors[] | select(.name == "blk.1.ffn_down.weight.counts") | .shape] == [[1]]'
end

begin "imatrix: the three formats read back with the same importance"
run isq-genmodel -q --seed 3 -o tiny
mktext "$W/cal.txt"
for f in gguf dat cimatrix; do
	run isq-imatrix -q -m tiny -f cal.txt -c 32 --chunks 4 -o "x.$f"
	expect_exit 0
	expect_stderr_empty
	run isq-imatrix --convert "x.$f" -o "back-$f.gguf" --json
	expect_exit 0
	cp "$W/.stdout" "$W/$f.json"
done
# .dat keeps mean x chunks with the chunk count as its count: the importance is the same
a=$(means "$W/gguf.json"); b=$(means "$W/dat.json")
[ -n "$a" ] && [ "$a" = "$b" ] || _note "importance from .dat differs from GGUF's"
# .cimatrix keeps mean x chunks and no count (mistral.rs reads the values as they are): 4 x GGUF's
jq -s -e '[.[0].entries, .[1].entries] | transpose | all(.[1].mean_importance / .[0].mean_importance | . > 3.9999 and . < 4.0001)' \
	"$W/gguf.json" "$W/cimatrix.json" > /dev/null || _note "importance from .cimatrix is not 4 x GGUF's"
jq -e '.chunk_count == 4' "$W/dat.json" > /dev/null || _note ".dat lost its chunk count"
# the GGUF converts to GGUF byte for byte
cmp -s "$W/x.gguf" "$W/back-gguf.gguf" || _note "GGUF -> GGUF is not byte-identical"
end

# (that the halves of one token stream merge to the whole is test-imatrix-collect's: here the
# tokenizer would cut the text differently)
begin "imatrix: --merge adds runs as --in-file does; -o - streams the same bytes"
run isq-genmodel -q --seed 3 -o tiny
mktext "$W/cal.txt"
head -c 4000 "$W/cal.txt" > "$W/a.txt"
tail -c +4001 "$W/cal.txt" > "$W/b.txt"
run isq-imatrix -q -m tiny -f a.txt -c 32 -o a.gguf
expect_exit 0
run isq-imatrix -q -m tiny -f b.txt -c 32 -o b.gguf
expect_exit 0
run isq-imatrix --merge a.gguf b.gguf -o ab.gguf --json
expect_exit 0
cp "$W/.stdout" "$W/ab.json"
run isq-imatrix -q -m tiny -f b.txt -c 32 --in-file a.gguf -o whole.gguf
expect_exit 0
run isq-imatrix --convert whole.gguf -o whole2.gguf --json
jq -s -e '(.[0].chunk_count == .[1].chunk_count) and (.[0].datasets | sort) == (.[1].datasets | sort) and
	(.[0].datasets | length) == 2 and ([.[0].entries, .[1].entries] | transpose | all((.[0].count == .[1].count) and
	(((.[0].mean_importance - .[1].mean_importance) | fabs) < 1e-5 * .[1].mean_importance)))' \
	"$W/ab.json" "$W/.stdout" > /dev/null || _note "merged halves differ from the whole"
(cd "$W" && isq-imatrix -q -m tiny -f a.txt -c 32 -o - > pipe.gguf)
cmp -s "$W/a.gguf" "$W/pipe.gguf" || _note "-o - differs from the file output"
end

begin "imatrix: an imatrix of another model is one line, exit 1, no output"
run isq-genmodel -q --seed 3 -o tiny
run isq-genmodel -q --seed 3 --intermediate 96 -o other
mktext "$W/cal.txt"
run isq-imatrix -q -m other -f cal.txt -c 32 --chunks 2 -o other.gguf
expect_exit 0
run isq-imatrix -m tiny -f cal.txt -c 32 --chunks 2 --in-file other.gguf -o out.gguf
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "another model"
expect_no_file out.gguf
expect_no_temp
run isq-imatrix -q -m tiny -f cal.txt -c 32 --chunks 2 -o tiny.gguf
run isq-imatrix --merge tiny.gguf other.gguf -o m.gguf
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "'blk.0.ffn_down.weight'"
expect_no_file m.gguf
end

begin "imatrix: missing, empty and too-short text are one line, exit 1, no output"
run isq-genmodel -q --seed 3 -o tiny
run isq-imatrix -m tiny -f nothing.txt -o out.gguf
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "nothing.txt"
expect_no_file out.gguf
: > "$W/empty.txt"
run isq-imatrix -m tiny -f empty.txt -o out.gguf
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "empty.txt: the calibration text is empty"
expect_no_file out.gguf
echo "Once upon a time." > "$W/short.txt"
run isq-imatrix -m tiny -f short.txt -o out.gguf
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "fewer than one chunk of 512"
expect_no_file out.gguf
expect_no_temp
end

begin "imatrix: a corrupt imatrix input is one line, exit 1"
printf 'GGUF\003\000\000\000garbage' > "$W/bad.gguf"
run isq-imatrix --convert bad.gguf -o out.dat
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "bad.gguf"
expect_no_file out.dat
end

# ---- stories260K on TinyStories -----------------------------------------------------

# make check: 6 chunks of 128 tokens from the first 30 kB; make check-full: the whole text in chunks of 512
if [ "$ISQ_CHECK_LEVEL" = full ]; then
	ST_ARGS="-c 512"
	ST_WHAT="the whole text"
else
	ST_ARGS="-c 128 --chunks 6"
	ST_WHAT="6 chunks of 128"
fi

begin "imatrix stories260K ($ST_WHAT): 35 entries with the model's widths, in every format"
need_shared models/stories260K-f32/model.safetensors && need_shared data/tinystories-valid-1000.txt
if [ -z "$case_skip" ]; then
	if [ "$ISQ_CHECK_LEVEL" = full ]; then cp "$TEXT" "$W/cal.txt"; else head -c 30000 "$TEXT" > "$W/cal.txt"; fi
fi
# shellcheck disable=SC2086
run isq-imatrix -m "$F32" -f cal.txt $ST_ARGS -o st.gguf --json
expect_exit 0
expect_json '.chunk_count >= 6 and .tokens == .chunk_count * .chunk_size and (.entries | length) == 35'
expect_json '[.entries[] | select(.name | test("ffn_down")) | .columns] | unique == [172]'
expect_json '[.entries[] | select(.name | test("ffn_down") | not) | .columns] | unique == [64]'
expect_json '.tokens as $t | [.entries[].count] | unique == [$t]'
expect_json '[.entries[].mean_importance] | all(. > 0)'
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/st.json"
for f in dat cimatrix; do
	run isq-imatrix -q --convert st.gguf -o "st.$f"
	expect_exit 0
	run isq-imatrix --convert "st.$f" -o "st-$f.gguf" --json
	expect_exit 0
	expect_json '(.entries | length) == 35'
done
# the last --convert read the .cimatrix: mean square x chunks, no count
if [ -z "$case_skip" ]; then
	jq -s -e '.[0].chunk_count as $c | [.[0].entries, .[1].entries] | transpose |
		all(.[1].mean_importance / .[0].mean_importance / $c | . > 0.9999 and . < 1.0001)' \
		"$W/st.json" "$W/.stdout" > /dev/null || _note ".cimatrix importance is not chunk_count x GGUF's"
fi
end

begin "imatrix stories260K: isq-quantize takes it (all formats, and the pipe) and its bytes change"
need_shared models/stories260K-f32/model.safetensors && need_shared data/tinystories-valid-1000.txt
[ -n "$case_skip" ] || head -c 30000 "$TEXT" > "$W/cal.txt"
run isq-imatrix -q -m "$F32" -f cal.txt -c 128 --chunks 6 -o st.gguf
run isq-imatrix -q --convert st.gguf -o st.dat
run isq-imatrix -q --convert st.gguf -o st.cimatrix
run isq-quantize -q -m "$F32" -t q4_0 -o plain.gguf
expect_exit 0
run isq-quantize -q -m "$F32" -t q4_0 --imatrix st.gguf -o imat.gguf
expect_exit 0
run isq-inspect --json --metadata imat.gguf
expect_json '.metadata["quantize.imatrix.entries_count"] == 35 and .metadata["quantize.imatrix.chunks_count"] == 6'
expect_json '.metadata["quantize.imatrix.dataset"] == "cal.txt"'
if [ -z "$case_skip" ]; then
	tensor_bytes "$W/plain.gguf" blk.2.attn_q.weight > "$W/p.bin"
	tensor_bytes "$W/imat.gguf" blk.2.attn_q.weight > "$W/i.bin"
	[ -s "$W/i.bin" ] || _note "no tensor bytes read"
	cmp -s "$W/p.bin" "$W/i.bin" && _note "the imatrix did not change blk.2.attn_q.weight"
	# (.dat and .cimatrix scale the importance by the chunk count, which may move a rounding: not compared to GGUF's bytes)
	for f in dat cimatrix; do
		isq-quantize -q -m "$F32" -t q4_0 --imatrix "$W/st.$f" -o "$W/imat-$f.gguf" || _note "quantize --imatrix st.$f failed"
		tensor_bytes "$W/imat-$f.gguf" blk.2.attn_q.weight > "$W/f.bin"
		[ -s "$W/f.bin" ] || _note "no tensor bytes read from imat-$f.gguf"
		cmp -s "$W/p.bin" "$W/f.bin" && _note "st.$f did not change blk.2.attn_q.weight"
	done
	(cd "$W" && isq-imatrix -q -m "$F32" -f cal.txt -c 128 --chunks 6 -o - |
		isq-quantize -q -m "$F32" -t q4_0 --imatrix - -o piped.gguf) || _note "the pipe form failed"
	tensor_bytes "$W/piped.gguf" blk.2.attn_q.weight > "$W/f.bin"
	cmp -s "$W/i.bin" "$W/f.bin" || _note "the pipe form quantizes differently"
fi
end

begin "imatrix stories260K: llama.cpp's F32 GGUF gives the HF checkpoint's imatrix"
need_shared models/stories260K-f32/model.safetensors && need_shared data/tinystories-valid-1000.txt &&
	need_shared ref/llamacpp-stories260K/stories260K-f32.gguf
[ -n "$case_skip" ] || head -c 30000 "$TEXT" > "$W/cal.txt"
run isq-imatrix -m "$SHARED/ref/llamacpp-stories260K/stories260K-f32.gguf" -f cal.txt -c 128 --chunks 6 -o g.gguf --json
expect_exit 0
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/g.json"
run isq-imatrix -m "$F32" -f cal.txt -c 128 --chunks 6 -o h.gguf --json
expect_exit 0
# the GGUF's permuted Q/K rows change no matmul input; the same tokens come from its own tokenizer
if [ -z "$case_skip" ]; then
	jq -s -e '(.[0].entries | length) == 35 and ([.[0].entries, .[1].entries] | transpose |
		all(.[0].name == .[1].name and .[0].count == .[1].count and
		    ((.[0].mean_importance / .[1].mean_importance - 1) | fabs) < 1e-5))' \
		"$W/g.json" "$W/.stdout" > /dev/null || _note "GGUF and HF imatrices differ"
fi
end
