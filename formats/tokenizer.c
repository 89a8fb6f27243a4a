/*
 * tokenizer.c - the tokenizer handle: vocabulary tables, hash maps, UTF-8 and
 * Unicode helpers, accessors.
 */
#include "tokenizer-impl.h"

#include <utf8proc.h>

struct isq_tokenizer *isq_tokenizer_new(void)
{
	struct isq_tokenizer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->bos = t->eos = t->unk = t->pad = t->model_unk = -1;
	t->add_space_prefix = -1;
	for (int i = 0; i < 256; i++)
		t->byte_id[i] = -1;
	return t;
}

/* Everything a load builds; the handle is as new afterwards. */
void tok_reset(struct isq_tokenizer *t)
{
	tok_pipeline_release(t);
	isq_buf_release(&t->strs);
	free(t->tok);
	tok_strmap_release(&t->vocab);
	tok_strmap_release(&t->all);
	free(t->merges.slots);
	free(t->merge_list);
	free(t->added);
	free(t->raw_set.idx);
	free(t->norm_set.idx);
	free(t->tmpl);
	free(t->chat_template);
	free(t->pre_name);
	isq_buf_release(&t->pieces);
	free(t->piece_off);
	tok_cache_release(&t->cache);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(t->depth); i++) {
		isq_buf_release(&t->depth[i].a);
		isq_buf_release(&t->depth[i].b);
		free(t->depth[i].spans);
	}
	isq_buf_release(&t->nbuf[0]);
	isq_buf_release(&t->nbuf[1]);
	if (t->md)
		pcre2_match_data_free(t->md);
	free(t->out);
	free(t->sym);
	free(t->heap);
	isq_buf_release(&t->clean);
	struct isq_errbuf err = t->err;
	memset(t, 0, sizeof(*t));
	t->err = err;
	t->bos = t->eos = t->unk = t->pad = t->model_unk = -1;
	t->add_space_prefix = -1;
	for (int i = 0; i < 256; i++)
		t->byte_id[i] = -1;
}

void isq_tokenizer_free(struct isq_tokenizer *t)
{
	if (!t)
		return;
	tok_reset(t);
	free(t);
}

const char *isq_tokenizer_errmsg(const struct isq_tokenizer *t)
{
	return isq_errbuf_msg(&t->err);
}

int tok_grow(void **p, size_t *alloc, size_t need, size_t size)
{
	if (need <= *alloc)
		return 0;
	size_t n = *alloc ? *alloc : 16;
	while (n < need) {
		if (n > SIZE_MAX / 2 / size)
			return ISQ_ENOMEM;
		n *= 2;
	}
	void *q = realloc(*p, n * size);
	if (!q)
		return ISQ_ENOMEM;
	*p = q;
	*alloc = n;
	return 0;
}

/* ---- hashing and maps ---------------------------------------------------- */

uint32_t tok_hash(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0x2545f4914f6cdd1dull);
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, s, 8);
		h = (h ^ v) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		s += 8;
		n -= 8;
	}
	uint64_t v = 0;
	memcpy(&v, s, n);
	h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 29;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 32;
	return (uint32_t)h;
}

int tok_str_add(struct isq_tokenizer *t, const char *s, size_t n, uint32_t *off)
{
	if (t->strs.len + n + 1 > UINT32_MAX)
		return isq_errbuf_set(&t->err, ISQ_EUNSUPPORTED, "vocabulary text exceeds 4 GiB");
	*off = (uint32_t)t->strs.len;
	if (isq_buf_append(&t->strs, s, n) || isq_buf_putc(&t->strs, '\0'))
		return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
	return 0;
}

static int strmap_rehash(struct tok_strmap *m, size_t cap)
{
	uint64_t *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return ISQ_ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		uint64_t s = m->slots[i];
		if (!s)
			continue;
		size_t j = (size_t)(s >> 32) & (cap - 1);
		while (slots[j])
			j = (j + 1) & (cap - 1);
		slots[j] = s;
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

int tok_strmap_put(struct isq_tokenizer *t, struct tok_strmap *m, uint32_t off, uint32_t len, int32_t id)
{
	if ((m->n + 1) * 2 > m->cap && strmap_rehash(m, m->cap ? m->cap * 2 : 1024))
		return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
	const char *s = t->strs.data + off;
	uint32_t h = tok_hash(s, len);
	size_t j = h & (m->cap - 1);
	for (; m->slots[j]; j = (j + 1) & (m->cap - 1)) {
		if ((uint32_t)(m->slots[j] >> 32) != h)
			continue;
		struct tok_strkey *k = &m->keys[(uint32_t)m->slots[j] - 1];
		if (k->len == len && !memcmp(t->strs.data + k->off, s, len)) {
			k->id = id;
			return 0;
		}
	}
	if (tok_grow((void **)&m->keys, &m->alloc, m->n + 1, sizeof(*m->keys)))
		return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
	m->keys[m->n] = (struct tok_strkey){ off, len, id };
	m->slots[j] = (uint64_t)h << 32 | (uint64_t)(m->n + 1);
	m->n++;
	return 0;
}

int32_t tok_strmap_get(const struct isq_tokenizer *t, const struct tok_strmap *m, const char *s, size_t n)
{
	if (!m->cap)
		return -1;
	uint32_t h = tok_hash(s, n);
	for (size_t j = h & (m->cap - 1); m->slots[j]; j = (j + 1) & (m->cap - 1)) {
		if ((uint32_t)(m->slots[j] >> 32) != h)
			continue;
		const struct tok_strkey *k = &m->keys[(uint32_t)m->slots[j] - 1];
		if (k->len == n && !memcmp(t->strs.data + k->off, s, n))
			return k->id;
	}
	return -1;
}

void tok_strmap_release(struct tok_strmap *m)
{
	free(m->slots);
	free(m->keys);
	memset(m, 0, sizeof(*m));
}

static inline size_t merge_slot(uint64_t key, size_t cap)
{
	key ^= key >> 31;
	key *= 0x9e3779b97f4a7c15ull;
	key ^= key >> 29;
	return (size_t)key & (cap - 1);
}

static int mergemap_rehash(struct tok_mergemap *m, size_t cap)
{
	struct tok_merge_slot *s = malloc(cap * sizeof(*s));
	if (!s)
		return ISQ_ENOMEM;
	for (size_t i = 0; i < cap; i++)
		s[i].key = UINT64_MAX;
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].key == UINT64_MAX)
			continue;
		size_t j = merge_slot(m->slots[i].key, cap);
		while (s[j].key != UINT64_MAX)
			j = (j + 1) & (cap - 1);
		s[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = s;
	m->cap = cap;
	return 0;
}

int tok_mergemap_put(struct tok_mergemap *m, int32_t a, int32_t b, uint32_t rank, int32_t id)
{
	if ((m->n + 1) * 2 > m->cap && mergemap_rehash(m, m->cap ? m->cap * 2 : 1024))
		return ISQ_ENOMEM;
	uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	size_t j = merge_slot(key, m->cap);
	for (; m->slots[j].key != UINT64_MAX; j = (j + 1) & (m->cap - 1)) {
		if (m->slots[j].key == key) {
			/* HF builds its merge map from the list: a repeated pair keeps the last rank */
			m->slots[j].rank = rank;
			m->slots[j].id = id;
			return 0;
		}
	}
	m->slots[j] = (struct tok_merge_slot){ key, rank, id };
	m->n++;
	return 0;
}

const struct tok_merge_slot *tok_mergemap_get(const struct tok_mergemap *m, int32_t a, int32_t b)
{
	if (!m->cap)
		return NULL;
	uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
	for (size_t j = merge_slot(key, m->cap); m->slots[j].key != UINT64_MAX; j = (j + 1) & (m->cap - 1))
		if (m->slots[j].key == key)
			return &m->slots[j];
	return NULL;
}

/* ---- vocabulary table ------------------------------------------------------ */

int tok_set_token(struct isq_tokenizer *t, int32_t id, const char *s, size_t n, unsigned flags)
{
	if (id < 0 || (uint32_t)id >= TOK_MAX_VOCAB)
		return isq_errbuf_set(&t->err, ISQ_EUNSUPPORTED, "token id %ld is out of range (limit %u)", (long)id,
				      TOK_MAX_VOCAB);
	if ((size_t)id >= t->n_vocab) {
		if (tok_grow((void **)&t->tok, &t->alloc_tok, (size_t)id + 1, sizeof(*t->tok)))
			return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
		memset(t->tok + t->n_vocab, 0, ((size_t)id + 1 - t->n_vocab) * sizeof(*t->tok));
		t->n_vocab = (size_t)id + 1;
	}
	struct tok_entry *e = &t->tok[id];
	uint32_t off;
	if (!(e->flags & TF_PRESENT) || e->len != n || memcmp(t->strs.data + e->off, s, n)) {
		int rc = tok_str_add(t, s, n, &off);
		if (rc)
			return rc;
		e->off = e->dec_off = off;
		e->len = e->dec_len = (uint32_t)n;
	}
	e->flags |= (uint8_t)(TF_PRESENT | flags);
	return 0;
}

const char *tok_text(const struct isq_tokenizer *t, int32_t id, size_t *len)
{
	if (id < 0 || (size_t)id >= t->n_vocab || !(t->tok[id].flags & TF_PRESENT))
		return NULL;
	if (len)
		*len = t->tok[id].len;
	return t->strs.data + t->tok[id].off;
}

static int is_spm_like(const struct isq_tokenizer *t)
{
	if (t->model == TM_SPM || t->byte_fallback)
		return 1;
	for (size_t i = 0; i < t->n_pre; i++)
		if (t->pre[i].kind == TP_METASPACE)
			return 1;
	for (size_t i = 0; i < t->n_norm; i++)
		if (t->norm[i].kind == TN_PREPEND || t->norm[i].kind == TN_REPLACE)
			if ((t->norm[i].str && strstr(t->norm[i].str, "\xe2\x96\x81")) ||
			    (t->norm[i].content && strstr(t->norm[i].content, "\xe2\x96\x81")))
				return 1;
	return 0;
}

int tok_finish(struct isq_tokenizer *t)
{
	int rc;
	for (int b = 0; b < 256; b++) {
		char name[8];
		snprintf(name, sizeof(name), "<0x%02X>", b);
		t->byte_id[b] = tok_strmap_get(t, &t->vocab, name, 6);
	}
	/* isq_tokenizer_find: HF's token_to_id looks at added tokens first, then the model */
	for (size_t i = 0; i < t->n_vocab; i++)
		if ((t->tok[i].flags & (TF_PRESENT | TF_MODEL)) == (TF_PRESENT | TF_MODEL) &&
		    (rc = tok_strmap_put(t, &t->all, t->tok[i].off, t->tok[i].len, (int32_t)i)))
			return rc;
	for (size_t i = 0; i < t->n_vocab; i++)
		if ((t->tok[i].flags & (TF_PRESENT | TF_ADDED)) == (TF_PRESENT | TF_ADDED) &&
		    (rc = tok_strmap_put(t, &t->all, t->tok[i].off, t->tok[i].len, (int32_t)i)))
			return rc;
	if ((rc = tok_build_addsets(t)))
		return rc;

	int byte_level = 0;
	for (size_t i = 0; i < t->n_pre; i++)
		if (t->pre[i].kind == TP_BYTELEVEL)
			byte_level = 1;
	for (size_t i = 0; i < t->n_dec; i++)
		if (t->dec[i].kind == TD_BYTELEVEL)
			byte_level = 1;
	if (byte_level)
		t->kind = ISQ_TOKENIZER_BYTE_BPE;
	else if (is_spm_like(t))
		t->kind = ISQ_TOKENIZER_SPM;
	else
		t->kind = ISQ_TOKENIZER_OTHER_BPE;
	if (t->kind == ISQ_TOKENIZER_SPM && t->add_space_prefix < 0) {
		t->add_space_prefix = 0;
		for (size_t i = 0; i < t->n_norm; i++)
			if (t->norm[i].kind == TN_PREPEND)
				t->add_space_prefix = 1;
		for (size_t i = 0; i < t->n_pre; i++)
			if (t->pre[i].kind == TP_METASPACE && t->pre[i].prepend != PS_NEVER)
				t->add_space_prefix = 1;
	}
	int32_t *special[] = { &t->bos, &t->eos, &t->unk, &t->pad };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(special); i++)
		if (*special[i] >= 0 && (size_t)*special[i] >= t->n_vocab)
			*special[i] = -1;
	return tok_build_pieces(t);
}

/* ---- UTF-8 ------------------------------------------------------------------ */

size_t tok_utf8_len(unsigned char c)
{
	return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

size_t tok_utf8_valid(const unsigned char *s, size_t n, size_t *bad, int *truncated)
{
	unsigned c = s[0], lo = 0x80, hi = 0xbf;
	size_t need;
	*truncated = 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		need = 1;
	else if (c == 0xe0)
		need = 2, lo = 0xa0;
	else if (c == 0xed)
		need = 2, hi = 0x9f;
	else if (c >= 0xe1 && c <= 0xef)
		need = 2;
	else if (c == 0xf0)
		need = 3, lo = 0x90;
	else if (c == 0xf4)
		need = 3, hi = 0x8f;
	else if (c >= 0xf1 && c <= 0xf3)
		need = 3;
	else {
		*bad = 1;
		return 0;
	}
	for (size_t i = 1; i <= need; i++) {
		if (i >= n) {
			*bad = i;
			*truncated = 1;
			return 0;
		}
		if (s[i] < lo || s[i] > hi) {
			*bad = i;
			return 0;
		}
		lo = 0x80, hi = 0xbf;
	}
	return need + 1;
}

uint32_t tok_utf8_decode(const char *p, size_t n, size_t *adv)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t l = tok_utf8_len(s[0]);
	if (l > n)
		l = n;
	*adv = l;
	switch (l) {
	case 1:
		return s[0];
	case 2:
		return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
	case 3:
		return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
	default:
		return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 | (uint32_t)(s[2] & 0x3f) << 6 |
		       (s[3] & 0x3f);
	}
}

size_t tok_utf8_encode(uint32_t cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

int tok_utf8_lossy(struct isq_buf *b, const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0, run = 0;
	while (i < n) {
		size_t bad;
		int trunc;
		size_t l = tok_utf8_valid(s + i, n - i, &bad, &trunc);
		if (l) {
			i += l;
			continue;
		}
		if (isq_buf_append(b, p + run, i - run) || isq_buf_append(b, "\xef\xbf\xbd", 3))
			return ISQ_ENOMEM;
		i += bad;
		run = i;
	}
	return isq_buf_append(b, p + run, n - run) ? ISQ_ENOMEM : 0;
}

/* Rust's char::is_whitespace: the White_Space property. */
int tok_is_whitespace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
	       c == 0x3000;
}

/* Rust regex's \w: Alphabetic, marks, decimal digits, connector punctuation, joiners. */
int tok_is_word_char(uint32_t c)
{
	if (c < 0x80)
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
	if (c == 0x200c || c == 0x200d)
		return 1;
	switch (utf8proc_category((utf8proc_int32_t)c)) {
	case UTF8PROC_CATEGORY_LU:
	case UTF8PROC_CATEGORY_LL:
	case UTF8PROC_CATEGORY_LT:
	case UTF8PROC_CATEGORY_LM:
	case UTF8PROC_CATEGORY_LO:
	case UTF8PROC_CATEGORY_MN:
	case UTF8PROC_CATEGORY_MC:
	case UTF8PROC_CATEGORY_ME:
	case UTF8PROC_CATEGORY_ND:
	case UTF8PROC_CATEGORY_NL:
	case UTF8PROC_CATEGORY_PC:
		return 1;
	default:
		return 0;
	}
}

/* Rust's char::is_numeric: Nd, Nl, No. */
int tok_is_numeric(uint32_t c)
{
	if (c < 0x80)
		return c >= '0' && c <= '9';
	utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
	return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

/* HF's Punctuation pre-tokenizer: ASCII punctuation or a P* category. */
int tok_is_punct(uint32_t c)
{
	if (c < 0x80)
		return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
		       (c >= 0x7b && c <= 0x7e);
	utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
	return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/*
 * GPT-2's bytes_to_unicode: printable Latin-1 bytes ('!'..'~', 0xA1..0xAC,
 * 0xAE..0xFF) stand for themselves, the other 68 bytes take U+0100.. in byte
 * order (0x00..0x20 -> 0..32, 0x7F..0xA0 -> 33..66, 0xAD -> 67), so every
 * byte is one visible character.
 */
uint32_t tok_byte_to_cp(uint8_t b)
{
	if (b <= 0x20)
		return 0x100 + b;
	if (b >= 0x7f && b <= 0xa0)
		return 0x100 + 33 + (uint32_t)(b - 0x7f);
	if (b == 0xad)
		return 0x100 + 67;
	return b;
}

int tok_cp_to_byte(uint32_t cp)
{
	if (cp < 0x100)
		return (cp <= 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad) ? -1 : (int)cp;
	cp -= 0x100;
	if (cp <= 32)
		return (int)cp;
	if (cp <= 66)
		return (int)(0x7f + cp - 33);
	return cp == 67 ? 0xad : -1;
}

/* ---- accessors -------------------------------------------------------------- */

enum isq_tokenizer_kind isq_tokenizer_kind(const struct isq_tokenizer *t)
{
	return t->kind;
}

size_t isq_tokenizer_n_vocab(const struct isq_tokenizer *t)
{
	return t->n_vocab;
}

int32_t isq_tokenizer_bos(const struct isq_tokenizer *t)
{
	return t->bos;
}

int32_t isq_tokenizer_eos(const struct isq_tokenizer *t)
{
	return t->eos;
}

int32_t isq_tokenizer_unk(const struct isq_tokenizer *t)
{
	return t->unk;
}

int32_t isq_tokenizer_pad(const struct isq_tokenizer *t)
{
	return t->pad;
}

int isq_tokenizer_add_bos(const struct isq_tokenizer *t)
{
	return t->add_bos;
}

int isq_tokenizer_add_eos(const struct isq_tokenizer *t)
{
	return t->add_eos;
}

const char *isq_tokenizer_token(const struct isq_tokenizer *t, int32_t id)
{
	return tok_text(t, id, NULL);
}

int32_t isq_tokenizer_find(const struct isq_tokenizer *t, const char *text, size_t len)
{
	return tok_strmap_get(t, &t->all, text, len);
}

int isq_tokenizer_token_type(const struct isq_tokenizer *t, int32_t id)
{
	if (id < 0 || (size_t)id >= t->n_vocab)
		return ISQ_TOKEN_UNDEFINED;
	return t->tok[id].type;
}

int isq_tokenizer_is_special(const struct isq_tokenizer *t, int32_t id)
{
	return id >= 0 && (size_t)id < t->n_vocab && (t->tok[id].flags & TF_SPECIAL);
}

int isq_tokenizer_is_eog(const struct isq_tokenizer *t, int32_t id)
{
	/* the end-of-turn markers of the chat formats we run (llama.cpp keeps a similar list) */
	static const char *const eog[] = { "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|endoftext|>",
					   "<|end|>", "<end_of_turn>", "</s>", "<|end_of_text|>" };
	if (id < 0 || (size_t)id >= t->n_vocab)
		return 0;
	if (id == t->eos)
		return 1;
	if (!(t->tok[id].flags & TF_SPECIAL))
		return 0;
	const char *s = tok_text(t, id, NULL);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(eog); i++)
		if (!strcmp(s, eog[i]))
			return 1;
	return 0;
}

const char *isq_tokenizer_chat_template(const struct isq_tokenizer *t)
{
	return t->chat_template;
}
