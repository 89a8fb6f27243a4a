#!/bin/sh
# CLI tests for isq-run.
. "$(dirname "$0")/lib.sh"

F32="$SHARED/models/stories260K-f32"
BF16="$SHARED/models/stories260K"
REF="$SHARED/ref/llamacpp-stories260K"
GREEDY="$F32/reference/greedy256_once_upon_a_time.txt"
PROMPT="Once upon a time"

# words N FILE: the first N whitespace-separated words, one per line.
words() {
	tr -s ' \n' '\n\n' < "$2" | head -n "$1"
}

begin "run --help is pinned byte for byte"
run isq-run --help
expect_exit 0
expect_stdout_file "$top/tests/cli/golden/isq-run.help"
end

begin "run --version"
run isq-run --version
expect_exit 0
expect_stdout_contains "isq-run 0.1.0"
end

begin "run: no model is a usage error"
run isq-run -p hi
expect_exit 2
expect_stderr_contains "isq-run: no model given (-m, or model_id in --config)"
expect_stdout_empty
end

begin "run: out-of-range sampling parameters are a usage error"
run isq-run -m x --temp -1
expect_exit 2
expect_stderr_contains "sampling parameters out of range"
end

begin "run: an unknown cache type is a usage error"
run isq-run -m x --cache-type q8_0
expect_exit 2
expect_stderr_contains "isq-run: --cache-type must be f32 or f16, not 'q8_0'"
end

begin "run: an unknown backend names the available ones"
run isq-run -m x --backend tpu
expect_exit 2
expect_stderr_contains "isq-run: unknown backend 'tpu' (available: cpu)"
end

begin "run: a backend not built in is one line and exit 1"
if isq-run --backend vulkan -m /nonexistent 2>&1 | grep -q "not built in"; then
	run isq-run -m /nonexistent --backend vulkan
	expect_exit 1
	expect_stderr_lines 1
	expect_stderr_contains "backend 'vulkan' is not built in (available: cpu)"
fi
end

begin "run: a missing model is one line and exit 1"
run isq-run -m nonexistent.gguf -p hi
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "isq-run: "
expect_stdout_empty
end

begin "run: an architecture not yet supported is one line and exit 1"
mkdir -p "$W/phi3"
printf '{"model_type": "phi3", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 32, "max_position_embeddings": 64, "rms_norm_eps": 1e-5}' > "$W/phi3/config.json"
printf '\002\000\000\000\000\000\000\000{}' > "$W/phi3/model.safetensors"
run isq-run -m phi3 -p hi
expect_exit 1
expect_stderr_lines 1
expect_stderr_contains "phi3 is not yet supported"
end

begin "run: a truncated GGUF is one line and exit 1"
need_shared ref/llamacpp-stories260K/stories260K-f32.gguf
[ -n "$case_skip" ] || head -c 5000 "$REF/stories260K-f32.gguf" > "$W/cut.gguf"
run isq-run -m cut.gguf -p hi
expect_exit 1
expect_stderr_lines 1
end

begin "run stories260K F32, greedy: the 252 reference tokens exactly"
need_shared models/stories260K-f32/reference/greedy256_once_upon_a_time.txt
run isq-run -q -m "$F32" -p "$PROMPT" -n 252 --temp 0 --threads 2
expect_exit 0
expect_stdout_file "$GREEDY"
expect_stderr_empty
end

begin "run --cache-type f16: the same 252 reference tokens (the cache's rounding does not flip an argmax here)"
need_shared models/stories260K-f32/reference/greedy256_once_upon_a_time.txt
run isq-run -m "$F32" -p "$PROMPT" -n 252 --temp 0 --cache-type F16 --json
expect_exit 0
expect_stdout_file "$GREEDY"
if [ -z "$case_skip" ]; then
	r=$(jq -e '.cache_type == "f16"' "$W/.stderr" 2>&1) || _note "stderr JSON: $r"
fi
end

begin "run --no-echo prints the continuation only"
need_shared models/stories260K-f32/reference/greedy256_once_upon_a_time.txt
run isq-run -q -m "$F32" -p "$PROMPT" -n 252 --temp 0 --no-echo
expect_exit 0
[ -n "$case_skip" ] || tail -c +$((${#PROMPT} + 1)) "$GREEDY" > "$W/cont.txt"
expect_stdout_file "$W/cont.txt"
end

begin "run --json: text on stdout, one JSON summary on stderr"
need_shared models/stories260K-f32/reference/greedy256_once_upon_a_time.txt
run isq-run -m "$F32" -p "$PROMPT" -n 252 --temp 0 --json
expect_exit 0
expect_stdout_file "$GREEDY"
expect_stderr_lines 1
if [ -z "$case_skip" ]; then
	r=$(jq -e '.prompt_tokens == 5 and .gen_tokens == 252 and .stop == "length" and .backend == "cpu"
		and .gen_tok_s > 0 and .peak_rss_bytes > 0 and .cache_type == "f32"' "$W/.stderr" 2>&1) || _note "stderr JSON: $r"
fi
end

begin "run: the prompt from -f FILE and from -f - (stdin)"
need_shared models/stories260K-f32/reference/greedy256_once_upon_a_time.txt
[ -n "$case_skip" ] || printf '%s' "$PROMPT" > "$W/prompt.txt"
run isq-run -q -m "$F32" -f prompt.txt -n 252 --temp 0
expect_stdout_file "$GREEDY"
run_stdin "$W/prompt.txt" isq-run -q -m "$F32" -f - -n 252 --temp 0
expect_stdout_file "$GREEDY"
end

begin "run: -n 0 echoes the prompt; -n stops early"
need_shared models/stories260K-f32
run isq-run -q -m "$F32" -p "$PROMPT" -n 0
expect_exit 0
[ -n "$case_skip" ] || [ "$(stdout)" = "$PROMPT" ] || _note "stdout is '$(stdout)'"
run isq-run -m "$F32" -p "$PROMPT" -n 3 --temp 0 --json
[ -n "$case_skip" ] || [ "$(stdout)" = "Once upon a time, there was" ] || _note "stdout is '$(stdout)'"
end

begin "run: sampling with a seed is reproducible"
need_shared models/stories260K-f32
run isq-run -q -m "$F32" -p "$PROMPT" -n 40 --temp 1 --seed 7
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/a.txt"
run isq-run -q -m "$F32" -p "$PROMPT" -n 40 --temp 1 --seed 7 --threads 1
expect_exit 0
expect_stdout_file "$W/a.txt"
end

begin "run --config: isq-tune's emitted config runs as the explicit command"
need_shared models/stories260K-f32
run isq-tune -m "$F32" -t q8_0 --emit-config "$W/cfg.toml"
expect_exit 0
expect_file "$W/cfg.toml"
[ -n "$case_skip" ] || isq=$(sed -n 's/^in_situ_quant = "\(.*\)"$/\1/p' "$W/cfg.toml")
[ -n "$case_skip" ] || [ -n "$isq" ] || _note "no in_situ_quant in $(cat "$W/cfg.toml")"
run isq-run -q -m "$F32" --isq "${isq:-none}" -p "$PROMPT" -n 12 --temp 0
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/want.txt"
run isq-run -q --config "$W/cfg.toml" -p "$PROMPT" -n 12 --temp 0
expect_exit 0
expect_stdout_file "$W/want.txt"
end

begin "run --config: -m and --isq on the command line win over the file"
need_shared models/stories260K-f32
[ -n "$case_skip" ] || printf '[[models]]\nmodel_id = "%s"\n[models.quantization]\nin_situ_quant = "Q4K"\n' "$W/nowhere" > "$W/cfg.toml"
run isq-run -q -m "$F32" -p "$PROMPT" -n 12 --temp 0
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/want.txt"
run isq-run -q --config "$W/cfg.toml" -m "$F32" --isq f32 -p "$PROMPT" -n 12 --temp 0
expect_exit 0
expect_stdout_file "$W/want.txt"
end

begin "run --config: a bad file is one line naming file and line, exit 1, nothing on stdout"
printf 'command = "serve"\n[[models]]\nmodel_id = "m"\nmodel_idd = "m"\n' > "$W/bad.toml"
run isq-run --config "$W/bad.toml" -p hi
expect_exit 1
expect_stdout_empty
expect_stderr_lines 1
expect_stderr_contains "isq-run: $W/bad.toml:4: unknown key 'model_idd' in [models]"
printf 'x = 1.5\n' > "$W/float.toml"
run isq-run --config "$W/float.toml" -p hi
expect_exit 1
expect_stderr_contains "float.toml:1: unsupported value '1.5'"
run isq-run --config "$W/missing.toml" -p hi
expect_exit 1
expect_stderr_lines 1
end

begin "run stories260K BF16: the reference's first 30 words"
need_shared models/stories260K/model.safetensors
run isq-run -q -m "$BF16" -p "$PROMPT" -n 64 --temp 0
expect_exit 0
if [ -z "$case_skip" ]; then
	words 30 "$GREEDY" > "$W/a.txt"
	words 30 "$W/.stdout" > "$W/b.txt"
	cmp -s "$W/a.txt" "$W/b.txt" || _note "first words differ: $(diff "$W/a.txt" "$W/b.txt" | head -3)"
fi
end

for t in f32 Q8_0; do
	begin "run llama.cpp's stories260K-$t.gguf: its greedy-$t.txt exactly"
	need_shared ref/llamacpp-stories260K/stories260K-$t.gguf
	run isq-run -q -m "$REF/stories260K-$t.gguf" -p "$PROMPT" -n 64 --temp 0
	expect_exit 0
	# llama-completion ended its output with an extra blank line
	[ -n "$case_skip" ] || printf '%s\n' "$(cat "$REF/greedy-$t.txt")" > "$W/want.txt"
	expect_stdout_file "$W/want.txt"
	end
done

for t in Q6_K Q5_1 Q5_0 Q4_K_M Q4_1 Q4_0; do
	begin "run llama.cpp's stories260K-$t.gguf: its first 12 words"
	need_shared ref/llamacpp-stories260K/stories260K-$t.gguf
	run isq-run -q -m "$REF/stories260K-$t.gguf" -p "$PROMPT" -n 64 --temp 0
	expect_exit 0
	if [ -z "$case_skip" ]; then
		words 12 "$REF/greedy-$t.txt" > "$W/a.txt"
		words 12 "$W/.stdout" > "$W/b.txt"
		cmp -s "$W/a.txt" "$W/b.txt" || _note "first words differ: $(diff "$W/a.txt" "$W/b.txt" | head -3)"
	fi
	end
done

begin "run isq's own F32 GGUF (Q/K permuted on write): the 252 reference tokens"
need_shared models/stories260K-f32/reference/greedy256_once_upon_a_time.txt
if [ -z "$case_skip" ]; then
	mkdir -p "$W/m" && cp "$F32/tokenizer.json" "$F32/tokenizer_config.json" "$W/m/"
	isq-quantize -q -m "$F32" -t f32 -o "$W/m/f32.gguf" || _note "isq-quantize failed"
fi
run isq-run -q -m m/f32.gguf -p "$PROMPT" -n 252 --temp 0
expect_exit 0
expect_stdout_file "$GREEDY"
end

for arch in qwen2 qwen3; do
	begin "run $arch (generated): HF directory and its F32 GGUF agree"
	genmodel_ok=1
	isq-genmodel -q --arch $arch -o "$W/m" > /dev/null 2>&1 || genmodel_ok=0
	[ $genmodel_ok = 1 ] || case_skip="isq-genmodel not built"
	[ -n "$case_skip" ] || isq-quantize -q -m "$W/m" -t f32 -o "$W/m/f32.gguf" || _note "isq-quantize failed"
	run isq-run -q -m m -p "Hello world" -n 30 --temp 0
	expect_exit 0
	[ -n "$case_skip" ] || cp "$W/.stdout" "$W/hf.txt"
	run isq-run -q -m m/f32.gguf -p "Hello world" -n 30 --temp 0
	expect_exit 0
	expect_stdout_file "$W/hf.txt"
	end
done

begin "run --isq q8_0 from the BF16 directory: the text of the Q8_0 file isq-quantize writes"
need_shared models/stories260K/model.safetensors
run isq-quantize -q -m "$BF16" -t q8_0 -o s8.gguf
expect_exit 0
run isq-run -q -m s8.gguf -p "$PROMPT" -n 60 --temp 0
expect_exit 0
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/file.txt"
run isq-run -m "$BF16" --isq Q8_0 -p "$PROMPT" -n 60 --temp 0
expect_exit 0
expect_stdout_file "$W/file.txt"
expect_stderr_contains "matrices quantized to q8_0 while loading (0 of them"
end

begin "run --isq: an unknown type is a usage error with a suggestion"
run isq-run -m x --isq q4_kk -p hi
expect_exit 2
expect_stderr_contains "isq-run: unknown type 'q4_kk' (did you mean 'q4_k'?)"
expect_stdout_empty
end

begin "run a UQFF directory: the text of the GGUF of the same type"
need_shared models/stories260K/model.safetensors
run isq-quantize -q -m "$BF16" -t q8_0 -o s8.gguf
run isq-quantize -q -m "$BF16" -t q8_0 --format uqff -o s8u
expect_exit 0
run isq-run -q -m s8.gguf -p "$PROMPT" -n 60 --temp 0
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/gguf.txt"
run isq-run -q -m s8u -p "$PROMPT" -n 60 --temp 0
expect_exit 0
expect_stdout_file "$W/gguf.txt"
# one shard names its directory too
run isq-run -q -m s8u/q8_0-0.uqff -p "$PROMPT" -n 60 --temp 0
expect_exit 0
expect_stdout_file "$W/gguf.txt"
end

begin "run a UQFF directory of qwen2 (generated, biases in the layer entries) as its GGUF"
genmodel_ok=1
isq-genmodel -q --arch qwen2 -o "$W/m" > /dev/null 2>&1 || genmodel_ok=0
[ $genmodel_ok = 1 ] || case_skip="isq-genmodel not built"
run isq-quantize -q -m m -t q8_0 -o q.gguf
run isq-quantize -q -m m -t q8_0 --format uqff -o qu
expect_exit 0
run isq-run -q -m q.gguf -p "Hello world" -n 30 --temp 0
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/gguf.txt"
run isq-run -q -m qu -p "Hello world" -n 30 --temp 0
expect_exit 0
expect_stdout_file "$W/gguf.txt"
end

begin "run a UQFF HQQ4 directory (decoded at load): starts as --isq hqq4 does"
need_shared models/stories260K/model.safetensors
run isq-quantize -q -m "$BF16" -t hqq4 --format uqff -o h4
expect_exit 0
run isq-run -q -m h4 -p "$PROMPT" -n 40 --temp 0
expect_exit 0
[ -n "$case_skip" ] || words 10 "$W/.stdout" > "$W/a.txt"
run isq-run -q -m "$BF16" --isq hqq4 -p "$PROMPT" -n 40 --temp 0
expect_exit 0
[ -n "$case_skip" ] || { words 10 "$W/.stdout" > "$W/b.txt"; cmp -s "$W/a.txt" "$W/b.txt" || _note "first 10 words differ"; }
end

begin "run --quant: a prebuilt UQFF in the directory, else quantized at load; auto asks isq-tune"
need_shared models/stories260K/model.safetensors
run isq-quantize -q -m "$BF16" -t q8_0 --format uqff -o s8u
expect_exit 0
run isq-run -q -m s8u -p "$PROMPT" -n 40 --temp 0
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/uqff.txt"
run isq-run -m s8u --quant Q8_0 -p "$PROMPT" -n 40 --temp 0
expect_exit 0
expect_stdout_file "$W/uqff.txt"
expect_stderr_contains "--quant q8_0: the prebuilt s8u/q8_0-0.uqff"
run isq-run -m "$BF16" --quant q8_0 -p "$PROMPT" -n 40 --temp 0
expect_exit 0
expect_stderr_contains "matrices quantized to q8_0 while loading (0 of them"
run isq-run -m "$BF16" --quant auto -p "$PROMPT" -n 5 --temp 0
expect_exit 0
expect_stderr_contains "--quant auto: "
run isq-run -m "$BF16" --quant q8_0 --isq q8_0 -p hi
expect_exit 2
expect_stderr_contains "give --quant or --isq, not both"
end

begin "run --isq q6_k on rows of 64 takes mistral.rs's fallback (q8_0): the text of --isq q8_0"
need_shared models/stories260K/model.safetensors
run isq-run -q -m "$BF16" --isq q8_0 -p "$PROMPT" -n 60 --temp 0
[ -n "$case_skip" ] || cp "$W/.stdout" "$W/q8.txt"
run isq-run -m "$BF16" --isq q6_k -p "$PROMPT" -n 60 --temp 0
expect_exit 0
expect_stdout_file "$W/q8.txt"
expect_stderr_contains "30 matrices quantized to q6_k while loading (30 of them to mistral.rs's fallback type"
end
