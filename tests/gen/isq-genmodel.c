/*
 * isq-genmodel - writes a deterministic Llama-family model in Hugging Face
 * layout (config.json, safetensors, tokenizer.json, ...) from a seed: the
 * project's own test and benchmark models, so nothing has to be downloaded.
 * Weights look like trained ones where it matters to quantizers: heavy tails,
 * and a few outlier input channels (every 97th column x4, as llama.cpp's
 * synthetic benchmark model).  Tensors are generated and written chunk by
 * chunk, so even the 615 MB anchor model needs little memory.  Not installed.
 */
#include "fp.h"
#include "io.h"
#include "safetensors.h"
#include "tool.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

static const char *opt_out, *opt_preset, *opt_dtype, *opt_arch;
static int64_t opt_seed = 1, opt_hidden, opt_ff, opt_layers, opt_heads, opt_kv, opt_vocab, opt_ctx, opt_shards = 1,
	       opt_experts;
static int opt_tied, opt_untied, opt_quiet;

static const struct isq_opt options[] = {
	ISQ_OPT_STRING('o', "output", &opt_out, "DIR", "directory to write (created)"),
	ISQ_OPT_STRING(0, "preset", &opt_preset, "P", "tiny (default), small or anchor"),
	ISQ_OPT_INT(0, "seed", &opt_seed, "N", "PRNG seed (default 1)"),
	ISQ_OPT_INT(0, "hidden", &opt_hidden, "N", "hidden size"),
	ISQ_OPT_INT(0, "intermediate", &opt_ff, "N", "MLP size"),
	ISQ_OPT_INT(0, "layers", &opt_layers, "N", "decoder layers"),
	ISQ_OPT_INT(0, "heads", &opt_heads, "N", "attention heads"),
	ISQ_OPT_INT(0, "kv-heads", &opt_kv, "N", "key/value heads"),
	ISQ_OPT_INT(0, "vocab", &opt_vocab, "N", "vocabulary size (at least 320)"),
	ISQ_OPT_INT(0, "ctx", &opt_ctx, "N", "max_position_embeddings"),
	ISQ_OPT_STRING(0, "dtype", &opt_dtype, "T", "bf16, f16 or f32"),
	ISQ_OPT_FLAG(0, "tied", &opt_tied, "tie lm_head to the embedding"),
	ISQ_OPT_FLAG(0, "untied", &opt_untied, "write a separate lm_head"),
	ISQ_OPT_STRING(0, "arch", &opt_arch, "A", "llama (default), qwen2 or qwen3"),
	ISQ_OPT_INT(0, "experts", &opt_experts, "N", "mixtral-style MoE with N experts"),
	ISQ_OPT_INT(0, "shards", &opt_shards, "N", "split the weights into N safetensors files"),
	ISQ_OPT_COUNT('q', "quiet", &opt_quiet, "print nothing"),
	ISQ_OPT_END(),
};
static const char *const usage[] = { "-o DIR [--preset tiny|small|anchor] [options]", NULL };
static const struct isq_cmd cmd = { "isq-genmodel", usage, "Write a deterministic test model in Hugging Face layout.",
				    options };

/* ---- PRNG ------------------------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* A cheap near-normal (sum of four uniforms) times an occasional scale: heavy tails. */
static float heavy(uint64_t *s)
{
	uint64_t r = splitmix(s);
	float u = (float)((r & 0xffff) + ((r >> 16) & 0xffff) + ((r >> 32) & 0xffff) + ((r >> 48) & 0xffff)) / 65536.0f;
	float z = (u - 2.0f) * 1.7320508f;
	uint64_t t = splitmix(s);
	float k = (t & 63) == 0 ? 4.0f : (t & 7) == 0 ? 2.0f : 1.0f;
	return z * k * 0.8f;
}

/* ---- model description -------------------------------------------------------------------- */

enum kind { K_LINEAR, K_EMBED, K_NORM, K_BIAS, K_ROUTER };

struct tdesc {
	char name[128];
	int n_dims;
	int64_t shape[2];
	enum kind kind;
	int shard;
};

static struct tdesc *tensors;
static int n_tensors, cap_tensors;

static void add(enum kind k, int64_t d0, int64_t d1, const char *fmt, ...) ISQ_PRINTF(4, 5);
static void add(enum kind k, int64_t d0, int64_t d1, const char *fmt, ...)
{
	if (n_tensors == cap_tensors) {
		cap_tensors = cap_tensors ? 2 * cap_tensors : 64;
		tensors = realloc(tensors, (size_t)cap_tensors * sizeof(*tensors));
		if (!tensors)
			isq_die("out of memory");
	}
	struct tdesc *t = &tensors[n_tensors++];
	memset(t, 0, sizeof(*t));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->name, sizeof(t->name), fmt, ap);
	va_end(ap);
	t->kind = k;
	t->shape[0] = d0;
	t->shape[1] = d1;
	t->n_dims = d1 ? 2 : 1;
}

static uint64_t fnv(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

/* Element values of tensor t, elements [first, first+n), reproducible chunk by chunk. */
static void gen(const struct tdesc *t, uint64_t first, size_t n, float *out)
{
	int64_t cols = t->n_dims == 2 ? t->shape[1] : t->shape[0];
	float sigma = t->kind == K_EMBED ? 0.02f : 1.0f / sqrtf((float)cols);
	for (size_t i = 0; i < n; i++) {
		uint64_t idx = first + i;
		/* a stream per element: any chunking gives the same values */
		uint64_t s = (uint64_t)opt_seed * 0x9E3779B97F4A7C15ull ^ fnv(t->name) ^ (idx * 0xD1B54A32D192ED03ull);
		float x = heavy(&s);
		switch (t->kind) {
		case K_NORM: out[i] = 1.0f + 0.1f * x; break;
		case K_BIAS: out[i] = 0.02f * x; break;
		case K_EMBED: out[i] = sigma * x; break;
		default: {
			int64_t col = (int64_t)(idx % (uint64_t)cols);
			out[i] = sigma * x * (col % 97 == 13 ? 4.0f : 1.0f);
		}
		}
	}
}

/* ---- tokenizer ------------------------------------------------------------------------------ */

static const char *const words[] = {
	"the", "and", "to", "a", "was", "he", "she", "it", "in", "of", "her", "his", "they", "said", "day", "with",
	"that", "you", "on", "for", "is", "one", "very", "big", "little", "had", "happy", "time", "once", "upon",
	"saw", "play", "friend", "mom", "dog", "cat", "tree", "ball", "park", "went", "wanted", "could", "not",
	"but", "so", "were", "there", "what", "when", "all", "up", "are", "have", "be", "at", "we", "go", "out",
	"see", "like", "sun", "run", "fun", "red", "blue", "toy", "bird", "fish", "car", "box", "home", "good",
};

/* 3 specials + 256 bytes + base characters + merged pieces, and the merges that make them. */
static int write_tokenizer(const char *dir, int64_t vocab)
{
	cJSON *root = cJSON_CreateObject(), *model = cJSON_CreateObject(), *v = cJSON_CreateObject();
	cJSON *merges = cJSON_CreateArray(), *added = cJSON_CreateArray();
	const char *specials[] = { "<unk>", "<s>", "</s>" };
	int64_t id = 0;
	for (int i = 0; i < 3; i++) {
		cJSON *a = cJSON_CreateObject();
		cJSON_AddNumberToObject(a, "id", (double)i);
		cJSON_AddStringToObject(a, "content", specials[i]);
		cJSON_AddBoolToObject(a, "single_word", 0);
		cJSON_AddBoolToObject(a, "lstrip", 0);
		cJSON_AddBoolToObject(a, "rstrip", 0);
		cJSON_AddBoolToObject(a, "normalized", 0);
		cJSON_AddBoolToObject(a, "special", 1);
		cJSON_AddItemToArray(added, a);
		cJSON_AddNumberToObject(v, specials[i], (double)id++);
	}
	for (int b = 0; b < 256; b++) {
		char tok[8];
		snprintf(tok, sizeof(tok), "<0x%02X>", b);
		cJSON_AddNumberToObject(v, tok, (double)id++);
	}
	const char *base = "\xe2\x96\x81" /* U+2581 */;
	cJSON_AddNumberToObject(v, base, (double)id++);
	const char *chars = "etaoinshrdlucmwfgypbvkjxqz.,!?'\"";
	for (const char *c = chars; *c && id < vocab; c++) {
		char tok[2] = { *c, 0 };
		cJSON_AddNumberToObject(v, tok, (double)id++);
	}
	/* pieces: "▁w", "▁wo", ... built left to right from each word, until the vocabulary is full */
	for (size_t w = 0; w < ISQ_ARRAY_SIZE(words) && id < vocab; w++) {
		char prev[64];
		snprintf(prev, sizeof(prev), "%s", base);
		for (const char *c = words[w]; *c && id < vocab; c++) {
			char piece[72], ch[2] = { *c, 0 };
			snprintf(piece, sizeof(piece), "%s%c", prev, *c);
			if (!cJSON_GetObjectItemCaseSensitive(v, piece)) {
				cJSON *m = cJSON_CreateArray();
				cJSON_AddItemToArray(m, cJSON_CreateString(prev));
				cJSON_AddItemToArray(m, cJSON_CreateString(ch));
				cJSON_AddItemToArray(merges, m);
				cJSON_AddNumberToObject(v, piece, (double)id++);
			}
			snprintf(prev, sizeof(prev), "%.60s", piece);
		}
	}
	/* fill the rest with numbered filler pieces that no text produces */
	while (id < vocab) {
		char tok[32];
		snprintf(tok, sizeof(tok), "<extra_%lld>", (long long)id);
		cJSON_AddNumberToObject(v, tok, (double)id++);
	}
	cJSON_AddStringToObject(root, "version", "1.0");
	cJSON_AddNullToObject(root, "truncation");
	cJSON_AddNullToObject(root, "padding");
	cJSON_AddItemToObject(root, "added_tokens", added);
	cJSON_AddItemToObject(root, "normalizer",
			      cJSON_Parse("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xe2\x96\x81\"},"
					  "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xe2\x96\x81\"}]}"));
	cJSON_AddNullToObject(root, "pre_tokenizer");
	cJSON_AddItemToObject(root, "post_processor",
			      cJSON_Parse("{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
					  "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
					  "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":1}},"
					  "{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],"
					  "\"tokens\":[\"<s>\"]}}}"));
	cJSON_AddItemToObject(root, "decoder",
			      cJSON_Parse("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xe2\x96\x81\"},"
					  "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \","
					  "\"start\":1,\"stop\":0}]}"));
	cJSON_AddStringToObject(model, "type", "BPE");
	cJSON_AddNullToObject(model, "dropout");
	cJSON_AddStringToObject(model, "unk_token", "<unk>");
	cJSON_AddNullToObject(model, "continuing_subword_prefix");
	cJSON_AddNullToObject(model, "end_of_word_suffix");
	cJSON_AddBoolToObject(model, "fuse_unk", 1);
	cJSON_AddBoolToObject(model, "byte_fallback", 1);
	cJSON_AddBoolToObject(model, "ignore_merges", 0);
	cJSON_AddItemToObject(model, "vocab", v);
	cJSON_AddItemToObject(model, "merges", merges);
	cJSON_AddItemToObject(root, "model", model);
	char *text = cJSON_Print(root);
	cJSON_Delete(root);
	struct isq_buf p = ISQ_BUF_INIT;
	isq_path_join(&p, dir, "tokenizer.json");
	struct isq_out out;
	int rc = isq_out_open(&out, p.data);
	rc = rc ? rc : isq_out_write(&out, text, strlen(text));
	rc = rc ? rc : isq_out_commit(&out);
	if (rc)
		isq_die("%s", isq_errbuf_msg(&out.err));
	free(text);
	isq_buf_release(&p);
	return 0;
}

static void write_text(const char *dir, const char *name, const char *text)
{
	struct isq_buf p = ISQ_BUF_INIT;
	isq_path_join(&p, dir, name);
	struct isq_out out;
	if (isq_out_open(&out, p.data) || isq_out_write(&out, text, strlen(text)) || isq_out_commit(&out))
		isq_die("%s", isq_errbuf_msg(&out.err));
	isq_buf_release(&p);
}

/* ---- main -------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct isq_strlist pos = ISQ_STRLIST_INIT;
	isq_tool_parse(&cmd, argc, argv, &pos);
	if (pos.n)
		isq_tool_usage_error(&cmd, "unexpected argument '%s'", pos.items[0]);
	if (!opt_out)
		isq_tool_usage_error(&cmd, "no output directory given (-o)");
	const char *preset = opt_preset ? opt_preset : "tiny";
	int64_t hidden, ff, layers, heads, kv, vocab, ctx;
	int tied;
	const char *dtype;
	if (!strcmp(preset, "tiny")) {
		hidden = 64, ff = 128, layers = 2, heads = 4, kv = 2, vocab = 320, ctx = 256, tied = 1, dtype = "bf16";
	} else if (!strcmp(preset, "small")) {
		hidden = 256, ff = 768, layers = 4, heads = 8, kv = 4, vocab = 2048, ctx = 512, tied = 0, dtype = "bf16";
	} else if (!strcmp(preset, "anchor")) {
		/* the shape llama.cpp's figures in the notes were measured on */
		hidden = 2048, ff = 5632, layers = 4, heads = 32, kv = 4, vocab = 32000, ctx = 2048, tied = 0, dtype = "f16";
	} else {
		isq_tool_usage_error(&cmd, "unknown preset '%s' (tiny, small, anchor)", preset);
	}
	if (opt_hidden) hidden = opt_hidden;
	if (opt_ff) ff = opt_ff;
	if (opt_layers) layers = opt_layers;
	if (opt_heads) heads = opt_heads;
	if (opt_kv) kv = opt_kv;
	if (opt_vocab) vocab = opt_vocab;
	if (opt_ctx) ctx = opt_ctx;
	if (opt_dtype) dtype = opt_dtype;
	if (opt_tied && opt_untied)
		isq_tool_usage_error(&cmd, "--tied and --untied exclude each other");
	if (opt_tied) tied = 1;
	if (opt_untied) tied = 0;
	const char *arch = opt_arch ? opt_arch : "llama";
	if (strcmp(arch, "llama") && strcmp(arch, "qwen2") && strcmp(arch, "qwen3"))
		isq_tool_usage_error(&cmd, "unknown --arch '%s' (llama, qwen2, qwen3)", arch);
	enum isq_st_dtype dt;
	if (!strcmp(dtype, "bf16")) dt = ISQ_ST_BF16;
	else if (!strcmp(dtype, "f16")) dt = ISQ_ST_F16;
	else if (!strcmp(dtype, "f32")) dt = ISQ_ST_F32;
	else isq_tool_usage_error(&cmd, "unknown --dtype '%s' (bf16, f16, f32)", dtype);
	if (hidden <= 0 || ff <= 0 || layers <= 0 || heads <= 0 || kv <= 0 || hidden % heads || heads % kv || vocab < 320 ||
	    ctx <= 0 || opt_shards < 1 || opt_shards > 99 || opt_experts < 0 || (opt_experts && opt_experts < 2))
		isq_tool_usage_error(&cmd, "inconsistent sizes (hidden %% heads, heads %% kv-heads, vocab >= 320, experts >= 2)");
	int64_t hd = hidden / heads;

	add(K_EMBED, vocab, hidden, "model.embed_tokens.weight");
	for (int64_t l = 0; l < layers; l++) {
		add(K_NORM, hidden, 0, "model.layers.%lld.input_layernorm.weight", (long long)l);
		add(K_LINEAR, heads * hd, hidden, "model.layers.%lld.self_attn.q_proj.weight", (long long)l);
		add(K_LINEAR, kv * hd, hidden, "model.layers.%lld.self_attn.k_proj.weight", (long long)l);
		add(K_LINEAR, kv * hd, hidden, "model.layers.%lld.self_attn.v_proj.weight", (long long)l);
		if (!strcmp(arch, "qwen2")) {
			add(K_BIAS, heads * hd, 0, "model.layers.%lld.self_attn.q_proj.bias", (long long)l);
			add(K_BIAS, kv * hd, 0, "model.layers.%lld.self_attn.k_proj.bias", (long long)l);
			add(K_BIAS, kv * hd, 0, "model.layers.%lld.self_attn.v_proj.bias", (long long)l);
		}
		if (!strcmp(arch, "qwen3")) {
			add(K_NORM, hd, 0, "model.layers.%lld.self_attn.q_norm.weight", (long long)l);
			add(K_NORM, hd, 0, "model.layers.%lld.self_attn.k_norm.weight", (long long)l);
		}
		add(K_LINEAR, hidden, heads * hd, "model.layers.%lld.self_attn.o_proj.weight", (long long)l);
		add(K_NORM, hidden, 0, "model.layers.%lld.post_attention_layernorm.weight", (long long)l);
		if (opt_experts) {
			add(K_ROUTER, opt_experts, hidden, "model.layers.%lld.block_sparse_moe.gate.weight", (long long)l);
			for (int64_t e = 0; e < opt_experts; e++) {
				add(K_LINEAR, ff, hidden, "model.layers.%lld.block_sparse_moe.experts.%lld.w1.weight", (long long)l,
				    (long long)e);
				add(K_LINEAR, hidden, ff, "model.layers.%lld.block_sparse_moe.experts.%lld.w2.weight", (long long)l,
				    (long long)e);
				add(K_LINEAR, ff, hidden, "model.layers.%lld.block_sparse_moe.experts.%lld.w3.weight", (long long)l,
				    (long long)e);
			}
		} else {
			add(K_LINEAR, ff, hidden, "model.layers.%lld.mlp.gate_proj.weight", (long long)l);
			add(K_LINEAR, ff, hidden, "model.layers.%lld.mlp.up_proj.weight", (long long)l);
			add(K_LINEAR, hidden, ff, "model.layers.%lld.mlp.down_proj.weight", (long long)l);
		}
	}
	add(K_NORM, hidden, 0, "model.norm.weight");
	if (!tied)
		add(K_LINEAR, vocab, hidden, "lm_head.weight");

	if (mkdir(opt_out, 0777) && !isq_is_dir(opt_out))
		isq_die("%s: %s", opt_out, strerror(errno));

	/* config.json */
	cJSON *c = cJSON_CreateObject();
	cJSON *archs = cJSON_AddArrayToObject(c, "architectures");
	const char *mt = opt_experts ? "mixtral" : arch;
	cJSON_AddItemToArray(archs, cJSON_CreateString(opt_experts ? "MixtralForCausalLM"
								   : !strcmp(arch, "qwen2") ? "Qwen2ForCausalLM"
								   : !strcmp(arch, "qwen3") ? "Qwen3ForCausalLM"
											    : "LlamaForCausalLM"));
	cJSON_AddStringToObject(c, "model_type", mt);
	cJSON_AddNumberToObject(c, "hidden_size", (double)hidden);
	cJSON_AddNumberToObject(c, "intermediate_size", (double)ff);
	cJSON_AddNumberToObject(c, "num_hidden_layers", (double)layers);
	cJSON_AddNumberToObject(c, "num_attention_heads", (double)heads);
	cJSON_AddNumberToObject(c, "num_key_value_heads", (double)kv);
	cJSON_AddNumberToObject(c, "head_dim", (double)hd);
	cJSON_AddNumberToObject(c, "vocab_size", (double)vocab);
	cJSON_AddNumberToObject(c, "max_position_embeddings", (double)ctx);
	cJSON_AddNumberToObject(c, "rms_norm_eps", 1e-5);
	cJSON_AddNumberToObject(c, "rope_theta", 10000.0);
	cJSON_AddStringToObject(c, "hidden_act", "silu");
	cJSON_AddBoolToObject(c, "tie_word_embeddings", tied);
	cJSON_AddNumberToObject(c, "bos_token_id", 1);
	cJSON_AddNumberToObject(c, "eos_token_id", 2);
	cJSON_AddStringToObject(c, "torch_dtype", dt == ISQ_ST_BF16 ? "bfloat16" : dt == ISQ_ST_F16 ? "float16" : "float32");
	if (opt_experts) {
		cJSON_AddNumberToObject(c, "num_local_experts", (double)opt_experts);
		cJSON_AddNumberToObject(c, "num_experts_per_tok", 2);
	}
	char *ctext = cJSON_Print(c);
	cJSON_Delete(c);
	write_text(opt_out, "config.json", ctext);
	free(ctext);
	write_tokenizer(opt_out, vocab);
	write_text(opt_out, "tokenizer_config.json",
		   "{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n  \"bos_token\": \"<s>\",\n"
		   "  \"eos_token\": \"</s>\",\n  \"unk_token\": \"<unk>\",\n  \"tokenizer_class\": \"LlamaTokenizerFast\"\n}\n");
	write_text(opt_out, "generation_config.json", "{\n  \"bos_token_id\": 1,\n  \"eos_token_id\": 2\n}\n");

	/* shards: tensors in order, split into roughly equal byte counts */
	uint64_t total = 0;
	for (int i = 0; i < n_tensors; i++) {
		uint64_t n = (uint64_t)tensors[i].shape[0] * (uint64_t)(tensors[i].n_dims == 2 ? tensors[i].shape[1] : 1);
		total += n;
	}
	uint64_t per = total / (uint64_t)opt_shards + 1, acc = 0;
	for (int i = 0; i < n_tensors; i++) {
		uint64_t n = (uint64_t)tensors[i].shape[0] * (uint64_t)(tensors[i].n_dims == 2 ? tensors[i].shape[1] : 1);
		tensors[i].shard = (int)ISQ_MIN((int64_t)(acc / per), opt_shards - 1);
		acc += n;
	}
	size_t chunk = 1 << 20;
	float *f = malloc(chunk * sizeof(float));
	uint16_t *h = malloc(chunk * sizeof(uint16_t));
	if (!f || !h)
		isq_die("out of memory");
	cJSON *index = cJSON_CreateObject(), *wm = cJSON_CreateObject();
	for (int s = 0; s < opt_shards; s++) {
		char fname[64];
		if (opt_shards == 1)
			snprintf(fname, sizeof(fname), "model.safetensors");
		else
			snprintf(fname, sizeof(fname), "model-%05d-of-%05d.safetensors", s + 1, (int)opt_shards);
		struct isq_st_writer *w = isq_st_writer_new();
		isq_st_writer_meta(w, "format", "pt");
		for (int i = 0; i < n_tensors; i++)
			if (tensors[i].shard == s) {
				isq_st_writer_add(w, tensors[i].name, dt, tensors[i].n_dims, tensors[i].shape);
				cJSON_AddStringToObject(wm, tensors[i].name, fname);
			}
		struct isq_buf p = ISQ_BUF_INIT;
		isq_path_join(&p, opt_out, fname);
		struct isq_out out;
		if (isq_out_open(&out, p.data))
			isq_die("%s", isq_errbuf_msg(&out.err));
		if (isq_st_writer_begin(w, &out))
			isq_die("%s: %s", p.data, isq_st_writer_errmsg(w));
		for (int i = 0; i < n_tensors; i++) {
			if (tensors[i].shard != s)
				continue;
			uint64_t n = (uint64_t)tensors[i].shape[0] * (uint64_t)(tensors[i].n_dims == 2 ? tensors[i].shape[1] : 1);
			for (uint64_t o = 0; o < n; o += chunk) {
				size_t k = (size_t)ISQ_MIN((uint64_t)chunk, n - o);
				gen(&tensors[i], o, k, f);
				int rc;
				if (dt == ISQ_ST_F32) {
					rc = isq_st_writer_write(w, f, k * 4);
				} else {
					if (dt == ISQ_ST_BF16)
						isq_fp32_to_bf16_row(f, h, k);
					else
						isq_fp32_to_fp16_row(f, h, k);
					rc = isq_st_writer_write(w, h, k * 2);
				}
				if (rc)
					isq_die("%s: %s", p.data, isq_st_writer_errmsg(w));
			}
		}
		if (isq_st_writer_finish(w) || isq_out_commit(&out))
			isq_die("%s: %s", p.data, out.err.code ? isq_errbuf_msg(&out.err) : isq_st_writer_errmsg(w));
		isq_st_writer_free(w);
		isq_buf_release(&p);
	}
	if (opt_shards > 1) {
		cJSON *md = cJSON_AddObjectToObject(index, "metadata");
		cJSON_AddNumberToObject(md, "total_size", (double)total * (dt == ISQ_ST_F32 ? 4 : 2));
		cJSON_AddItemToObject(index, "weight_map", wm);
		char *itext = cJSON_Print(index);
		write_text(opt_out, "model.safetensors.index.json", itext);
		free(itext);
	} else {
		cJSON_Delete(wm);
	}
	cJSON_Delete(index);
	if (!opt_quiet)
		isq_info("%s: %d tensors, %llu parameters, %s", opt_out, n_tensors, (unsigned long long)total, dtype);
	free(f);
	free(h);
	free(tensors);
	isq_strlist_release(&pos);
	return isq_tool_exit(0);
}
