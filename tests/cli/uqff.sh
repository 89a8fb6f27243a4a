#!/bin/sh
# CLI tests for UQFF output: isq-pack-uqff, isq-quantize --format uqff, isq-inspect on UQFF.
. "$(dirname "$0")/lib.sh"

ST="$SHARED/models/stories260K"

# header FILE: the JSON header of a safetensors file.
header() {
	n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
	dd if="$1" bs=1 skip=8 count="$n" 2> /dev/null
}

# poke FILE TENSOR BYTE: overwrite the first data byte of TENSOR with BYTE (octal).
poke() {
	n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
	off=$(header "$1" | jq ".[\"$2\"].data_offsets[0]")
	printf "\\$3" | dd of="$1" bs=1 seek=$((8 + n + off)) conv=notrunc 2> /dev/null
}

# gen NAME ARGS...: a generator model in $W/NAME.
gen() {
	name=$1
	shift
	isq-genmodel -q -o "$W/$name" "$@" || _note "isq-genmodel $* failed"
}

begin "pack-uqff --help is pinned byte for byte"
run isq-pack-uqff --help
expect_exit 0
expect_stdout_file "$top/tests/cli/golden/isq-pack-uqff.help"
expect_stderr_empty
end

begin "pack-uqff --version"
run isq-pack-uqff --version
expect_exit 0
expect_stdout_contains "isq-pack-uqff 0.1.0"
end

begin "pack-uqff: missing -o, -m or -t is a usage error"
run isq-pack-uqff -m x -t q4_k
expect_exit 2
expect_stderr_contains "no output given (-o)"
expect_stdout_empty
run isq-pack-uqff -t q4_k -o out
expect_exit 2
expect_stderr_contains "no model given (-m)"
run isq-pack-uqff --verify a --unpack b -o c
expect_exit 2
end

begin "pack-uqff stories260K q4_k: mistral.rs's file names, report, verify"
need_shared models/stories260K/model.safetensors
run isq-pack-uqff -q -m "$ST" -t q4_k -o out/ --json
expect_exit 0
expect_stderr_empty
expect_json '.types == ["q4k"] and .layers == 36 and .fallbacks == 5'
for f in q4k-0.uqff residual.safetensors config.json tokenizer.json tokenizer_config.json generation_config.json uqff_report.json; do
	expect_file "out/$f"
done
expect_no_temp
[ -z "$(ls -A "$W" | grep '^\.' | grep -v '^\.std')" ] || _note "hidden leftovers in the case directory"
run jq -e '.schema == 1 and .uqff_version == "1.2.0" and .outputs[0].quant == "q4k" and .outputs[0].shards == ["q4k-0.uqff"]
	and .outputs[0].actual_counts == {"q5_0": 30, "q8_0": 1, "unquant": 5} and .outputs[0].fallback_count == 5
	and ([.outputs[0].fallbacks[].module] | all(test("down_proj")))' out/uqff_report.json
expect_exit 0
# first shard: the version scalars, U32 first then U8 in the data order
header "$W/out/q4k-0.uqff" > "$W/h.json"
jq -e '.["uqff.version.minor"].dtype == "U32" and .["uqff.version.minor"].shape == []
	and .["model.embed_tokens.weight.dtype"].dtype == "U32"
	and .["__metadata__"]["uqff.version"] == "1.2.0"' "$W/h.json" > /dev/null || _note "first shard header"
jq -e '[to_entries[] | select(.key != "__metadata__") | .value.dtype] | (index("U8") > rindex("U32"))' "$W/h.json" > /dev/null ||
	_note "U8 tensors do not follow the U32 ones"
run isq-pack-uqff --verify out
expect_exit 0
expect_stdout_contains "q4k: 36 layers in 1 shard, UQFF 1.2.0"
header "$W/out/residual.safetensors" | jq -e 'keys | length == 12 and all(test("norm|__metadata__"))' > /dev/null ||
	_note "the residual holds more than the norms"
grep -q quantization_config "$W/out/config.json" && _note "config.json keeps quantization_config"
end

begin "quantize --format uqff writes the same directory as pack-uqff"
need_shared models/stories260K/model.safetensors
run isq-quantize -q -m "$ST" -t q8_0 -o a/
expect_exit 0
run isq-pack-uqff -q -m "$ST" -t q8_0 -o b
expect_exit 0
diff -r "$W/a" "$W/b" > /dev/null || _note "the two tools wrote different directories"
run isq-quantize -q -m "$ST" -t q8_0 -o single.uqff
expect_exit 0
expect_file single-0.uqff
cmp -s "$W/single-0.uqff" "$W/a/q8_0-0.uqff" || _note "single.uqff differs from the directory form"
run isq-quantize -q -m "$ST" -t 4 -o two.uqff
expect_exit 1
expect_stderr_contains "several output types need a directory"
run isq-quantize -m "$ST" -t q8_0 --format uqff -o -
expect_exit 2
end

begin "pack-uqff: a shorthand writes both variants sharing residual and report"
need_shared models/stories260K/model.safetensors
run isq-pack-uqff -q -m "$ST" -t 4 -o out
expect_exit 0
expect_file out/q4k-0.uqff
expect_file out/afq4-0.uqff
run jq -e '[.outputs[].quant] == ["q4k", "afq4"]' out/uqff_report.json
expect_exit 0
run isq-pack-uqff --verify out
expect_exit 0
expect_stdout_contains "afq4:"
end

begin "pack-uqff: every type on a generator qwen2 model (biases) passes --verify"
gen qw --arch qwen2 --hidden 128 --intermediate 256 --layers 2 --untied
for t in q4_0 q4_1 q5_0 q5_1 q8_0 q8_1 q2_k q3_k q4_k q5_k q6_k q8_k hqq4 hqq8 fp8 f8q8 afq2 afq3 afq4 afq6 afq8 mxfp4 f32 f16 bf16; do
	rm -rf "$W/o"
	(cd "$W" && isq-pack-uqff -q -m qw -t $t -o o 2> .err) || _note "$t: write failed: $(cat "$W/.err")"
	(cd "$W" && isq-pack-uqff --verify o > /dev/null 2> .err) || _note "$t: verify failed: $(cat "$W/.err")"
done
run isq-inspect --json o
expect_json '.format == "uqff" and (.sets[0].layers | length) == 16'
expect_json '[.sets[0].layers[] | select(.key | test("q_proj")) | .bias] | all'
end

begin "pack-uqff: MoE experts become three stacked entries per block"
gen moe --experts 4 --hidden 128 --intermediate 256 --layers 2
run isq-pack-uqff -q -m moe -t q4_k -o o
expect_exit 0
run isq-inspect --json o
expect_exit 0
expect_json '[.sets[0].layers[] | select(.key == "model.layers.0.block_sparse_moe.experts.gate_proj") | .shape] == [[4, 256, 128]]'
expect_json '[.sets[0].layers[] | select(.key | test("experts\\.[0-9]"))] | length == 0'
expect_json '[.residual[].name] | any(test("block_sparse_moe.gate.weight"))'
run isq-pack-uqff -q -m moe -t hqq4 -o h
expect_exit 0
run isq-inspect --json h
expect_json '[.sets[0].layers[] | select(.key | test("experts")) | .stored] | unique == ["q8_0"]'
run isq-pack-uqff --verify h
expect_exit 0
end

begin "pack-uqff --verify catches what mistral.rs's loader refuses"
gen g --hidden 128 --intermediate 256 --layers 2
run isq-pack-uqff -q -m g -t q8_0 --shard-size 40000 -o o
expect_exit 0
[ -e "$W/o/q8_0-2.uqff" ] || _note "--shard-size did not cut shards"
run isq-pack-uqff --verify o
expect_exit 0
check_bad() { # what was broken, the expected message
	run isq-pack-uqff --verify bad
	[ "$status" = 1 ] || _note "$1: exit status $status, expected 1"
	grep -qF -- "$2" "$W/.stderr" || _note "$1: stderr lacks '$2': $(head -c 300 "$W/.stderr")"
	[ "$(wc -l < "$W/.stderr")" -eq 1 ] || _note "$1: stderr is not one line"
}
rm -rf "$W/bad" && cp -r "$W/o" "$W/bad" && poke "$W/bad/q8_0-0.uqff" uqff.version.minor 003
check_bad "newer minor" "newer than 1.2"
rm -rf "$W/bad" && cp -r "$W/o" "$W/bad"
LC_ALL=C sed -i 's/"uqff.version.major"/"uqff.version.majox"/' "$W/bad/q8_0-0.uqff"
check_bad "missing version" "no 'uqff.version.major'"
rm -rf "$W/bad" && cp -r "$W/o" "$W/bad"
cp "$W/bad/q8_0-0.uqff" "$W/bad/q8_0-$(ls "$W/bad" | grep -c '\.uqff$').uqff"
check_bad "duplicate key" "duplicate tensor"
rm -rf "$W/bad" && cp -r "$W/o" "$W/bad"
LC_ALL=C sed -i 's/self_attn.q_proj.weight.dtype"/self_attn.q_proj.weight.dtypx"/' "$W"/bad/*.uqff
check_bad "extra suffix" "unexpected tensor"
rm -rf "$W/bad" && cp -r "$W/o" "$W/bad" && truncate -s -1 "$W/bad/q8_0-1.uqff"
check_bad "truncated shard" "q8_0-1.uqff"
rm -rf "$W/bad" && cp -r "$W/o" "$W/bad" && rm "$W/bad/q8_0-1.uqff"
check_bad "gap" "gap"
rm -rf "$W/bad" && cp -r "$W/o" "$W/bad" && jq '.outputs[0].layers = 3' "$W/o/uqff_report.json" > "$W/bad/uqff_report.json"
check_bad "report layers" "uqff_report.json"
end

begin "pack-uqff --unpack dequantizes into safetensors"
gen g --hidden 128 --intermediate 256 --layers 2
run isq-pack-uqff -q -m g -t afq8 -o o
expect_exit 0
run isq-pack-uqff -q --unpack o -o u.safetensors
expect_exit 0
run isq-inspect --json u.safetensors
expect_exit 0
expect_json '[.tensors[] | select(.name == "model.layers.1.mlp.down_proj.weight") | .type] == ["f32"]'
expect_json '[.tensors[] | select(.name == "model.norm.weight")] | length == 1'
run isq-pack-uqff -q --unpack o -t q4_k -o x.safetensors
expect_exit 2
expect_no_file x.safetensors
end

begin "pack-uqff: a failed write leaves nothing behind"
gen g --hidden 128 --intermediate 256 --layers 2
echo x > "$W/file"
run isq-pack-uqff -m g -t q8_0 -o file/sub
expect_exit 1
expect_stderr_lines 1
run isq-pack-uqff -m g -t iq4_nl -o o
expect_exit 1
expect_stderr_contains "use --format gguf"
expect_no_file o
[ -z "$(ls -A "$W" | grep '^\.' | grep -v '^\.std')" ] || _note "hidden leftovers: $(ls -A "$W")"
end

begin "inspect reads a UQFF directory and a single shard"
gen g --hidden 128 --intermediate 256 --layers 2
run isq-pack-uqff -q -m g -t q6_k -o o
run isq-inspect o
expect_exit 0
expect_stdout_contains "set q6k: UQFF 1.2.0, 1 shard"
expect_stdout_contains "model.layers.0.self_attn.q_proj"
run isq-inspect --json o/q6k-0.uqff
expect_exit 0
expect_json '.sets[0].quant == "q6k" and (.sets[0].layers | map(.stored) | unique) == ["q6k", "q8_0"]'
end

# tensor_bytes FILE NAME: the raw bytes of one GGUF tensor, located with isq-inspect --json.
tensor_bytes() {
	isq-inspect --json --tensor "$2" "$1" > "$W/.tb.json" || return 1
	off=$(jq '.tensors[0].offset' "$W/.tb.json")
	len=$(jq '.tensors[0].bytes' "$W/.tb.json")
	tail -c +$((off + 1)) "$1" | head -c "$len"
}

begin "pack-uqff -i: the pipe form writes the same bytes as the file form"
need_shared models/stories260K/model.safetensors
(cd "$W" && isq-quantize -q -m "$ST" -t q4_k_m -o - | isq-pack-uqff -q -m "$ST" -i - -o pipe) || _note "pipe form failed"
run isq-quantize -q -m "$ST" -t q4_k_m -o file/
expect_exit 0
diff -r "$W/pipe" "$W/file" > /dev/null || _note "pipe and file forms differ"
gen llm --hidden 256 --intermediate 512 --layers 2 --heads 8 --kv-heads 2
(cd "$W" && isq-quantize -q -m llm -t q6_k -o - | isq-pack-uqff -q -m llm -i - -o pipe2) || _note "pipe form failed (llama, GQA)"
run isq-pack-uqff -q -m llm -t q6_k -o file2
diff -r "$W/pipe2" "$W/file2" > /dev/null || _note "pipe and file forms differ (llama, GQA)"
run isq-quantize -q -m llm -t q8_0 -o other.gguf
run isq-pack-uqff -m llm -t q6_k -i other.gguf -o no
expect_exit 1
expect_stderr_contains "the plan for"
expect_no_file no
end

begin "pack-uqff --unpack to GGUF: llama.cpp's tensors, and back to the same UQFF"
gen llm --hidden 256 --intermediate 512 --layers 2 --heads 8 --kv-heads 2
run isq-pack-uqff -q -m llm -t q4_k -o u
expect_exit 0
run isq-pack-uqff -q --unpack u -o u.gguf
expect_exit 0
run isq-quantize -q -m llm -t q4_k -o q.gguf
for t in blk.0.attn_q.weight blk.0.attn_k.weight blk.1.ffn_down.weight token_embd.weight output_norm.weight; do
	tensor_bytes "$W/u.gguf" $t > "$W/a.bin"
	tensor_bytes "$W/q.gguf" $t > "$W/b.bin"
	[ -s "$W/a.bin" ] && cmp -s "$W/a.bin" "$W/b.bin" || _note "$t differs from isq-quantize's GGUF"
done
run isq-pack-uqff -q -m llm -i u.gguf -o back
expect_exit 0
diff -r "$W/u" "$W/back" > /dev/null || _note "UQFF -> GGUF -> UQFF changed the directory"
run isq-pack-uqff -q -m llm -t afq4 -o a
run isq-pack-uqff --unpack a -o a.gguf
expect_exit 1
expect_stderr_contains "which GGUF cannot hold"
expect_no_file a.gguf
end

begin "pack-uqff --tar: one archive holding the directory, the same bytes every run"
gen g --hidden 128 --intermediate 256 --layers 2
run isq-pack-uqff -q -m g -t 4 --tar -o g-uqff.tar.zst
expect_exit 0
mkdir -p "$W/again"
run isq-pack-uqff -q -m g -t 4 --tar -o again/g-uqff.tar.zst
cmp -s "$W/g-uqff.tar.zst" "$W/again/g-uqff.tar.zst" || _note "two runs gave different archives"
run isq-pack-uqff -q -m g -t q8_0 --tar -o plain.tar
expect_exit 0
(cd "$W" && mkdir x && cd x && tar -xf ../plain.tar) || _note "tar could not read the archive"
run isq-pack-uqff --verify x/plain
expect_exit 0
[ -z "$(ls -A "$W" | grep '^\.' | grep -v '^\.std')" ] || _note "hidden leftovers: $(ls -A "$W")"
run isq-pack-uqff -m g -t q8_0 --tar -o g.zip
expect_exit 2
end

begin "pack-uqff --verify: a shard set missing from uqff_report.json, and a reported shard missing on disk"
gen g --hidden 128 --intermediate 256 --layers 2
run isq-pack-uqff -q -m g -t q8_0 -o o
expect_exit 0
run isq-pack-uqff -q -m g -t q6_k -o other
expect_exit 0
check_bad() { # what was broken, the expected message
	run isq-pack-uqff --verify bad
	[ "$status" = 1 ] || _note "$1: exit status $status, expected 1"
	grep -qF -- "$2" "$W/.stderr" || _note "$1: stderr lacks '$2': $(head -c 300 "$W/.stderr")"
	[ "$(wc -l < "$W/.stderr")" -eq 1 ] || _note "$1: stderr is not one line"
}
# a valid set on disk (left over from another run) that the report does not list
rm -rf "$W/bad" && cp -r "$W/o" "$W/bad" && cp "$W/other/q6k-0.uqff" "$W/bad/"
check_bad "unreported set" "shard set 'q6k' (q6k-0.uqff) is not in the report"
# the reverse: the report lists a shard that is not there
rm -rf "$W/bad" && cp -r "$W/o" "$W/bad"
jq '.outputs[0].shards += ["q8_0-1.uqff"]' "$W/o/uqff_report.json" > "$W/bad/uqff_report.json"
check_bad "reported, absent" "shard 'q8_0-1.uqff' is missing"
# a whole output listed that is not on disk
rm -rf "$W/bad" && cp -r "$W/o" "$W/bad"
jq '.outputs += [{"quant": "q6k", "shards": ["q6k-0.uqff"], "layers": 16}]' "$W/o/uqff_report.json" > "$W/bad/uqff_report.json"
check_bad "reported output absent" "output 'q6k': shard 'q6k-0.uqff' is missing"
# with both sets reported, the directory is fine again
rm -rf "$W/bad" && cp -r "$W/o" "$W/bad" && cp "$W/other/q6k-0.uqff" "$W/bad/"
jq --slurpfile b "$W/other/uqff_report.json" '.outputs += $b[0].outputs' "$W/o/uqff_report.json" > "$W/bad/uqff_report.json"
run isq-pack-uqff --verify bad
expect_exit 0
end

# interrupt NAME SIGNAL PATTERN CMD...: start CMD in $W in the background, wait until a file
# matching PATTERN appears in $W, send SIGNAL, and check the process died by it.
interrupt() {
	sig=$2
	pat=$3
	shift 3
	(cd "$W" && exec "$@") &
	pid=$!
	i=0
	while [ $i -lt 200 ] && [ -z "$(find "$W" -maxdepth 2 -name "$pat" 2> /dev/null)" ] && kill -0 $pid 2> /dev/null; do
		sleep 0.05
		i=$((i + 1))
	done
	[ -n "$(find "$W" -maxdepth 2 -name "$pat")" ] || _note "never saw $pat (the write ended first?)"
	sleep 0.2 # into the shards
	kill -$sig $pid 2> /dev/null
	{ wait $pid; } 2> /dev/null
	st=$?
	[ "$st" -gt 128 ] || _note "$sig: exit status $st, expected death by the signal"
}

begin "a signal during a UQFF write leaves no staging directory behind"
gen big --hidden 512 --intermediate 2048 --layers 8
# isq-quantize into a new directory: the staging directory is .out.XXXXXX beside it
interrupt quantize TERM '.out.*' isq-quantize -q -m big -t hqq4 --threads 1 -o out/
expect_no_file out
[ -z "$(ls -A "$W" | grep '^\.' | grep -v '^\.std')" ] || _note "quantize: hidden leftovers: $(ls -A "$W")"
# into an existing directory: staging inside it, the old contents untouched
mkdir -p "$W/keep" && echo x > "$W/keep/notes.txt"
interrupt quantize-existing HUP '.isq-uqff.*' isq-pack-uqff -q -m big -t hqq4 --threads 1 -o keep
[ "$(ls -A "$W/keep")" = notes.txt ] || _note "pack-uqff: the existing directory holds: $(ls -A "$W/keep")"
# --tar: the whole temporary tree; SIGINT needs a default disposition (background jobs ignore it)
if env --default-signal=INT true 2> /dev/null; then
	interrupt tar INT '.big.tar.*' env --default-signal=INT isq-pack-uqff -q -m big -t hqq4 --threads 1 --tar -o big.tar
else
	interrupt tar TERM '.big.tar.*' isq-pack-uqff -q -m big -t hqq4 --threads 1 --tar -o big.tar
fi
expect_no_file big.tar
[ -z "$(ls -A "$W" | grep '^\.' | grep -v '^\.std')" ] || _note "tar: hidden leftovers: $(ls -A "$W")"
end
