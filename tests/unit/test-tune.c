/* test-tune.c - isq-tune's sizes equal the files isq-quantize's code writes; fit and recommendation rules. */
#include "test.h"
#include "convert.h"
#include "fp.h"
#include "hparams.h"
#include "tune.h"

#if defined(__SANITIZE_ADDRESS__)
#define TUNE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TUNE_ASAN 1
#endif
#endif
#ifndef TUNE_ASAN
#define TUNE_ASAN 0
#endif

/* A Llama-shaped HF directory with noise for weights. */
struct shape {
	int64_t hidden, ff, layers, heads, kv, vocab, head_dim, ctx, window;
	int tied;
	const char *dtype; /* "F16", "BF16" or "F32" */
	const char *model_type;
};

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static const char *make_model(const char *name, const struct shape *s)
{
	static char dir[4200];
	char path[4400], cfg[2048];
	snprintf(dir, sizeof(dir), "%s/%s", test_tmpdir(), name);
	mkdir(dir, 0777);
	int64_t hd = s->head_dim ? s->head_dim : s->hidden / s->heads;
	snprintf(cfg, sizeof(cfg),
		 "{\"model_type\": \"%s\", \"hidden_size\": %lld, \"intermediate_size\": %lld, \"num_hidden_layers\": %lld,"
		 " \"num_attention_heads\": %lld, \"num_key_value_heads\": %lld, \"head_dim\": %lld, \"vocab_size\": %lld,"
		 " \"max_position_embeddings\": %lld, \"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0,"
		 " \"tie_word_embeddings\": %s%s%lld, \"torch_dtype\": \"float16\"}",
		 s->model_type ? s->model_type : "llama", (long long)s->hidden, (long long)s->ff, (long long)s->layers,
		 (long long)s->heads, (long long)s->kv, (long long)hd, (long long)s->vocab, (long long)s->ctx,
		 s->tied ? "true" : "false", ", \"sliding_window\": ", (long long)s->window);
	snprintf(path, sizeof(path), "%s/config.json", dir);
	if (write_text(path, cfg))
		return NULL;

	enum isq_st_dtype dt = !strcmp(s->dtype, "F32") ? ISQ_ST_F32 : !strcmp(s->dtype, "BF16") ? ISQ_ST_BF16 : ISQ_ST_F16;
	size_t esz = dt == ISQ_ST_F32 ? 4 : 2;
	struct isq_st_writer *w = isq_st_writer_new();
	uint64_t total = 0;
	char nm[128];
#define ADD(n_, nd_, ...)                                                                      \
	do {                                                                                   \
		int64_t sh_[] = { __VA_ARGS__ };                                               \
		isq_st_writer_add(w, (n_), dt, (nd_), sh_);                                    \
		total += (uint64_t)sh_[0] * (uint64_t)((nd_) > 1 ? sh_[(nd_) - 1] : 1) * esz; \
	} while (0)
	ADD("model.embed_tokens.weight", 2, s->vocab, s->hidden);
	for (int64_t l = 0; l < s->layers; l++) {
		snprintf(nm, sizeof(nm), "model.layers.%lld.self_attn.q_proj.weight", (long long)l);
		ADD(nm, 2, s->heads * hd, s->hidden);
		snprintf(nm, sizeof(nm), "model.layers.%lld.self_attn.k_proj.weight", (long long)l);
		ADD(nm, 2, s->kv * hd, s->hidden);
		snprintf(nm, sizeof(nm), "model.layers.%lld.self_attn.v_proj.weight", (long long)l);
		ADD(nm, 2, s->kv * hd, s->hidden);
		snprintf(nm, sizeof(nm), "model.layers.%lld.self_attn.o_proj.weight", (long long)l);
		ADD(nm, 2, s->hidden, s->heads * hd);
		snprintf(nm, sizeof(nm), "model.layers.%lld.mlp.gate_proj.weight", (long long)l);
		ADD(nm, 2, s->ff, s->hidden);
		snprintf(nm, sizeof(nm), "model.layers.%lld.mlp.up_proj.weight", (long long)l);
		ADD(nm, 2, s->ff, s->hidden);
		snprintf(nm, sizeof(nm), "model.layers.%lld.mlp.down_proj.weight", (long long)l);
		ADD(nm, 2, s->hidden, s->ff);
		snprintf(nm, sizeof(nm), "model.layers.%lld.input_layernorm.weight", (long long)l);
		ADD(nm, 1, s->hidden);
		snprintf(nm, sizeof(nm), "model.layers.%lld.post_attention_layernorm.weight", (long long)l);
		ADD(nm, 1, s->hidden);
	}
	ADD("model.norm.weight", 1, s->hidden);
	if (!s->tied)
		ADD("lm_head.weight", 2, s->vocab, s->hidden);
#undef ADD
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	struct isq_out out;
	int rc = isq_out_open(&out, path);
	rc = rc ? rc : isq_st_writer_begin(w, &out);
	/* uniform noise: sizes do not depend on it, measured errors need it */
	float f[4096];
	uint16_t h[4096];
	uint64_t seed = 12345;
	for (uint64_t done = 0; !rc && done < total;) {
		for (int i = 0; i < 4096; i++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			f[i] = (float)((double)(seed >> 40) / (double)(1ull << 24) - 0.5);
		}
		size_t n = (size_t)ISQ_MIN((uint64_t)(esz == 4 ? sizeof(f) : sizeof(h)), total - done);
		if (dt == ISQ_ST_F16)
			isq_fp32_to_fp16_row(f, h, 4096);
		else if (dt == ISQ_ST_BF16)
			isq_fp32_to_bf16_row(f, h, 4096);
		rc = isq_st_writer_write(w, esz == 4 ? (void *)f : (void *)h, n);
		done += n;
	}
	rc = rc ? rc : isq_st_writer_finish(w);
	rc = rc ? rc : isq_out_commit(&out);
	isq_st_writer_free(w);
	return rc ? NULL : dir;
}

static int mem_sink(void *ctx, const void *data, size_t n)
{
	return isq_gguf_writer_write(ctx, data, n);
}

/* What isq-quantize does, in process: plan, metadata, tensor infos, convert every entry. */
static uint64_t quantize_size(const struct isq_model *m, const char *type)
{
	struct isq_errbuf e = { 0 };
	struct isq_plan p;
	struct isq_plan_opts po = { .type = type };
	if (isq_plan_build(m, &po, &p, &e)) {
		printf("  plan %s: %s\n", type, e.msg);
		return 0;
	}
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	struct isq_buf mem = ISQ_BUF_INIT;
	struct isq_out out;
	isq_out_open_memory(&out, &mem);
	int rc = isq_tune_gguf_metadata(w, m, &p, &e);
	for (size_t i = 0; i < p.n && !rc; i++)
		rc = isq_gguf_writer_add_tensor(w, p.entries[i].name, (uint32_t)p.entries[i].type, p.entries[i].n_dims,
						p.entries[i].ne);
	rc = rc ? rc : isq_gguf_writer_begin(w, &out);
	struct isq_converter conv = { .model = m };
	for (size_t i = 0; i < p.n && !rc; i++)
		rc = isq_convert_entry(&conv, &p.entries[i], mem_sink, w, NULL);
	rc = rc ? rc : isq_gguf_writer_finish(w);
	uint64_t n = rc ? 0 : out.written;
	if (rc)
		printf("  convert %s: %d %s %s\n", type, rc, conv.err.msg, isq_gguf_writer_errmsg(w));
	isq_out_commit(&out);
	isq_buf_release(&mem);
	isq_gguf_writer_free(w);
	isq_plan_release(&p);
	return n;
}

static const char *const all_types[] = { "f16", "bf16", "f32", "q8_0", "q6_k", "q5_k", "q4_k",
					  "q3_k", "q2_k", "q4_k_m", "q3_k_s", "iq4_nl", "q4_0" };

static void check_exact(const char *path)
{
	struct isq_model m;
	CHECK_EQ_INT(isq_model_open(&m, path), 0);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(all_types); i++) {
		struct isq_tune_size s;
		struct isq_errbuf e = { 0 };
		struct isq_plan_opts po = { .type = all_types[i] };
		CHECK_MSG(isq_tune_size(&m, &po, &s, &e) == 0, "%s: %s", all_types[i], e.msg);
		uint64_t real = quantize_size(&m, all_types[i]);
		CHECK_MSG(real && s.file_bytes == real, "%s: estimated %llu, written %llu", all_types[i],
			  (unsigned long long)s.file_bytes, (unsigned long long)real);
		uint64_t sum = s.header_bytes + s.global_bytes;
		for (int l = 0; l < s.n_layers; l++)
			sum += s.layer_bytes[l];
		CHECK_EQ_INT(sum, s.file_bytes);
		isq_tune_size_release(&s);
	}
	isq_model_release(&m);
}

TEST(names_and_tiers)
{
	enum isq_tune_backend b;
	enum isq_tune_profile p;
	CHECK_EQ_INT(isq_tune_backend_parse("vulkan", &b), 0);
	CHECK_EQ_INT(b, ISQ_TUNE_VULKAN);
	CHECK_EQ_INT(isq_tune_backend_parse("metal", &b), ISQ_EINVAL);
	CHECK_EQ_INT(isq_tune_profile_parse("fast", &p), 0);
	CHECK_STR(isq_tune_profile_name(p), "fast");
	CHECK_EQ_INT(isq_tune_profile_parse("Fast", &p), ISQ_EINVAL);
	CHECK_STR(isq_tune_fit_name(ISQ_TUNE_TOO_LARGE), "too-large");
	CHECK_STR(isq_tune_mrs_name(ISQ_TYPE_Q4_K), "Q4K");
	CHECK_STR(isq_tune_mrs_name(ISQ_TYPE_Q8_0), "Q8_0");
	CHECK_STR(isq_tune_mrs_name(ISQ_TYPE_FP8), "F8E4M3");
	CHECK(isq_tune_mrs_name(ISQ_TYPE_IQ4_NL) == NULL);
	CHECK_STR(isq_tune_quality_name(isq_tune_quality_of(ISQ_TYPE_Q8_0)), "near-lossless");
	CHECK_STR(isq_tune_quality_name(isq_tune_quality_of(ISQ_TYPE_Q5_K)), "good");
	CHECK_STR(isq_tune_quality_name(isq_tune_quality_of(ISQ_TYPE_Q4_K)), "acceptable");
	CHECK_STR(isq_tune_quality_name(isq_tune_quality_of(ISQ_TYPE_Q2_K)), "degraded");
	CHECK_STR(isq_tune_quality_name(isq_tune_quality_of(ISQ_TYPE_BF16)), "baseline");
}

TEST(size_exact_untied_aligned)
{
	struct shape s = { .hidden = 256, .ff = 512, .layers = 2, .heads = 4, .kv = 2, .vocab = 320, .ctx = 256,
			   .dtype = "F16" };
	const char *dir = make_model("aligned", &s);
	CHECK(dir != NULL);
	if (dir)
		check_exact(dir);
}

TEST(size_exact_tied_with_fallbacks)
{
	/* 96 and 160 fit no 256-block: every K-quant falls back, and the fallbacks are metadata too */
	struct shape s = { .hidden = 96, .ff = 160, .layers = 3, .heads = 3, .kv = 1, .vocab = 333, .ctx = 128,
			   .tied = 1, .dtype = "BF16" };
	const char *dir = make_model("fallbacks", &s);
	CHECK(dir != NULL);
	if (dir)
		check_exact(dir);
}

TEST(size_exact_stories260K)
{
	char path[4096];
	if (!test_shared_path(path, sizeof(path), "models/stories260K/config.json"))
		SKIP("../shared/models/stories260K not present");
	path[strlen(path) - strlen("/config.json")] = '\0';
	check_exact(path);
}

static struct isq_tune_memory gpu(uint64_t free_bytes)
{
	struct isq_tune_memory m;
	memset(&m, 0, sizeof(m));
	m.backend = ISQ_TUNE_CUDA;
	m.have_device = 1;
	m.device_total = m.device_free = free_bytes;
	m.ram_total = m.ram_free = (uint64_t)64 << 30;
	snprintf(m.device_name, sizeof(m.device_name), "test GPU");
	return m;
}

/* The device budget that leaves exactly `extra` bytes after candidate `label` and its KV cache. */
static uint64_t budget_for(const struct isq_tune_report *r, const char *label, uint64_t extra)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->c[i].label, label)) {
			uint64_t need = r->c[i].size.file_bytes + r->kv_bytes + r->act_bytes + extra;
			/* the 512 MiB reserve dominates 2 % below 25 GiB */
			return need + ((uint64_t)512 << 20);
		}
	return 0;
}

static int recommended(const struct isq_tune_report *r, const char *label)
{
	return r->recommended >= 0 && !strcmp(r->c[r->recommended].label, label);
}

static const struct isq_tune_candidate *cand(const struct isq_tune_report *r, const char *label)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->c[i].label, label))
			return &r->c[i];
	return NULL;
}

TEST(fit_and_recommendation)
{
	struct shape s = { .hidden = 256, .ff = 768, .layers = 8, .heads = 8, .kv = 4, .vocab = 2048, .ctx = 1024,
			   .dtype = "F16" };
	const char *dir = make_model("fit", &s);
	CHECK(dir != NULL);
	if (!dir)
		return;
	struct isq_model m;
	CHECK_EQ_INT(isq_model_open(&m, dir), 0);
	struct isq_errbuf e = { 0 };
	struct isq_tune_opts o = { .profile = ISQ_TUNE_BALANCED };
	struct isq_tune_memory big = gpu((uint64_t)80 << 30);
	struct isq_tune_report r;
	CHECK_MSG(isq_tune_run(&m, &o, &big, &r, &e) == 0, "%s", e.msg);
	CHECK_EQ_INT(r.n, 7);
	CHECK_STR(r.c[0].label, "f16");
	CHECK(r.c[0].is_none);
	CHECK_STR(r.c[0].isq_name, "None (F16)");
	CHECK(recommended(&r, "q6_k"));
	/* KV: 8 layers x 4 heads x 32 dims x (K+V) x 2 bytes x 1024 tokens */
	CHECK_EQ_INT(r.ctx, 1024);
	CHECK_EQ_INT(r.kv_bytes, 8 * 4 * 32 * 2 * 2 * 1024);
	for (size_t i = 0; i < r.n; i++) {
		CHECK_EQ_INT(r.c[i].fit, ISQ_TUNE_FITS);
		CHECK(r.c[i].context_is_model_max);
		CHECK_EQ_INT(r.c[i].max_context, 1024);
	}
	/* sizes shrink with the bits, and the None size is the F16 file */
	CHECK(cand(&r, "q8_0")->size.file_bytes < r.c[0].size.file_bytes);
	CHECK(cand(&r, "q4_k")->size.file_bytes < cand(&r, "q6_k")->size.file_bytes);
	uint64_t q6 = budget_for(&r, "q6_k", 0), q5 = budget_for(&r, "q5_k", 0), f16 = budget_for(&r, "f16", 0);
	uint64_t q8 = budget_for(&r, "q8_0", 0);
	isq_tune_report_release(&r);

	/* balanced: a fully resident q5_k beats a q6_k that spills layers to the CPU */
	struct isq_tune_memory mid = gpu(q5 + (q6 - q5) / 4);
	CHECK_EQ_INT(isq_tune_run(&m, &o, &mid, &r, &e), 0);
	CHECK_EQ_INT(cand(&r, "q6_k")->fit, ISQ_TUNE_HYBRID);
	CHECK(cand(&r, "q6_k")->device_layers >= 0 && cand(&r, "q6_k")->device_layers < 8);
	CHECK_EQ_INT(cand(&r, "q5_k")->fit, ISQ_TUNE_FITS);
	CHECK(recommended(&r, "q5_k"));
	isq_tune_report_release(&r);

	/* quality: hybrid counts as a fit for the preferred list, as in mistral.rs */
	o.profile = ISQ_TUNE_QUALITY;
	CHECK_EQ_INT(isq_tune_run(&m, &o, &mid, &r, &e), 0);
	CHECK(recommended(&r, "q8_0"));
	CHECK_EQ_INT(cand(&r, "q8_0")->fit, ISQ_TUNE_HYBRID);
	isq_tune_report_release(&r);
	/* quality: no quantization when the unquantized model fits */
	struct isq_tune_memory roomy = gpu(f16);
	CHECK_EQ_INT(isq_tune_run(&m, &o, &roomy, &r, &e), 0);
	CHECK(recommended(&r, "f16") && r.c[r.recommended].is_none);
	isq_tune_report_release(&r);
	/* ... and q8_0 when just that fits */
	struct isq_tune_memory q8m = gpu(q8);
	CHECK_EQ_INT(isq_tune_run(&m, &o, &q8m, &r, &e), 0);
	CHECK(recommended(&r, "q8_0"));
	CHECK_EQ_INT(r.c[0].fit, ISQ_TUNE_HYBRID);
	isq_tune_report_release(&r);

	/* fast */
	o.profile = ISQ_TUNE_FAST;
	CHECK_EQ_INT(isq_tune_run(&m, &o, &roomy, &r, &e), 0);
	CHECK(recommended(&r, "q4_k"));
	isq_tune_report_release(&r);

	/* -t: the preferred list, added to the candidates, spellings merged */
	const char *types[] = { "q4_k_m", "Q4K" };
	o.types = types;
	o.n_types = 2;
	o.profile = ISQ_TUNE_BALANCED;
	CHECK_EQ_INT(isq_tune_run(&m, &o, &roomy, &r, &e), 0);
	CHECK_EQ_INT(r.n, 8);
	CHECK(recommended(&r, "q4_k_m"));
	CHECK_STR(r.c[r.recommended].isq, "Q4_K_M");
	isq_tune_report_release(&r);
	const char *bad[] = { "q4k_m" };
	o.types = bad;
	o.n_types = 1;
	CHECK_EQ_INT(isq_tune_run(&m, &o, &roomy, &r, &e), ISQ_EINVAL);
	CHECK_MSG(strstr(e.msg, "did you mean 'q4_k_m'") != NULL, "%s", e.msg);
	o.types = NULL;
	o.n_types = 0;

	/* a CPU with too little memory: nothing fits, and that is a report, not an error */
	struct isq_tune_memory cpu;
	memset(&cpu, 0, sizeof(cpu));
	cpu.ram_total = cpu.ram_free = 4096;
	CHECK_EQ_INT(isq_tune_run(&m, &o, &cpu, &r, &e), 0);
	CHECK_EQ_INT(r.recommended, -1);
	CHECK(r.n_warnings >= 1 && strstr(r.warnings[0], "no quantization fits"));
	for (size_t i = 0; i < r.n; i++)
		CHECK_EQ_INT(r.c[i].fit, ISQ_TUNE_TOO_LARGE);
	isq_tune_report_release(&r);

	o.ctx = -1;
	CHECK_EQ_INT(isq_tune_run(&m, &o, &roomy, &r, &e), ISQ_EINVAL);
	isq_model_release(&m);
}

TEST(context_room_and_head_dims)
{
	/* head_dim 64 although hidden / heads is 32: the KV cache follows head_dim */
	struct shape s = { .hidden = 128, .ff = 256, .layers = 4, .heads = 4, .kv = 2, .head_dim = 64, .vocab = 512,
			   .ctx = 1 << 20, .dtype = "F16" };
	const char *dir = make_model("headdim", &s);
	CHECK(dir != NULL);
	if (!dir)
		return;
	struct isq_model m;
	CHECK_EQ_INT(isq_model_open(&m, dir), 0);
	struct isq_errbuf e = { 0 };
	struct isq_tune_opts o = { .profile = ISQ_TUNE_BALANCED, .ctx = 2048 };
	struct isq_tune_memory mem = gpu((uint64_t)1 << 30);
	struct isq_tune_report r;
	CHECK_EQ_INT(isq_tune_run(&m, &o, &mem, &r, &e), 0);
	uint64_t per_tok = 4 * 2 * 64 * 2 * 2;
	CHECK_EQ_INT(r.kv_bytes_per_token, per_tok);
	CHECK_EQ_INT(r.kv_bytes, per_tok * 2048);
	const struct isq_tune_candidate *c = cand(&r, "q6_k");
	uint64_t avail = ((uint64_t)1 << 30) - ((uint64_t)512 << 20);
	CHECK_EQ_INT(c->max_context, (avail - c->size.file_bytes - r.act_bytes) / per_tok);
	CHECK(!c->context_is_model_max);
	CHECK_NEAR(c->vram_fraction, (double)c->size.file_bytes / (double)((uint64_t)1 << 30), 1e-12);
	isq_tune_report_release(&r);
	isq_model_release(&m);

	/* every layer with a 256-token window: the cache stops growing with the context */
	struct shape sw = s;
	sw.window = 256;
	sw.model_type = "mistral";
	dir = make_model("window", &sw);
	CHECK(dir != NULL);
	if (!dir)
		return;
	CHECK_EQ_INT(isq_model_open(&m, dir), 0);
	CHECK_EQ_INT(isq_tune_run(&m, &o, &mem, &r, &e), 0);
	CHECK_EQ_INT(r.kv_bytes, per_tok * 256);
	CHECK_EQ_INT(r.kv_bytes_per_token, 0);
	CHECK(cand(&r, "q6_k")->context_is_model_max);
	isq_tune_report_release(&r);
	isq_model_release(&m);
}

TEST(refusals)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/noconfig", test_tmpdir());
	mkdir(dir, 0777);
	struct shape s = { .hidden = 64, .ff = 128, .layers = 1, .heads = 2, .kv = 1, .vocab = 320, .ctx = 64,
			   .dtype = "F32" };
	const char *src = make_model("src", &s);
	CHECK(src != NULL);
	char from[4300], to[4300];
	snprintf(from, sizeof(from), "%s/model.safetensors", src);
	snprintf(to, sizeof(to), "%s/model.safetensors", dir);
	CHECK_EQ_INT(rename(from, to), 0);
	struct isq_model m;
	CHECK_EQ_INT(isq_model_open(&m, dir), 0);
	struct isq_errbuf e = { 0 };
	struct isq_tune_opts o = { .profile = ISQ_TUNE_BALANCED };
	struct isq_tune_memory mem = gpu((uint64_t)1 << 30);
	struct isq_tune_report r;
	CHECK(isq_tune_run(&m, &o, &mem, &r, &e) < 0);
	CHECK_MSG(strstr(e.msg, "config.json") != NULL, "%s", e.msg);
	isq_model_release(&m);
}

TEST(memory_probe_never_fails_without_a_device)
{
	struct isq_tune_memory mem;
	struct isq_errbuf e = { 0 };
	CHECK_EQ_INT(isq_tune_memory_probe(ISQ_TUNE_CPU, 0, &mem, &e), 0);
	CHECK(mem.ram_total > 0 && mem.ram_free > 0 && mem.ram_free <= mem.ram_total);
	CHECK(!mem.have_device);
#if TUNE_ASAN
	/* GPU drivers (llvmpipe's libstdc++ allocations) leak on dlclose; tests/cli/tune.sh covers these probes */
	return;
#endif
	for (int b = ISQ_TUNE_CUDA; b <= ISQ_TUNE_VULKAN; b++) {
		CHECK_EQ_INT(isq_tune_memory_probe((enum isq_tune_backend)b, 0, &mem, &e), 0);
		if (mem.have_device)
			CHECK(mem.device_total > 0 && mem.device_free <= mem.device_total && (int)mem.backend == b);
		else
			CHECK(mem.backend == ISQ_TUNE_CPU && mem.note[0]);
	}
	/* a device number past the last one is "no device", not an error */
	CHECK_EQ_INT(isq_tune_memory_probe(ISQ_TUNE_CUDA, 999, &mem, &e), 0);
	CHECK(!mem.have_device);
}

TEST(recommend_for_auto)
{
	struct shape s = { .hidden = 256, .ff = 512, .layers = 2, .heads = 4, .kv = 2, .vocab = 320, .ctx = 256,
			   .dtype = "F16" };
	const char *dir = make_model("auto", &s);
	CHECK(dir != NULL);
	if (!dir)
		return;
	struct isq_model m;
	CHECK_EQ_INT(isq_model_open(&m, dir), 0);
	char type[16] = "";
	struct isq_errbuf e = { 0 };
	/* a model of a few MB fits any machine the tests run on */
	CHECK_MSG(isq_tune_recommend(&m, ISQ_TARGET_CPU, type, sizeof(type), &e) == 0, "%s", e.msg);
	CHECK_STR(type, "q6_k");
	isq_model_release(&m);
}

TEST(measured_quality_orders_the_types)
{
	struct shape s = { .hidden = 256, .ff = 512, .layers = 2, .heads = 4, .kv = 2, .vocab = 320, .ctx = 256,
			   .dtype = "F32" };
	const char *dir = make_model("measure", &s);
	CHECK(dir != NULL);
	if (!dir)
		return;
	struct isq_model m;
	CHECK_EQ_INT(isq_model_open(&m, dir), 0);
	struct isq_errbuf e = { 0 };
	struct isq_tune_opts o = { .profile = ISQ_TUNE_BALANCED };
	struct isq_tune_memory mem = gpu((uint64_t)1 << 30);
	struct isq_tune_report r1, r2;
	CHECK_EQ_INT(isq_tune_run(&m, &o, &mem, &r1, &e), 0);
	CHECK(r1.c[3].measured_error < 0); /* not measured yet */
	CHECK_MSG(isq_tune_measure(&m, &r1, 16, NULL, &e) == 0, "%s", e.msg);
	struct isq_pool *pool = isq_pool_new(3);
	CHECK_EQ_INT(isq_tune_run(&m, &o, &mem, &r2, &e), 0);
	CHECK_MSG(isq_tune_measure(&m, &r2, 16, pool, &e) == 0, "%s", e.msg);
	isq_pool_free(pool);
	CHECK_EQ_INT(r1.n, 7);
	CHECK(r1.c[0].measured_error == 0 && r1.c[0].quality == ISQ_TUNE_BASELINE);
	for (size_t i = 0; i < r1.n; i++) {
		CHECK(r1.c[i].measured_error == r2.c[i].measured_error);
		if (i >= 2)
			CHECK_MSG(r1.c[i].measured_error > r1.c[i - 1].measured_error, "%s %.5f <= %s %.5f", r1.c[i].label,
				  r1.c[i].measured_error, r1.c[i - 1].label, r1.c[i - 1].measured_error);
	}
	/* uniform noise: q8_0 is near lossless, q2_k is not */
	CHECK_EQ_INT(cand(&r1, "q8_0")->quality, ISQ_TUNE_NEAR_LOSSLESS);
	CHECK_EQ_INT(cand(&r1, "q2_k")->quality, ISQ_TUNE_DEGRADED);
	CHECK_EQ_INT(isq_tune_quality_of_error(0.005), ISQ_TUNE_NEAR_LOSSLESS);
	CHECK_EQ_INT(isq_tune_quality_of_error(0.03), ISQ_TUNE_GOOD);
	CHECK_EQ_INT(isq_tune_quality_of_error(0.07), ISQ_TUNE_ACCEPTABLE);
	CHECK_EQ_INT(isq_tune_quality_of_error(0.2), ISQ_TUNE_DEGRADED);
	isq_tune_report_release(&r1);
	isq_tune_report_release(&r2);
	isq_model_release(&m);
}
