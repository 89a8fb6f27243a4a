/* tune.c - exact GGUF sizes from the plan, fit, recommendation and measured quality. */
#include "tune.h"
#include "convert.h"
#include "hparams.h"
#include "fp.h"
#include "stats.h"

#include <ctype.h>
#include <math.h>

/* ---- names ------------------------------------------------------------------------ */

static const char *const backend_names[] = { "cpu", "cuda", "vulkan" };
static const char *const profile_names[] = { "quality", "balanced", "fast" };
static const char *const fit_names[] = { "fits", "hybrid", "too-large" };
static const char *const quality_names[] = { "baseline", "near-lossless", "good", "acceptable", "degraded" };

const char *isq_tune_backend_name(enum isq_tune_backend b)
{
	return (unsigned)b < ISQ_ARRAY_SIZE(backend_names) ? backend_names[b] : "?";
}

const char *isq_tune_profile_name(enum isq_tune_profile p)
{
	return (unsigned)p < ISQ_ARRAY_SIZE(profile_names) ? profile_names[p] : "?";
}

const char *isq_tune_fit_name(enum isq_tune_fit f)
{
	return (unsigned)f < ISQ_ARRAY_SIZE(fit_names) ? fit_names[f] : "?";
}

const char *isq_tune_quality_name(enum isq_tune_quality q)
{
	return (unsigned)q < ISQ_ARRAY_SIZE(quality_names) ? quality_names[q] : "?";
}

int isq_tune_backend_parse(const char *s, enum isq_tune_backend *b)
{
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(backend_names); i++)
		if (!strcmp(s, backend_names[i])) {
			*b = (enum isq_tune_backend)i;
			return 0;
		}
	return ISQ_EINVAL;
}

int isq_tune_profile_parse(const char *s, enum isq_tune_profile *p)
{
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(profile_names); i++)
		if (!strcmp(s, profile_names[i])) {
			*p = (enum isq_tune_profile)i;
			return 0;
		}
	return ISQ_EINVAL;
}

enum isq_tune_quality isq_tune_quality_of(enum isq_type t)
{
	switch (t) {
	case ISQ_TYPE_F32:
	case ISQ_TYPE_F16:
	case ISQ_TYPE_BF16: return ISQ_TUNE_BASELINE;
	case ISQ_TYPE_Q8_0:
	case ISQ_TYPE_Q8_1:
	case ISQ_TYPE_Q8_K:
	case ISQ_TYPE_AFQ8:
	case ISQ_TYPE_HQQ8: return ISQ_TUNE_NEAR_LOSSLESS;
	case ISQ_TYPE_Q6_K:
	case ISQ_TYPE_AFQ6:
	case ISQ_TYPE_Q5_K:
	case ISQ_TYPE_Q5_0:
	case ISQ_TYPE_Q5_1: return ISQ_TUNE_GOOD;
	case ISQ_TYPE_Q3_K:
	case ISQ_TYPE_AFQ3:
	case ISQ_TYPE_Q2_K:
	case ISQ_TYPE_AFQ2: return ISQ_TUNE_DEGRADED;
	default: return ISQ_TUNE_ACCEPTABLE;
	}
}

const char *isq_tune_mrs_name(enum isq_type t)
{
	switch (t) {
	case ISQ_TYPE_Q4_0: return "Q4_0";
	case ISQ_TYPE_Q4_1: return "Q4_1";
	case ISQ_TYPE_Q5_0: return "Q5_0";
	case ISQ_TYPE_Q5_1: return "Q5_1";
	case ISQ_TYPE_Q8_0: return "Q8_0";
	case ISQ_TYPE_Q8_1: return "Q8_1";
	case ISQ_TYPE_Q2_K: return "Q2K";
	case ISQ_TYPE_Q3_K: return "Q3K";
	case ISQ_TYPE_Q4_K: return "Q4K";
	case ISQ_TYPE_Q5_K: return "Q5K";
	case ISQ_TYPE_Q6_K: return "Q6K";
	case ISQ_TYPE_Q8_K: return "Q8K";
	case ISQ_TYPE_HQQ8: return "HQQ8";
	case ISQ_TYPE_HQQ4: return "HQQ4";
	case ISQ_TYPE_FP8: return "F8E4M3";
	case ISQ_TYPE_AFQ8: return "AFQ8";
	case ISQ_TYPE_AFQ6: return "AFQ6";
	case ISQ_TYPE_AFQ4: return "AFQ4";
	case ISQ_TYPE_AFQ3: return "AFQ3";
	case ISQ_TYPE_AFQ2: return "AFQ2";
	case ISQ_TYPE_F8Q8: return "F8Q8";
	case ISQ_TYPE_MXFP4: return "MXFP4";
	default: return NULL;
	}
}

/* ---- exact sizes ---------------------------------------------------------------------- */

/* isq-quantize's metadata, less its imatrix and -t auto keys */
int isq_tune_gguf_metadata(struct isq_gguf_writer *w, const struct isq_model *m, const struct isq_plan *p,
			   struct isq_errbuf *e)
{
	return isq_convert_gguf_metadata(w, m, p, NULL, e);
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) / a * a;
}

/* The same refusals isq-quantize makes before planning, so a size is never given for a file it would not write. */
static int check_quantizable(const struct isq_model *m, struct isq_errbuf *e)
{
	if (m->format == ISQ_MODEL_SAFETENSORS && (isq_is_dir(m->path) || m->streamed || m->config_rc != ISQ_ENOTFOUND) &&
	    !m->have_config)
		return isq_errbuf_set(e, m->config_rc ? m->config_rc : ISQ_EFORMAT, "%s", m->config_err);
	for (size_t i = 0; i < m->n_tensors; i++) {
		int t = m->tensors[i].type;
		if (t != ISQ_TYPE_F32 && t != ISQ_TYPE_F16 && t != ISQ_TYPE_BF16 && t != ISQ_TYPE_F64 && t != ISQ_TYPE_NONE &&
		    m->tensors[i].n_dims >= 2)
			return isq_errbuf_set(e, ISQ_EUNSUPPORTED,
					      "tensor '%s' is already quantized (%s); isq-quantize needs F32, F16 or BF16 weights",
					      m->tensors[i].name, m->tensors[i].type_name);
	}
	return 0;
}

/* The writer's alignment when the metadata sets none (isq-quantize never copies general.alignment). */
#define ALIGN ISQ_GGUF_DEFAULT_ALIGNMENT

int isq_tune_size(const struct isq_model *m, const struct isq_plan_opts *o, struct isq_tune_size *s,
		  struct isq_errbuf *e)
{
	memset(s, 0, sizeof(*s));
	int rc = check_quantizable(m, e);
	if (rc)
		return rc;
	struct isq_plan p;
	rc = isq_plan_build(m, o, &p, e);
	if (rc)
		return rc;
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	int64_t n_layers = 0;
	for (size_t i = 0; i < p.n; i++)
		n_layers = ISQ_MAX(n_layers, (int64_t)p.entries[i].layer + 1);
	if (m->have_config)
		n_layers = ISQ_MAX(n_layers, m->hp.n_layers);
	s->layer_bytes = calloc((size_t)(n_layers ? n_layers : 1), sizeof(uint64_t));
	if (!w || !s->layer_bytes) {
		rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
		goto out;
	}
	s->n_layers = (int)n_layers;
	rc = isq_tune_gguf_metadata(w, m, &p, e);
	uint64_t tensors = 0;
	for (size_t i = 0; i < p.n && !rc; i++) {
		const struct isq_plan_entry *en = &p.entries[i];
		if (isq_gguf_writer_add_tensor(w, en->name, (uint32_t)en->type, en->n_dims, en->ne)) {
			rc = isq_errbuf_set(e, ISQ_EINVAL, "%s", isq_gguf_writer_errmsg(w));
			break;
		}
		uint64_t padded = align_up(en->nbytes, ALIGN);
		tensors += padded;
		if (en->layer >= 0)
			s->layer_bytes[en->layer] += padded;
		else
			s->global_bytes += padded;
	}
	if (!rc) {
		s->file_bytes = isq_gguf_writer_size(w);
		if (!s->file_bytes || s->file_bytes < tensors)
			rc = isq_errbuf_set(e, ISQ_EINVAL, "cannot lay out the GGUF header");
		s->header_bytes = s->file_bytes - tensors;
		s->params = p.total_params;
		s->n_fallbacks = p.n_fallbacks;
		snprintf(s->label, sizeof(s->label), "%s", p.req.label);
	}
out:
	isq_gguf_writer_free(w);
	isq_plan_release(&p);
	if (rc)
		isq_tune_size_release(s);
	return rc;
}

void isq_tune_size_release(struct isq_tune_size *s)
{
	free(s->layer_bytes);
	s->layer_bytes = NULL;
	s->n_layers = 0;
}

/* ---- fit ------------------------------------------------------------------------------- */

/* The type the linear weights are stored in: what "no quantization" writes. */
static enum isq_type source_type(const struct isq_model *m)
{
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct isq_model_tensor *t = &m->tensors[i];
		size_t l = strlen(t->name);
		if (t->n_dims >= 2 && l >= 6 && !strcmp(t->name + l - 6, "weight")) {
			if (t->type == ISQ_TYPE_F16 || t->type == ISQ_TYPE_BF16 || t->type == ISQ_TYPE_F32)
				return (enum isq_type)t->type;
			if (t->type == ISQ_TYPE_F64)
				return ISQ_TYPE_F32;
		}
	}
	return ISQ_TYPE_F16;
}

static void add_msg(char (*list)[192], int *n, int cap, const char *fmt, ...) ISQ_PRINTF(4, 5);
static void add_msg(char (*list)[192], int *n, int cap, const char *fmt, ...)
{
	if (*n >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(list[*n], 192, fmt, ap);
	va_end(ap);
	(*n)++;
}

struct kv_model {
	int64_t n_layers;
	uint64_t per_token_layer; /* bytes of K and V for one token in one layer */
	int64_t window;           /* sliding window, 0 = none */
	int alternate;            /* gemma2: only even layers slide */
};

static int layer_slides(const struct kv_model *k, int64_t i)
{
	return k->window > 0 && (!k->alternate || i % 2 == 0);
}

static uint64_t kv_layer_bytes(const struct kv_model *k, int64_t i, int64_t ctx)
{
	int64_t tokens = layer_slides(k, i) ? ISQ_MIN(ctx, k->window) : ctx;
	return k->per_token_layer * (uint64_t)tokens;
}

/* Scores for one micro-batch of 512 tokens, its hidden states and MLP activations, and the logits. */
static uint64_t activation_bytes(const struct isq_hparams *hp, int64_t ctx)
{
	uint64_t ub = (uint64_t)ISQ_MIN(ctx, (int64_t)512);
	uint64_t ff = (uint64_t)(hp->n_experts && hp->moe_intermediate_size ? hp->moe_intermediate_size
									     : hp->intermediate_size);
	uint64_t per_tok = 4 * (uint64_t)hp->hidden_size + 3 * ff + (uint64_t)hp->vocab_size;
	return 4 * ub * per_tok + 4 * (uint64_t)hp->n_heads * ub * (uint64_t)ctx;
}

static void judge(struct isq_tune_candidate *c, const struct isq_tune_report *r, const struct kv_model *k)
{
	const struct isq_tune_memory *mem = &r->mem;
	const struct isq_tune_size *s = &c->size;
	uint64_t fixed = s->header_bytes + s->global_bytes + r->act_bytes;
	uint64_t need = s->file_bytes + r->kv_bytes + r->act_bytes;
	uint64_t avail;
	c->device_layers = -1;
	if (mem->have_device) {
		uint64_t reserve = ISQ_MAX(mem->device_free / 50, (uint64_t)512 << 20);
		avail = mem->device_free > reserve ? mem->device_free - reserve : 0;
		c->vram_fraction = mem->device_total ? (double)s->file_bytes / (double)mem->device_total : 1.0;
		/* non-layer tensors on the device first, then whole layers with their KV while they fit */
		uint64_t used = fixed;
		int placed = 0;
		if (used <= avail)
			for (int64_t i = 0; i < s->n_layers; i++) {
				uint64_t l = s->layer_bytes[i] + kv_layer_bytes(k, i, r->ctx);
				if (used + l > avail)
					break;
				used += l;
				placed++;
			}
		if (fixed <= avail && placed == s->n_layers) {
			c->fit = ISQ_TUNE_FITS;
		} else if (need <= avail + mem->ram_free) {
			c->fit = ISQ_TUNE_HYBRID;
			c->device_layers = placed;
		} else {
			c->fit = ISQ_TUNE_TOO_LARGE;
		}
	} else {
		avail = mem->ram_free;
		c->vram_fraction = mem->ram_total ? (double)s->file_bytes / (double)mem->ram_total : 1.0;
		c->fit = need <= avail ? ISQ_TUNE_FITS : ISQ_TUNE_TOO_LARGE;
	}
	/* context room: what is left after the weights, activations and the windows of sliding layers */
	uint64_t per_token = 0, fixed_kv = 0;
	for (int64_t i = 0; i < k->n_layers; i++) {
		if (layer_slides(k, i))
			fixed_kv += k->per_token_layer * (uint64_t)k->window;
		else
			per_token += k->per_token_layer;
	}
	uint64_t taken = s->file_bytes + r->act_bytes + fixed_kv;
	uint64_t room = 0;
	if (avail > taken)
		room = per_token ? (avail - taken) / per_token : UINT64_MAX;
	uint64_t maxpos = r->max_position > 0 ? (uint64_t)r->max_position : UINT64_MAX;
	c->context_is_model_max = avail > taken && room >= maxpos;
	c->max_context = ISQ_MIN(room, maxpos);
	if (c->max_context == UINT64_MAX)
		c->max_context = 0;
}

static const char *const profile_types[3][7] = {
	{ "q8_0", "q6_k", "q5_k", "q4_k", "q3_k", "q2_k", NULL },
	{ "q6_k", "q5_k", "q4_k", "q3_k", NULL },
	{ "q4_k", "q3_k", "q2_k", NULL },
};
static const char *const default_candidates[] = { "q8_0", "q6_k", "q5_k", "q4_k", "q3_k", "q2_k" };

static int find_label(const struct isq_tune_report *r, const char *label)
{
	for (size_t i = 0; i < r->n; i++)
		if (!r->c[i].is_none && !strcmp(r->c[i].label, label))
			return (int)i;
	return -1;
}

static int add_candidate(const struct isq_model *m, const char *type, int is_none,
			 const struct isq_tune_opts *o, struct isq_tune_report *r, const struct kv_model *k,
			 struct isq_errbuf *e)
{
	struct isq_tune_candidate *c = &r->c[r->n];
	memset(c, 0, sizeof(*c));
	struct isq_plan_opts po = { .type = type, .format = ISQ_FORMAT_GGUF, .target = o->target };
	int rc = isq_tune_size(m, &po, &c->size, e);
	if (rc)
		return rc;
	struct isq_type_request req;
	struct isq_errbuf e2 = { 0 };
	isq_type_request_parse(type, o->target, &req, &e2);
	c->is_none = is_none;
	c->type = req.type;
	snprintf(c->label, sizeof(c->label), "%s", c->size.label);
	const char *mrs = req.mixture ? NULL : isq_tune_mrs_name(req.type);
	if (is_none) {
		char up[16];
		size_t i;
		for (i = 0; c->label[i] && i + 1 < sizeof(up); i++)
			up[i] = (char)toupper((unsigned char)c->label[i]);
		up[i] = '\0';
		snprintf(c->isq_name, sizeof(c->isq_name), "None (%s)", up);
	} else {
		if (mrs) {
			snprintf(c->isq, sizeof(c->isq), "%s", mrs);
		} else {
			size_t i;
			for (i = 0; c->label[i] && i + 1 < sizeof(c->isq); i++)
				c->isq[i] = (char)toupper((unsigned char)c->label[i]);
			c->isq[i] = '\0';
		}
		snprintf(c->isq_name, sizeof(c->isq_name), "%s", c->isq);
	}
	c->quality = isq_tune_quality_of(req.type);
	c->measured_error = -1;
	judge(c, r, k);
	r->n++;
	return 0;
}

static int hparams_of(const struct isq_model *m, struct isq_hparams *hp, struct isq_errbuf *e)
{
	if (m->have_config) {
		*hp = m->hp;
		return 0;
	}
	if (m->gguf) {
		int rc = isq_hparams_from_gguf(m->gguf, hp, e);
		return rc ? isq_errbuf_prefix(e, "GGUF metadata") : 0;
	}
	return isq_errbuf_set(e, ISQ_EFORMAT, "no config.json beside the weights (the layer shapes are needed)");
}

int isq_tune_run(const struct isq_model *m, const struct isq_tune_opts *o, const struct isq_tune_memory *mem,
		 struct isq_tune_report *r, struct isq_errbuf *e)
{
	memset(r, 0, sizeof(*r));
	r->recommended = -1;
	r->mem = *mem;
	r->profile = o->profile;
	r->target = o->target;
	if (o->ctx < 0)
		return isq_errbuf_set(e, ISQ_EINVAL, "context length %lld is negative", (long long)o->ctx);
	int rc = check_quantizable(m, e);
	if (rc)
		return rc;
	struct isq_hparams hp;
	if ((rc = hparams_of(m, &hp, e)))
		return rc;
	r->max_position = hp.max_position_embeddings;
	r->ctx = o->ctx ? o->ctx : hp.max_position_embeddings > 0 ? ISQ_MIN((int64_t)4096, hp.max_position_embeddings) : 4096;
	if (hp.max_position_embeddings > 0 && r->ctx > hp.max_position_embeddings)
		add_msg(r->notes, &r->n_notes, 8, "context %lld is beyond the model's %lld positions", (long long)r->ctx,
			(long long)hp.max_position_embeddings);

	struct kv_model k = { .n_layers = hp.n_layers, .window = hp.sliding_window,
			      .alternate = hp.arch == ISQ_ARCH_GEMMA2 };
	k.per_token_layer = (uint64_t)hp.n_kv_heads * (uint64_t)hp.head_dim * 2 /* K and V */ * 2 /* F16 */;
	for (int64_t i = 0; i < k.n_layers; i++) {
		r->kv_bytes += kv_layer_bytes(&k, i, r->ctx);
		if (!layer_slides(&k, i))
			r->kv_bytes_per_token += k.per_token_layer;
	}
	r->act_bytes = activation_bytes(&hp, r->ctx);

	r->c = calloc(ISQ_ARRAY_SIZE(default_candidates) + 1 + (size_t)(o->n_types > 0 ? o->n_types : 0), sizeof(*r->c));
	if (!r->c)
		return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	rc = add_candidate(m, isq_type_name(source_type(m)), 1, o, r, &k, e);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(default_candidates) && !rc; i++)
		rc = add_candidate(m, default_candidates[i], 0, o, r, &k, e);
	/* -t types: resolved first so that "Q4K" and "q4_k" are one candidate */
	int pref[64], n_pref = 0;
	for (int i = 0; i < o->n_types && !rc; i++) {
		struct isq_type_request req;
		if ((rc = isq_type_request_parse(o->types[i], o->target, &req, e)))
			break;
		int at = find_label(r, req.label);
		if (at < 0) {
			rc = add_candidate(m, o->types[i], 0, o, r, &k, e);
			at = rc ? -1 : (int)r->n - 1;
		}
		if (at >= 0 && n_pref < (int)ISQ_ARRAY_SIZE(pref))
			pref[n_pref++] = at;
	}
	if (rc) {
		isq_tune_report_release(r);
		return rc;
	}
	if (!o->n_types)
		for (const char *const *t = profile_types[o->profile]; *t; t++)
			pref[n_pref++] = find_label(r, *t);

	int pick = -1;
	if (o->profile == ISQ_TUNE_QUALITY && !o->n_types && r->c[0].fit == ISQ_TUNE_FITS)
		pick = 0;
	if (o->profile == ISQ_TUNE_QUALITY) {
		for (int i = 0; i < n_pref && pick < 0; i++)
			if (r->c[pref[i]].fit != ISQ_TUNE_TOO_LARGE)
				pick = pref[i];
	} else {
		for (int pass = 0; pass < 2 && pick < 0; pass++)
			for (int i = 0; i < n_pref && pick < 0; i++)
				if (r->c[pref[i]].fit == (pass ? ISQ_TUNE_HYBRID : ISQ_TUNE_FITS))
					pick = pref[i];
	}
	for (int pass = 0; pass < 2 && pick < 0; pass++)
		for (size_t i = 0; i < r->n && pick < 0; i++)
			if (r->c[i].fit == (pass ? ISQ_TUNE_HYBRID : ISQ_TUNE_FITS))
				pick = (int)i;
	r->recommended = pick;
	if (pick >= 0)
		r->c[pick].recommended = 1;
	else
		add_msg(r->warnings, &r->n_warnings, 8, "no quantization fits: even %s needs %.2f GB",
			r->c[r->n - 1].isq_name, (double)(r->c[r->n - 1].size.file_bytes + r->kv_bytes + r->act_bytes) / 1e9);
	for (size_t i = 1; i < r->n; i++)
		if (r->c[i].fit == ISQ_TUNE_TOO_LARGE)
			add_msg(r->warnings, &r->n_warnings, 8, "%s (%.2f GB) exceeds available %s", r->c[i].isq_name,
				(double)r->c[i].size.file_bytes / 1e9, mem->have_device ? "VRAM" : "RAM");
	if (mem->note[0])
		add_msg(r->notes, &r->n_notes, 8, "%s; sized for CPU memory", mem->note);
	if (hp.n_experts)
		add_msg(r->notes, &r->n_notes, 8, "mixture of experts: %lld experts, %lld used per token",
			(long long)hp.n_experts, (long long)hp.n_experts_used);
	return 0;
}

void isq_tune_report_release(struct isq_tune_report *r)
{
	for (size_t i = 0; i < r->n; i++)
		isq_tune_size_release(&r->c[i].size);
	free(r->c);
	r->c = NULL;
	r->n = 0;
}

int isq_tune_recommend(const struct isq_model *m, enum isq_target target, char *type, size_t n, struct isq_errbuf *e)
{
	enum isq_tune_backend b = target == ISQ_TARGET_CUDA ? ISQ_TUNE_CUDA
				  : target == ISQ_TARGET_VULKAN ? ISQ_TUNE_VULKAN
								: ISQ_TUNE_CPU;
	struct isq_tune_memory mem;
	int rc = isq_tune_memory_probe(b, 0, &mem, e);
	if (rc)
		return rc;
	struct isq_tune_opts o = { .profile = ISQ_TUNE_BALANCED, .target = target };
	struct isq_tune_report r;
	if ((rc = isq_tune_run(m, &o, &mem, &r, e)))
		return rc;
	if (r.recommended < 0)
		rc = isq_errbuf_set(e, ISQ_ENOTFOUND, "%s", r.warnings[0]);
	else
		snprintf(type, n, "%s", r.c[r.recommended].label);
	isq_tune_report_release(&r);
	return rc;
}

/* ---- measured quality ---------------------------------------------------------------- */

enum isq_tune_quality isq_tune_quality_of_error(double rel_rmse)
{
	if (rel_rmse <= 0)
		return ISQ_TUNE_BASELINE;
	if (rel_rmse <= 0.01)
		return ISQ_TUNE_NEAR_LOSSLESS;
	if (rel_rmse <= 0.04)
		return ISQ_TUNE_GOOD;
	if (rel_rmse <= 0.08)
		return ISQ_TUNE_ACCEPTABLE;
	return ISQ_TUNE_DEGRADED;
}

/*
 * Every candidate's plan has the same entries in the same order (the same
 * model, only the types differ), so each sampled row is read and widened
 * once and then quantized to each candidate's type for that tensor.
 */
struct measure_job {
	const struct isq_model *m;
	struct isq_tune_report *r;
	struct isq_plan *plans;  /* one per candidate */
	size_t n_entries;
	int rows;
	double *err, *ref;       /* [entry][candidate], summed in a fixed order afterwards */
	struct isq_errbuf *errs; /* per entry */
};

static int encode_decode(enum isq_type t, const float *x, uint8_t *q, float *y, int64_t n, struct isq_errbuf *e)
{
	switch (t) {
	case ISQ_TYPE_F32:
		memcpy(y, x, (size_t)n * sizeof(float));
		return 0;
	case ISQ_TYPE_F16:
		isq_fp32_to_fp16_row(x, (uint16_t *)(void *)q, (size_t)n);
		break;
	case ISQ_TYPE_BF16:
		isq_fp32_to_bf16_row(x, (uint16_t *)(void *)q, (size_t)n);
		break;
	default: {
		int rc = isq_quantize(t, x, q, 1, n, NULL, NULL, e);
		if (rc)
			return rc;
	}
	}
	return isq_decode_to_float(t, q, y, (uint64_t)n) ? isq_errbuf_set(e, ISQ_EINVAL, "cannot decode %s", isq_type_name(t))
							 : 0;
}

static void measure_entries(void *ctx, int64_t begin, int64_t end, int worker)
{
	struct measure_job *j = ctx;
	size_t nc = j->r->n;
	for (int64_t ei = begin; ei < end; ei++) {
		const struct isq_plan_entry *en = &j->plans[0].entries[ei];
		struct isq_errbuf *e = &j->errs[ei];
		if (!en->quantize)
			continue;
		int64_t row_len = en->ne[0];
		int64_t per_src = en->n_src > 1 ? en->ne[1] : en->ne[1] * en->ne[2] * en->ne[3];
		int64_t total = per_src * en->n_src, k = ISQ_MIN((int64_t)j->rows, total);
		double scale = (double)total / (double)k;
		float *x = malloc((size_t)(k * row_len) * sizeof(float)), *y = malloc((size_t)row_len * sizeof(float));
		uint8_t *q = malloc((size_t)row_len * 8 + 1024); /* more than any type's row */
		int rc = x && y && q ? 0 : isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
		for (int64_t i = 0; i < k && !rc; i++) {
			/* evenly spaced over all rows; for stacked experts, over every expert */
			int64_t g = i * total / k;
			const struct isq_model_tensor *t = &j->m->tensors[en->n_src > 1 ? en->srcs[g / per_src] : en->src];
			if (isq_tensor_rows_to_f32(t, g % per_src, 1, x + i * row_len))
				rc = isq_errbuf_set(e, ISQ_EINVAL, "tensor '%s': cannot decode source type %s", en->src_name,
						    t->type_name);
		}
		for (size_t ci = 0; ci < nc && !rc; ci++) {
			enum isq_type type = j->plans[ci].entries[ei].type;
			double es = 0, rs = 0;
			for (int64_t i = 0; i < k && !rc; i++) {
				const float *xr = x + i * row_len;
				if ((rc = encode_decode(type, xr, q, y, row_len, e))) {
					isq_errbuf_prefix(e, "tensor '%s'", en->name);
					break;
				}
				for (int64_t c = 0; c < row_len; c++) {
					double d = (double)xr[c] - (double)y[c];
					es += d * d;
					rs += (double)xr[c] * (double)xr[c];
				}
			}
			j->err[(size_t)ei * nc + ci] = es * scale;
			j->ref[(size_t)ei * nc + ci] = rs * scale;
		}
		free(x);
		free(y);
		free(q);
	}
	(void)worker;
}

int isq_tune_measure(const struct isq_model *m, struct isq_tune_report *r, int rows, struct isq_pool *pool,
		     struct isq_errbuf *e)
{
	isq_types_init();
	struct measure_job j = { .m = m, .r = r, .rows = rows < 1 ? 1 : rows };
	size_t built = 0;
	int rc = 0;
	j.plans = calloc(r->n ? r->n : 1, sizeof(*j.plans));
	if (!j.plans)
		return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	for (; built < r->n && !rc; built++) {
		struct isq_plan_opts po = { .type = r->c[built].label, .format = ISQ_FORMAT_GGUF, .target = r->target };
		rc = isq_plan_build(m, &po, &j.plans[built], e);
		if (rc)
			break;
		if (j.plans[built].n != j.plans[0].n)
			rc = isq_errbuf_set(e, ISQ_EINVAL, "the plans for %s and %s list different tensors", r->c[0].label,
					    r->c[built].label);
	}
	j.n_entries = r->n ? j.plans[0].n : 0;
	if (!rc) {
		j.err = calloc(j.n_entries * r->n + 1, sizeof(double));
		j.ref = calloc(j.n_entries * r->n + 1, sizeof(double));
		j.errs = calloc(j.n_entries + 1, sizeof(*j.errs));
		if (!j.err || !j.ref || !j.errs)
			rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	}
	if (!rc)
		isq_pool_for(pool, (int64_t)j.n_entries, 1, measure_entries, &j);
	for (size_t i = 0; i < j.n_entries && !rc; i++)
		if (j.errs[i].code) {
			rc = j.errs[i].code;
			*e = j.errs[i];
		}
	for (size_t ci = 0; ci < r->n && !rc; ci++) {
		double err = 0, ref = 0;
		for (size_t i = 0; i < j.n_entries; i++) {
			err += j.err[i * r->n + ci];
			ref += j.ref[i * r->n + ci];
		}
		struct isq_tune_candidate *c = &r->c[ci];
		c->measured_error = ref > 0 ? sqrt(err / ref) : 0;
		c->quality = c->is_none ? ISQ_TUNE_BASELINE : isq_tune_quality_of_error(c->measured_error);
	}
	for (size_t i = 0; i < built && i < r->n; i++)
		isq_plan_release(&j.plans[i]);
	free(j.plans);
	free(j.err);
	free(j.ref);
	free(j.errs);
	return rc;
}
