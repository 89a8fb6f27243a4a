/*
 * tokenizer-gguf.c - the tokenizer.* keys of GGUF: loading them into the
 * pipeline structures, and writing them from a loaded tokenizer.
 */
#include "tokenizer-impl.h"
#include "gguf.h"

#define E(t, code, ...) isq_errbuf_set(&(t)->err, code, __VA_ARGS__)

static int add_norm(struct isq_tokenizer *t, enum tok_norm_kind kind, const char *str, const char *content)
{
	struct tok_norm *n = realloc(t->norm, (t->n_norm + 1) * sizeof(*n));
	if (!n)
		return E(t, ISQ_ENOMEM, "out of memory");
	t->norm = n;
	n = &n[t->n_norm++];
	memset(n, 0, sizeof(*n));
	n->kind = kind;
	if (str) {
		n->str_len = strlen(str);
		if (!(n->str = isq_strdup(str)))
			return E(t, ISQ_ENOMEM, "out of memory");
	}
	if (content) {
		n->content_len = strlen(content);
		if (!(n->content = isq_strdup(content)))
			return E(t, ISQ_ENOMEM, "out of memory");
	}
	return 0;
}

static struct tok_dec *add_dec(struct isq_tokenizer *t, enum tok_dec_kind kind)
{
	struct tok_dec *d = realloc(t->dec, (t->n_dec + 1) * sizeof(*d));
	if (!d)
		return NULL;
	t->dec = d;
	d = &d[t->n_dec++];
	memset(d, 0, sizeof(*d));
	d->kind = kind;
	return d;
}

/* A u32 id key: -1 when absent or out of range (llama.cpp writes 0xFFFFFFFF for "none"). */
static int32_t id_key(const struct isq_gguf *g, const char *key, int32_t def, size_t n_vocab)
{
	uint64_t v;
	int rc = isq_gguf_get_u64(g, key, &v);
	if (rc == ISQ_ENOTFOUND)
		return def;
	return rc || v >= n_vocab ? -1 : (int32_t)v;
}

static int bool_key(const struct isq_gguf *g, const char *key, int def)
{
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, key);
	return kv && kv->type == ISQ_GGUF_BOOL ? kv->v.u64 != 0 : def;
}

/* A numeric array of exactly N elements, or NULL (absent); *bad when present but malformed. */
static const struct isq_gguf_kv *num_array(const struct isq_gguf *g, const char *key, uint64_t n, int *bad)
{
	const struct isq_gguf_kv *kv = isq_gguf_find_kv(g, key);
	if (!kv)
		return NULL;
	if (kv->type != ISQ_GGUF_ARRAY || kv->arr_type == ISQ_GGUF_STRING || kv->arr_type == ISQ_GGUF_ARRAY ||
	    kv->arr_type == ISQ_GGUF_BOOL || kv->arr_n != n)
		*bad = 1;
	return kv;
}

static int load_merges(struct isq_tokenizer *t, const struct isq_gguf_kv *kv)
{
	struct isq_gguf_arr_iter it;
	const char *s;
	uint64_t len;
	struct isq_buf cat = ISQ_BUF_INIT;
	int rc = 0;
	if (kv->type != ISQ_GGUF_ARRAY || kv->arr_type != ISQ_GGUF_STRING)
		return E(t, ISQ_EFORMAT, "tokenizer.ggml.merges is not an array of strings");
	if (kv->arr_n > UINT32_MAX)
		return E(t, ISQ_EFORMAT, "tokenizer.ggml.merges is too long");
	if (kv->arr_n && !(t->merge_list = malloc(kv->arr_n * sizeof(*t->merge_list))))
		return E(t, ISQ_ENOMEM, "out of memory");
	isq_gguf_arr_iter_init(&it, kv);
	for (uint32_t rank = 0; isq_gguf_arr_next_str(&it, &s, &len) == 0; rank++) {
		/* llama.cpp splits at the first space after the first byte; a merge it cannot use is skipped */
		const char *sp = len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
		if (!sp)
			continue;
		size_t an = (size_t)(sp - s), bn = len - an - 1;
		int32_t a = tok_strmap_get(t, &t->vocab, s, an), b = tok_strmap_get(t, &t->vocab, sp + 1, bn);
		isq_buf_reset(&cat);
		if (isq_buf_append(&cat, s, an) || isq_buf_append(&cat, sp + 1, bn)) {
			rc = E(t, ISQ_ENOMEM, "out of memory");
			break;
		}
		int32_t r = tok_strmap_get(t, &t->vocab, cat.data, cat.len);
		if (a < 0 || b < 0 || r < 0)
			continue;
		/* llama.cpp keeps the first rank of a repeated pair */
		if (tok_mergemap_get(&t->merges, a, b))
			continue;
		if (tok_mergemap_put(&t->merges, a, b, rank, r)) {
			rc = E(t, ISQ_ENOMEM, "out of memory");
			break;
		}
		t->merge_list[t->n_merges][0] = a;
		t->merge_list[t->n_merges][1] = b;
		t->n_merges++;
	}
	isq_buf_release(&cat);
	return rc;
}

static int load_gguf(struct isq_tokenizer *t, const struct isq_gguf *g)
{
	int rc, bad = 0;
	const struct isq_gguf_kv *tokens = isq_gguf_find_kv(g, "tokenizer.ggml.tokens");
	if (!tokens)
		return E(t, ISQ_ENOTFOUND, "no tokenizer.ggml.tokens");
	if (tokens->type != ISQ_GGUF_ARRAY || tokens->arr_type != ISQ_GGUF_STRING)
		return E(t, ISQ_EFORMAT, "tokenizer.ggml.tokens is not an array of strings");
	uint64_t n = tokens->arr_n;
	if (!n)
		return E(t, ISQ_EFORMAT, "tokenizer.ggml.tokens is empty");
	if (n > TOK_MAX_VOCAB)
		return E(t, ISQ_EUNSUPPORTED, "tokenizer.ggml.tokens has %llu tokens (limit %u)", (unsigned long long)n,
			 TOK_MAX_VOCAB);
	char *model = isq_gguf_get_str(g, "tokenizer.ggml.model");
	if (!model)
		return E(t, ISQ_EFORMAT, "tokenizer.ggml.model is missing");
	int spm = !strcmp(model, "llama"), gpt2 = !strcmp(model, "gpt2");
	if (!spm && !gpt2) {
		rc = E(t, ISQ_EUNSUPPORTED, "tokenizer.ggml.model '%.40s' is not supported (only llama and gpt2)", model);
		free(model);
		return rc;
	}
	free(model);
	const struct isq_gguf_kv *scores = num_array(g, "tokenizer.ggml.scores", n, &bad);
	if (bad)
		return E(t, ISQ_EFORMAT, "tokenizer.ggml.scores is not a numeric array of %llu", (unsigned long long)n);
	const struct isq_gguf_kv *types = num_array(g, "tokenizer.ggml.token_type", n, &bad);
	if (bad)
		return E(t, ISQ_EFORMAT, "tokenizer.ggml.token_type is not a numeric array of %llu",
			 (unsigned long long)n);

	if (tok_grow((void **)&t->tok, &t->alloc_tok, (size_t)n, sizeof(*t->tok)))
		return E(t, ISQ_ENOMEM, "out of memory");
	size_t n_special = 0;
	struct isq_gguf_arr_iter it;
	const char *s;
	uint64_t len;
	isq_gguf_arr_iter_init(&it, tokens);
	for (uint64_t i = 0; isq_gguf_arr_next_str(&it, &s, &len) == 0; i++) {
		if (len > UINT32_MAX)
			return E(t, ISQ_EFORMAT, "token %llu is too long", (unsigned long long)i);
		if ((rc = tok_set_token(t, (int32_t)i, s, (size_t)len, TF_MODEL)) ||
		    (rc = tok_strmap_put(t, &t->vocab, t->tok[i].off, (uint32_t)len, (int32_t)i)))
			return rc;
		double v = 0;
		if (scores)
			isq_gguf_arr_num(scores, i, &v);
		t->tok[i].score = (float)v;
		v = ISQ_TOKEN_NORMAL;
		if (types)
			isq_gguf_arr_num(types, i, &v);
		t->tok[i].type = v >= 0 && v <= ISQ_TOKEN_BYTE ? (uint8_t)v : ISQ_TOKEN_UNDEFINED;
		if (t->tok[i].type == ISQ_TOKEN_CONTROL || t->tok[i].type == ISQ_TOKEN_UNKNOWN)
			t->tok[i].flags |= TF_ADDED | TF_SPECIAL;
		else if (t->tok[i].type == ISQ_TOKEN_USER_DEFINED)
			t->tok[i].flags |= TF_ADDED;
		n_special += (t->tok[i].flags & TF_ADDED) != 0;
	}
	t->have_scores = scores != NULL;

	/* control, unknown and user-defined tokens are matched in the raw text, as llama.cpp does */
	if (n_special && !(t->added = calloc(n_special, sizeof(*t->added))))
		return E(t, ISQ_ENOMEM, "out of memory");
	for (size_t i = 0; i < t->n_vocab; i++)
		if (t->tok[i].flags & TF_ADDED)
			t->added[t->n_added++] = (struct tok_added){ .id = (int32_t)i,
								     .off = t->tok[i].off,
								     .len = t->tok[i].len,
								     .special = (t->tok[i].flags & TF_SPECIAL) != 0 };

	t->bos = id_key(g, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, n);
	t->eos = id_key(g, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, n);
	t->unk = id_key(g, "tokenizer.ggml.unknown_token_id", spm ? 0 : -1, n);
	t->pad = id_key(g, "tokenizer.ggml.padding_token_id", -1, n);
	t->add_bos = bool_key(g, "tokenizer.ggml.add_bos_token", spm) && t->bos >= 0;
	t->add_eos = bool_key(g, "tokenizer.ggml.add_eos_token", 0) && t->eos >= 0;
	char *tmpl = isq_gguf_get_str(g, "tokenizer.chat_template");
	t->chat_template = tmpl;
	t->pre_name = isq_gguf_get_str(g, "tokenizer.ggml.pre");

	t->tmpl = malloc(3 * sizeof(*t->tmpl));
	if (!t->tmpl)
		return E(t, ISQ_ENOMEM, "out of memory");
	if (t->add_bos)
		t->tmpl[t->n_tmpl++] = t->bos;
	t->tmpl[t->n_tmpl++] = -1;
	if (t->add_eos)
		t->tmpl[t->n_tmpl++] = t->eos;
	t->has_tmpl = t->n_tmpl > 1;
	t->has_decoder = 1;

	if (spm) {
		/* llama.cpp: " " prefix on each text fragment (when add_space_prefix), spaces as U+2581 */
		t->model = TM_SPM;
		t->byte_fallback = 1;
		t->add_space_prefix = bool_key(g, "tokenizer.ggml.add_space_prefix", 1);
		if ((t->add_space_prefix && (rc = add_norm(t, TN_PREPEND, "\xe2\x96\x81", NULL))) ||
		    (rc = add_norm(t, TN_REPLACE, " ", "\xe2\x96\x81")))
			return rc;
		struct tok_dec *d;
		if (!(d = add_dec(t, TD_REPLACE)) || !(d->str = isq_strdup("\xe2\x96\x81")) || !(d->content = isq_strdup(" ")))
			return E(t, ISQ_ENOMEM, "out of memory");
		d->str_len = 3;
		d->content_len = 1;
		if (!add_dec(t, TD_BYTEFALLBACK) || !add_dec(t, TD_FUSE))
			return E(t, ISQ_ENOMEM, "out of memory");
		if (t->add_space_prefix) {
			if (!(d = add_dec(t, TD_STRIP)))
				return E(t, ISQ_ENOMEM, "out of memory");
			d->cp = ' ';
			d->start = 1;
		}
	} else {
		t->model = TM_BPE;
		const struct isq_gguf_kv *merges = isq_gguf_find_kv(g, "tokenizer.ggml.merges");
		if (!merges)
			return E(t, ISQ_EFORMAT, "tokenizer.ggml.merges is missing (required for gpt2)");
		if ((rc = load_merges(t, merges)))
			return rc;
		const char *pre = t->pre_name ? t->pre_name : "default", *re = NULL;
		if (!strcmp(pre, "qwen2")) {
			re = tok_re_qwen2;
			/* Qwen's tokenizer.json normalizes to NFC first; llama.cpp does not, we follow the model's own */
			if ((rc = add_norm(t, TN_NFC, NULL, NULL)))
				return rc;
		} else if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3")) {
			re = tok_re_llama3;
			t->ignore_merges = 1; /* Llama 3's tokenizer.json sets it, and llama.cpp follows */
		} else if (strcmp(pre, "gpt2") && strcmp(pre, "default")) {
			return E(t, ISQ_EUNSUPPORTED, "tokenizer.ggml.pre '%.40s' is not supported", pre);
		}
		struct tok_pre *p = calloc(re ? 2 : 1, sizeof(*p));
		if (!p)
			return E(t, ISQ_ENOMEM, "out of memory");
		t->pre = p;
		if (re) {
			t->n_pre = 1;
			p->kind = TP_SPLIT;
			p->behavior = SB_ISOLATED;
			if ((rc = tok_regex_compile(t, &p->re, re, strlen(re), "tokenizer.ggml.pre")))
				return rc;
			p++;
		}
		t->n_pre++;
		p->kind = TP_BYTELEVEL;
		p->use_regex = !re;
		if (!re && (rc = tok_regex_compile(t, &p->re, tok_re_gpt2, strlen(tok_re_gpt2), "ByteLevel")))
			return rc;
		if (!add_dec(t, TD_BYTELEVEL))
			return E(t, ISQ_ENOMEM, "out of memory");
	}
	return tok_finish(t);
}

int isq_tokenizer_load_gguf(struct isq_tokenizer *t, const struct isq_gguf *g)
{
	tok_reset(t);
	isq_errbuf_clear(&t->err);
	int rc = load_gguf(t, g);
	if (rc) {
		struct isq_errbuf keep = t->err;
		tok_reset(t);
		t->err = keep;
	}
	return rc;
}

/* ---- export ------------------------------------------------------------------------ */

/* tokenizer.ggml.pre for what we recognise in a tokenizer.json */
static const char *pre_name(const struct isq_tokenizer *t)
{
	if (t->pre_name)
		return t->pre_name;
	if (t->kind != ISQ_TOKENIZER_BYTE_BPE)
		return "default";
	for (size_t i = 0; i < t->n_pre; i++) {
		const struct tok_pre *p = &t->pre[i];
		if (p->kind == TP_SPLIT && p->re.src && !strcmp(p->re.src, tok_re_qwen2))
			return "qwen2";
		if (p->kind == TP_SPLIT && p->re.src && !strcmp(p->re.src, tok_re_llama3))
			return "llama-bpe";
	}
	if (t->n_pre == 1 && t->pre[0].kind == TP_BYTELEVEL && t->pre[0].use_regex)
		return "gpt2";
	return "default";
}

int isq_tokenizer_to_gguf(struct isq_tokenizer *t, struct isq_gguf_writer *w, size_t n_vocab)
{
	int spm = t->kind == ISQ_TOKENIZER_SPM, bpe = t->kind == ISQ_TOKENIZER_BYTE_BPE;
	if (!spm && !bpe)
		return E(t, ISQ_EUNSUPPORTED, "only SentencePiece-like and byte-level BPE tokenizers go to GGUF");
	if (n_vocab && n_vocab < t->n_vocab)
		return E(t, ISQ_EINVAL, "vocabulary of %zu tokens does not fit %zu", t->n_vocab, n_vocab);
	size_t nv = n_vocab ? n_vocab : t->n_vocab;
	const char **toks = calloc(nv, sizeof(*toks));
	char **pads = calloc(nv, sizeof(*pads));
	float *scores = malloc(nv * sizeof(*scores));
	int32_t *types = malloc(nv * sizeof(*types));
	const char **merges = NULL;
	struct isq_buf mb = ISQ_BUF_INIT;
	size_t *moff = NULL;
	int rc = 0;
	if (!toks || !pads || !scores || !types) {
		rc = E(t, ISQ_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nv; i++) {
		if (i < t->n_vocab && (t->tok[i].flags & TF_PRESENT)) {
			toks[i] = t->strs.data + t->tok[i].off;
			scores[i] = t->tok[i].score;
			types[i] = t->tok[i].type ? t->tok[i].type : ISQ_TOKEN_NORMAL;
			continue;
		}
		/* llama.cpp's converter pads a short vocabulary the same way */
		char name[32];
		snprintf(name, sizeof(name), "[PAD%zu]", i);
		if (!(pads[i] = isq_strdup(name))) {
			rc = E(t, ISQ_ENOMEM, "out of memory");
			goto out;
		}
		toks[i] = pads[i];
		scores[i] = 0;
		types[i] = ISQ_TOKEN_UNUSED;
	}
	if ((rc = isq_gguf_set_str(w, "tokenizer.ggml.model", spm ? "llama" : "gpt2")) ||
	    (rc = isq_gguf_set_str(w, "tokenizer.ggml.pre", pre_name(t))) ||
	    (rc = isq_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, nv)) ||
	    (spm && (rc = isq_gguf_set_arr(w, "tokenizer.ggml.scores", ISQ_GGUF_F32, scores, nv))) ||
	    (rc = isq_gguf_set_arr(w, "tokenizer.ggml.token_type", ISQ_GGUF_I32, types, nv)))
		goto werr;
	if (bpe) {
		if (t->n_merges && (!(merges = malloc(t->n_merges * sizeof(*merges))) ||
				    !(moff = malloc(t->n_merges * sizeof(*moff))))) {
			rc = E(t, ISQ_ENOMEM, "out of memory");
			goto out;
		}
		for (size_t i = 0; i < t->n_merges; i++) {
			size_t al, bl;
			const char *a = tok_text(t, t->merge_list[i][0], &al), *b = tok_text(t, t->merge_list[i][1], &bl);
			/* llama.cpp splits "a b" at the first space after the first byte */
			if (al > 1 && memchr(a + 1, ' ', al - 1)) {
				rc = E(t, ISQ_EUNSUPPORTED, "merge %zu: token '%s' holds a space and cannot be written as \"a b\"",
				       i, a);
				goto out;
			}
			moff[i] = mb.len;
			if (isq_buf_append(&mb, a, al) || isq_buf_putc(&mb, ' ') || isq_buf_append(&mb, b, bl) ||
			    isq_buf_putc(&mb, '\0')) {
				rc = E(t, ISQ_ENOMEM, "out of memory");
				goto out;
			}
		}
		for (size_t i = 0; i < t->n_merges; i++)
			merges[i] = mb.data + moff[i];
		if ((rc = isq_gguf_set_arr_str(w, "tokenizer.ggml.merges", merges, t->n_merges)))
			goto werr;
	}
	struct {
		const char *key;
		int32_t id;
	} ids[] = { { "tokenizer.ggml.bos_token_id", t->bos },
		    { "tokenizer.ggml.eos_token_id", t->eos },
		    { "tokenizer.ggml.unknown_token_id", t->unk },
		    { "tokenizer.ggml.padding_token_id", t->pad } };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(ids); i++)
		if (ids[i].id >= 0 && (rc = isq_gguf_set_u32(w, ids[i].key, (uint32_t)ids[i].id)))
			goto werr;
	if ((rc = isq_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", t->add_bos)) ||
	    (rc = isq_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", t->add_eos)) ||
	    (spm && (rc = isq_gguf_set_bool(w, "tokenizer.ggml.add_space_prefix", t->add_space_prefix > 0))) ||
	    (t->chat_template && (rc = isq_gguf_set_str(w, "tokenizer.chat_template", t->chat_template))))
		goto werr;
	goto out;
werr:
	E(t, rc, "%s", isq_gguf_writer_errmsg(w));
out:
	if (pads)
		for (size_t i = 0; i < nv; i++)
			free(pads[i]);
	free(pads);
	free(toks);
	free(scores);
	free(types);
	free(merges);
	free(moff);
	isq_buf_release(&mb);
	return rc;
}
