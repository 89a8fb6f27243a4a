/* isq-pack-uqff - write, verify and unpack mistral.rs's UQFF directories. */
#include "uqff.h"
#include "fp.h"
#include "hparams.h"
#include "tool.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <unistd.h>

static const char *opt_model, *opt_type, *opt_output, *opt_input, *opt_verify, *opt_unpack, *opt_imatrix;
static const char *opt_quant, *opt_target, *opt_legacy;
static int opt_json, opt_force, opt_quiet, opt_verbose, opt_tar, opt_pure;
static int64_t opt_threads;
static uint64_t opt_shard_size;

static const struct isq_opt options[] = {
	ISQ_OPT_STRING('m', "model", &opt_model, "MODEL", "Hugging Face model directory or safetensors file"),
	ISQ_OPT_STRING('t', "type", &opt_type, "TYPE", "type or shorthand 2-8 to quantize to; with --unpack: f32, f16, bf16"),
	ISQ_OPT_STRING('i', "input", &opt_input, "GGUF", "the weights as isq-quantize wrote them from MODEL ('-' = stdin)"),
	ISQ_OPT_STRING('o', "output", &opt_output, "PATH", "UQFF directory (or PATH/NAME.uqff); with --unpack a file"),
	ISQ_OPT_SIZE(0, "shard-size", &opt_shard_size, "BYTES", "data bytes per shard (default 10 GiB)"),
	ISQ_OPT_STRING(0, "imatrix", &opt_imatrix, "FILE", "importance matrix (gguf, dat, cimatrix)"),
	ISQ_OPT_FLAG(0, "pure", &opt_pure, "same type everywhere: no promotion of embeddings and lm_head"),
	ISQ_OPT_STRING(0, "target", &opt_target, "T", "cpu, cuda, vulkan or metal (resolves shorthands)"),
	ISQ_OPT_STRING(0, "verify", &opt_verify, "DIR", "check a UQFF directory as mistral.rs's loader does"),
	ISQ_OPT_STRING(0, "unpack", &opt_unpack, "DIR", "UQFF to GGUF (GGML types kept) or dequantized safetensors (-o)"),
	ISQ_OPT_STRING(0, "quant", &opt_quant, "NAME", "with --unpack: which shard set (q4k, afq4...)"),
	ISQ_OPT_FLAG(0, "tar", &opt_tar, "write the directory as one .tar or .tar.zst"),
	ISQ_OPT_STRING(0, "import-legacy", &opt_legacy, "DIR", "convert a pre-1.0 UQFF directory"),
	ISQ_OPT_INT(0, "threads", &opt_threads, "N", "worker threads (default: all cores)"),
	ISQ_OPT_FLAG(0, "json", &opt_json, "summary as JSON on stdout"),
	ISQ_OPT_FLAG(0, "force", &opt_force, "write binary output to a terminal"),
	ISQ_OPT_COUNT('q', "quiet", &opt_quiet, "print less on stderr"),
	ISQ_OPT_COUNT('v', "verbose", &opt_verbose, "print more on stderr"),
	ISQ_OPT_END(),
};

static const char *const usage[] = { "-m MODEL -t TYPE -o DIR [options]", "-m MODEL -i GGUF|- -o DIR [options]",
				     "--verify DIR",
				     "--unpack DIR -o OUT.gguf|OUT.safetensors [-t f32|f16|bf16] [--quant NAME]", NULL };

static const struct isq_cmd cmd = {
	.name = "isq-pack-uqff",
	.usage = usage,
	.summary = "Write a model as mistral.rs's UQFF 1.2 directory (shards per type, residual.safetensors,\n"
		   "config and tokenizer files, uqff_report.json), check one, or unpack one to safetensors.",
	.opts = options,
};

static int do_verify(const char *dir)
{
	struct isq_uqff u;
	if (isq_uqff_open(&u, dir) || isq_uqff_verify(&u))
		isq_die("%s", isq_errbuf_msg(&u.err));
	cJSON *root = opt_json ? cJSON_CreateObject() : NULL;
	cJSON *sets = root ? cJSON_AddArrayToObject(root, "sets") : NULL;
	for (int i = 0; i < u.n_sets; i++) {
		const struct isq_uqff_set *s = &u.sets[i];
		uint64_t bytes = 0;
		for (size_t k = 0; k < s->n_layers; k++)
			bytes += s->layers[k].nbytes;
		if (root) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "quant", s->stem);
			cJSON_AddNumberToObject(o, "shards", s->n_shards);
			cJSON_AddNumberToObject(o, "layers", (double)s->n_layers);
			cJSON_AddNumberToObject(o, "bytes", (double)bytes);
			char v[32];
			snprintf(v, sizeof(v), "%u.%u.%u", s->version[0], s->version[1], s->version[2]);
			cJSON_AddStringToObject(o, "version", v);
			cJSON_AddItemToArray(sets, o);
		} else {
			printf("%s: %zu layers in %d shard%s, UQFF %u.%u.%u, %.2f MiB\n", s->stem, s->n_layers, s->n_shards,
			       s->n_shards == 1 ? "" : "s", s->version[0], s->version[1], s->version[2],
			       (double)bytes / 1048576.0);
		}
	}
	if (root) {
		cJSON_AddBoolToObject(root, "ok", 1);
		cJSON_AddNumberToObject(root, "residual_tensors", u.residual ? (double)u.residual->n_tensors : 0);
		char *t = cJSON_PrintUnformatted(root);
		puts(t);
		free(t);
		cJSON_Delete(root);
	} else {
		printf("%s: ok\n", dir);
	}
	isq_uqff_release(&u);
	return isq_tool_exit(0);
}

struct gt {
	char name[160];
	int layer;
	enum isq_type type;
	int n_dims;
	int64_t ne[4];
	const uint8_t *data;
	uint64_t nbytes;
	enum isq_st_dtype src_dtype; /* converted to F32 when type is F32 and this differs */
	int64_t rows;
	int permute;                 /* llama Q/K heads: rows go to llama.cpp's RoPE order */
};

static int gt_cmp(const void *a, const void *b)
{
	const struct gt *x = a, *y = b;
	if (x->layer != y->layer)
		return x->layer < y->layer ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int64_t perm_row(int64_t r, int64_t rows, int heads)
{
	int64_t hd = rows / heads, h = r / hd, j = r % hd;
	return h * hd + (j % 2 ? j / 2 + hd / 2 : j / 2);
}

static struct gt *gt_add(struct gt **v, size_t *n, const char *hf, const struct isq_hparams *hp, int llama)
{
	struct gt *nv = realloc(*v, (*n + 1) * sizeof(**v));
	if (!nv)
		isq_die("out of memory");
	*v = nv;
	struct gt *g = &nv[(*n)++];
	memset(g, 0, sizeof(*g));
	char base[512];
	snprintf(base, sizeof(base), "%s", hf);
	size_t bl = strlen(base);
	static const char *const kinds[][2] = { { ".experts.gate_proj.weight", "gate" },
						{ ".experts.up_proj.weight", "up" },
						{ ".experts.down_proj.weight", "down" } };
	enum isq_tensor_role role = isq_name_role(hf, &g->layer);
	for (size_t k = 0; k < 3; k++)
		if (bl > strlen(kinds[k][0]) && !strcmp(base + bl - strlen(kinds[k][0]), kinds[k][0])) {
			snprintf(g->name, sizeof(g->name), "blk.%d.ffn_%s_exps.weight", g->layer, kinds[k][1]);
			return g;
		}
	if (isq_name_hf_to_gguf(hf, g->name, sizeof(g->name)))
		return NULL;
	if (llama && (role == ISQ_ROLE_ATTN_Q || (role == ISQ_ROLE_BIAS && strstr(g->name, "attn_q"))))
		g->permute = (int)hp->n_heads;
	if (llama && (role == ISQ_ROLE_ATTN_K || (role == ISQ_ROLE_BIAS && strstr(g->name, "attn_k"))))
		g->permute = (int)hp->n_kv_heads;
	return g;
}

/* UQFF -> GGUF: GGML-typed and dense layers keep their bytes; the other tensors become F32, as in isq-quantize. */
static int do_unpack_gguf(const struct isq_uqff *u, const struct isq_uqff_set *s, const char *dir)
{
	struct isq_hparams hp;
	struct isq_errbuf e = { 0 };
	struct isq_buf cfg = ISQ_BUF_INIT;
	isq_path_join(&cfg, u->dir, "config.json");
	if (isq_config_load(cfg.data, &hp, &e))
		isq_die("%s", isq_errbuf_msg(&e));
	int llama = hp.gguf_arch && !strcmp(hp.gguf_arch, "llama");
	struct gt *v = NULL;
	size_t n = 0;
	for (size_t i = 0; i < s->n_layers; i++) {
		const struct isq_uqff_layer *l = &s->layers[i];
		if (l->format > ISQ_UQFF_UNQUANT)
			isq_die("%s: layer '%s' is %s, which GGUF cannot hold (unpack to .safetensors instead)", dir, l->key,
				l->label);
		char hf[512];
		snprintf(hf, sizeof(hf), "%s.weight", l->key);
		struct gt *g = gt_add(&v, &n, hf, &hp, llama);
		if (!g)
			isq_die("%s: layer '%s' has no GGUF name", dir, l->key);
		g->type = l->type;
		g->n_dims = l->rank;
		for (int d = 0; d < l->rank; d++)
			g->ne[d] = (int64_t)l->shape[l->rank - 1 - d];
		g->data = l->weight->data;
		g->nbytes = l->weight->nbytes;
		g->src_dtype = l->weight->dtype;
		g->rows = (int64_t)(l->numel / l->shape[l->rank - 1]);
		if (l->bias) {
			snprintf(hf, sizeof(hf), "%s.bias", l->key);
			if ((g = gt_add(&v, &n, hf, &hp, llama))) {
				g->type = ISQ_TYPE_F32;
				g->n_dims = l->bias->rank;
				for (int d = 0; d < g->n_dims; d++)
					g->ne[d] = l->bias->shape[g->n_dims - 1 - d];
				g->data = l->bias->data;
				g->nbytes = l->bias->nbytes;
				g->src_dtype = l->bias->dtype;
				g->rows = l->bias->shape[0];
			}
		}
	}
	for (size_t i = 0; u->residual && i < u->residual->n_tensors; i++) {
		const struct isq_st_tensor *t = &u->residual->tensors[i];
		struct gt *g = gt_add(&v, &n, t->name, &hp, llama);
		if (!g)
			continue; /* no GGUF equivalent, as isq-quantize drops it */
		if (t->dtype != ISQ_ST_F32 && t->dtype != ISQ_ST_F16 && t->dtype != ISQ_ST_BF16)
			isq_die("%s: residual tensor '%s' is %s", dir, t->name, isq_st_dtype_name(t->dtype));
		g->type = ISQ_TYPE_F32;
		g->n_dims = t->n_dims ? t->n_dims : 1;
		g->ne[0] = 1;
		for (int d = 0; d < t->n_dims; d++)
			g->ne[d] = t->shape[t->n_dims - 1 - d];
		g->data = t->data;
		g->nbytes = t->nbytes;
		g->src_dtype = t->dtype;
		g->rows = t->n_dims ? (int64_t)(t->n_elements / (uint64_t)g->ne[0]) : 1;
	}
	qsort(v, n, sizeof(*v), gt_cmp);
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	if (!w)
		isq_die("out of memory");
	char *c = isq_strdup(dir);
	size_t cl = strlen(c);
	while (cl > 1 && c[cl - 1] == '/')
		c[--cl] = '\0';
	enum isq_type st;
	int rc = isq_hparams_to_gguf(&hp, basename(c), w);
	free(c);
	if (!rc && !isq_type_parse(s->stem, &st, NULL))
		rc = isq_gguf_set_u32(w, "general.file_type", isq_ftype_of(st));
	rc = rc ? rc : isq_gguf_set_u32(w, "general.quantization_version", 2);
	for (size_t i = 0; i < n && !rc; i++)
		rc = isq_gguf_writer_add_tensor(w, v[i].name, (uint32_t)v[i].type, v[i].n_dims, v[i].ne);
	if (rc)
		isq_die("%s: %s", opt_output, isq_gguf_writer_errmsg(w));
	struct isq_out out;
	if (isq_out_open(&out, opt_output))
		isq_die("%s", isq_errbuf_msg(&out.err));
	if (isq_gguf_writer_begin(w, &out))
		isq_die("%s", out.err.code ? isq_errbuf_msg(&out.err) : isq_gguf_writer_errmsg(w));
	for (size_t i = 0; i < n; i++) {
		const struct gt *g = &v[i];
		const uint8_t *data = g->data;
		uint64_t nb = g->nbytes;
		float *f = NULL;
		if (g->type == ISQ_TYPE_F32 && g->src_dtype != ISQ_ST_F32) {
			uint64_t ne = nb / (isq_st_dtype_bits(g->src_dtype) / 8);
			f = isq_mallocarray((size_t)ne, sizeof(float));
			if (!f)
				isq_die("out of memory");
			/* tensors in a shard need not be 2-aligned: widen from an aligned copy */
			uint16_t *h = isq_mallocarray((size_t)ne ? (size_t)ne : 1, 2);
			if (!h)
				isq_die("out of memory");
			memcpy(h, data, (size_t)ne * 2);
			if (g->src_dtype == ISQ_ST_F16)
				isq_fp16_to_fp32_row(h, f, (size_t)ne);
			else
				isq_bf16_to_fp32_row(h, f, (size_t)ne);
			free(h);
			data = (const uint8_t *)f;
			nb = ne * 4;
		}
		rc = 0;
		if (g->permute) {
			/* GGUF row r holds checkpoint row perm_row(r) */
			uint64_t rb = nb / (uint64_t)g->rows;
			for (int64_t r = 0; r < g->rows && !rc; r++)
				rc = isq_gguf_writer_write(w, data + (uint64_t)perm_row(r, g->rows, g->permute) * rb, (size_t)rb);
		} else {
			rc = isq_gguf_writer_write(w, data, (size_t)nb);
		}
		free(f);
		if (rc)
			isq_die("%s", out.err.code ? isq_errbuf_msg(&out.err) : isq_gguf_writer_errmsg(w));
	}
	if (isq_gguf_writer_finish(w))
		isq_die("%s", out.err.code ? isq_errbuf_msg(&out.err) : isq_gguf_writer_errmsg(w));
	if (isq_out_commit(&out))
		isq_die("%s", isq_errbuf_msg(&out.err));
	isq_info("%s: %zu tensors from %s (%zu layers)", opt_output, n, s->stem, s->n_layers);
	isq_gguf_writer_free(w);
	free(v);
	isq_buf_release(&cfg);
	return 0;
}

static int do_unpack(const char *dir)
{
	enum isq_type ot = ISQ_TYPE_F32;
	if (opt_type && (isq_type_parse(opt_type, &ot, NULL) ||
			 (ot != ISQ_TYPE_F32 && ot != ISQ_TYPE_F16 && ot != ISQ_TYPE_BF16)))
		isq_tool_usage_error(&cmd, "--unpack writes f32, f16 or bf16, not '%s'", opt_type);
	struct isq_uqff u;
	if (isq_uqff_open(&u, dir))
		isq_die("%s", isq_errbuf_msg(&u.err));
	const struct isq_uqff_set *s = NULL;
	for (int i = 0; i < u.n_sets && !s; i++)
		if (!opt_quant || !strcmp(u.sets[i].stem, opt_quant))
			s = &u.sets[i];
	if (!s)
		isq_die("%s: no shard set '%s'", dir, opt_quant);
	if (!opt_quant && u.n_sets > 1)
		isq_die("%s: %d shard sets (%s, %s, ...); choose one with --quant", dir, u.n_sets, u.sets[0].stem,
			u.sets[1].stem);
	size_t ol = strlen(opt_output);
	if (ol > 5 && !strcmp(opt_output + ol - 5, ".gguf")) {
		if (opt_type)
			isq_tool_usage_error(&cmd, "-t chooses the dtype of a safetensors unpack; a GGUF keeps the layers' types");
		do_unpack_gguf(&u, s, dir);
		isq_uqff_release(&u);
		return isq_tool_exit(0);
	}
	enum isq_st_dtype dt = ot == ISQ_TYPE_F16 ? ISQ_ST_F16 : ot == ISQ_TYPE_BF16 ? ISQ_ST_BF16 : ISQ_ST_F32;
	struct isq_st_writer *w = isq_st_writer_new();
	if (!w)
		isq_die("out of memory");
	isq_st_writer_meta(w, "format", "pt");
	for (size_t i = 0; i < s->n_layers; i++) {
		const struct isq_uqff_layer *l = &s->layers[i];
		char name[1024];
		int64_t shape[ISQ_MRS_MAX_RANK];
		for (int d = 0; d < l->rank; d++)
			shape[d] = (int64_t)l->shape[d];
		snprintf(name, sizeof(name), "%s.weight", l->key);
		if (isq_st_writer_add(w, name, dt, l->rank, shape))
			isq_die("%s: %s", opt_output, isq_st_writer_errmsg(w));
		if (l->bias) {
			snprintf(name, sizeof(name), "%s.bias", l->key);
			if (isq_st_writer_add(w, name, l->bias->dtype, l->bias->rank, l->bias->shape))
				isq_die("%s: %s", opt_output, isq_st_writer_errmsg(w));
		}
	}
	for (size_t i = 0; u.residual && i < u.residual->n_tensors; i++) {
		const struct isq_st_tensor *t = &u.residual->tensors[i];
		if (isq_st_writer_add(w, t->name, t->dtype, t->n_dims, t->shape))
			isq_die("%s: %s", opt_output, isq_st_writer_errmsg(w));
	}
	struct isq_out out;
	if (isq_out_open(&out, opt_output))
		isq_die("%s", isq_errbuf_msg(&out.err));
	if (isq_st_writer_begin(w, &out))
		isq_die("%s", isq_st_writer_errmsg(w));
	for (size_t i = 0; i < s->n_layers; i++) {
		const struct isq_uqff_layer *l = &s->layers[i];
		struct isq_errbuf e = { 0 };
		float *x = isq_mallocarray((size_t)l->numel, sizeof(float));
		if (!x)
			isq_die("out of memory");
		if (isq_uqff_dequantize(l, x, &e))
			isq_die("%s: %s", dir, isq_errbuf_msg(&e));
		int rc;
		if (dt == ISQ_ST_F32) {
			rc = isq_st_writer_write(w, x, (size_t)l->numel * 4);
		} else {
			uint16_t *h = isq_mallocarray((size_t)l->numel, 2);
			if (!h)
				isq_die("out of memory");
			if (dt == ISQ_ST_F16)
				isq_fp32_to_fp16_row(x, h, (size_t)l->numel);
			else
				isq_fp32_to_bf16_row(x, h, (size_t)l->numel);
			rc = isq_st_writer_write(w, h, (size_t)l->numel * 2);
			free(h);
		}
		free(x);
		if (!rc && l->bias)
			rc = isq_st_writer_write(w, l->bias->data, (size_t)l->bias->nbytes);
		if (rc)
			isq_die("%s", isq_st_writer_errmsg(w));
	}
	for (size_t i = 0; u.residual && i < u.residual->n_tensors; i++)
		if (isq_st_writer_write(w, u.residual->tensors[i].data, (size_t)u.residual->tensors[i].nbytes))
			isq_die("%s", isq_st_writer_errmsg(w));
	if (isq_st_writer_finish(w))
		isq_die("%s: %s", opt_output, isq_st_writer_errmsg(w));
	if (isq_out_commit(&out))
		isq_die("%s", isq_errbuf_msg(&out.err));
	isq_info("%s: %zu layers (%s) and %zu residual tensors as %s", opt_output, s->n_layers, s->stem,
		 u.residual ? u.residual->n_tensors : (size_t)0, isq_type_name(ot));
	isq_st_writer_free(w);
	isq_uqff_release(&u);
	return isq_tool_exit(0);
}

/* The --tar staging: TOP/SUB/<files>, then SUB and TOP (both flat). */
static void remove_tree(const char *top, const char *sub)
{
	DIR *d = opendir(sub);
	struct dirent *de;
	struct isq_buf p = ISQ_BUF_INIT;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && !isq_path_join(&p, sub, de->d_name))
			unlink(p.data);
	if (d)
		closedir(d);
	isq_buf_release(&p);
	rmdir(sub);
	rmdir(top);
}

static int do_write(void)
{
	enum isq_target target = ISQ_TARGET_CPU;
	if (opt_target && isq_target_parse(opt_target, &target))
		isq_tool_usage_error(&cmd, "unknown target '%s' (cpu, cuda, vulkan, metal)", opt_target);
	signal(SIGPIPE, SIG_IGN);
	isq_types_init();
	struct isq_model m;
	if (isq_model_open(&m, opt_model))
		isq_die("%s", isq_errbuf_msg(&m.err));
	if (m.format == ISQ_MODEL_SAFETENSORS && (isq_is_dir(opt_model) || m.config_rc != ISQ_ENOTFOUND) && !m.have_config)
		isq_die("%s: %s", opt_model, m.config_err);
	struct isq_imatrix im;
	isq_imatrix_init(&im);
	if (opt_imatrix && isq_imatrix_read(&im, opt_imatrix))
		isq_die("%s", isq_errbuf_msg(&im.err));

	/* a shorthand writes both variants, as mistral.rs does; they share residual and report */
	struct isq_errbuf e = { 0 };
	struct isq_plan plans[2];
	const struct isq_plan *pp[2] = { &plans[0], &plans[1] };
	int np = 0;
	struct isq_plan_opts po = { .type = opt_type, .pure = opt_pure, .format = ISQ_FORMAT_UQFF, .target = target };
	struct isq_model g;
	int rc;
	memset(&g, 0, sizeof(g));
	if (opt_input) {
		/* the pipe form: the GGUF's blocks are the layers' bytes, so both forms write the same files */
		if (isq_model_open(&g, opt_input))
			isq_die("%s", isq_errbuf_msg(&g.err));
		rc = isq_uqff_plan_for_gguf(&m, &g, &po, &plans[0], &e);
		np = rc ? 0 : 1;
	} else {
		rc = isq_uqff_plans_build(&m, &po, plans, &np, &e);
	}
	if (rc == ISQ_EINVAL && strstr(e.msg, "unknown type"))
		isq_tool_usage_error(&cmd, "%s", e.msg);
	if (rc)
		isq_die("%s: %s", opt_input ? opt_input : opt_model, isq_errbuf_msg(&e));
	for (int k = 0; k < np; k++)
		for (size_t i = 0; i < pp[k]->n; i++) {
			const struct isq_plan_entry *en = &pp[k]->entries[i];
			if (en->fallback[0])
				isq_info("tensor '%s': %s -> %s: %s", en->name, isq_type_name(en->requested),
					 isq_type_name(en->type), en->fallback);
		}

	struct isq_pool *pool = isq_uqff_pool_new(isq_tool_threads(opt_threads));
	if (!pool)
		isq_die("out of memory");
	uint64_t total = 0;
	for (int k = 0; k < np; k++)
		for (size_t i = 0; i < pp[k]->n; i++)
			if (pp[k]->entries[i].quantize)
				total += m.tensors[pp[k]->entries[i].src].nbytes;
	struct isq_progress pr;
	isq_progress_begin(&pr, "quantize", total, isq_get_verbosity() > 0);
	char name[256];
	{
		char *c = isq_strdup(opt_model);
		size_t l = strlen(c);
		while (l > 1 && c[l - 1] == '/')
			c[--l] = '\0';
		snprintf(name, sizeof(name), "%s", basename(c));
		free(c);
	}
	/* --tar: the directory is built in a hidden temporary beside the archive, then archived */
	char *tar_tmp = NULL, *tar_prefix = NULL;
	struct isq_buf tar_dir = ISQ_BUF_INIT;
	if (opt_tar) {
		char *c1 = isq_strdup(opt_output), *c2 = isq_strdup(opt_output);
		struct isq_buf t = ISQ_BUF_INIT;
		isq_path_join(&t, dirname(c1), "");
		isq_buf_printf(&t, ".%s.XXXXXX", basename(c2));
		if (!mkdtemp(t.data))
			isq_die("%s: %s", t.data, strerror(errno));
		/* a signal before the end removes it (and, with keep_recorded, what the writer puts in it) */
		if (isq_uqff_stage_add(t.data, 1))
			isq_die("out of memory");
		tar_tmp = isq_buf_detach(&t, NULL);
		tar_prefix = isq_strdup(basename(c2));
		char *dot = strstr(tar_prefix, ".t");
		if (dot)
			*dot = '\0';
		isq_path_join(&tar_dir, tar_tmp, tar_prefix);
		free(c1);
		free(c2);
	}
	struct isq_uqff_write_opts wo = { .model = &m, .plans = pp, .n_plans = np,
					  .output = opt_tar ? tar_dir.data : opt_output,
					  .shard_size = opt_shard_size, .pool = pool,
					  .imatrix = opt_imatrix ? &im : NULL, .progress = &pr, .base_model = name,
					  .from_gguf = opt_input ? &g : NULL, .keep_recorded = opt_tar };
	struct isq_uqff_write_result res;
	double t0 = isq_now();
	rc = isq_uqff_write(&wo, &res, &e);
	isq_progress_end(&pr);
	if (rc == ISQ_EINVAL && strstr(e.msg, "need a directory"))
		isq_tool_usage_error(&cmd, "%s", e.msg);
	if (!rc && opt_tar) {
		size_t ol = strlen(opt_output);
		int zst = (ol > 4 && !strcmp(opt_output + ol - 4, ".zst")) || (ol > 5 && !strcmp(opt_output + ol - 5, ".tzst"));
		struct isq_out out;
		rc = isq_out_open(&out, opt_output);
		if (rc)
			isq_errbuf_set(&e, rc, "%s", isq_errbuf_msg(&out.err));
		else if ((rc = isq_uqff_tar(tar_dir.data, tar_prefix, zst, &out, &e)))
			isq_out_abort(&out);
		else if ((rc = isq_out_commit(&out)))
			isq_errbuf_set(&e, rc, "%s", isq_errbuf_msg(&out.err));
		snprintf(res.dir, sizeof(res.dir), "%s", opt_output);
	}
	if (tar_tmp) {
		remove_tree(tar_tmp, tar_dir.data);
		isq_uqff_stage_forget();
	}
	if (rc)
		isq_die("%s", isq_errbuf_msg(&e));
	double secs = isq_now() - t0;
	isq_info("%s: %d type%s, %zu layers, %d fallbacks, %.2f MiB, %.2f s", res.dir, np, np == 1 ? "" : "s",
		 res.n_layers, res.n_fallbacks, (double)res.bytes / 1048576.0, secs);
	if (opt_json) {
		cJSON *root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "model", opt_model);
		cJSON_AddStringToObject(root, "output", res.dir);
		cJSON_AddStringToObject(root, "format", "uqff");
		cJSON *types = cJSON_AddArrayToObject(root, "types");
		for (int k = 0; k < np; k++)
			cJSON_AddItemToArray(types, cJSON_CreateString(isq_uqff_type_label(pp[k]->req.type)));
		cJSON_AddNumberToObject(root, "layers", (double)res.n_layers);
		cJSON_AddNumberToObject(root, "fallbacks", res.n_fallbacks);
		cJSON_AddNumberToObject(root, "bytes", (double)res.bytes);
		cJSON_AddNumberToObject(root, "seconds", secs);
		char *t = cJSON_PrintUnformatted(root);
		puts(t);
		free(t);
		cJSON_Delete(root);
	}
	isq_pool_free(pool);
	for (int k = 0; k < np; k++)
		isq_plan_release(&plans[k]);
	isq_imatrix_release(&im);
	if (opt_input)
		isq_model_release(&g);
	free(tar_tmp);
	free(tar_prefix);
	isq_buf_release(&tar_dir);
	isq_model_release(&m);
	return isq_tool_exit(0);
}

int main(int argc, char **argv)
{
	struct isq_strlist pos = ISQ_STRLIST_INIT;
	isq_tool_parse(&cmd, argc, argv, &pos);
	/* a signal also removes the UQFF staging directory, then the temporaries (io.c) */
	isq_uqff_install_signal_handlers();
	isq_set_verbosity(1 - opt_quiet + opt_verbose);
	if (pos.n)
		isq_tool_usage_error(&cmd, "unexpected argument '%s'", pos.items[0]);
	int modes = !!opt_verify + !!opt_unpack + !!opt_legacy;
	if (modes > 1)
		isq_tool_usage_error(&cmd, "--verify, --unpack and --import-legacy exclude each other");
	if (opt_legacy)
		isq_die("%s: --import-legacy is not implemented yet", opt_legacy);
	if (opt_tar && opt_output && !strstr(opt_output, ".tar") && !strstr(opt_output, ".tzst"))
		isq_tool_usage_error(&cmd, "--tar writes -o NAME.tar or NAME.tar.zst");
	if (opt_verify) {
		if (opt_model || opt_output)
			isq_tool_usage_error(&cmd, "--verify takes only the directory");
		isq_strlist_release(&pos);
		return do_verify(opt_verify);
	}
	if (!opt_output)
		isq_tool_usage_error(&cmd, "no output given (-o)");
	if (opt_unpack) {
		if (!strcmp(opt_output, "-") && !opt_force && isq_fd_is_tty(1))
			isq_tool_usage_error(&cmd, "refusing to write binary output to a terminal (use --force)");
		isq_strlist_release(&pos);
		return do_unpack(opt_unpack);
	}
	if (!opt_model)
		isq_tool_usage_error(&cmd, "no model given (-m)");
	if (!opt_type && !opt_input)
		isq_tool_usage_error(&cmd, "no type given (-t or -i)");
	if (opt_input && opt_imatrix)
		isq_tool_usage_error(&cmd, "-i takes the quantized weights as they are; --imatrix belongs to isq-quantize");
	if (!strcmp(opt_output, "-"))
		isq_tool_usage_error(&cmd, "a UQFF output is a directory, not standard output");
	isq_strlist_release(&pos);
	return do_write();
}
