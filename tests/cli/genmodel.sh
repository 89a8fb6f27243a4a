#!/bin/sh
# CLI tests for the test-model generator (tests/gen/isq-genmodel.c).
. "$(dirname "$0")/lib.sh"

begin "genmodel: a tiny model is deterministic for a seed and differs for another"
run isq-genmodel -q --seed 7 -o a
expect_exit 0
run isq-genmodel -q --seed 7 -o b
run isq-genmodel -q --seed 8 -o c
for f in config.json tokenizer.json model.safetensors; do
	cmp -s "$W/a/$f" "$W/b/$f" || _note "$f differs between two runs with the same seed"
done
cmp -s "$W/a/model.safetensors" "$W/c/model.safetensors" && _note "another seed gives the same weights"
run isq-inspect --json a
expect_json '.config.hidden_size == 64 and .config.tie_word_embeddings == true and .tensor_count == 20'
expect_json '[.tensors[].dtype] | unique == ["BF16"]'
jq -e '.model_type == "llama" and .num_key_value_heads == 2' "$W/a/config.json" > /dev/null || _note "config.json content"
jq -e '.model.type == "BPE" and .model.byte_fallback == true and (.model.vocab | length) == 320' "$W/a/tokenizer.json" > /dev/null ||
	_note "tokenizer.json content"
end

begin "genmodel: sharded output has an index naming every tensor"
run isq-genmodel -q --shards 3 --untied --dtype f16 -o s
expect_exit 0
expect_file s/model.safetensors.index.json
expect_file s/model-00003-of-00003.safetensors
run isq-inspect --json s
expect_exit 0
expect_json '.tensor_count == 21 and ([.tensors[].dtype] | unique == ["F16"])'
n=$(jq '.weight_map | length' "$W/s/model.safetensors.index.json")
[ "$n" = 21 ] || _note "index lists $n tensors"
end

begin "genmodel: qwen2, qwen3 and MoE variants"
run isq-genmodel -q --arch qwen2 -o q2
expect_exit 0
run isq-inspect --json q2
expect_json '[.tensors[] | select(.name | endswith("q_proj.bias"))] | length == 2'
run isq-genmodel -q --arch qwen3 -o q3
run isq-inspect --json q3
expect_json '([.tensors[] | select(.name | endswith("q_norm.weight"))] | length == 2) and .config.model_type == "qwen3"'
run isq-genmodel -q --experts 4 -o moe
run isq-inspect --json moe
expect_json '.config.model_type == "mixtral" and .config.num_experts == 4'
expect_json '[.tensors[] | select(.name | test("experts.3.w2"))] | length == 2'
end

begin "genmodel: bad options exit 2"
run isq-genmodel --preset huge -o x
expect_exit 2
expect_stderr_contains "unknown preset 'huge'"
run isq-genmodel --heads 3 -o x
expect_exit 2
run isq-genmodel
expect_exit 2
expect_stderr_contains "no output directory"
end
