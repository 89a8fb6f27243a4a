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

begin "quantize writes llama.cpp's tokenizer keys from tokenizer.json"
need_shared ref/llamacpp-stories260K/stories260K-f32.gguf
run isq-quantize -q -m "$ST" -t q8_0 -o tok.gguf
expect_exit 0
isq-inspect --json --metadata "$W/tok.gguf" > "$W/ours.json"
isq-inspect --json --metadata "$REF/stories260K-f32.gguf" > "$W/ref.json"
jq -e '.metadata["tokenizer.ggml.model"] == "llama" and (.metadata["tokenizer.ggml.tokens"] | length) == 512' \
	"$W/ours.json" > /dev/null || _note "not a 512-token llama vocabulary"
for k in tokens scores token_type bos_token_id eos_token_id unknown_token_id; do
	a=$(jq -c ".metadata[\"tokenizer.ggml.$k\"]" "$W/ours.json")
	b=$(jq -c ".metadata[\"tokenizer.ggml.$k\"]" "$W/ref.json")
	[ "$a" = "$b" ] || _note "tokenizer.ggml.$k differs from llama.cpp's"
done
jq -e '.metadata["tokenizer.ggml.add_bos_token"] == true and .metadata["tokenizer.ggml.pre"] == "default"' \
	"$W/ours.json" > /dev/null || _note "add_bos_token or pre"
end

begin "quantize pads the vocabulary to config.json's vocab_size"
need_shared models/stories260K/model.safetensors
mkdir -p "$W/pad"
cp "$ST/tokenizer.json" "$ST/tokenizer_config.json" "$W/pad/"
ln -s "$ST/model.safetensors" "$W/pad/model.safetensors"
# the embedding has 512 rows: a bigger vocab_size is a config that lies, but shows the padding
sed 's/"vocab_size": 512/"vocab_size": 520/' "$ST/config.json" > "$W/pad/config.json"
run isq-quantize -q -m pad -t f16 -o pad.gguf
run isq-inspect --json --metadata pad.gguf
expect_json '(.metadata["tokenizer.ggml.tokens"] | length) == 520 and .metadata["tokenizer.ggml.tokens"][519] == "[PAD519]"'
expect_json '.metadata["tokenizer.ggml.token_type"][519] == 5'
end

begin "quantize reads .tar, .tar.zst and .zip archives: the same bytes as the directory"
need_shared models/stories260K/model.safetensors
run isq-quantize -q -m "$ST" -t q4_k_m -o dir.gguf
expect_exit 0
tar -C "$SHARED/models" -cf "$W/stories260K.tar" stories260K
(cd "$SHARED/models" && python3 -m zipfile -c "$W/stories260K.zip" stories260K)
archives="stories260K.tar stories260K.zip"
if command -v zstd > /dev/null; then
	zstd -q -c "$W/stories260K.tar" > "$W/stories260K.tar.zst"
	archives="$archives stories260K.tar.zst"
else
	echo "  (zstd not installed: .tar.zst not tried)"
fi
for a in $archives; do
	run isq-quantize -q -m "$a" -t q4_k_m -o "$a.gguf"
	expect_exit 0
	cmp -s "$W/dir.gguf" "$W/$a.gguf" || _note "$a: the GGUF differs from the directory's"
	(cd "$W" && isq-quantize -q -m "$a" -t q4_k_m -o - | cat > "$a.pipe.gguf")
	cmp -s "$W/dir.gguf" "$W/$a.pipe.gguf" || _note "$a: -o - through a pipe differs"
done
expect_no_temp
end

begin "quantize reads a sharded MoE model from an archive, tensors in any order"
mkdir -p "$W/moe"
run isq-genmodel -q --experts 4 --shards 3 --untied --dtype f16 -o moe/gen
expect_exit 0
run isq-quantize -q -m moe/gen -t q8_0 -o dir.gguf
expect_exit 0
# entries reversed: the index and config come last, shards in reverse order
# (named as the directory: general.name comes from it)
(cd "$W/moe" && tar -cf ../gen.tar $(find gen -type f | sort -r))
run isq-quantize -q -m gen.tar -t q8_0 -o tar.gguf --json
expect_exit 0
expect_json '[.tensors[] | select(.name | test("exps")) | .type] | length > 0'

cmp -s "$W/dir.gguf" "$W/tar.gguf" || _note "the archive's GGUF differs from the directory's"
end

begin "quantize: a truncated archive is one line, exit 1, no output"
need_shared models/stories260K/model.safetensors
tar -C "$SHARED/models" -cf "$W/full.tar" stories260K
head -c 300000 "$W/full.tar" > "$W/cut.tar"
run isq-quantize -m cut.tar -t q8_0 -o out.gguf
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "cut.tar"
expect_no_file out.gguf
expect_no_temp
end

begin "quantize: an archive without config.json is one line, exit 1"
need_shared models/stories260K/model.safetensors
tar -C "$ST" -cf "$W/noconf.tar" model.safetensors tokenizer.json
run isq-quantize -m noconf.tar -t q8_0 -o out.gguf
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "config.json"
expect_no_file out.gguf
end

begin "quantize: disk full from an archive is one line, exit 1"
need_shared models/stories260K/model.safetensors
if [ -w /dev/full ]; then
	tar -C "$SHARED/models" -cf "$W/s.tar" stories260K
	(cd "$W" && isq-quantize -q -m s.tar -t q8_0 -o - > /dev/full 2> .stderr)
	status=$?
	expect_exit 1
	expect_stderr_lines 1
	expect_stderr_contains "no space left on device"
fi
end

begin "quantize q4_k_m follows llama.cpp's rules for attn_v, ffn_down and output"
run isq-genmodel -q --hidden 256 --intermediate 512 --layers 8 --heads 4 --kv-heads 1 --untied -o g
expect_exit 0
run isq-quantize -m g -t q4_k_m -o g.gguf --json
expect_exit 0
# n = 8: more(i) = i < 1 || i >= 7 || (i - 1) % 3 == 2 -> layers 0, 3, 6, 7
expect_json '[.tensors[] | select(.name | test("attn_v")) | .type] == ["q6_k","q4_k","q4_k","q6_k","q4_k","q4_k","q6_k","q6_k"]'
expect_json '[.tensors[] | select(.name | test("ffn_down")) | .type] == ["q6_k","q4_k","q4_k","q6_k","q4_k","q4_k","q6_k","q6_k"]'
expect_json '.tensors[] | select(.name == "output.weight") | .type == "q6_k"'
expect_json '.tensors[] | select(.name == "token_embd.weight") | .type == "q4_k"'
expect_json '[.tensors[] | select(.name | test("attn_q|attn_k\\.|attn_output|ffn_gate|ffn_up")) | .type] | unique == ["q4_k"]'
expect_json '.fallbacks == 0 and ([.tensors[] | .weighted_error] | all(. >= 0 and . < 0.2))'
run isq-inspect --json --metadata g.gguf
expect_json '.metadata["general.file_type"] == 15'
for n in 1 3; do
	run isq-quantize -q -m g -t q4_k_m --threads $n -o g$n.gguf
	cmp -s "$W/g.gguf" "$W/g$n.gguf" || _note "--threads $n changes the bytes"
done
end

begin "quantize --calibration-file computes the imatrix first and records it"
need_shared models/stories260K-f32/config.json
need_shared data/tinystories-valid-1000.txt
head -c 6000 "$SHARED/data/tinystories-valid-1000.txt" > "$W/calib.txt"
run isq-quantize -q -m "$F32" -t q4_1 -o plain.gguf
expect_exit 0
run isq-quantize -q -m "$F32" -t q4_1 --calibration-file calib.txt -o cal.gguf
expect_exit 0
expect_file cal.gguf
if [ -z "$case_skip" ] && cmp -s "$W/plain.gguf" "$W/cal.gguf"; then
	_note "the calibration text did not change the quantized bytes"
fi
run isq-inspect --json --metadata cal.gguf
expect_json '.metadata["quantize.imatrix.file"] == "calib.txt" and .metadata["quantize.imatrix.chunks_count"] >= 2 and .metadata["quantize.imatrix.entries_count"] == 35'
run isq-quantize -m "$F32" -t q4_1 --calibration-file missing.txt -o bad.gguf
expect_exit 1
expect_stderr_lines 1
expect_no_file bad.gguf
expect_no_temp
end

begin "quantize -t auto takes isq-tune's balanced recommendation and records it"
need_shared models/stories260K/config.json
run isq-tune -m "$ST" --json
expect_exit 0
want=$(jq -r .recommended_type "$W/.stdout" 2> /dev/null)
run isq-quantize -m "$ST" -t auto -o auto.gguf
expect_exit 0
expect_stderr_contains "-t auto: $want"
run isq-inspect --json --metadata auto.gguf
expect_json ".metadata[\"quantize.auto_type\"] == \"$want\""
end

begin "quantize: q/k biases of a llama-layout (mixtral) model are permuted like their rows, not a crash"
run isq-genmodel -q --arch qwen2 --experts 4 -o moe-bias
expect_exit 0
run isq-quantize -q -m moe-bias -t q8_0 -o moe-bias.gguf
expect_exit 0
expect_file moe-bias.gguf
end

# types FILE [QUANT]: "name type" per line for the tensors of a GGUF or the layers of a UQFF directory's set QUANT.
types() {
	if [ -d "$1" ]; then
		isq-inspect --json "$1" | jq -r --arg q "${2:-}" '.sets[] | select($q == "" or .quant == $q) | .layers[] | "\(.key) \(.stored)"'
	else
		isq-inspect --json "$1" | jq -r '.tensors[] | "\(.name) \(.type)"'
	fi
}

begin "quantize --topology: ranges are half-open, larger end wins, regex before ranges, GGUF and UQFF"
run isq-genmodel -q --hidden 256 --intermediate 512 --layers 4 --untied -o g
cat > "$W/topo.yml" << 'YML'
# mistral.rs's topology: layers 0 and 1 at q8_0, layer 1 at q6_k (same end, declared later)
0-2:
  isq: q8_0
  device: cuda[0]
1:
  isq: q6k
'/mlp\.down_proj/':
  isq: q4_0
'/lm_head/':
  isq: Q5K
3-4:
  device: cpu
YML
run isq-quantize -q -m g -t q4_k --topology topo.yml -o t.gguf
expect_exit 0
types "$W/t.gguf" > "$W/t.txt"
for want in "blk.0.attn_q.weight q8_0" "blk.1.attn_q.weight q6_k" "blk.2.attn_q.weight q4_k" \
	"blk.3.attn_q.weight q4_k" "blk.0.ffn_down.weight q4_0" "blk.3.ffn_down.weight q4_0" \
	"output.weight q5_k" "token_embd.weight q6_k" "blk.0.attn_norm.weight f32"; do
	grep -qx "$want" "$W/t.txt" || _note "GGUF: no '$want' in: $(tr '\n' ' ' < "$W/t.txt")"
done
# the same pins in UQFF, and in both variants of a shorthand
run isq-quantize -q -m g -t 4 --topology topo.yml -o u/
expect_exit 0
types "$W/u" q4k > "$W/u.txt"
for want in "model.layers.0.self_attn.q_proj q8_0" "model.layers.1.self_attn.q_proj q6k" \
	"model.layers.2.self_attn.q_proj q4k" "model.layers.0.mlp.down_proj q4_0" "lm_head q5k"; do
	grep -qx "$want" "$W/u.txt" || _note "UQFF: no '$want' in: $(tr '\n' ' ' < "$W/u.txt")"
done
isq-inspect --json "$W/u" | jq -e '[.sets[] | select(.quant == "afq4") | .layers[] | select(.key == "model.layers.0.self_attn.q_proj") | .stored] == ["q8_0"]' > /dev/null ||
	_note "the afq4 variant does not keep the pin"
run isq-pack-uqff --verify u
expect_exit 0
# without the topology, layer 0 is q4_k: the file changed because of it
run isq-quantize -q -m g -t q4_k -o plain.gguf
types "$W/plain.gguf" | grep -qx "blk.0.attn_q.weight q4_k" || _note "default type is not q4_k"
end

begin "quantize --topology: --tensor-type wins, --pure does not undo pins"
run isq-genmodel -q --hidden 256 --intermediate 512 --layers 2 -o g
printf '0-2:\n  isq: q8_0\n' > "$W/topo.yml"
run isq-quantize -q -m g -t q4_k --pure --topology topo.yml --tensor-type 'blk\.1\.attn_v=q5_0' -o t.gguf
expect_exit 0
types "$W/t.gguf" > "$W/t.txt"
grep -qx "blk.0.attn_v.weight q8_0" "$W/t.txt" || _note "pin lost under --pure"
grep -qx "blk.1.attn_v.weight q5_0" "$W/t.txt" || _note "--tensor-type did not win over the topology"
grep -qx "token_embd.weight q4_k" "$W/t.txt" || _note "--pure: the embedding was promoted"
end

begin "quantize --topology: a bad file is one line with its line number, exit 1, no output"
run isq-genmodel -q --hidden 128 --intermediate 256 --layers 2 -o g
check_topo() { # yaml, expected message
	printf "$1" > "$W/topo.yml"
	run isq-quantize -m g -t q8_0 --topology topo.yml -o bad.gguf
	[ "$status" = 1 ] || _note "'$1': exit status $status, expected 1"
	grep -qF -- "$2" "$W/.stderr" || _note "'$1': stderr lacks '$2': $(head -c 300 "$W/.stderr")"
	[ "$(wc -l < "$W/.stderr")" -eq 1 ] || _note "'$1': stderr is not one line"
	[ ! -e "$W/bad.gguf" ] || _note "'$1': output written"
}
check_topo '0-2:\n  isq: q8_0\n\n# pins\n\n3:\n  isqq: q4k\n' "isq-quantize: topo.yml:7: unknown key 'isqq'"
check_topo '0-2:\n  isq: q8_0\n4-2:\n  isq: q4k\n' "topo.yml:3: layer range '4-2': the end must be greater than the start"
check_topo '0-x:\n  isq: q8_0\n' "topo.yml:1: bad layer range '0-x'"
check_topo "'/(attn/':\n  isq: q8_0\n" "topo.yml:1: bad regular expression '/(attn/'"
check_topo '0-2:\n  isq: q9_k\n' "topo.yml:2: unknown type 'q9_k'"
check_topo '0-2:\n  device: tpu[0]\n' "topo.yml:2: bad device 'tpu[0]'"
check_topo '0-2:\n  isq: q8_0\n  - x\n' "topo.yml:"
run isq-quantize -m g -t q8_0 --topology missing.yml -o bad.gguf
expect_exit 1
expect_stderr_contains "missing.yml"
expect_no_file bad.gguf
expect_no_temp
end

begin "quantize --organization moqe: experts quantized, the rest in the source dtype"
run isq-genmodel -q --experts 4 --hidden 256 --intermediate 512 --layers 2 --untied --dtype f16 -o moe
run isq-quantize -q -m moe -t q4_k --organization moqe -o m.gguf
expect_exit 0
types "$W/m.gguf" > "$W/m.txt"
grep -q '_exps.weight q4_k$' "$W/m.txt" || _note "no expert at q4_k"
[ "$(grep '_exps' "$W/m.txt" | grep -vc ' q4_k$')" = 0 ] || _note "an expert is not q4_k"
for want in "blk.0.attn_q.weight f16" "token_embd.weight f16" "output.weight f16" "blk.1.ffn_gate_inp.weight f32"; do
	grep -qx "$want" "$W/m.txt" || _note "GGUF: no '$want' in: $(tr '\n' ' ' < "$W/m.txt")"
done
run isq-quantize -q -m moe -t q4_k --organization moqe -o mu/
expect_exit 0
types "$W/mu" > "$W/mu.txt"
grep -qx "model.layers.0.block_sparse_moe.experts.gate_proj q4k" "$W/mu.txt" || _note "UQFF expert not q4k"
for k in model.layers.0.self_attn.q_proj lm_head model.embed_tokens; do
	grep -qx "$k unquant" "$W/mu.txt" || _note "UQFF: $k is not an Unquant entry"
done
run jq -e '.outputs[0].actual_counts == {"q4k": 6, "unquant": 10} and .outputs[0].fallback_count == 0' mu/uqff_report.json
expect_exit 0
run isq-pack-uqff --verify mu
expect_exit 0
# a topology pin still quantizes a non-expert layer
printf "'/self_attn\\\\.q_proj/':\n  isq: q8_0\n" > "$W/topo.yml"
run isq-quantize -q -m moe -t q4_k --organization moqe --topology topo.yml -o mt.gguf
expect_exit 0
types "$W/mt.gguf" | grep -qx "blk.0.attn_q.weight q8_0" || _note "moqe: the pin on q_proj was ignored"
# a dense model has no experts: an error, no output; an unknown organization is a usage error
run isq-genmodel -q --hidden 128 --intermediate 256 --layers 2 -o dense
run isq-quantize -m dense -t q4_k --organization moqe -o d.gguf
expect_exit 1
expect_stderr_contains "no MoE expert weights"
expect_stderr_lines 1
expect_no_file d.gguf
run isq-quantize -m moe -t q4_k --organization experts -o d.gguf
expect_exit 2
expect_stderr_contains "unknown organization 'experts'"
end

begin "quantize: SIGTERM during a GGUF write leaves no temporary file"
run isq-genmodel -q --hidden 512 --intermediate 2048 --layers 8 -o big
(cd "$W" && exec isq-quantize -q -m big -t iq4_nl --threads 1 -o big.gguf) &
pid=$!
i=0
while [ $i -lt 200 ] && [ -z "$(find "$W" -maxdepth 1 -name '.big.gguf.*' 2> /dev/null)" ] && kill -0 $pid 2> /dev/null; do
	sleep 0.05
	i=$((i + 1))
done
[ -n "$(find "$W" -maxdepth 1 -name '.big.gguf.*')" ] || _note "never saw the temporary file (the write ended first?)"
kill -TERM $pid 2> /dev/null
{ wait $pid; } 2> /dev/null
st=$?
[ "$st" -gt 128 ] || _note "exit status $st, expected death by the signal"
expect_no_file big.gguf
expect_no_temp
end
