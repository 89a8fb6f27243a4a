/*
 * tokenizer-bpe.c - encoding: added-token matching, the BPE model (merge
 * ranks, as the tokenizers library) and llama.cpp's SentencePiece merging
 * (token scores), with a per-word cache.
 *
 * Both merge loops keep the symbols of a word in a linked list and the
 * candidate pairs in a binary heap; a popped pair is checked against the
 * current neighbours and dropped if stale.  A word of n characters costs
 * O(n log n), so a 500-character run of one letter is as cheap as prose.
 */
#include "tokenizer-impl.h"

#define CACHE_MAX_WORD 256     /* the library caches words shorter than this, so do we */
#define CACHE_MAX_ENTRIES 65536

int tok_push(struct isq_tokenizer *t, int32_t id)
{
	if (tok_grow((void **)&t->out, &t->alloc_out, t->n_out + 1, sizeof(*t->out)))
		return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
	t->out[t->n_out++] = id;
	return 0;
}

/* ---- word cache -------------------------------------------------------------- */

void tok_cache_clear(struct tok_cache *c)
{
	if (c->slots)
		memset(c->slots, 0, c->cap * sizeof(*c->slots));
	c->n = 0;
	c->n_ids = 0;
	isq_buf_reset(&c->text);
}

void tok_cache_release(struct tok_cache *c)
{
	free(c->slots);
	free(c->e);
	free(c->ids);
	isq_buf_release(&c->text);
	memset(c, 0, sizeof(*c));
}

static const struct tok_cache_entry *cache_get(const struct tok_cache *c, const char *w, size_t n, uint32_t h)
{
	if (!c->cap)
		return NULL;
	for (size_t j = h & (c->cap - 1); c->slots[j]; j = (j + 1) & (c->cap - 1)) {
		const struct tok_cache_entry *e = &c->e[c->slots[j] - 1];
		if (e->hash == h && e->text_len == n && !memcmp(c->text.data + e->text_off, w, n))
			return e;
	}
	return NULL;
}

/* Best effort: a failed allocation only means the word is not cached. */
static void cache_put(struct tok_cache *c, const char *w, size_t n, uint32_t h, const int32_t *ids, size_t n_ids)
{
	if (c->n >= CACHE_MAX_ENTRIES)
		tok_cache_clear(c);
	if (!c->cap) {
		c->cap = 2 * CACHE_MAX_ENTRIES;
		if (!(c->slots = calloc(c->cap, sizeof(*c->slots)))) {
			c->cap = 0;
			return;
		}
	}
	if (tok_grow((void **)&c->e, &c->alloc, c->n + 1, sizeof(*c->e)) ||
	    tok_grow((void **)&c->ids, &c->alloc_ids, c->n_ids + n_ids, sizeof(*c->ids)))
		return;
	size_t off = c->text.len;
	if (isq_buf_append(&c->text, w, n))
		return;
	memcpy(c->ids + c->n_ids, ids, n_ids * sizeof(*ids));
	c->e[c->n] = (struct tok_cache_entry){ h, (uint32_t)off, (uint32_t)n, (uint32_t)c->n_ids, (uint32_t)n_ids };
	c->n_ids += n_ids;
	size_t j = h & (c->cap - 1);
	while (c->slots[j])
		j = (j + 1) & (c->cap - 1);
	c->slots[j] = (uint32_t)++c->n;
}

/* ---- BPE by merge rank ----------------------------------------------------------- */

struct bpe_sym {
	int32_t id;
	int32_t prev, next;
	uint32_t len; /* bytes; 0 = merged away */
};

struct bpe_cand {
	uint32_t rank;
	uint32_t pos;
	int32_t id;
};

static int cand_less(const struct bpe_cand *a, const struct bpe_cand *b)
{
	return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

/*
 * A binary min-heap under LESS, written once for both merge loops (BPE
 * candidates and SentencePiece bigrams); a macro rather than void* and a
 * comparison callback keeps the comparison inlined on the encoder's hot path.
 */
#define DEFINE_HEAP(PUSH, POP, T, LESS)                                              \
	static void PUSH(T *h, size_t *n, T c)                                       \
	{                                                                            \
		size_t i = (*n)++;                                                   \
		while (i) {                                                          \
			size_t p = (i - 1) / 2;                                      \
			if (!LESS(&c, &h[p]))                                        \
				break;                                               \
			h[i] = h[p];                                                 \
			i = p;                                                       \
		}                                                                    \
		h[i] = c;                                                            \
	}                                                                            \
	static T POP(T *h, size_t *n)                                                \
	{                                                                            \
		T top = h[0], last = h[--*n];                                        \
		size_t i = 0;                                                        \
		for (;;) {                                                           \
			size_t l = 2 * i + 1, m = i;                                 \
			const T *best = &last;                                       \
			if (l < *n && LESS(&h[l], best))                             \
				m = l, best = &h[l];                                 \
			if (l + 1 < *n && LESS(&h[l + 1], best))                     \
				m = l + 1;                                           \
			if (m == i)                                                  \
				break;                                               \
			h[i] = h[m];                                                 \
			i = m;                                                       \
		}                                                                    \
		if (*n)                                                              \
			h[i] = last;                                                 \
		return top;                                                          \
	}

DEFINE_HEAP(heap_push, heap_pop, struct bpe_cand, cand_less)

static int sym_add(struct isq_tokenizer *t, size_t *ns, int32_t id, uint32_t len)
{
	if (tok_grow(&t->sym, &t->alloc_sym, *ns + 1, sizeof(struct bpe_sym)))
		return ISQ_ENOMEM;
	struct bpe_sym *s = t->sym;
	s[*ns] = (struct bpe_sym){ id, (int32_t)*ns - 1, -1, len };
	if (*ns)
		s[*ns - 1].next = (int32_t)*ns;
	(*ns)++;
	return 0;
}

static int cand_add(struct isq_tokenizer *t, size_t *nh, const struct bpe_sym *s, int32_t pos)
{
	const struct tok_merge_slot *m = tok_mergemap_get(&t->merges, s[pos].id, s[s[pos].next].id);
	if (!m)
		return 0;
	if (tok_grow(&t->heap, &t->alloc_heap, *nh + 1, sizeof(struct bpe_cand)))
		return ISQ_ENOMEM;
	heap_push(t->heap, nh, (struct bpe_cand){ m->rank, (uint32_t)pos, m->id });
	return 0;
}

/* The tokenizers library's BPE::merge_word + Word::merge_all, without dropout. */
static int bpe_word(struct isq_tokenizer *t, const char *w, size_t n)
{
	size_t ns = 0, nh = 0;
	int32_t unk = -1;
	uint32_t unk_len = 0;
	for (size_t i = 0; i < n;) {
		size_t l = tok_utf8_len((unsigned char)w[i]);
		if (l > n - i)
			l = n - i;
		int32_t id = tok_strmap_get(t, &t->vocab, w + i, l);
		if (id >= 0) {
			if (unk >= 0 && sym_add(t, &ns, unk, unk_len))
				return ISQ_ENOMEM;
			unk = -1;
			if (sym_add(t, &ns, id, (uint32_t)l))
				return ISQ_ENOMEM;
		} else {
			int fell_back = 0;
			if (t->byte_fallback) {
				size_t k = 0;
				while (k < l && t->byte_id[(unsigned char)w[i + k]] >= 0)
					k++;
				if (k == l) {
					/* as in the library, a pending unknown is not flushed here */
					for (k = 0; k < l; k++)
						if (sym_add(t, &ns, t->byte_id[(unsigned char)w[i + k]], 1))
							return ISQ_ENOMEM;
					fell_back = 1;
				}
			}
			if (!fell_back && t->model_unk >= 0) {
				if (unk >= 0 && t->fuse_unk) {
					unk_len += (uint32_t)l;
				} else {
					if (unk >= 0 && sym_add(t, &ns, unk, unk_len))
						return ISQ_ENOMEM;
					unk = t->model_unk;
					unk_len = (uint32_t)l;
				}
			}
		}
		i += l;
	}
	if (unk >= 0 && sym_add(t, &ns, unk, unk_len))
		return ISQ_ENOMEM;

	struct bpe_sym *s = t->sym;
	for (size_t i = 0; i + 1 < ns; i++)
		if (cand_add(t, &nh, s, (int32_t)i))
			return ISQ_ENOMEM;
	while (nh) {
		struct bpe_cand c = heap_pop(t->heap, &nh);
		struct bpe_sym *a = &s[c.pos];
		if (!a->len || a->next < 0)
			continue;
		const struct tok_merge_slot *m = tok_mergemap_get(&t->merges, a->id, s[a->next].id);
		if (!m || m->id != c.id) /* stale: a neighbour changed since the pair was queued */
			continue;
		struct bpe_sym *b = &s[a->next];
		a->id = c.id;
		a->len += b->len;
		a->next = b->next;
		b->len = 0;
		if (a->next >= 0)
			s[a->next].prev = (int32_t)c.pos;
		if (a->prev >= 0 && cand_add(t, &nh, s, a->prev))
			return ISQ_ENOMEM;
		if (a->next >= 0 && cand_add(t, &nh, s, (int32_t)c.pos))
			return ISQ_ENOMEM;
	}
	for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next)
		if (tok_push(t, s[i].id))
			return ISQ_ENOMEM;
	return 0;
}

/* ---- SentencePiece by score (llama.cpp's llm_tokenizer_spm) ---------------------- */

struct spm_sym {
	uint32_t off, n; /* bytes of the word; n = 0 once merged away */
	int32_t prev, next;
};

struct spm_bigram {
	float score;
	int32_t left, right;
	uint32_t size;
};

/* llama.cpp's order: the higher score first, then the leftmost */
static int bigram_before(const struct spm_bigram *a, const struct spm_bigram *b)
{
	return a->score != b->score ? a->score > b->score : a->left < b->left;
}

DEFINE_HEAP(bigram_push, bigram_pop, struct spm_bigram, bigram_before)

static int bigram_add(struct isq_tokenizer *t, size_t *nh, const char *w, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return 0;
	const struct spm_sym *s = t->sym;
	uint32_t size = s[l].n + s[r].n;
	int32_t id = tok_strmap_get(t, &t->vocab, w + s[l].off, size);
	if (id < 0)
		return 0;
	if (tok_grow(&t->heap, &t->alloc_heap, *nh + 1, sizeof(struct spm_bigram)))
		return ISQ_ENOMEM;
	bigram_push(t->heap, nh, (struct spm_bigram){ t->tok[id].score, l, r, size });
	return 0;
}

static int spm_word(struct isq_tokenizer *t, const char *w, size_t n)
{
	size_t ns = 0, nh = 0;
	for (size_t i = 0; i < n;) {
		size_t l = tok_utf8_len((unsigned char)w[i]);
		if (l > n - i)
			l = n - i;
		if (tok_grow(&t->sym, &t->alloc_sym, ns + 1, sizeof(struct spm_sym)))
			return ISQ_ENOMEM;
		struct spm_sym *s = t->sym;
		s[ns] = (struct spm_sym){ (uint32_t)i, (uint32_t)l, (int32_t)ns - 1, i + l == n ? -1 : (int32_t)ns + 1 };
		ns++;
		i += l;
	}
	for (size_t i = 1; i < ns; i++)
		if (bigram_add(t, &nh, w, (int32_t)i - 1, (int32_t)i))
			return ISQ_ENOMEM;
	struct spm_sym *s = t->sym;
	while (nh) {
		struct spm_bigram b = bigram_pop(t->heap, &nh);
		struct spm_sym *l = &s[b.left], *r = &s[b.right];
		if (!l->n || !r->n || l->n + r->n != b.size)
			continue;
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			s[r->next].prev = b.left;
		if (bigram_add(t, &nh, w, l->prev, b.left) || bigram_add(t, &nh, w, b.left, l->next))
			return ISQ_ENOMEM;
	}
	for (int32_t i = ns ? 0 : -1; i >= 0; i = s[i].next) {
		int32_t id = tok_strmap_get(t, &t->vocab, w + s[i].off, s[i].n);
		if (id >= 0) {
			if (tok_push(t, id))
				return ISQ_ENOMEM;
			continue;
		}
		/* a character that is no token: its bytes (llama.cpp's byte_to_token) */
		for (uint32_t k = 0; k < s[i].n; k++) {
			unsigned char c = (unsigned char)w[s[i].off + k];
			int32_t bid = t->byte_id[c];
			if (bid < 0)
				bid = tok_strmap_get(t, &t->vocab, (const char *)&c, 1);
			if (bid < 0)
				bid = t->unk;
			if (bid >= 0 && tok_push(t, bid))
				return ISQ_ENOMEM;
		}
	}
	return 0;
}

int tok_model_word(struct isq_tokenizer *t, const char *w, size_t n)
{
	if (t->model == TM_BPE && t->ignore_merges) {
		int32_t id = tok_strmap_get(t, &t->vocab, w, n);
		if (id >= 0)
			return tok_push(t, id);
	}
	uint32_t h = 0;
	if (n < CACHE_MAX_WORD) {
		h = tok_hash(w, n);
		const struct tok_cache_entry *e = cache_get(&t->cache, w, n, h);
		if (e) {
			if (tok_grow((void **)&t->out, &t->alloc_out, t->n_out + e->n_ids, sizeof(*t->out)))
				return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
			memcpy(t->out + t->n_out, t->cache.ids + e->ids_off, e->n_ids * sizeof(*t->out));
			t->n_out += e->n_ids;
			return 0;
		}
	}
	size_t before = t->n_out;
	int rc = t->model == TM_SPM ? spm_word(t, w, n) : bpe_word(t, w, n);
	if (rc)
		return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
	if (n < CACHE_MAX_WORD)
		cache_put(&t->cache, w, n, h, t->out + before, t->n_out - before);
	return 0;
}

/* ---- added tokens -------------------------------------------------------------- */

static int addset_build(struct isq_tokenizer *t, struct tok_addset *set, int normalized)
{
	size_t cnt[257] = { 0 };
	free(set->idx);
	memset(set, 0, sizeof(*set));
	for (size_t i = 0; i < t->n_added; i++)
		if (t->added[i].len && !!t->added[i].normalized == normalized)
			cnt[(unsigned char)t->strs.data[t->added[i].off]]++;
	size_t total = 0;
	for (int b = 0; b < 256; b++) {
		set->first[b] = (uint32_t)total;
		total += cnt[b];
	}
	set->first[256] = (uint32_t)total;
	if (!total)
		return 0;
	set->idx = malloc(total * sizeof(*set->idx));
	if (!set->idx)
		return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
	size_t fill[256];
	for (int b = 0; b < 256; b++)
		fill[b] = set->first[b];
	for (size_t i = 0; i < t->n_added; i++) {
		const struct tok_added *a = &t->added[i];
		if (!a->len || !!a->normalized != normalized)
			continue;
		unsigned b = (unsigned char)t->strs.data[a->off];
		/* insertion sort within the bucket: longest first (leftmost-longest matching) */
		size_t j = fill[b]++;
		while (j > set->first[b] && t->added[set->idx[j - 1]].len < a->len) {
			set->idx[j] = set->idx[j - 1];
			j--;
		}
		set->idx[j] = (uint32_t)i;
	}
	set->n = total;
	return 0;
}

int tok_build_addsets(struct isq_tokenizer *t)
{
	int rc = addset_build(t, &t->raw_set, 0);
	return rc ? rc : addset_build(t, &t->norm_set, 1);
}

static uint32_t last_cp(const char *s, size_t n, size_t *start)
{
	size_t k = n - 1;
	while (k > 0 && ((unsigned char)s[k] & 0xc0) == 0x80)
		k--;
	size_t adv;
	*start = k;
	return tok_utf8_decode(s + k, n - k, &adv);
}

struct seg_fn {
	int (*text)(struct isq_tokenizer *t, const char *s, size_t start, size_t end, void *ctx);
	void *ctx;
};

/*
 * The library's AddedVocabulary::find_matches: leftmost-longest matches of
 * the set in s; lstrip/rstrip swallow whitespace around a match,
 * single_word refuses a match inside a word.  A refused match is skipped
 * whole, as the automaton's iterator does.
 */
static int split_added(struct isq_tokenizer *t, const struct tok_addset *set, const char *s, size_t n,
		       unsigned flags, const struct seg_fn *fn)
{
	size_t done = 0, pos = 0;
	int rc;
	while (set->n && pos < n) {
		unsigned b = (unsigned char)s[pos];
		const struct tok_added *a = NULL;
		for (uint32_t k = set->first[b]; k < set->first[b + 1]; k++) {
			const struct tok_added *c = &t->added[set->idx[k]];
			if (c->len <= n - pos && !memcmp(t->strs.data + c->off, s + pos, c->len)) {
				a = c;
				break;
			}
		}
		if (!a) {
			pos++;
			continue;
		}
		size_t start = pos, stop = pos + a->len;
		pos = stop;
		if ((flags & ISQ_TOKENIZER_LITERAL) && a->special)
			continue;
		if (a->single_word) {
			size_t k, adv;
			if (start > 0 && tok_is_word_char(last_cp(s, start, &k)))
				continue;
			if (stop < n && tok_is_word_char(tok_utf8_decode(s + stop, n - stop, &adv)))
				continue;
		}
		if (a->lstrip) {
			size_t k = start;
			while (k > done) {
				size_t p;
				if (!tok_is_whitespace(last_cp(s, k, &p)))
					break;
				k = p;
			}
			start = k;
		}
		if (a->rstrip) {
			while (stop < n) {
				size_t adv;
				if (!tok_is_whitespace(tok_utf8_decode(s + stop, n - stop, &adv)))
					break;
				stop += adv;
			}
			pos = stop;
		}
		if (done < start && (rc = fn->text(t, s, done, start, fn->ctx)))
			return rc;
		if ((rc = tok_push(t, a->id)))
			return rc;
		done = stop;
	}
	if (done < n)
		return fn->text(t, s, done, n, fn->ctx);
	return 0;
}

struct enc_ctx {
	unsigned flags;
	int origin;
};

static int norm_text(struct isq_tokenizer *t, const char *s, size_t start, size_t end, void *p)
{
	struct enc_ctx *c = p;
	return tok_pretokenize(t, s + start, end - start, c->origin && start == 0);
}

static int raw_text(struct isq_tokenizer *t, const char *s, size_t start, size_t end, void *p)
{
	struct enc_ctx *c = p;
	const char *ns;
	size_t nn;
	int rc = tok_normalize(t, s + start, end - start, &ns, &nn);
	if (rc)
		return rc;
	struct enc_ctx sub = { c->flags, start == 0 };
	struct seg_fn fn = { norm_text, &sub };
	/* the normalized text lives in t->nbuf, which nothing below touches */
	return split_added(t, &t->norm_set, ns, nn, c->flags, &fn);
}

static int valid_utf8(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	for (size_t i = 0; i < n;) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		size_t bad;
		int trunc;
		size_t l = tok_utf8_valid(s + i, n - i, &bad, &trunc);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

int isq_tokenizer_encode(struct isq_tokenizer *t, const char *text, size_t len, unsigned flags, int32_t **ids,
			 size_t *n)
{
	*ids = NULL;
	*n = 0;
	if (!t->n_vocab)
		return isq_errbuf_set(&t->err, ISQ_EINVAL, "no tokenizer is loaded");
	if (!text)
		len = 0;
	const char *s = len ? text : "";
	if (!valid_utf8(s, len)) {
		isq_buf_reset(&t->clean);
		if (tok_utf8_lossy(&t->clean, s, len))
			return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
		s = t->clean.data;
		len = t->clean.len;
	}
	t->n_out = 0;
	int add = (flags & ISQ_TOKENIZER_ADD_SPECIAL) && t->has_tmpl;
	size_t k = 0;
	int rc = 0;
	if (add)
		for (; k < t->n_tmpl && t->tmpl[k] >= 0; k++)
			if ((rc = tok_push(t, t->tmpl[k])))
				return rc;
	struct enc_ctx c = { flags, 1 };
	struct seg_fn fn = { raw_text, &c };
	if (len && (rc = split_added(t, &t->raw_set, s, len, flags, &fn)))
		return rc;
	if (add)
		for (k++; k < t->n_tmpl; k++)
			if (t->tmpl[k] >= 0 && (rc = tok_push(t, t->tmpl[k])))
				return rc;
	if (t->n_out) {
		*ids = malloc(t->n_out * sizeof(**ids));
		if (!*ids)
			return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
		memcpy(*ids, t->out, t->n_out * sizeof(**ids));
	}
	*n = t->n_out;
	return 0;
}
