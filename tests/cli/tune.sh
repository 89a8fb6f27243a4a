#!/bin/sh
# CLI tests for isq-tune.
. "$(dirname "$0")/lib.sh"

ST="$SHARED/models/stories260K"
REF="$SHARED/ref/llamacpp-stories260K"

# check_sizes MODEL [TUNE ARGS...]: every candidate's estimate against the file isq-quantize writes.
# Within 0.5% is the contract; the figures are in fact equal, and a difference is reported either way.
check_sizes() {
	m=$1
	shift
	isq-tune -q -m "$m" --json "$@" > "$W/tune.json" || { _note "isq-tune failed on $m"; return; }
	n=0
	for row in $(jq -r '.candidates[] | "\(.type)=\(.estimated_size_bytes)"' "$W/tune.json"); do
		t=${row%=*}
		est=${row#*=}
		rm -f "$W/q.gguf"
		isq-quantize -q -m "$m" -t "$t" -o "$W/q.gguf" 2> "$W/q.err" || { _note "isq-quantize -t $t failed: $(head -c 200 "$W/q.err")"; continue; }
		real=$(wc -c < "$W/q.gguf")
		awk -v e="$est" -v r="$real" 'BEGIN { d = e - r; if (d < 0) d = -d; exit !(d <= 0.005 * r) }' ||
			_note "$t: estimated $est bytes, isq-quantize wrote $real"
		[ "$est" -eq "$real" ] || echo "  note: $(basename "$m") $t: estimated $est, written $real"
		n=$((n + 1))
	done
	[ "$n" -ge 7 ] || _note "only $n candidates checked for $m"
}

begin "tune --help is pinned byte for byte"
run isq-tune --help
expect_exit 0
expect_stdout_file "$top/tests/cli/golden/isq-tune.help"
end

begin "tune --version"
run isq-tune --version
expect_exit 0
expect_stdout_contains "isq-tune 0.1.0"
end

begin "tune: no model is a usage error"
run isq-tune --json
expect_exit 2
expect_stdout_empty
expect_stderr_contains "no model given (-m)"
end

begin "tune: a bad --ctx is a usage error"
run isq-tune -m x --ctx 0
expect_exit 2
expect_stdout_empty
expect_stderr_contains "--ctx 0"
run isq-tune -m x --ctx -3
expect_exit 2
run isq-tune -m x --ctx 12k
expect_exit 2
expect_stderr_contains "expects an integer"
end

begin "tune: unknown backend, profile and type are usage errors"
run isq-tune -m x --backend metal
expect_exit 2
expect_stderr_contains "unknown backend 'metal'"
run isq-tune -m x --profile best
expect_exit 2
expect_stderr_contains "unknown profile 'best'"
need_shared models/stories260K/config.json
run isq-tune -m "$ST" -t q4k_m
expect_exit 2
expect_stderr_contains "did you mean 'q4_k_m'"
end

begin "tune: a missing model is one line, exit 1"
run isq-tune -m does-not-exist
expect_exit 1
expect_stdout_empty
expect_stderr_lines 1
expect_stderr_contains "does-not-exist"
end

begin "tune: a model directory without config.json is one line, exit 1"
need_shared models/stories260K/model.safetensors
mkdir -p "$W/nocfg"
ln -s "$ST/model.safetensors" "$W/nocfg/model.safetensors"
run isq-tune -m nocfg
expect_exit 1
expect_stdout_empty
expect_stderr_lines 1
expect_stderr_contains "config.json"
end

begin "tune: a broken config.json is one line, exit 1"
need_shared models/stories260K/model.safetensors
mkdir -p "$W/badcfg"
ln -s "$ST/model.safetensors" "$W/badcfg/model.safetensors"
echo '{"model_type": "llama", "hidden_size": ' > "$W/badcfg/config.json"
run isq-tune -m badcfg
expect_exit 1
expect_stderr_lines 1
end

begin "tune stories260K --json: recommended_isq for jq, mistral.rs's fields plus type"
need_shared models/stories260K/config.json
run isq-tune -m "$ST" --json
expect_exit 0
expect_stderr_empty
[ -n "$case_skip" ] || [ "$(jq -r .recommended_isq "$W/.stdout")" = Q6K ] || _note "recommended_isq is not Q6K"
expect_json '.model_id and .profile == "balanced" and .backend == "cpu" and .recommended_type == "q6_k"'
expect_json '[.candidates[].isq] == [null, "Q8_0", "Q6K", "Q5K", "Q4K", "Q3K", "Q2K"]'
expect_json '[.candidates[].type] == ["bf16", "q8_0", "q6_k", "q5_k", "q4_k", "q3_k", "q2_k"]'
expect_json '.candidates[0].isq_name == "None (BF16)" and .candidates[0].quality == "baseline"'
# mistral.rs's per-candidate fields (notes §3.8), and isq's type
fields='["isq", "isq_name", "type", "estimated_size_bytes", "vram_usage_percent", "max_context_tokens",
	"context_is_model_max", "quality", "fit_status", "recommended"]'
expect_json "[.candidates[] | keys] | all(. as \$k | $fields | all(. as \$f | \$k | index(\$f)))"
expect_json '[.candidates[] | select(.recommended)] | length == 1'
expect_json '.candidates | all(.fit_status == "fits" and .max_context_tokens == 512 and .context_is_model_max)'
expect_json 'has("device_layers") and .device_layers == null and .paged_attn_mode == "off" and (.warnings | type) == "array" and (.notes | type) == "array"'
expect_json '.recommended_command | test("^isq-run -m .*stories260K --isq q6_k$")'
expect_json '.total_vram_bytes == 0 and .total_ram_bytes > 0 and .context_length == 512'
end

begin "tune: profiles (quality keeps full precision when it fits; fast takes q4_k)"
need_shared models/stories260K/config.json
run isq-tune -m "$ST" --json --profile quality
expect_exit 0
expect_json '.recommended_isq == null and .recommended_type == "bf16" and .candidates[0].recommended'
expect_json '.recommended_command | test("--isq") | not'
run isq-tune -m "$ST" --json --profile fast
expect_json '.recommended_isq == "Q4K"'
run isq-tune -m "$ST" --json -t q4_k_m
expect_json '.recommended_isq == "Q4_K_M" and .recommended_type == "q4_k_m" and (.candidates | length) == 8'
end

begin "tune table: the columns, the status and the isq-run command"
need_shared models/stories260K/config.json
run isq-tune -m "$ST" --ctx 256
expect_exit 0
expect_stdout_contains "Quant       | Est. Size | VRAM % | Context Room | Quality       | Status"
expect_stdout_match '^Q6K +\| [0-9.]+ KB +\| [0-9]+% +\| 512 \(max\) +\| Good +\| Recommended$'
expect_stdout_match '^None \(BF16\) +\|'
expect_stdout_contains "256 tokens"
expect_stdout_contains "isq-run -m $ST --isq q6_k"
end

begin "tune --emit-config writes mistral.rs's TOML atomically"
need_shared models/stories260K/config.json
run isq-tune -m "$ST" --json --emit-config tune.toml
expect_exit 0
expect_json '.recommended_isq == "Q6K"'
expect_stderr_contains "wrote config to tune.toml"
expect_file tune.toml
expect_no_temp
[ -n "$case_skip" ] || {
	grep -qx 'command = "serve"' "$W/tune.toml" || _note "no command line"
	grep -qx '\[\[models\]\]' "$W/tune.toml" || _note "no [[models]]"
	grep -qx "model_id = \"$ST\"" "$W/tune.toml" || _note "no model_id"
	grep -qx 'in_situ_quant = "Q6K"' "$W/tune.toml" || _note "no in_situ_quant"
}
run isq-tune -m "$ST" --emit-config no-such-dir/tune.toml
expect_exit 1
expect_stderr_lines 1
expect_stdout_empty
expect_no_temp
end

begin "tune --backend cuda/vulkan: no device is not an error"
need_shared models/stories260K/config.json
for b in cuda vulkan; do
	run isq-tune -m "$ST" --json --backend $b
	expect_exit 0
	expect_json '(.backend == "cpu" and .total_vram_bytes == 0 and (.notes | length) >= 1) or (.backend != "cpu" and .total_vram_bytes > 0)'
done
end

# A stand-in libcuda.so.1 / libnvidia-ml.so.1 (tests/cli/stub/fake-cuda.c) drives the GPU rules without a GPU.
fake=$scratch/fakecuda
mkdir -p "$fake"
if ${CC:-cc} -shared -fPIC -o "$fake/libcuda.so.1" "$top/tests/cli/stub/fake-cuda.c" 2> /dev/null; then
	cp "$fake/libcuda.so.1" "$fake/libnvidia-ml.so.1"
else
	fake=
fi
# fake_gpu FREE CMD...: run with an 80 GB fake GPU that has FREE bytes free.
fake_gpu() {
	free=$1
	shift
	LD_LIBRARY_PATH="$fake${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ISQ_FAKE_CUDA_TOTAL=80000000000 ISQ_FAKE_CUDA_FREE=$free run "$@"
}

begin "tune --backend cuda reads the driver and NVML (fake libcuda)"
need_shared models/stories260K/config.json
[ -n "$fake" ] || case_skip="no C compiler for the fake libcuda"
fake_gpu 60000000000 isq-tune -m "$ST" --backend cuda --json
expect_exit 0
expect_stderr_empty
expect_json '.backend == "cuda" and .total_vram_bytes == 80000000000 and .available_vram_bytes == 60000000000'
expect_json '.recommended_isq == "Q6K" and (.candidates | all(.fit_status == "fits"))'
expect_json '.recommended_command | test("--backend cuda --isq q6_k$")'
expect_json '(.candidates[2].vram_usage_percent - (.candidates[2].estimated_size_bytes / 80000000000) | fabs) < 1e-12'
end

begin "tune on a small GPU: balanced prefers a q5_k that fits to a q6_k that spills; quality takes hybrid q8_0"
need_shared models/stories260K/config.json
[ -n "$fake" ] || case_skip="no C compiler for the fake libcuda"
fake_gpu 60000000000 isq-tune -m "$ST" --backend cuda --json
# room for q5_k with its KV cache and activations, beside the 512 MiB reserve; not for q6_k
[ -n "$case_skip" ] || free=$(jq '536870912 + .activation_bytes + .kv_cache_bytes + 300000' "$W/.stdout")
fake_gpu "$free" isq-tune -m "$ST" --backend cuda --json --emit-config hybrid.toml
expect_exit 0
expect_json '[.candidates[].fit_status] == ["hybrid", "hybrid", "hybrid", "fits", "fits", "fits", "fits"]'
expect_json '.recommended_isq == "Q5K" and .device_layers_cli == null'
expect_json '.candidates[2].device_layers_cli | test("^0:[0-4]$")'
expect_json '.candidates[2].max_context_tokens < 512 and (.candidates[2].context_is_model_max | not) and .candidates[3].context_is_model_max'
fake_gpu "$free" isq-tune -m "$ST" --backend cuda --json --profile quality --emit-config quality.toml
expect_json '.recommended_isq == "Q8_0" and (.device_layers_cli | test("^0:[0-4]$"))'
[ -n "$case_skip" ] || grep -qE '^device_layers = \["0:[0-4]"\]$' "$W/quality.toml" || _note "no device_layers in the TOML"
fake_gpu "$free" isq-tune -m "$ST" --backend cuda
expect_stdout_match '^Q6K +\| .*\| Hybrid$'
expect_stdout_match '^Q5K +\| .*\| Recommended$'
end

begin "tune: estimates equal isq-quantize's files for stories260K"
need_shared models/stories260K/config.json
check_sizes "$ST" -t q4_k_m,iq4_nl
end

begin "tune: estimates equal isq-quantize's files for llama.cpp's F32 GGUF (metadata copied)"
need_shared ref/llamacpp-stories260K/stories260K-f32.gguf
check_sizes "$REF/stories260K-f32.gguf"
end

begin "tune: estimates equal isq-quantize's files for a generated 4-layer untied model"
run isq-genmodel -q --preset small --seed 7 -o small
expect_exit 0
[ -n "$case_skip" ] || check_sizes "$W/small" -t q4_k_m
end

begin "tune: estimates equal isq-quantize's files for a generated tied qwen3 model with fallbacks"
run isq-genmodel -q --arch qwen3 --dtype f16 --hidden 96 --intermediate 320 --layers 3 --heads 4 --kv-heads 2 --vocab 1000 --tied -o q3
expect_exit 0
[ -n "$case_skip" ] || check_sizes "$W/q3" -t q3_k_m
end

begin "tune: estimates equal isq-quantize's files for a generated F32 MoE model"
run isq-genmodel -q --experts 4 --dtype f32 --hidden 128 --intermediate 256 --layers 2 -o moe
expect_exit 0
[ -n "$case_skip" ] || check_sizes "$W/moe"
end

begin "tune --measure: measured errors replace the tiers, ordered by bits"
need_shared models/stories260K/config.json
run isq-tune -m "$ST" --json --measure
expect_exit 0
expect_json '.candidates | all(has("measured_error"))'
expect_json '.candidates[0].measured_error == 0 and .candidates[0].quality == "baseline"'
# stories260K's odd row lengths send K-quants to their fallbacks: q8_0 < q5_1 (q5_k) < q4_0 (q3_k)
expect_json '(.candidates[1].measured_error < .candidates[3].measured_error) and (.candidates[3].measured_error < .candidates[5].measured_error)'
expect_json '.candidates[1].quality == "near-lossless"'
run isq-tune -m "$ST" --measure
expect_stdout_match '^Q8_0 +\| .*\| Near-lossless \([0-9.]+%\) +\|'
end

begin "tune refuses an already quantized GGUF, one line"
need_shared ref/llamacpp-stories260K/stories260K-Q4_0.gguf
run isq-tune -m "$REF/stories260K-Q4_0.gguf"
expect_exit 1
expect_stdout_empty
expect_stderr_lines 1
expect_stderr_contains "already quantized"
end

begin "tune reads an archive's headers in one pass; the size equals isq-quantize's from the archive"
need_shared models/stories260K/config.json
[ -n "$case_skip" ] || tar -C "$SHARED/models" -cf "$W/stories260K.tar" stories260K
run isq-tune -q -m stories260K.tar --json -t q4_k_m
expect_exit 0
[ -n "$case_skip" ] || check_sizes "$W/stories260K.tar" -t q4_k_m
run isq-tune -m stories260K.tar --measure
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "unpack the archive"
end
