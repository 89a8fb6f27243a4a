/* plan.c - per-tensor type decisions shared by isq-quantize and isq-tune. */
#include "plan.h"

#include "mrs.h"
#include "topology.h"

#include <ctype.h>
#include <regex.h>

/* ---- -t parsing --------------------------------------------------------------- */

static const struct {
	const char *name;
	enum isq_mixture mix;
	enum isq_type base;
	uint32_t ftype;
} mixtures[] = {
	{ "q2_k_m", ISQ_MIX_Q2_K_M, ISQ_TYPE_Q2_K, 10 },
	{ "q3_k_s", ISQ_MIX_Q3_K_S, ISQ_TYPE_Q3_K, 11 },
	{ "q3_k_m", ISQ_MIX_Q3_K_M, ISQ_TYPE_Q3_K, 12 },
	{ "q3_k_l", ISQ_MIX_Q3_K_L, ISQ_TYPE_Q3_K, 13 },
	{ "q4_k_s", ISQ_MIX_Q4_K_S, ISQ_TYPE_Q4_K, 14 },
	{ "q4_k_m", ISQ_MIX_Q4_K_M, ISQ_TYPE_Q4_K, 15 },
	{ "q5_k_s", ISQ_MIX_Q5_K_S, ISQ_TYPE_Q5_K, 16 },
	{ "q5_k_m", ISQ_MIX_Q5_K_M, ISQ_TYPE_Q5_K, 17 },
};

uint32_t isq_ftype_of(enum isq_type t)
{
	switch (t) {
	case ISQ_TYPE_F32: return 0;
	case ISQ_TYPE_F16: return 1;
	case ISQ_TYPE_Q4_0: return 2;
	case ISQ_TYPE_Q4_1: return 3;
	case ISQ_TYPE_Q8_0: return 7;
	case ISQ_TYPE_Q5_0: return 8;
	case ISQ_TYPE_Q5_1: return 9;
	case ISQ_TYPE_Q2_K: return 10;
	case ISQ_TYPE_Q3_K: return 12; /* llama-quantize labels pure Q3_K files Q3_K_M */
	case ISQ_TYPE_Q4_K: return 15;
	case ISQ_TYPE_Q5_K: return 17;
	case ISQ_TYPE_Q6_K: return 18;
	case ISQ_TYPE_IQ4_NL: return 25;
	case ISQ_TYPE_IQ4_XS: return 30;
	case ISQ_TYPE_BF16: return 32;
	case ISQ_TYPE_MXFP4: return 38;
	default: return 1024; /* LLAMA_FTYPE_GUESSED: no llama_ftype names this type */
	}
}

static int name_ieq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
			return 0;
	return *a == *b;
}

int isq_target_parse(const char *s, enum isq_target *t)
{
	static const char *const names[] = { "cpu", "cuda", "vulkan", "metal" };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i])) {
			*t = (enum isq_target)i;
			return 0;
		}
	return -1;
}

int isq_type_request_parse(const char *s, enum isq_target target, struct isq_type_request *r,
			   struct isq_errbuf *e)
{
	memset(r, 0, sizeof(*r));
	r->alt_type = ISQ_TYPE_NONE;
	if (!s || !*s)
		return isq_errbuf_set(e, ISQ_EINVAL, "no type given");
	if (name_ieq(s, "auto"))
		return isq_errbuf_set(e, ISQ_EUNSUPPORTED, "type 'auto' needs isq-tune's recommendation");
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(mixtures); i++)
		if (name_ieq(s, mixtures[i].name)) {
			r->type = mixtures[i].base;
			r->mixture = mixtures[i].mix;
			r->ftype = mixtures[i].ftype;
			snprintf(r->label, sizeof(r->label), "%s", mixtures[i].name);
			return 0;
		}
	if (s[0] >= '2' && s[0] <= '8' && s[1] == '\0' && s[0] != '7') {
		static const enum isq_type qk[] = { ISQ_TYPE_Q2_K, ISQ_TYPE_Q3_K, ISQ_TYPE_Q4_K, ISQ_TYPE_Q5_K,
						    ISQ_TYPE_Q6_K, ISQ_TYPE_NONE, ISQ_TYPE_Q8_0 };
		static const enum isq_type afq[] = { ISQ_TYPE_AFQ2, ISQ_TYPE_AFQ3, ISQ_TYPE_AFQ4, ISQ_TYPE_Q5_K,
						     ISQ_TYPE_AFQ6, ISQ_TYPE_NONE, ISQ_TYPE_AFQ8 };
		int i = s[0] - '2';
		r->shorthand = s[0] - '0';
		r->type = target == ISQ_TARGET_METAL ? afq[i] : qk[i];
		/* mistral.rs writes both variants of a shorthand into UQFF; 5 has only Q5_K */
		enum isq_type other = target == ISQ_TARGET_METAL ? qk[i] : afq[i];
		r->alt_type = other != r->type ? other : ISQ_TYPE_NONE;
		r->ftype = isq_ftype_of(r->type);
		snprintf(r->label, sizeof(r->label), "%s", isq_type_name(r->type));
		return 0;
	}
	enum isq_type t;
	const char *suggest = NULL;
	if (isq_type_parse(s, &t, &suggest)) {
		int best = 3;
		const char *mix = NULL;
		for (size_t i = 0; i < ISQ_ARRAY_SIZE(mixtures); i++) {
			int d = isq_edit_distance(s, mixtures[i].name);
			if (d < best) {
				best = d;
				mix = mixtures[i].name;
			}
		}
		if (mix && (!suggest || best < isq_edit_distance(s, suggest)))
			suggest = mix;
		if (suggest)
			return isq_errbuf_set(e, ISQ_EINVAL, "unknown type '%s' (did you mean '%s'?)", s, suggest);
		return isq_errbuf_set(e, ISQ_EINVAL, "unknown type '%s' (see isq-types(7))", s);
	}
	const struct isq_type_traits *tt = isq_type_traits(t);
	if (!tt->is_quantized && t != ISQ_TYPE_F32 && t != ISQ_TYPE_F16 && t != ISQ_TYPE_BF16)
		return isq_errbuf_set(e, ISQ_EINVAL, "'%s' is not a type weights can be stored in", s);
	if (tt->is_quantized && !tt->quantize && tt->type < ISQ_TYPE_FIRST_EXT)
		return isq_errbuf_set(e, ISQ_EUNSUPPORTED, "type '%s' cannot be quantized to (isq reads it, but has no encoder)",
				      tt->name);
	r->type = t;
	r->ftype = isq_ftype_of(t);
	snprintf(r->label, sizeof(r->label), "%s", tt->name);
	return 0;
}

/* ---- model facts the rules need ------------------------------------------------ */

struct facts {
	int have_arch;      /* names are mapped to GGUF (HF with config, or GGUF input) */
	int hf_names;       /* source names are HF names */
	int tied;
	int permute;        /* llama-arch GGUF from HF: permute Q/K rows */
	int64_t n_layers, n_heads, n_kv_heads;
};

static int64_t gguf_arch_u64(const struct isq_gguf *g, const char *arch, const char *suffix, int64_t dflt)
{
	char key[160];
	uint64_t v;
	snprintf(key, sizeof(key), "%s.%s", arch, suffix);
	return isq_gguf_get_u64(g, key, &v) == 0 ? (int64_t)v : dflt;
}

static void gather_facts(const struct isq_model *m, struct facts *f)
{
	memset(f, 0, sizeof(*f));
	if (m->format == ISQ_MODEL_GGUF) {
		f->have_arch = m->arch[0] != '\0';
		f->tied = isq_model_find(m, "output.weight") == NULL;
		if (f->have_arch) {
			f->n_layers = gguf_arch_u64(m->gguf, m->arch, "block_count", 0);
			f->n_heads = gguf_arch_u64(m->gguf, m->arch, "attention.head_count", 0);
			f->n_kv_heads = gguf_arch_u64(m->gguf, m->arch, "attention.head_count_kv", f->n_heads);
		}
		return;
	}
	if (m->have_config) {
		f->have_arch = 1;
		f->hf_names = 1;
		f->tied = m->hp.tie_word_embeddings;
		f->permute = m->hp.gguf_arch && !strcmp(m->hp.gguf_arch, "llama");
		f->n_layers = m->hp.n_layers;
		f->n_heads = m->hp.n_heads;
		f->n_kv_heads = m->hp.n_kv_heads;
	}
}

/* ---- type rules ------------------------------------------------------------------ */

static enum isq_type promote(enum isq_type t)
{
	switch (t) {
	case ISQ_TYPE_AFQ2:
	case ISQ_TYPE_AFQ3:
	case ISQ_TYPE_AFQ4: return ISQ_TYPE_AFQ6;
	case ISQ_TYPE_AFQ6:
	case ISQ_TYPE_AFQ8: return ISQ_TYPE_AFQ8;
	case ISQ_TYPE_Q2_K:
	case ISQ_TYPE_Q3_K:
	case ISQ_TYPE_Q4_K:
	case ISQ_TYPE_Q4_0:
	case ISQ_TYPE_Q4_1: return ISQ_TYPE_Q6_K;
	case ISQ_TYPE_Q5_K:
	case ISQ_TYPE_Q6_K:
	case ISQ_TYPE_Q8_K:
	case ISQ_TYPE_Q5_0:
	case ISQ_TYPE_Q5_1:
	case ISQ_TYPE_Q8_0:
	case ISQ_TYPE_Q8_1: return ISQ_TYPE_Q8_0;
	default: return t;
	}
}

/* llama.cpp's use_more_bits(i, n): the first and last eighth, and every third layer between. */
static int more_bits(int64_t i, int64_t n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

static enum isq_type mixture_rule(enum isq_mixture mix, enum isq_type base, enum isq_tensor_role role, int64_t i,
				  const struct facts *f)
{
	int64_t n = f->n_layers > 0 ? f->n_layers : 1;
	int64_t gqa = f->n_kv_heads > 0 ? f->n_heads / f->n_kv_heads : 1;
	switch (role) {
	case ISQ_ROLE_OUTPUT:
		return ISQ_TYPE_Q6_K;
	case ISQ_ROLE_TOKEN_EMBD:
		return f->tied ? ISQ_TYPE_Q6_K : base;
	case ISQ_ROLE_ATTN_V:
		switch (mix) {
		case ISQ_MIX_Q2_K_M: return gqa >= 4 ? ISQ_TYPE_Q4_K : ISQ_TYPE_Q3_K;
		case ISQ_MIX_Q3_K_M: return i < 2 ? ISQ_TYPE_Q5_K : ISQ_TYPE_Q4_K;
		case ISQ_MIX_Q3_K_L: return ISQ_TYPE_Q5_K;
		case ISQ_MIX_Q4_K_S: return i < 4 ? ISQ_TYPE_Q5_K : base;
		case ISQ_MIX_Q4_K_M:
		case ISQ_MIX_Q5_K_M: return more_bits(i, n) ? ISQ_TYPE_Q6_K : base;
		default: return base;
		}
	case ISQ_ROLE_FFN_DOWN:
		switch (mix) {
		case ISQ_MIX_Q2_K_M: return ISQ_TYPE_Q3_K;
		case ISQ_MIX_Q3_K_M: return i < n / 16 ? ISQ_TYPE_Q5_K : ISQ_TYPE_Q4_K;
		case ISQ_MIX_Q3_K_L: return ISQ_TYPE_Q5_K;
		case ISQ_MIX_Q4_K_S: return i < n / 8 ? ISQ_TYPE_Q5_K : base;
		case ISQ_MIX_Q4_K_M:
		case ISQ_MIX_Q5_K_M: return more_bits(i, n) ? ISQ_TYPE_Q6_K : base;
		default: return base;
		}
	case ISQ_ROLE_ATTN_OUTPUT:
		switch (mix) {
		case ISQ_MIX_Q2_K_M: return ISQ_TYPE_Q3_K;
		case ISQ_MIX_Q3_K_M: return ISQ_TYPE_Q4_K;
		case ISQ_MIX_Q3_K_L: return ISQ_TYPE_Q5_K;
		default: return base;
		}
	case ISQ_ROLE_ATTN_QKV:
		switch (mix) {
		case ISQ_MIX_Q3_K_M:
		case ISQ_MIX_Q3_K_L: return ISQ_TYPE_Q4_K;
		case ISQ_MIX_Q4_K_M: return ISQ_TYPE_Q5_K;
		case ISQ_MIX_Q5_K_M: return ISQ_TYPE_Q6_K;
		default: return base;
		}
	default:
		return base;
	}
}

static int is_mrs_only(enum isq_type t)
{
	return t >= ISQ_TYPE_FIRST_EXT;
}

/* Does a tensor with this row length / element count fit type t? */
static int fits(enum isq_type t, int64_t row, uint64_t numel, int stacked)
{
	const struct isq_type_traits *tt = isq_type_traits(t);
	if (!tt)
		return 0;
	if (t == ISQ_TYPE_HQQ4 || t == ISQ_TYPE_HQQ8)
		return !stacked && numel % 64 == 0;
	if ((t == ISQ_TYPE_FP8 || t == ISQ_TYPE_F8Q8) && stacked)
		return 0;
	if (t == ISQ_TYPE_F8Q8)
		return 1; /* pads the flattened tensor to 32 */
	return tt->blck > 0 && row % tt->blck == 0;
}

static enum isq_type sixteen_bit(enum isq_type src)
{
	return src == ISQ_TYPE_BF16 ? ISQ_TYPE_BF16 : ISQ_TYPE_F16;
}

/* One step of the shape fallback chain (corrections.md, [4/9]). */
static enum isq_type fallback_step(enum isq_type t, int64_t row, enum isq_type src)
{
	switch (t) {
	case ISQ_TYPE_IQ4_XS: return ISQ_TYPE_IQ4_NL;
	case ISQ_TYPE_Q2_K:
	case ISQ_TYPE_Q3_K: return ISQ_TYPE_Q4_0;
	case ISQ_TYPE_Q4_K: return ISQ_TYPE_Q5_0;
	case ISQ_TYPE_Q5_K: return ISQ_TYPE_Q5_1;
	case ISQ_TYPE_Q6_K:
	case ISQ_TYPE_Q8_K: return ISQ_TYPE_Q8_0;
	default:
		if (is_mrs_only(t) && row % 32 == 0)
			return ISQ_TYPE_Q8_0;
		return sixteen_bit(src);
	}
}

static int check_format(enum isq_type t, enum isq_out_format fmt, const char *name, struct isq_errbuf *e)
{
	const struct isq_type_traits *tt = isq_type_traits(t);
	if (fmt == ISQ_FORMAT_GGUF && tt->ggml_id < 0)
		return isq_errbuf_set(e, ISQ_EINVAL,
				      "tensor '%s': type '%s' has no GGML type id and cannot be stored in GGUF (use --format uqff)",
				      name, tt->name);
	if (fmt == ISQ_FORMAT_UQFF && (t == ISQ_TYPE_IQ4_NL || t == ISQ_TYPE_IQ4_XS))
		return isq_errbuf_set(e, ISQ_EINVAL,
				      "tensor '%s': type '%s' cannot be stored in UQFF, which mistral.rs would refuse (use --format gguf)",
				      name, tt->name);
	return 0;
}

/* ---- overrides --------------------------------------------------------------------- */

struct override {
	regex_t re;
	enum isq_type type;
};

static int parse_overrides(const struct isq_strlist *l, struct override **out, int *n, struct isq_errbuf *e)
{
	*out = NULL;
	*n = 0;
	if (!l || !l->n)
		return 0;
	struct override *ov = calloc((size_t)l->n, sizeof(*ov));
	if (!ov)
		return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	for (int i = 0; i < l->n; i++) {
		const char *s = l->items[i], *eq = strrchr(s, '=');
		if (!eq || eq == s || !eq[1]) {
			*out = ov;
			*n = i;
			return isq_errbuf_set(e, ISQ_EINVAL, "--tensor-type '%s': expected REGEX=TYPE", s);
		}
		char pat[512];
		snprintf(pat, sizeof(pat), "%.*s", (int)(eq - s), s);
		const char *suggest = NULL;
		if (isq_type_parse(eq + 1, &ov[i].type, &suggest)) {
			*out = ov;
			*n = i;
			if (suggest)
				return isq_errbuf_set(e, ISQ_EINVAL, "--tensor-type '%s': unknown type '%s' (did you mean '%s'?)", s,
						      eq + 1, suggest);
			return isq_errbuf_set(e, ISQ_EINVAL, "--tensor-type '%s': unknown type '%s'", s, eq + 1);
		}
		if (regcomp(&ov[i].re, pat, REG_EXTENDED | REG_NOSUB)) {
			*out = ov;
			*n = i;
			return isq_errbuf_set(e, ISQ_EINVAL, "--tensor-type '%s': bad regular expression '%s'", s, pat);
		}
	}
	*out = ov;
	*n = l->n;
	return 0;
}

static void free_overrides(struct override *ov, int n)
{
	for (int i = 0; i < n; i++)
		regfree(&ov[i].re);
	free(ov);
}

/* ---- building ---------------------------------------------------------------------- */

static int is_linear_role(enum isq_tensor_role r)
{
	switch (r) {
	case ISQ_ROLE_TOKEN_EMBD:
	case ISQ_ROLE_OUTPUT:
	case ISQ_ROLE_ATTN_Q:
	case ISQ_ROLE_ATTN_K:
	case ISQ_ROLE_ATTN_V:
	case ISQ_ROLE_ATTN_OUTPUT:
	case ISQ_ROLE_ATTN_QKV:
	case ISQ_ROLE_FFN_GATE:
	case ISQ_ROLE_FFN_UP:
	case ISQ_ROLE_FFN_DOWN:
	case ISQ_ROLE_FFN_GATE_EXPS:
	case ISQ_ROLE_FFN_UP_EXPS:
	case ISQ_ROLE_FFN_DOWN_EXPS: return 1;
	default: return 0;
	}
}

static int is_expert_role(enum isq_tensor_role r)
{
	return r == ISQ_ROLE_FFN_GATE_EXPS || r == ISQ_ROLE_FFN_UP_EXPS || r == ISQ_ROLE_FFN_DOWN_EXPS;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

/* "…experts.<E>.…": the expert number and where the number sits; -1 if not a per-expert name. */
static long expert_index(const char *name, size_t *pos, size_t *len)
{
	const char *p = strstr(name, ".experts.");
	if (!p)
		return -1;
	const char *d = p + 9, *q = d;
	while (isdigit((unsigned char)*q))
		q++;
	if (q == d || *q != '.')
		return -1;
	*pos = (size_t)(d - name);
	*len = (size_t)(q - d);
	return strtol(d, NULL, 10);
}

static int entry_cmp_gguf(const void *a, const void *b)
{
	const struct isq_plan_entry *x = a, *y = b;
	if (x->layer != y->layer)
		return x->layer < y->layer ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int choose_type(const struct isq_model *m, const struct isq_plan_opts *o, const struct facts *f,
		       struct isq_plan *p, struct isq_plan_entry *en, const struct override *ov, int n_ov,
		       enum isq_type tok_t, enum isq_type out_t, struct isq_errbuf *e)
{
	const struct isq_type_request *req = &p->req;
	enum isq_type t = req->type;
	int explicit_type = 0;
	if (o->organization == ISQ_ORG_MOQE) {
		/* MoQE: the routed experts only, no promotion; the rest keeps the source's dtype */
		if (!is_expert_role(en->role))
			t = en->src_type == ISQ_TYPE_F16 || en->src_type == ISQ_TYPE_BF16 ? en->src_type : ISQ_TYPE_F32;
	} else if (!o->pure) {
		if (req->mixture)
			t = mixture_rule(req->mixture, req->type, en->role, en->layer, f);
		else if (en->role == ISQ_ROLE_TOKEN_EMBD || en->role == ISQ_ROLE_OUTPUT)
			t = promote(req->type);
	}
	if (o->topology) {
		/* mistral.rs matches "<module>.weight", the checkpoint's name; a GGUF name is tried too */
		int layer = isq_topology_layer_of(en->src_name);
		if (layer < 0)
			layer = isq_topology_layer_of(en->name);
		enum isq_type tt;
		en->topology_line = isq_topology_lookup(o->topology, en->src_name, en->name, layer, &tt);
		if (en->topology_line && tt != ISQ_TYPE_NONE) {
			t = tt;
			explicit_type = 1;
		}
	}
	if (en->role == ISQ_ROLE_OUTPUT && out_t != ISQ_TYPE_NONE) {
		t = out_t;
		explicit_type = 1;
	}
	if (en->role == ISQ_ROLE_TOKEN_EMBD && tok_t != ISQ_TYPE_NONE) {
		t = tok_t;
		explicit_type = 1;
	}
	for (int i = 0; i < n_ov; i++)
		if (!regexec(&ov[i].re, en->name, 0, NULL, 0) || !regexec(&ov[i].re, en->src_name, 0, NULL, 0)) {
			t = ov[i].type;
			explicit_type = 1;
			break;
		}
	if (explicit_type)
		p->n_explicit++;
	int rc = check_format(t, o->format, en->name, e);
	if (rc)
		return rc;
	en->requested = t;

	int64_t row = en->ne[0];
	uint64_t numel = 1;
	for (int d = 0; d < en->n_dims; d++)
		numel *= (uint64_t)en->ne[d];
	int stacked = en->n_dims >= 3;
	/* llama.cpp's output rule: a mixture's output tensor that does not fit goes straight to Q8_0 */
	if (req->mixture && !o->pure && (en->role == ISQ_ROLE_OUTPUT || (f->tied && en->role == ISQ_ROLE_TOKEN_EMBD)) &&
	    !fits(t, row, numel, stacked))
		t = ISQ_TYPE_Q8_0;
	for (int guard = 0; !fits(t, row, numel, stacked) && guard < 8; guard++)
		t = fallback_step(t, row, en->src_type);
	if (!fits(t, row, numel, stacked))
		t = sixteen_bit(en->src_type);
	en->type = t;
	if (t != en->requested) {
		const struct isq_type_traits *rt = isq_type_traits(en->requested);
		if (en->requested == ISQ_TYPE_HQQ4 || en->requested == ISQ_TYPE_HQQ8)
			snprintf(en->fallback, sizeof(en->fallback), "%s needs an element count divisible by 64%s",
				 rt->name, stacked ? " and no stacked experts" : "");
		else if (stacked && (en->requested == ISQ_TYPE_FP8 || en->requested == ISQ_TYPE_F8Q8))
			snprintf(en->fallback, sizeof(en->fallback), "%s cannot hold stacked experts", rt->name);
		else
			snprintf(en->fallback, sizeof(en->fallback), "row length %lld is not a multiple of %s's block of %lld",
				 (long long)row, rt->name, (long long)rt->blck);
		p->n_fallbacks++;
	}
	(void)m;
	return 0;
}

int isq_plan_build(const struct isq_model *m, const struct isq_plan_opts *o, struct isq_plan *p,
		   struct isq_errbuf *e)
{
	memset(p, 0, sizeof(*p));
	int rc = isq_type_request_parse(o->type, o->target, &p->req, e);
	if (rc)
		return rc;
	enum isq_type tok_t = ISQ_TYPE_NONE, out_t = ISQ_TYPE_NONE;
	const char *suggest;
	if (o->token_embd_type && isq_type_parse(o->token_embd_type, &tok_t, &suggest))
		return isq_errbuf_set(e, ISQ_EINVAL, "--token-embedding-type: unknown type '%s'", o->token_embd_type);
	if (o->output_type && isq_type_parse(o->output_type, &out_t, &suggest))
		return isq_errbuf_set(e, ISQ_EINVAL, "--output-tensor-type: unknown type '%s'", o->output_type);
	struct override *ov;
	int n_ov;
	rc = parse_overrides(o->tensor_types, &ov, &n_ov, e);
	if (rc) {
		free_overrides(ov, n_ov);
		return rc;
	}

	struct facts f;
	gather_facts(m, &f);
	int gguf_names = o->format == ISQ_FORMAT_GGUF && f.hf_names;

	p->entries = calloc(m->n_tensors ? m->n_tensors : 1, sizeof(*p->entries));
	if (!p->entries) {
		free_overrides(ov, n_ov);
		return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	}
	for (size_t i = 0; i < m->n_tensors; i++) {
		const struct isq_model_tensor *t = &m->tensors[i];
		struct isq_plan_entry *en = &p->entries[p->n];
		memset(en, 0, sizeof(*en));
		en->src = i;
		en->n_src = 1;
		en->src_name = t->name;
		en->src_type = (enum isq_type)t->type;
		en->role = isq_name_role(t->name, &en->layer);
		if (t->type == ISQ_TYPE_NONE) {
			rc = isq_errbuf_set(e, ISQ_EUNSUPPORTED, "tensor '%s': element type %s cannot be converted", t->name,
					    t->type_name);
			goto fail;
		}
		if (f.tied && en->role == ISQ_ROLE_OUTPUT && f.hf_names) {
			p->n_dropped++; /* tie_word_embeddings: GGUF and UQFF keep the embedding only */
			continue;
		}
		/* per-expert HF tensors become one stacked 3-D GGUF tensor: skip all but expert 0 */
		size_t epos = 0, elen = 0;
		long ex = gguf_names ? expert_index(t->name, &epos, &elen) : -1;
		if (ex > 0)
			continue;
		if (gguf_names) {
			if (ex == 0) {
				static const char *const kind[] = { [ISQ_ROLE_FFN_GATE_EXPS] = "ffn_gate_exps",
								    [ISQ_ROLE_FFN_UP_EXPS] = "ffn_up_exps",
								    [ISQ_ROLE_FFN_DOWN_EXPS] = "ffn_down_exps" };
				if (en->role < ISQ_ROLE_FFN_GATE_EXPS || en->role > ISQ_ROLE_FFN_DOWN_EXPS) {
					rc = isq_errbuf_set(e, ISQ_EUNSUPPORTED, "tensor '%s': unknown expert tensor", t->name);
					goto fail;
				}
				snprintf(en->name, sizeof(en->name), "blk.%d.%s.weight", en->layer, kind[en->role]);
			} else if (isq_name_hf_to_gguf(t->name, en->name, sizeof(en->name))) {
				p->n_dropped++; /* no GGUF equivalent (rotary_emb.inv_freq, ...) */
				continue;
			}
		} else {
			snprintf(en->name, sizeof(en->name), "%s", t->name);
		}

		/* ggml order: innermost first */
		en->n_dims = t->n_dims > 4 ? 4 : t->n_dims;
		for (int d = 0; d < 4; d++)
			en->ne[d] = 1;
		for (int d = 0; d < en->n_dims; d++)
			en->ne[d] = t->shape[t->n_dims - 1 - d];
		if (t->n_dims == 0)
			en->n_dims = 1;

		if (ex == 0) {
			/* gather experts 0..E-1 with the same name pattern */
			size_t cap = 8;
			en->srcs = malloc(cap * sizeof(size_t));
			if (!en->srcs) {
				rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
				goto fail;
			}
			for (long k = 0;; k++) {
				char nm[256];
				snprintf(nm, sizeof(nm), "%.*s%ld%s", (int)epos, t->name, k, t->name + epos + elen);
				const struct isq_model_tensor *x = isq_model_find(m, nm);
				if (!x)
					break;
				if (x->n_dims != t->n_dims || x->shape[0] != t->shape[0] || x->shape[1] != t->shape[1] ||
				    x->type != t->type) {
					rc = isq_errbuf_set(e, ISQ_EFORMAT, "tensor '%s': shape or type differs from expert 0", nm);
					goto fail;
				}
				if ((size_t)k == cap) {
					size_t *n2 = realloc(en->srcs, 2 * cap * sizeof(size_t));
					if (!n2) {
						rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
						goto fail;
					}
					en->srcs = n2;
					cap *= 2;
				}
				en->srcs[k] = (size_t)(x - m->tensors);
				en->n_src = (int)k + 1;
			}
			en->n_dims = 3;
			en->ne[2] = en->n_src;
		}

		int linear = t->n_dims >= 2 && ends_with(t->name, "weight") &&
			     (is_linear_role(en->role) || (en->role == ISQ_ROLE_OTHER && !f.have_arch));
		if (linear) {
			en->quantize = 1;
			rc = choose_type(m, o, &f, p, en, ov, n_ov, tok_t, out_t, e);
			if (rc)
				goto fail;
			if (gguf_names && f.permute && en->role == ISQ_ROLE_ATTN_Q)
				en->permute_heads = (int)f.n_heads;
			if (gguf_names && f.permute && en->role == ISQ_ROLE_ATTN_K)
				en->permute_heads = (int)f.n_kv_heads;
		} else {
			/* norms, biases, routers: F32 in GGUF (the converter's choice); as stored in UQFF's residual */
			en->requested = en->type = o->format == ISQ_FORMAT_GGUF ? ISQ_TYPE_F32 : en->src_type;
			if (gguf_names && f.permute && en->role == ISQ_ROLE_BIAS && strstr(en->name, "attn_q"))
				en->permute_heads = (int)f.n_heads;
			if (gguf_names && f.permute && en->role == ISQ_ROLE_BIAS && strstr(en->name, "attn_k"))
				en->permute_heads = (int)f.n_kv_heads;
		}
		uint64_t rowbytes = 0, rows = 1;
		for (int d = 1; d < en->n_dims; d++)
			rows *= (uint64_t)en->ne[d];
		if (is_mrs_only(en->type)) {
			/* HQQ groups and F8Q8 blocks run over the flat tensor, not rows: size the
			 * entry from its UQFF layout (torch order: the row is the last dimension) */
			struct isq_mrs_layout lay;
			uint64_t shape[ISQ_MRS_MAX_RANK];
			for (int d = 0; d < en->n_dims && d < ISQ_MRS_MAX_RANK; d++)
				shape[d] = (uint64_t)en->ne[en->n_dims - 1 - d];
			rc = isq_mrs_plan(&lay, en->type, en->n_dims, shape, NULL, e);
			if (rc)
				goto fail;
			en->nbytes = isq_mrs_nbytes(&lay);
			p->total_bytes += en->nbytes;
			p->total_params += en->ne[0] * rows;
			p->n++;
			continue;
		}
		if (isq_type_row_size(en->type, (uint64_t)en->ne[0], &rowbytes)) {
			rc = isq_errbuf_set(e, ISQ_EINVAL, "tensor '%s': row of %lld does not fit %s", en->name,
					    (long long)en->ne[0], isq_type_name(en->type));
			goto fail;
		}
		en->nbytes = rowbytes * rows;
		p->total_bytes += en->nbytes;
		p->total_params += en->ne[0] * rows;
		p->n++;
	}
	if (o->organization == ISQ_ORG_MOQE) {
		/* as mistral.rs: MoQE on a model without experts is an error, unless something names a type */
		size_t n_exp = 0;
		for (size_t i = 0; i < p->n; i++)
			n_exp += p->entries[i].quantize && is_expert_role(p->entries[i].role);
		if (!n_exp && !p->n_explicit) {
			rc = isq_errbuf_set(e, ISQ_EINVAL,
					    "--organization moqe: the model has no MoE expert weights (and no --topology or "
					    "--tensor-type names a type)");
			free_overrides(ov, n_ov);
			isq_plan_release(p);
			return rc;
		}
	}
	if (o->format == ISQ_FORMAT_GGUF)
		qsort(p->entries, p->n, sizeof(*p->entries), entry_cmp_gguf);
	free_overrides(ov, n_ov);
	return 0;
fail:
	free_overrides(ov, n_ov);
	p->n++; /* release frees the partially built entry's srcs too */
	isq_plan_release(p);
	return rc;
}

void isq_plan_release(struct isq_plan *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->entries[i].srcs);
	free(p->entries);
	memset(p, 0, sizeof(*p));
}
