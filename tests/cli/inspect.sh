#!/bin/sh
# CLI tests for isq-inspect.
. "$(dirname "$0")/lib.sh"

ST=stories260K
F32=stories260K-f32

begin "inspect --help is pinned byte for byte"
run isq-inspect --help
expect_exit 0
expect_stdout_file "$top/tests/cli/golden/isq-inspect.help"
expect_stderr_empty
end

begin "inspect --version"
run isq-inspect --version
expect_exit 0
expect_stdout_contains "isq-inspect 0.1.0"
end

begin "inspect without a model is a usage error"
run isq-inspect
expect_exit 2
expect_stdout_empty
expect_stderr_contains "isq-inspect: no model given"
expect_stderr_contains "usage: isq-inspect"
end

begin "inspect: unknown option suggests the nearest"
run isq-inspect --jsno x
expect_exit 2
expect_stderr_contains "unknown option '--jsno' (did you mean '--json'?)"
end

begin "inspect: missing file is one line, exit 1"
run isq-inspect does-not-exist.gguf
expect_exit 1
expect_stdout_empty
expect_stderr_lines 1
expect_stderr_match "^isq-inspect: does-not-exist.gguf: "
end

begin "inspect lists stories260K: 48 BF16 tensors with their shapes"
need_shared models/$ST/model.safetensors
run isq-inspect "$SHARED/models/$ST"
expect_exit 0
expect_stdout_contains "tensors:       48"
expect_stdout_contains "architecture:  llama"
expect_stdout_match "^model.embed_tokens.weight +bf16 +\[512, 64\] +65536 +16.0000"
expect_stdout_match "^model.layers.0.mlp.down_proj.weight +bf16 +\[64, 172\]"
expect_stdout_match "^model.layers.4.self_attn.k_proj.weight +bf16 +\[32, 64\]"
end

begin "inspect --json parses with jq and carries the schema"
need_shared models/$ST/model.safetensors
run isq-inspect --json "$SHARED/models/$ST"
expect_exit 0
expect_json '.format == "safetensors" and .tensor_count == 48 and (.tensors | length) == 48'
expect_json '[.tensors[] | select(.type != "bf16")] | length == 0'
expect_json '.tensors[] | select(.name == "model.embed_tokens.weight") | .shape == [512, 64] and .bytes == 65536 and .dtype == "BF16"'
expect_json '.config.hidden_size == 64 and .config.num_key_value_heads == 4 and .config.tie_word_embeddings == true'
expect_json '.parameters == ([.tensors[].elements] | add)'
end

begin "inspect reads llama.cpp's GGUF files"
need_shared ref/llamacpp-stories260K/stories260K-f32.gguf
ok=1
for f in "$SHARED"/ref/llamacpp-stories260K/*.gguf; do
	run isq-inspect --json "$f"
	expect_exit 0
	expect_json '.format == "gguf" and .version == 3 and .architecture == "llama"'
done
run isq-inspect "$SHARED/ref/llamacpp-stories260K/stories260K-Q4_0.gguf"
expect_stdout_match "^blk.0.ffn_down.weight +f16 +\[64, 172\]"
expect_stdout_match "^blk.0.attn_q.weight +q4_0 +\[64, 64\] +2304 +4.5000"
end

begin "inspect --metadata shows GGUF keys and arrays"
need_shared ref/llamacpp-stories260K/stories260K-f32.gguf
run isq-inspect --metadata "$SHARED/ref/llamacpp-stories260K/stories260K-f32.gguf"
expect_exit 0
expect_stdout_match "general.architecture +string +\"llama\""
expect_stdout_match "tokenizer.ggml.tokens +array +\[string x 512\]"
run isq-inspect --json --metadata "$SHARED/ref/llamacpp-stories260K/stories260K-f32.gguf"
expect_json '.metadata["tokenizer.ggml.tokens"] | length == 512'
expect_json '.metadata["llama.embedding_length"] == 64'
end

begin "inspect reads a GGUF from stdin, also zstd-compressed"
need_shared ref/llamacpp-stories260K/stories260K-Q8_0.gguf
run_stdin "$SHARED/ref/llamacpp-stories260K/stories260K-Q8_0.gguf" isq-inspect --json -
expect_exit 0
expect_json '.format == "gguf" and .path == "-"'
n1=$(jq .tensor_count "$W/.stdout" 2>/dev/null)
zstd -q -c "$SHARED/ref/llamacpp-stories260K/stories260K-Q8_0.gguf" > "$W/q8.gguf.zst"
run_stdin "$W/q8.gguf.zst" isq-inspect --json -
expect_exit 0
n2=$(jq .tensor_count "$W/.stdout" 2>/dev/null)
[ -n "$n1" ] && [ "$n1" = "$n2" ] || _note "tensor counts differ: '$n1' vs '$n2'"
run isq-inspect "$W/q8.gguf.zst"
expect_exit 0
end

begin "inspect --tensor selects one; an unknown name is an error"
need_shared models/$ST/model.safetensors
run isq-inspect --json --tensor model.norm.weight "$SHARED/models/$ST"
expect_exit 0
expect_json '(.tensors | length) == 1 and .tensors[0].name == "model.norm.weight"'
run isq-inspect --tensor no.such.tensor "$SHARED/models/$ST"
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "no tensor named 'no.such.tensor'"
end

# Statistics checked against od(1) + awk reading the raw float32 bytes.
begin "inspect --stats matches an independent computation"
need_shared models/$F32/model.safetensors
f="$SHARED/models/$F32/model.safetensors"
name=model.layers.0.mlp.gate_proj.weight
run isq-inspect --json --stats --tensor $name "$SHARED/models/$F32"
expect_exit 0
hlen=$(od -An -t u8 -N 8 "$f" | tr -d ' ')
begin_off=$(dd if="$f" bs=1 skip=8 count="$hlen" 2>/dev/null | jq ".\"$name\".data_offsets[0]")
end_off=$(dd if="$f" bs=1 skip=8 count="$hlen" 2>/dev/null | jq ".\"$name\".data_offsets[1]")
od -An -v -t f4 -j $((8 + hlen + begin_off)) -N $((end_off - begin_off)) "$f" |
	awk '{ for (i = 1; i <= NF; i++) { x = $i + 0; n++; s += x; ss += x * x; if (n == 1 || x < mn) mn = x; if (n == 1 || x > mx) mx = x } }
	     END { m = s / n; printf "%d %.9g %.9g %.9g %.9g\n", n, m, sqrt(ss / n - m * m), mn, mx }' > "$W/ref"
read n mean std mn mx < "$W/ref"
expect_json ".tensors[0].elements == $n"
expect_json "(.tensors[0].stats.mean - ($mean)) | fabs < 1e-6"
expect_json "(.tensors[0].stats.std - ($std)) | fabs < 1e-6"
expect_json "(.tensors[0].stats.min - ($mn)) | fabs < 1e-6"
expect_json "(.tensors[0].stats.max - ($mx)) | fabs < 1e-6"
expect_json '.tensors[0].stats.nan == 0 and .tensors[0].stats.inf == 0'
end

begin "inspect --stats gives the same figures with 1 and 2 threads"
need_shared ref/llamacpp-stories260K/stories260K-Q4_0.gguf
run isq-inspect --json --stats --threads 1 "$SHARED/ref/llamacpp-stories260K/stories260K-Q4_0.gguf"
cp "$W/.stdout" "$W/t1.json"
run isq-inspect --json --stats --threads 2 "$SHARED/ref/llamacpp-stories260K/stories260K-Q4_0.gguf"
expect_exit 0
cmp -s "$W/t1.json" "$W/.stdout" || _note "--stats output depends on the thread count"
expect_json '[.tensors[] | select(.stats == null)] | length == 0'
end

# ---- malformed inputs: one line on stderr, exit 1, no crash (ASan run too) ----

printf 'GGUX\003\000\000\000' > "$scratch/badmagic.gguf"
printf 'GGUF\001\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000' > "$scratch/v1.gguf"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\000\000\000\000\000\000\000\000\000' > "$scratch/manytensors.gguf"
printf '\377\377\377\377\000\000\000\000{}' > "$scratch/hugeheader.safetensors"
printf '\020\000\000\000\000\000\000\000{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}' > "$scratch/short.safetensors"
printf 'GGUF\003' > "$scratch/trunc.gguf"
for spec in "bad GGUF magic:badmagic.gguf:" "GGUF version 1:v1.gguf:version" "an absurd GGUF tensor count:manytensors.gguf:" \
	"a safetensors header length past EOF:hugeheader.safetensors:header" "a truncated GGUF:trunc.gguf:"; do
	label=${spec%%:*}; rest=${spec#*:}; file=${rest%%:*}; pat=${rest#*:}
	begin "inspect rejects $label"
	cp "$scratch/$file" "$W/$file"
	run isq-inspect "$file"
	expect_exit 1
	expect_stdout_empty
	expect_stderr_lines 1
	expect_stderr_match "^isq-inspect: $file: .*$pat"
	end
done
