#!/bin/sh
# CLI tests for isq-quantize.
. "$(dirname "$0")/lib.sh"

ST="$SHARED/models/stories260K"
F32="$SHARED/models/stories260K-f32"
REF="$SHARED/ref/llamacpp-stories260K"

# tensor_bytes FILE NAME: the raw bytes of one tensor, located with isq-inspect --json.
tensor_bytes() {
	isq-inspect --json --tensor "$2" "$1" > "$W/.tb.json" || return 1
	off=$(jq '.tensors[0].offset' "$W/.tb.json")
	len=$(jq '.tensors[0].bytes' "$W/.tb.json")
	tail -c +$((off + 1)) "$1" | head -c "$len"
}

begin "quantize --help is pinned byte for byte"
run isq-quantize --help
expect_exit 0
expect_stdout_file "$top/tests/cli/golden/isq-quantize.help"
end

begin "quantize: missing -o is a usage error"
run isq-quantize -m x -t q8_0
expect_exit 2
expect_stderr_contains "no output given (-o)"
end

begin "quantize: a type name typo suggests the nearest and exits 2"
need_shared models/stories260K/model.safetensors
run isq-quantize -m "$ST" -t q4k_m -o out.gguf
expect_exit 2
expect_stderr_contains "unknown type 'q4k_m' (did you mean 'q4_k_m'?)"
expect_no_file out.gguf
end

begin "quantize stories260K F32 to f32: every tensor equals llama.cpp's converter output"
need_shared ref/llamacpp-stories260K/stories260K-f32.gguf
run isq-quantize -q -m "$F32" -t f32 -o f32.gguf
expect_exit 0
expect_stderr_empty
names=$(isq-inspect --json "$W/f32.gguf" | jq -r '.tensors[].name')
n=0
for t in $names; do
	tensor_bytes "$W/f32.gguf" "$t" > "$W/a.bin"
	tensor_bytes "$REF/stories260K-f32.gguf" "$t" > "$W/b.bin"
	cmp -s "$W/a.bin" "$W/b.bin" || _note "tensor $t differs from llama.cpp's"
	n=$((n + 1))
done
# llama.cpp's file has 48: ours drops its copy of the tied output.weight
[ "$n" -eq 47 ] || _note "expected 47 tensors, got $n"
end

begin "quantize stories260K q8_0: types, shapes and the ffn_down fallback"
need_shared models/stories260K/model.safetensors
run isq-quantize -m "$ST" -t q8_0 -o q8.gguf --json
expect_exit 0
expect_json '.tensors | length == 47'
expect_json '[.tensors[] | select(.name | test("ffn_down")) | .type] | unique == ["bf16"]'
expect_json '[.tensors[] | select(.name | test("attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up")) | .type] | unique == ["q8_0"]'
expect_json '.tensors[] | select(.name == "token_embd.weight") | .type == "q8_0" and .shape == [512, 64]'
expect_json '.fallbacks == 5'
expect_json '[.tensors[] | select(.name == "blk.0.ffn_down.weight") | .fallback | test("172")] == [true]'
expect_stderr_contains "tensor 'blk.0.ffn_down.weight': q8_0 -> bf16"
run isq-inspect --json --metadata q8.gguf
expect_json '.metadata["general.architecture"] == "llama" and .metadata["general.file_type"] == 7 and .metadata["general.quantization_version"] == 2'
expect_json '.metadata["llama.embedding_length"] == 64 and .metadata["llama.attention.head_count_kv"] == 4'
expect_json '.metadata["quantize.fallbacks"] | length == 5'
end

begin "quantize: identical bytes for 1 and 2 threads"
need_shared models/stories260K/model.safetensors
run isq-quantize -q -m "$ST" -t q4_0 --threads 1 -o t1.gguf
expect_exit 0
run isq-quantize -q -m "$ST" -t q4_0 --threads 2 -o t2.gguf
expect_exit 0
cmp -s "$W/t1.gguf" "$W/t2.gguf" || _note "output depends on the thread count"
end

begin "quantize -o - streams the same bytes as a file"
need_shared models/stories260K/model.safetensors
run isq-quantize -q -m "$ST" -t q4_0 -o file.gguf
(cd "$W" && isq-quantize -q -m "$ST" -t q4_0 -o - > pipe.gguf)
cmp -s "$W/file.gguf" "$W/pipe.gguf" || _note "pipe and file outputs differ"
end

begin "quantize reads a GGUF input (llama.cpp's F32 file)"
need_shared ref/llamacpp-stories260K/stories260K-f32.gguf
run isq-quantize -m "$REF/stories260K-f32.gguf" -t q8_0 -o from-gguf.gguf --json
expect_exit 0
expect_json '[.tensors[] | select(.name == "blk.1.attn_q.weight") | .type] == ["q8_0"]'
run isq-inspect --json --metadata from-gguf.gguf
expect_json '.metadata["general.file_type"] == 7 and (.metadata["tokenizer.ggml.tokens"] | length) == 512'
end

begin "quantize refuses an already quantized GGUF"
need_shared ref/llamacpp-stories260K/stories260K-Q4_0.gguf
run isq-quantize -m "$REF/stories260K-Q4_0.gguf" -t q8_0 -o x.gguf
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "already quantized"
expect_no_file x.gguf
expect_no_temp
end

begin "quantize: disk full is one line, exit 1"
need_shared models/stories260K/model.safetensors
if [ -w /dev/full ]; then
	(cd "$W" && isq-quantize -q -m "$ST" -t q8_0 -o - > /dev/full 2> .stderr)
	status=$?
	expect_exit 1
	expect_stderr_lines 1
	expect_stderr_contains "no space left on device"
fi
end

begin "quantize: a closed pipe is one line, exit 1"
need_shared models/stories260K/model.safetensors
(cd "$W" && { isq-quantize -q -m "$ST" -t f32 -o - 2> .stderr; echo $? > .status; } | head -c 100 > /dev/null)
status=$(cat "$W/.status")
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "broken pipe"
end

begin "quantize: an imatrix for another model is an error, no output left"
need_shared models/stories260K/model.safetensors
# a legacy .dat with one entry whose name matches nothing in stories260K
printf '\001\000\000\000\024\000\000\000blk.0.nothing.weight\001\000\000\000\002\000\000\000\000\000\200\077\000\000\200\077' > "$W/other.dat"
run isq-quantize -m "$ST" -t q4_0 --imatrix other.dat -o out.gguf
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "matches no tensor"
expect_no_file out.gguf
expect_no_temp
end

begin "quantize: a truncated shard is one line, exit 1, no output"
need_shared models/stories260K/model.safetensors
mkdir -p "$W/trunc"
cp "$ST/config.json" "$ST/tokenizer.json" "$W/trunc/"
head -c 100000 "$ST/model.safetensors" > "$W/trunc/model.safetensors"
run isq-quantize -m trunc -t q8_0 -o out.gguf
expect_exit 1
expect_stderr_lines 1
expect_stderr_match "model.safetensors"
expect_no_file out.gguf
expect_no_temp
end

begin "quantize: an unknown architecture is one line, exit 1"
need_shared models/stories260K/model.safetensors
mkdir -p "$W/arch"
sed 's/"model_type": "llama"/"model_type": "frobnicator"/' "$ST/config.json" > "$W/arch/config.json"
ln -s "$ST/model.safetensors" "$W/arch/model.safetensors"
run isq-quantize -m arch -t q8_0 -o out.gguf
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "frobnicator"
expect_no_file out.gguf
end
