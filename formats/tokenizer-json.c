/*
 * tokenizer-json.c - loading a Hugging Face tokenizer.json (and
 * tokenizer_config.json and friends) into the pipeline structures.
 *
 * The JSON is parsed once with cJSON; the vocabulary and merges go straight
 * into hash maps (token -> id, (id, id) -> rank), so Qwen3's 11 MB file
 * loads in a fraction of a second.
 */
#include "tokenizer-impl.h"
#include "io.h"

#include <cJSON.h>
#include <math.h>

#define E(t, code, ...) isq_errbuf_set(&(t)->err, code, __VA_ARGS__)

static const cJSON *jget(const cJSON *o, const char *k)
{
	return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = jget(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A boolean field: DEF when absent or null, -1 when of another type. */
static int jbool(const cJSON *o, const char *k, int def)
{
	const cJSON *v = jget(o, k);
	if (!v || cJSON_IsNull(v))
		return def;
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : -1;
}

/* A non-negative integer below LIMIT, or -1. */
static int64_t jint(const cJSON *v, int64_t limit)
{
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble >= (double)limit ||
	    v->valuedouble != floor(v->valuedouble))
		return -1;
	return (int64_t)v->valuedouble;
}

static char *dup_n(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* A {"String": ...} / {"Regex": ...} pattern: literal in *lit, or a compiled regex in *re. */
static int parse_pattern(struct isq_tokenizer *t, const cJSON *p, const char *what, char **lit, size_t *lit_len,
			 struct tok_regex *re)
{
	const char *s;
	if ((s = jstr(p, "String"))) {
		*lit_len = strlen(s);
		return (*lit = dup_n(s, *lit_len)) ? 0 : E(t, ISQ_ENOMEM, "out of memory");
	}
	if ((s = jstr(p, "Regex")))
		return tok_regex_compile(t, re, s, strlen(s), what);
	return E(t, ISQ_EFORMAT, "%s: 'pattern' must be {\"String\": ...} or {\"Regex\": ...}", what);
}

/* A one-character string ("▁", " "): its code point. */
static int one_char(struct isq_tokenizer *t, const char *s, const char *what, uint32_t *cp)
{
	size_t n = s ? strlen(s) : 0, bad, adv;
	int trunc;
	if (!n || !tok_utf8_valid((const unsigned char *)s, n, &bad, &trunc))
		return E(t, ISQ_EFORMAT, "%s must be one character", what);
	*cp = tok_utf8_decode(s, n, &adv);
	if (adv != n)
		return E(t, ISQ_EFORMAT, "%s must be one character", what);
	return 0;
}

static int prepend_scheme(struct isq_tokenizer *t, const cJSON *o, enum tok_prepend *ps)
{
	const char *s = jstr(o, "prepend_scheme");
	int aps = jbool(o, "add_prefix_space", -2);
	*ps = PS_ALWAYS;
	if (s) {
		if (!strcmp(s, "always"))
			*ps = PS_ALWAYS;
		else if (!strcmp(s, "first"))
			*ps = PS_FIRST;
		else if (!strcmp(s, "never"))
			*ps = PS_NEVER;
		else
			return E(t, ISQ_EFORMAT, "Metaspace: unknown prepend_scheme '%s'", s);
	}
	if (aps == 0) /* the older files' add_prefix_space: false */
		*ps = PS_NEVER;
	return 0;
}

/* ---- normalizers ------------------------------------------------------------ */

static int add_norm(struct isq_tokenizer *t, struct tok_norm **out)
{
	if (t->n_norm >= TOK_MAX_STEPS)
		return E(t, ISQ_EUNSUPPORTED, "more than %d normalizers", TOK_MAX_STEPS);
	struct tok_norm *n = realloc(t->norm, (t->n_norm + 1) * sizeof(*n));
	if (!n)
		return E(t, ISQ_ENOMEM, "out of memory");
	t->norm = n;
	*out = &n[t->n_norm++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

static int parse_normalizer(struct isq_tokenizer *t, const cJSON *o, int depth)
{
	if (!o || cJSON_IsNull(o))
		return 0;
	const char *type = jstr(o, "type");
	if (!type)
		return E(t, ISQ_EFORMAT, "normalizer without a 'type'");
	if (depth > 8)
		return E(t, ISQ_EUNSUPPORTED, "normalizers nested too deeply");
	struct tok_norm *n;
	int rc;
	if (!strcmp(type, "Sequence")) {
		const cJSON *l = jget(o, "normalizers"), *it;
		if (!cJSON_IsArray(l))
			return E(t, ISQ_EFORMAT, "normalizer Sequence: 'normalizers' must be an array");
		cJSON_ArrayForEach(it, l)
		if ((rc = parse_normalizer(t, it, depth + 1)))
			return rc;
		return 0;
	}
	static const struct {
		const char *name;
		enum tok_norm_kind kind;
	} simple[] = { { "NFC", TN_NFC }, { "NFD", TN_NFD }, { "NFKC", TN_NFKC }, { "NFKD", TN_NFKD },
		       { "Lowercase", TN_LOWERCASE } };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(simple); i++)
		if (!strcmp(type, simple[i].name)) {
			if ((rc = add_norm(t, &n)))
				return rc;
			n->kind = simple[i].kind;
			return 0;
		}
	if (!strcmp(type, "Prepend")) {
		const char *p = jstr(o, "prepend");
		if (!p)
			return E(t, ISQ_EFORMAT, "normalizer Prepend: 'prepend' must be a string");
		if ((rc = add_norm(t, &n)))
			return rc;
		n->kind = TN_PREPEND;
		n->str_len = strlen(p);
		return (n->str = dup_n(p, n->str_len)) ? 0 : E(t, ISQ_ENOMEM, "out of memory");
	}
	if (!strcmp(type, "Replace")) {
		const char *c = jstr(o, "content");
		if (!c)
			return E(t, ISQ_EFORMAT, "normalizer Replace: 'content' must be a string");
		if ((rc = add_norm(t, &n)))
			return rc;
		n->kind = TN_REPLACE;
		n->content_len = strlen(c);
		if (!(n->content = dup_n(c, n->content_len)))
			return E(t, ISQ_ENOMEM, "out of memory");
		return parse_pattern(t, jget(o, "pattern"), "normalizer Replace", &n->str, &n->str_len, &n->re);
	}
	if (!strcmp(type, "Strip")) {
		int l = jbool(o, "strip_left", 0), r = jbool(o, "strip_right", 0);
		if (l < 0 || r < 0)
			return E(t, ISQ_EFORMAT, "normalizer Strip: strip_left/strip_right must be booleans");
		if ((rc = add_norm(t, &n)))
			return rc;
		n->kind = TN_STRIP;
		n->left = l;
		n->right = r;
		return 0;
	}
	return E(t, ISQ_EUNSUPPORTED, "normalizer '%s' is not supported", type);
}

/* ---- pre-tokenizers ------------------------------------------------------------ */

static int add_pre(struct isq_tokenizer *t, struct tok_pre **out)
{
	if (t->n_pre >= TOK_MAX_STEPS)
		return E(t, ISQ_EUNSUPPORTED, "more than %d pre-tokenizers", TOK_MAX_STEPS);
	struct tok_pre *p = realloc(t->pre, (t->n_pre + 1) * sizeof(*p));
	if (!p)
		return E(t, ISQ_ENOMEM, "out of memory");
	t->pre = p;
	*out = &p[t->n_pre++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

static int parse_behavior(struct isq_tokenizer *t, const cJSON *o, enum tok_behavior def, enum tok_behavior *b)
{
	static const char *const names[] = { "Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
					     "Contiguous" };
	const char *s = jstr(o, "behavior");
	*b = def;
	if (!s)
		return 0;
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i])) {
			*b = (enum tok_behavior)i;
			return 0;
		}
	return E(t, ISQ_EFORMAT, "unknown split behavior '%s'", s);
}

static int parse_pretokenizer(struct isq_tokenizer *t, const cJSON *o, int depth)
{
	if (!o || cJSON_IsNull(o))
		return 0;
	const char *type = jstr(o, "type");
	if (!type)
		return E(t, ISQ_EFORMAT, "pre-tokenizer without a 'type'");
	if (depth > 8)
		return E(t, ISQ_EUNSUPPORTED, "pre-tokenizers nested too deeply");
	struct tok_pre *p;
	int rc;
	if (!strcmp(type, "Sequence")) {
		const cJSON *l = jget(o, "pretokenizers"), *it;
		if (!cJSON_IsArray(l))
			return E(t, ISQ_EFORMAT, "pre-tokenizer Sequence: 'pretokenizers' must be an array");
		cJSON_ArrayForEach(it, l)
		if ((rc = parse_pretokenizer(t, it, depth + 1)))
			return rc;
		return 0;
	}
	if (!strcmp(type, "Split")) {
		int inv = jbool(o, "invert", 0);
		if (inv < 0)
			return E(t, ISQ_EFORMAT, "pre-tokenizer Split: 'invert' must be a boolean");
		if ((rc = add_pre(t, &p)))
			return rc;
		p->kind = TP_SPLIT;
		p->invert = inv;
		if ((rc = parse_behavior(t, o, SB_ISOLATED, &p->behavior)))
			return rc;
		if (!jstr(o, "behavior"))
			return E(t, ISQ_EFORMAT, "pre-tokenizer Split: 'behavior' is missing");
		return parse_pattern(t, jget(o, "pattern"), "pre-tokenizer Split", &p->literal, &p->literal_len,
				     &p->re);
	}
	if (!strcmp(type, "ByteLevel")) {
		int aps = jbool(o, "add_prefix_space", 1), ur = jbool(o, "use_regex", 1);
		if (aps < 0 || ur < 0)
			return E(t, ISQ_EFORMAT, "pre-tokenizer ByteLevel: flags must be booleans");
		if ((rc = add_pre(t, &p)))
			return rc;
		p->kind = TP_BYTELEVEL;
		p->add_prefix_space = aps;
		p->use_regex = ur;
		return ur ? tok_regex_compile(t, &p->re, tok_re_gpt2, strlen(tok_re_gpt2), "ByteLevel") : 0;
	}
	if (!strcmp(type, "Metaspace")) {
		uint32_t cp;
		int split = jbool(o, "split", 1);
		if (split < 0)
			return E(t, ISQ_EFORMAT, "pre-tokenizer Metaspace: 'split' must be a boolean");
		if ((rc = one_char(t, jstr(o, "replacement"), "pre-tokenizer Metaspace: 'replacement'", &cp)))
			return rc;
		if ((rc = add_pre(t, &p)))
			return rc;
		p->kind = TP_METASPACE;
		p->rep_cp = cp;
		p->rep_len = tok_utf8_encode(cp, p->rep);
		p->split = split;
		return prepend_scheme(t, o, &p->prepend);
	}
	if (!strcmp(type, "Digits")) {
		int ind = jbool(o, "individual_digits", 0);
		if (ind < 0)
			return E(t, ISQ_EFORMAT, "pre-tokenizer Digits: 'individual_digits' must be a boolean");
		if ((rc = add_pre(t, &p)))
			return rc;
		p->kind = TP_DIGITS;
		p->individual = ind;
		return 0;
	}
	if (!strcmp(type, "Whitespace")) {
		static const char re[] = "\\w+|[^\\w\\s]+";
		if ((rc = add_pre(t, &p)))
			return rc;
		p->kind = TP_WHITESPACE;
		return tok_regex_compile(t, &p->re, re, strlen(re), "Whitespace");
	}
	if (!strcmp(type, "WhitespaceSplit")) {
		if ((rc = add_pre(t, &p)))
			return rc;
		p->kind = TP_WSSPLIT;
		return 0;
	}
	if (!strcmp(type, "Punctuation")) {
		if ((rc = add_pre(t, &p)))
			return rc;
		p->kind = TP_PUNCT;
		return parse_behavior(t, o, SB_ISOLATED, &p->behavior);
	}
	return E(t, ISQ_EUNSUPPORTED, "pre-tokenizer '%s' is not supported", type);
}

/* ---- decoders --------------------------------------------------------------------- */

static int add_dec(struct isq_tokenizer *t, struct tok_dec **out)
{
	if (t->n_dec >= TOK_MAX_STEPS)
		return E(t, ISQ_EUNSUPPORTED, "more than %d decoders", TOK_MAX_STEPS);
	struct tok_dec *d = realloc(t->dec, (t->n_dec + 1) * sizeof(*d));
	if (!d)
		return E(t, ISQ_ENOMEM, "out of memory");
	t->dec = d;
	*out = &d[t->n_dec++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

static int parse_decoder(struct isq_tokenizer *t, const cJSON *o, int depth)
{
	if (!o || cJSON_IsNull(o))
		return 0;
	const char *type = jstr(o, "type");
	if (!type)
		return E(t, ISQ_EFORMAT, "decoder without a 'type'");
	if (depth > 8)
		return E(t, ISQ_EUNSUPPORTED, "decoders nested too deeply");
	struct tok_dec *d;
	int rc;
	if (!strcmp(type, "Sequence")) {
		const cJSON *l = jget(o, "decoders"), *it;
		if (!cJSON_IsArray(l))
			return E(t, ISQ_EFORMAT, "decoder Sequence: 'decoders' must be an array");
		cJSON_ArrayForEach(it, l)
		if ((rc = parse_decoder(t, it, depth + 1)))
			return rc;
		return 0;
	}
	if (!strcmp(type, "Replace")) {
		const char *c = jstr(o, "content");
		if (!c)
			return E(t, ISQ_EFORMAT, "decoder Replace: 'content' must be a string");
		if ((rc = add_dec(t, &d)))
			return rc;
		d->kind = TD_REPLACE;
		d->content_len = strlen(c);
		if (!(d->content = dup_n(c, d->content_len)))
			return E(t, ISQ_ENOMEM, "out of memory");
		return parse_pattern(t, jget(o, "pattern"), "decoder Replace", &d->str, &d->str_len, &d->re);
	}
	if (!strcmp(type, "ByteFallback") || !strcmp(type, "Fuse") || !strcmp(type, "ByteLevel")) {
		if ((rc = add_dec(t, &d)))
			return rc;
		d->kind = type[0] == 'F' ? TD_FUSE : type[4] == 'F' ? TD_BYTEFALLBACK : TD_BYTELEVEL;
		return 0;
	}
	if (!strcmp(type, "Strip")) {
		uint32_t cp;
		int64_t start = jint(jget(o, "start"), 1 << 20), stop = jint(jget(o, "stop"), 1 << 20);
		if (start < 0 || stop < 0)
			return E(t, ISQ_EFORMAT, "decoder Strip: 'start' and 'stop' must be small non-negative integers");
		if ((rc = one_char(t, jstr(o, "content"), "decoder Strip: 'content'", &cp)))
			return rc;
		if ((rc = add_dec(t, &d)))
			return rc;
		d->kind = TD_STRIP;
		d->cp = cp;
		d->start = (size_t)start;
		d->stop = (size_t)stop;
		return 0;
	}
	if (!strcmp(type, "Metaspace")) {
		uint32_t cp;
		if ((rc = one_char(t, jstr(o, "replacement"), "decoder Metaspace: 'replacement'", &cp)))
			return rc;
		if ((rc = add_dec(t, &d)))
			return rc;
		d->kind = TD_METASPACE;
		d->cp = cp;
		return prepend_scheme(t, o, &d->prepend);
	}
	return E(t, ISQ_EUNSUPPORTED, "decoder '%s' is not supported", type);
}

/* ---- post-processors ------------------------------------------------------------- */

/* Replace the sequence (-1) in T with CUR: the template of processors applied one after another. */
static int compose(struct isq_tokenizer *t, const int32_t *nt, size_t nn)
{
	size_t seq = 0, total = 0;
	if (!t->has_tmpl) { /* nothing applied yet: the template is the sequence alone */
		free(t->tmpl);
		if (!(t->tmpl = malloc(sizeof(*t->tmpl))))
			return E(t, ISQ_ENOMEM, "out of memory");
		t->tmpl[0] = -1;
		t->n_tmpl = 1;
	}
	for (size_t i = 0; i < nn; i++)
		total += nt[i] < 0 ? (seq++, t->n_tmpl) : 1;
	if (seq != 1)
		return E(t, ISQ_EFORMAT, "post-processor: the single template must hold the sequence once");
	int32_t *r = malloc((total ? total : 1) * sizeof(*r));
	if (!r)
		return E(t, ISQ_ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < nn; i++) {
		if (nt[i] >= 0) {
			r[k++] = nt[i];
		} else {
			memcpy(r + k, t->tmpl, t->n_tmpl * sizeof(*r));
			k += t->n_tmpl;
		}
	}
	free(t->tmpl);
	t->tmpl = r;
	t->n_tmpl = k;
	t->has_tmpl = 1;
	return 0;
}

static int32_t pair_id(const cJSON *a)
{
	/* ["[SEP]", 102] */
	if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 2)
		return -1;
	return (int32_t)jint(cJSON_GetArrayItem(a, 1), TOK_MAX_VOCAB);
}

static int parse_template(struct isq_tokenizer *t, const cJSON *o)
{
	const cJSON *single = jget(o, "single"), *sp = jget(o, "special_tokens"), *it;
	int32_t buf[64];
	size_t n = 0;
	if (!cJSON_IsArray(single))
		return E(t, ISQ_EFORMAT, "TemplateProcessing: 'single' must be an array");
	cJSON_ArrayForEach(it, single)
	{
		const cJSON *s = jget(it, "SpecialToken"), *q = jget(it, "Sequence");
		if (q) {
			const char *id = jstr(q, "id");
			if (!id || strcmp(id, "A"))
				return E(t, ISQ_EFORMAT, "TemplateProcessing: the single template may only hold sequence 'A'");
			if (n >= ISQ_ARRAY_SIZE(buf))
				return E(t, ISQ_EUNSUPPORTED, "TemplateProcessing: template too long");
			buf[n++] = -1;
			continue;
		}
		const char *name = jstr(s, "id");
		if (!name)
			return E(t, ISQ_EFORMAT, "TemplateProcessing: a piece is neither SpecialToken nor Sequence");
		const cJSON *ids = jget(jget(sp, name), "ids"), *x;
		if (!cJSON_IsArray(ids))
			return E(t, ISQ_EFORMAT, "TemplateProcessing: special token '%s' is not defined", name);
		cJSON_ArrayForEach(x, ids)
		{
			int64_t id = jint(x, TOK_MAX_VOCAB);
			if (id < 0)
				return E(t, ISQ_EFORMAT, "TemplateProcessing: special token '%s' has a bad id", name);
			if (n >= ISQ_ARRAY_SIZE(buf))
				return E(t, ISQ_EUNSUPPORTED, "TemplateProcessing: template too long");
			buf[n++] = (int32_t)id;
		}
	}
	return compose(t, buf, n);
}

static int parse_post(struct isq_tokenizer *t, const cJSON *o, int depth)
{
	if (!o || cJSON_IsNull(o))
		return 0;
	const char *type = jstr(o, "type");
	int rc;
	if (!type)
		return E(t, ISQ_EFORMAT, "post-processor without a 'type'");
	if (depth > 8)
		return E(t, ISQ_EUNSUPPORTED, "post-processors nested too deeply");
	if (!strcmp(type, "Sequence")) {
		const cJSON *l = jget(o, "processors"), *it;
		if (!cJSON_IsArray(l))
			return E(t, ISQ_EFORMAT, "post-processor Sequence: 'processors' must be an array");
		cJSON_ArrayForEach(it, l)
		if ((rc = parse_post(t, it, depth + 1)))
			return rc;
		return 0;
	}
	if (!strcmp(type, "ByteLevel")) /* only offsets change */
		return 0;
	if (!strcmp(type, "TemplateProcessing"))
		return parse_template(t, o);
	if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
		int32_t cls = pair_id(jget(o, "cls")), sep = pair_id(jget(o, "sep"));
		if (cls < 0 || sep < 0)
			return E(t, ISQ_EFORMAT, "%s: 'cls' and 'sep' must be [token, id]", type);
		int32_t tpl[3] = { cls, -1, sep };
		return compose(t, tpl, 3);
	}
	return E(t, ISQ_EUNSUPPORTED, "post-processor '%s' is not supported", type);
}

/* ---- model ------------------------------------------------------------------------- */

static int parse_vocab(struct isq_tokenizer *t, const cJSON *v, size_t n_added_max)
{
	const cJSON *it;
	size_t count = 0;
	int64_t max_id = -1;
	if (!cJSON_IsObject(v))
		return E(t, ISQ_EFORMAT, "model: 'vocab' must be an object");
	cJSON_ArrayForEach(it, v)
	{
		int64_t id = jint(it, TOK_MAX_VOCAB);
		if (id < 0)
			return E(t, ISQ_EFORMAT, "vocab: token '%.40s' has a bad id", it->string ? it->string : "");
		if (id > max_id)
			max_id = id;
		count++;
	}
	/* a sparse id space would make every per-id table huge: refuse it */
	if (max_id >= 0 && (size_t)max_id >= 2 * (count + n_added_max) + 65536)
		return E(t, ISQ_EFORMAT, "vocab: ids up to %lld for %zu tokens", (long long)max_id, count);
	size_t need = (size_t)(max_id + 1);
	if (need && tok_grow((void **)&t->tok, &t->alloc_tok, need, sizeof(*t->tok)))
		return E(t, ISQ_ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, v)
	{
		int32_t id = (int32_t)it->valuedouble;
		const char *s = it->string ? it->string : "";
		size_t n = strlen(s);
		int rc = tok_set_token(t, id, s, n, TF_MODEL);
		/* the key is the id's text as stored now; strs only grows, so it stays valid if the id is reused */
		if (rc || (rc = tok_strmap_put(t, &t->vocab, t->tok[id].off, (uint32_t)n, id)))
			return rc;
	}
	return 0;
}

static int add_merge(struct isq_tokenizer *t, size_t rank, const char *a, size_t an, const char *b, size_t bn,
		     struct isq_buf *tmp)
{
	int32_t ia = tok_strmap_get(t, &t->vocab, a, an), ib = tok_strmap_get(t, &t->vocab, b, bn);
	if (ia < 0 || ib < 0)
		return E(t, ISQ_EFORMAT, "merge %zu ('%.*s', '%.*s'): '%.*s' is not in the vocabulary", rank, (int)an,
			 a, (int)bn, b, ia < 0 ? (int)an : (int)bn, ia < 0 ? a : b);
	isq_buf_reset(tmp);
	if (isq_buf_append(tmp, a, an) || isq_buf_append(tmp, b, bn))
		return E(t, ISQ_ENOMEM, "out of memory");
	int32_t r = tok_strmap_get(t, &t->vocab, tmp->data, tmp->len);
	if (r < 0)
		return E(t, ISQ_EFORMAT, "merge %zu ('%.*s', '%.*s'): '%.*s' is not in the vocabulary", rank, (int)an,
			 a, (int)bn, b, (int)tmp->len, tmp->data);
	if (tok_mergemap_put(&t->merges, ia, ib, (uint32_t)rank, r))
		return E(t, ISQ_ENOMEM, "out of memory");
	t->merge_list[t->n_merges][0] = ia;
	t->merge_list[t->n_merges][1] = ib;
	t->n_merges++;
	return 0;
}

static int parse_merges(struct isq_tokenizer *t, const cJSON *m)
{
	const cJSON *it;
	struct isq_buf tmp = ISQ_BUF_INIT;
	int rc = 0;
	size_t rank = 0, n = (size_t)cJSON_GetArraySize(m);
	if (!cJSON_IsArray(m))
		return E(t, ISQ_EFORMAT, "model: 'merges' must be an array");
	if (n && !(t->merge_list = malloc(n * sizeof(*t->merge_list))))
		return E(t, ISQ_ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, m)
	{
		if (cJSON_IsString(it)) {
			/* the older "a b" form: exactly one space; "#version" lines are comments */
			const char *s = it->valuestring, *sp = strchr(s, ' ');
			if (!strncmp(s, "#version", 8))
				continue;
			if (!sp || strchr(sp + 1, ' ')) {
				rc = E(t, ISQ_EFORMAT, "merge %zu ('%.40s') is not two tokens separated by a space", rank, s);
				break;
			}
			rc = add_merge(t, rank, s, (size_t)(sp - s), sp + 1, strlen(sp + 1), &tmp);
		} else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 && cJSON_IsString(it->child) &&
			   cJSON_IsString(it->child->next)) {
			const char *a = it->child->valuestring, *b = it->child->next->valuestring;
			rc = add_merge(t, rank, a, strlen(a), b, strlen(b), &tmp);
		} else {
			rc = E(t, ISQ_EFORMAT, "merge %zu is neither \"a b\" nor [\"a\", \"b\"]", rank);
		}
		if (rc)
			break;
		rank++;
	}
	isq_buf_release(&tmp);
	return rc;
}

static int parse_model(struct isq_tokenizer *t, const cJSON *m, size_t n_added)
{
	if (!cJSON_IsObject(m))
		return E(t, ISQ_EFORMAT, "'model' is missing");
	const char *type = jstr(m, "type");
	if (type && strcmp(type, "BPE"))
		return E(t, ISQ_EUNSUPPORTED, "model '%s' is not supported (only BPE)", type);
	if (!type && !jget(m, "merges"))
		return E(t, ISQ_EUNSUPPORTED, "model without a type and without merges is not supported (only BPE)");
	const cJSON *dropout = jget(m, "dropout");
	if (dropout && !cJSON_IsNull(dropout) && !(cJSON_IsNumber(dropout) && dropout->valuedouble == 0))
		return E(t, ISQ_EUNSUPPORTED, "BPE dropout is not supported");
	const char *pfx = jstr(m, "continuing_subword_prefix"), *sfx = jstr(m, "end_of_word_suffix");
	if ((pfx && *pfx) || (sfx && *sfx))
		return E(t, ISQ_EUNSUPPORTED, "BPE continuing_subword_prefix/end_of_word_suffix is not supported");
	t->byte_fallback = jbool(m, "byte_fallback", 0);
	t->fuse_unk = jbool(m, "fuse_unk", 0);
	t->ignore_merges = jbool(m, "ignore_merges", 0);
	if (t->byte_fallback < 0 || t->fuse_unk < 0 || t->ignore_merges < 0)
		return E(t, ISQ_EFORMAT, "model: byte_fallback, fuse_unk and ignore_merges must be booleans");
	t->model = TM_BPE;
	int rc = parse_vocab(t, jget(m, "vocab"), n_added);
	if (rc)
		return rc;
	const cJSON *merges = jget(m, "merges");
	if (merges && (rc = parse_merges(t, merges)))
		return rc;
	const char *unk = jstr(m, "unk_token");
	if (unk) {
		t->model_unk = tok_strmap_get(t, &t->vocab, unk, strlen(unk));
		if (t->model_unk < 0)
			return E(t, ISQ_EFORMAT, "model: unk_token '%.40s' is not in the vocabulary", unk);
	}
	return 0;
}

static int parse_added(struct isq_tokenizer *t, const cJSON *a)
{
	const cJSON *it;
	if (!a || cJSON_IsNull(a))
		return 0;
	if (!cJSON_IsArray(a))
		return E(t, ISQ_EFORMAT, "'added_tokens' must be an array");
	size_t n = (size_t)cJSON_GetArraySize(a);
	if (n && !(t->added = calloc(n, sizeof(*t->added))))
		return E(t, ISQ_ENOMEM, "out of memory");
	cJSON_ArrayForEach(it, a)
	{
		const char *content = jstr(it, "content");
		int64_t id = jint(jget(it, "id"), TOK_MAX_VOCAB);
		if (!content || id < 0)
			return E(t, ISQ_EFORMAT, "added token %zu: needs an 'id' and a 'content'", t->n_added);
		if ((size_t)id >= 2 * (t->n_vocab + n) + 65536)
			return E(t, ISQ_EFORMAT, "added token '%.40s': id %lld is far past the vocabulary", content,
				 (long long)id);
		int special = jbool(it, "special", 0);
		int flags[4] = { jbool(it, "lstrip", 0), jbool(it, "rstrip", 0), jbool(it, "single_word", 0),
				 jbool(it, "normalized", !special) };
		if (special < 0 || flags[0] < 0 || flags[1] < 0 || flags[2] < 0 || flags[3] < 0)
			return E(t, ISQ_EFORMAT, "added token '%.40s': flags must be booleans", content);
		size_t len = strlen(content);
		int rc = tok_set_token(t, (int32_t)id, content, len, TF_ADDED | (special ? TF_SPECIAL : 0));
		if (rc)
			return rc;
		struct tok_added *ad = &t->added[t->n_added++];
		ad->id = (int32_t)id;
		ad->off = t->tok[id].off;
		ad->len = (uint32_t)len;
		ad->special = (uint8_t)special;
		ad->lstrip = (uint8_t)flags[0];
		ad->rstrip = (uint8_t)flags[1];
		ad->single_word = (uint8_t)flags[2];
		ad->normalized = (uint8_t)flags[3];
	}
	return 0;
}

/* Tokens with "normalized": true are matched in normalized text, so in their normalized form. */
static int normalize_added(struct isq_tokenizer *t)
{
	struct isq_buf b = ISQ_BUF_INIT;
	int rc = 0;
	for (size_t i = 0; i < t->n_added && !rc; i++) {
		struct tok_added *a = &t->added[i];
		if (!a->normalized || !t->n_norm)
			continue;
		if ((rc = tok_normalize_into(t, t->strs.data + a->off, a->len, &b)))
			break;
		if (b.len == a->len && !memcmp(b.data, t->strs.data + a->off, b.len))
			continue;
		uint32_t off;
		if ((rc = tok_str_add(t, b.data, b.len, &off)))
			break;
		a->off = off;
		a->len = (uint32_t)b.len;
		/* and decoding starts from that form too (the library's normalized_cache) */
		t->tok[a->id].dec_off = off;
		t->tok[a->id].dec_len = (uint32_t)b.len;
	}
	isq_buf_release(&b);
	return rc;
}

/* ---- tokenizer_config.json and friends --------------------------------------------- */

struct hf_extra {
	cJSON *config, *special_map, *gen;
	char *chat_template; /* chat_template.jinja */
};

/* "bos_token": "<s>" or {"content": "<s>", ...} */
static const char *token_name(const cJSON *v)
{
	if (cJSON_IsString(v))
		return v->valuestring;
	return jstr(v, "content");
}

static int32_t resolve(struct isq_tokenizer *t, const struct hf_extra *x, const char *key, const char *gen_key)
{
	const char *name = token_name(jget(x->config, key));
	if (!name)
		name = token_name(jget(x->special_map, key));
	if (name)
		return isq_tokenizer_find(t, name, strlen(name));
	const cJSON *g = jget(x->gen, gen_key);
	if (cJSON_IsArray(g))
		g = cJSON_GetArrayItem(g, 0);
	int64_t id = jint(g, (int64_t)t->n_vocab);
	return (int32_t)id;
}

static int apply_config(struct isq_tokenizer *t, const struct hf_extra *x)
{
	t->bos = resolve(t, x, "bos_token", "bos_token_id");
	t->eos = resolve(t, x, "eos_token", "eos_token_id");
	t->unk = resolve(t, x, "unk_token", "");
	if (t->unk < 0)
		t->unk = t->model_unk;
	t->pad = resolve(t, x, "pad_token", "pad_token_id");

	int cfg_bos = jbool(x->config, "add_bos_token", -2), cfg_eos = jbool(x->config, "add_eos_token", -2);
	if (t->has_tmpl) {
		/* what the template does (the encoder runs it); the config's flags win for GGUF */
		int first = t->n_tmpl && t->tmpl[0] >= 0, last = t->n_tmpl && t->tmpl[t->n_tmpl - 1] >= 0;
		if (first && t->bos < 0)
			t->bos = t->tmpl[0];
		t->add_bos = cfg_bos >= 0 ? cfg_bos : first && t->tmpl[0] == t->bos;
		t->add_eos = cfg_eos >= 0 ? cfg_eos : last && t->tmpl[t->n_tmpl - 1] == t->eos;
	} else {
		/* no template: the config's flags, as transformers builds one from them */
		t->add_bos = cfg_bos > 0 && t->bos >= 0;
		t->add_eos = cfg_eos > 0 && t->eos >= 0;
		int32_t tpl[3];
		size_t n = 0;
		if (t->add_bos)
			tpl[n++] = t->bos;
		tpl[n++] = -1;
		if (t->add_eos)
			tpl[n++] = t->eos;
		free(t->tmpl);
		if (!(t->tmpl = malloc(sizeof(tpl))))
			return E(t, ISQ_ENOMEM, "out of memory");
		memcpy(t->tmpl, tpl, n * sizeof(*tpl));
		t->n_tmpl = n;
		t->has_tmpl = n > 1;
	}

	const cJSON *ct = jget(x->config, "chat_template");
	const char *tmpl = NULL;
	if (cJSON_IsString(ct)) {
		tmpl = ct->valuestring;
	} else if (cJSON_IsArray(ct)) { /* [{"name": "default", "template": ...}, ...] */
		const cJSON *it;
		cJSON_ArrayForEach(it, ct)
		{
			const char *name = jstr(it, "name"), *tt = jstr(it, "template");
			if (tt && (!tmpl || (name && !strcmp(name, "default"))))
				tmpl = tt;
		}
	}
	if (!tmpl)
		tmpl = x->chat_template;
	if (tmpl && !(t->chat_template = isq_strdup(tmpl)))
		return E(t, ISQ_ENOMEM, "out of memory");
	return 0;
}

static int parse_config(struct isq_tokenizer *t, const char *s, size_t n, const char *name, cJSON **out)
{
	*out = NULL;
	if (!s)
		return 0;
	const char *end = NULL;
	cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
	if (!j)
		return E(t, ISQ_EFORMAT, "%s: not valid JSON (at byte %zu)", name, end ? (size_t)(end - s) : 0);
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return E(t, ISQ_EFORMAT, "%s: not a JSON object", name);
	}
	*out = j;
	return 0;
}

/* ---- top level ---------------------------------------------------------------------- */

static int load_tree(struct isq_tokenizer *t, const cJSON *root, const struct hf_extra *x)
{
	int rc;
	if (!cJSON_IsObject(root))
		return E(t, ISQ_EFORMAT, "not a JSON object");
	const cJSON *added = jget(root, "added_tokens");
	if ((rc = parse_model(t, jget(root, "model"), cJSON_IsArray(added) ? (size_t)cJSON_GetArraySize(added) : 0)))
		return rc;
	if ((rc = parse_added(t, added)))
		return rc;
	if ((rc = parse_normalizer(t, jget(root, "normalizer"), 0)) ||
	    (rc = parse_pretokenizer(t, jget(root, "pre_tokenizer"), 0)) ||
	    (rc = parse_decoder(t, jget(root, "decoder"), 0)))
		return rc;
	const cJSON *dec = jget(root, "decoder");
	t->has_decoder = dec && !cJSON_IsNull(dec);
	if ((rc = parse_post(t, jget(root, "post_processor"), 0)))
		return rc;
	for (size_t i = 0; i < t->n_tmpl; i++)
		if (t->tmpl[i] >= 0 && (size_t)t->tmpl[i] >= t->n_vocab)
			return E(t, ISQ_EFORMAT, "post-processor: token id %ld is not in the vocabulary", (long)t->tmpl[i]);
	if (!t->n_vocab)
		return E(t, ISQ_EFORMAT, "the vocabulary is empty");
	if ((rc = normalize_added(t)) || (rc = tok_finish(t)) || (rc = apply_config(t, x)))
		return rc;
	return tok_classify_hf(t);
}

static int load(struct isq_tokenizer *t, const char *json, size_t len, const char *name, const char *config,
		size_t config_len, struct hf_extra *x)
{
	tok_reset(t);
	isq_errbuf_clear(&t->err);
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
	int rc;
	if (!root) {
		rc = E(t, ISQ_EFORMAT, "%s: not valid JSON (at byte %zu)", name,
		       end && end >= json ? (size_t)(end - json) : 0);
	} else if (!(rc = parse_config(t, config, config_len, "tokenizer_config.json", &x->config))) {
		rc = load_tree(t, root, x);
		if (rc)
			isq_errbuf_prefix(&t->err, "%s", name);
	}
	cJSON_Delete(root);
	cJSON_Delete(x->config);
	x->config = NULL;
	if (rc) {
		struct isq_errbuf keep = t->err;
		tok_reset(t);
		t->err = keep;
	}
	return rc;
}

int isq_tokenizer_load_hf_memory(struct isq_tokenizer *t, const char *json, size_t len, const char *config,
				 size_t config_len)
{
	struct hf_extra x = { 0 };
	return load(t, json ? json : "", json ? len : 0, "tokenizer.json", config, config_len, &x);
}

/* An optional file of DIR: 0 with an empty buffer when it does not exist. */
static int read_optional(struct isq_tokenizer *t, const char *dir, const char *name, struct isq_buf *out)
{
	struct isq_buf path = ISQ_BUF_INIT;
	int rc = isq_path_join(&path, dir, name);
	if (rc) {
		isq_buf_release(&path);
		return E(t, ISQ_ENOMEM, "out of memory");
	}
	if (isq_path_exists(path.data))
		rc = isq_read_file(path.data, out, &t->err);
	isq_buf_release(&path);
	return rc;
}

int isq_tokenizer_load_hf(struct isq_tokenizer *t, const char *path)
{
	struct isq_buf dir = ISQ_BUF_INIT, file = ISQ_BUF_INIT, json = ISQ_BUF_INIT, cfg = ISQ_BUF_INIT,
		       smap = ISQ_BUF_INIT, gen = ISQ_BUF_INIT, jinja = ISQ_BUF_INIT;
	struct hf_extra x = { 0 };
	int rc;
	tok_reset(t);
	isq_errbuf_clear(&t->err);
	if (isq_is_dir(path)) {
		rc = isq_buf_puts(&dir, path) || isq_path_join(&file, path, "tokenizer.json") ? ISQ_ENOMEM : 0;
	} else {
		const char *slash = strrchr(path, '/');
		rc = isq_buf_puts(&file, path) ? ISQ_ENOMEM : 0;
		if (!rc)
			rc = slash ? isq_buf_append(&dir, path, (size_t)(slash - path + (slash == path))) : isq_buf_puts(&dir, ".");
		rc = rc ? ISQ_ENOMEM : 0;
	}
	if (rc) {
		rc = E(t, ISQ_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = isq_read_file(file.data, &json, &t->err)))
		goto out;
	if ((rc = read_optional(t, dir.data, "tokenizer_config.json", &cfg)) ||
	    (rc = read_optional(t, dir.data, "special_tokens_map.json", &smap)) ||
	    (rc = read_optional(t, dir.data, "generation_config.json", &gen)) ||
	    (rc = read_optional(t, dir.data, "chat_template.jinja", &jinja)))
		goto out;
	/* the side files only help: a broken special_tokens_map.json or generation_config.json is ignored */
	if (smap.len)
		x.special_map = cJSON_ParseWithLength(smap.data, smap.len);
	if (gen.len)
		x.gen = cJSON_ParseWithLength(gen.data, gen.len);
	x.chat_template = jinja.len ? jinja.data : NULL;
	rc = load(t, json.data ? json.data : "", json.len, file.data, cfg.len ? cfg.data : NULL, cfg.len, &x);
out:
	cJSON_Delete(x.special_map);
	cJSON_Delete(x.gen);
	isq_buf_release(&dir);
	isq_buf_release(&file);
	isq_buf_release(&json);
	isq_buf_release(&cfg);
	isq_buf_release(&smap);
	isq_buf_release(&gen);
	isq_buf_release(&jinja);
	return rc;
}

/* ---- token types and SentencePiece scores ---------------------------------------- */

static int is_byte_name(const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	return n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && strchr(hex, s[3]) && strchr(hex, s[4]) && s[3] &&
	       s[4];
}

struct rank_order {
	uint32_t rank;
	int32_t id;
};

static int rank_cmp(const void *a, const void *b)
{
	const struct rank_order *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/*
 * GGUF token types as llama.cpp's converter assigns them: special added
 * tokens are control (the unknown token: unknown), other added tokens
 * user-defined, <0xXX> with byte fallback byte, the rest normal.
 *
 * SentencePiece scores.  llama.cpp's "llama" tokenizer does not read
 * merges: it repeatedly merges the adjacent pair whose concatenation is the
 * token with the highest score.  The BPE model merges the pair with the
 * lowest merge rank.  So a normal token's score must fall as the rank of the
 * merge that makes it rises: normal tokens are ordered by the lowest rank of
 * any merge producing them (tokens no merge produces, such as single
 * characters, after all of those), ties by id, and the k-th gets score -k.
 * Everything else scores 0.  For a vocabulary converted from SentencePiece,
 * whose ids follow its scores, this gives back exactly the original scores
 * (llama2.c's stories260K: 0 for specials and bytes, -(id - 259) for the
 * pieces from id 259 on).
 */
int tok_classify_hf(struct isq_tokenizer *t)
{
	for (size_t i = 0; i < t->n_vocab; i++) {
		struct tok_entry *e = &t->tok[i];
		e->score = 0;
		if (!(e->flags & TF_PRESENT))
			e->type = ISQ_TOKEN_UNUSED;
		else if ((int32_t)i == t->model_unk || (int32_t)i == t->unk)
			e->type = ISQ_TOKEN_UNKNOWN;
		else if (e->flags & TF_SPECIAL)
			e->type = ISQ_TOKEN_CONTROL;
		else if (e->flags & TF_ADDED)
			e->type = ISQ_TOKEN_USER_DEFINED;
		else if (t->byte_fallback && is_byte_name(t->strs.data + e->off, e->len))
			e->type = ISQ_TOKEN_BYTE;
		else
			e->type = ISQ_TOKEN_NORMAL;
	}
	if (t->kind != ISQ_TOKENIZER_SPM)
		return 0;
	struct rank_order *o = malloc(t->n_vocab * sizeof(*o));
	if (!o)
		return E(t, ISQ_ENOMEM, "out of memory");
	for (size_t i = 0; i < t->n_vocab; i++)
		o[i] = (struct rank_order){ UINT32_MAX, (int32_t)i };
	for (size_t r = 0; r < t->n_merges; r++) {
		const struct tok_merge_slot *m = tok_mergemap_get(&t->merges, t->merge_list[r][0], t->merge_list[r][1]);
		if (m && m->rank < o[m->id].rank)
			o[m->id].rank = m->rank;
	}
	size_t n = 0;
	for (size_t i = 0; i < t->n_vocab; i++)
		if (t->tok[i].type == ISQ_TOKEN_NORMAL)
			o[n++] = o[i];
	qsort(o, n, sizeof(*o), rank_cmp);
	for (size_t k = 0; k < n; k++)
		t->tok[o[k].id].score = -(float)k;
	free(o);
	return 0;
}
