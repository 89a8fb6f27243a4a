/*
 * tokenizer-decode.c - ids back to text: the decoder chain of the tokenizers
 * library for whole sequences, and per-token byte pieces for streaming.
 */
#include "tokenizer-impl.h"

/* A list of strings (the decoder chain's Vec<String>) in one arena. */
struct slist {
	struct isq_buf arena;
	size_t *off, *len;
	size_t n, alloc;
};

static void slist_reset(struct slist *l)
{
	isq_buf_reset(&l->arena);
	l->n = 0;
}

static void slist_release(struct slist *l)
{
	isq_buf_release(&l->arena);
	free(l->off);
	free(l->len);
}

/* Start a new string; append its bytes to l->arena, then slist_end(). */
static int slist_begin(struct slist *l)
{
	size_t a = l->alloc;
	if (tok_grow((void **)&l->off, &a, l->n + 1, sizeof(size_t)))
		return ISQ_ENOMEM;
	a = l->alloc;
	if (tok_grow((void **)&l->len, &a, l->n + 1, sizeof(size_t)))
		return ISQ_ENOMEM;
	l->alloc = a;
	l->off[l->n] = l->arena.len;
	return 0;
}

static void slist_end(struct slist *l)
{
	l->len[l->n] = l->arena.len - l->off[l->n];
	l->n++;
}

static int slist_add(struct slist *l, const char *s, size_t n)
{
	if (slist_begin(l) || isq_buf_append(&l->arena, s, n))
		return ISQ_ENOMEM;
	slist_end(l);
	return 0;
}

#define S(l, i) ((l)->arena.data + (l)->off[i])

/* "<0xXX>" as the library's ByteFallback reads it (from_str_radix, so "<0x+F>" is 15 too). */
static int byte_token(const char *s, size_t n)
{
	if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>')
		return -1;
	int v = 0;
	for (int i = 3; i < 5; i++) {
		int c = (unsigned char)s[i], d;
		if (i == 3 && c == '+')
			continue;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v * 16 + d;
	}
	return v;
}

static int is_valid_utf8(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t bad;
		int trunc;
		size_t l = tok_utf8_valid((const unsigned char *)s + i, n - i, &bad, &trunc);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

/* GPT-2 stand-in characters back to bytes; a token with any other character is kept as it is. */
static int byte_level_append(struct isq_buf *b, const char *s, size_t n)
{
	size_t mark = b->len;
	for (size_t i = 0; i < n;) {
		size_t adv;
		int v = tok_cp_to_byte(tok_utf8_decode(s + i, n - i, &adv));
		if (v < 0) {
			b->len = mark;
			return isq_buf_append(b, s, n);
		}
		if (isq_buf_putc(b, (char)v))
			return ISQ_ENOMEM;
		i += adv;
	}
	return 0;
}

static int strip_token(struct slist *out, const char *s, size_t n, uint32_t cp, size_t start, size_t stop)
{
	/* character boundaries */
	size_t nch = 0;
	for (size_t i = 0; i < n; nch++)
		i += tok_utf8_len((unsigned char)s[i]);
	size_t b = 0, e = n, i = 0, adv;
	for (size_t k = 0; k < start && k < nch; k++) {
		if (tok_utf8_decode(s + i, n - i, &adv) != cp)
			break;
		i += adv;
		b = i;
	}
	size_t j = n;
	for (size_t k = 0; k < stop && k < nch; k++) {
		size_t p = j - 1;
		while (p > 0 && ((unsigned char)s[p] & 0xc0) == 0x80)
			p--;
		if (tok_utf8_decode(s + p, j - p, &adv) != cp)
			break;
		j = p;
		e = j;
	}
	if (e < b)
		e = b;
	return slist_add(out, s + b, e - b);
}

static int metaspace_token(struct slist *out, const char *s, size_t n, uint32_t cp, int drop)
{
	if (slist_begin(out))
		return ISQ_ENOMEM;
	for (size_t i = 0; i < n;) {
		size_t adv;
		uint32_t c = tok_utf8_decode(s + i, n - i, &adv);
		int rc = 0;
		if (c != cp)
			rc = isq_buf_append(&out->arena, s + i, adv);
		else if (!drop)
			rc = isq_buf_putc(&out->arena, ' ');
		if (rc)
			return ISQ_ENOMEM;
		i += adv;
	}
	slist_end(out);
	return 0;
}

static int flush_bytes(struct slist *out, struct isq_buf *bytes)
{
	int rc = 0;
	if (!bytes->len)
		return 0;
	if (is_valid_utf8(bytes->data, bytes->len))
		rc = slist_add(out, bytes->data, bytes->len);
	else
		for (size_t i = 0; i < bytes->len && !rc; i++)
			rc = slist_add(out, "\xef\xbf\xbd", 3);
	isq_buf_reset(bytes);
	return rc;
}

/* One decoder over the whole list (the library's decode_chain). */
static int dec_step(struct isq_tokenizer *t, const struct tok_dec *d, struct slist *in, struct slist *out)
{
	int rc = 0;
	slist_reset(out);
	switch (d->kind) {
	case TD_REPLACE:
		for (size_t i = 0; i < in->n && !rc; i++) {
			if (slist_begin(out))
				return ISQ_ENOMEM;
			rc = tok_replace_all(t, d->str, d->str_len, &d->re, d->content, d->content_len, S(in, i),
					     in->len[i], &out->arena);
			slist_end(out);
		}
		return rc;
	case TD_BYTEFALLBACK: {
		struct isq_buf bytes = ISQ_BUF_INIT;
		for (size_t i = 0; i < in->n && !rc; i++) {
			int v = byte_token(S(in, i), in->len[i]);
			if (v >= 0) {
				rc = isq_buf_putc(&bytes, (char)v);
				continue;
			}
			if (!(rc = flush_bytes(out, &bytes)))
				rc = slist_add(out, S(in, i), in->len[i]);
		}
		if (!rc)
			rc = flush_bytes(out, &bytes);
		isq_buf_release(&bytes);
		return rc ? ISQ_ENOMEM : 0;
	}
	case TD_FUSE:
		if (slist_begin(out))
			return ISQ_ENOMEM;
		for (size_t i = 0; i < in->n; i++)
			if (isq_buf_append(&out->arena, S(in, i), in->len[i]))
				return ISQ_ENOMEM;
		slist_end(out);
		return 0;
	case TD_STRIP:
		for (size_t i = 0; i < in->n && !rc; i++)
			rc = strip_token(out, S(in, i), in->len[i], d->cp, d->start, d->stop);
		return rc;
	case TD_BYTELEVEL: {
		struct isq_buf raw = ISQ_BUF_INIT;
		for (size_t i = 0; i < in->n && !rc; i++)
			rc = byte_level_append(&raw, S(in, i), in->len[i]);
		if (!rc && !(rc = slist_begin(out))) {
			rc = tok_utf8_lossy(&out->arena, raw.data ? raw.data : "", raw.len);
			slist_end(out);
		}
		isq_buf_release(&raw);
		return rc;
	}
	case TD_METASPACE:
		for (size_t i = 0; i < in->n && !rc; i++)
			rc = metaspace_token(out, S(in, i), in->len[i], d->cp, i == 0 && d->prepend != PS_NEVER);
		return rc;
	}
	return ISQ_EINVAL;
}

int isq_tokenizer_decode(struct isq_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, char **text,
			 size_t *len)
{
	struct slist l[2] = { 0 };
	struct isq_buf res = ISQ_BUF_INIT;
	int rc = 0, cur = 0;
	*text = NULL;
	for (size_t i = 0; i < n && !rc; i++) {
		int32_t id = ids[i];
		if (id < 0 || (size_t)id >= t->n_vocab || !(t->tok[id].flags & TF_PRESENT))
			continue;
		if ((flags & ISQ_TOKENIZER_SKIP_SPECIAL) && (t->tok[id].flags & TF_SPECIAL))
			continue;
		rc = slist_add(&l[0], t->strs.data + t->tok[id].dec_off, t->tok[id].dec_len);
	}
	if (t->has_decoder)
		for (size_t k = 0; k < t->n_dec && !rc; k++, cur ^= 1)
			rc = dec_step(t, &t->dec[k], &l[cur], &l[cur ^ 1]);
	/* the library joins the decoder's output with "", or the raw tokens with " " when there is no decoder */
	for (size_t i = 0; i < l[cur].n && !rc; i++)
		if ((i && !t->has_decoder && isq_buf_putc(&res, ' ')) || isq_buf_append(&res, S(&l[cur], i), l[cur].len[i]))
			rc = ISQ_ENOMEM;
	if (!rc && !res.data && isq_buf_append(&res, "", 0))
		rc = ISQ_ENOMEM;
	slist_release(&l[0]);
	slist_release(&l[1]);
	if (rc) {
		isq_buf_release(&res);
		return rc == ISQ_ENOMEM ? isq_errbuf_set(&t->err, rc, "out of memory") : rc;
	}
	if (!res.data && isq_buf_grow(&res, 1)) /* an empty result is still a string */
		return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
	res.data[res.len] = '\0';
	if (len)
		*len = res.len;
	*text = isq_buf_detach(&res, NULL);
	return 0;
}

/* ---- pieces and streams ------------------------------------------------------------ */

/*
 * One token through the decoders that act token by token, with raw bytes
 * where the library would make a string: the bytes this token adds to the
 * running text.  FIRST applies the first-token rules (Metaspace drops its
 * replacement).  A Strip that follows a Fuse acts on the whole text's start:
 * streams do that one with a counter instead.
 */
static int piece_of(struct isq_tokenizer *t, const char *s, size_t n, int first, struct isq_buf *out)
{
	struct isq_buf a = ISQ_BUF_INIT, b = ISQ_BUF_INIT;
	int rc = isq_buf_append(&a, s, n) ? ISQ_ENOMEM : 0;
	int fused = 0;
	for (size_t k = 0; k < t->n_dec && t->has_decoder && !rc; k++) {
		const struct tok_dec *d = &t->dec[k];
		isq_buf_reset(&b);
		const char *src = a.data ? a.data : "";
		int v;
		switch (d->kind) {
		case TD_REPLACE:
			rc = tok_replace_all(t, d->str, d->str_len, &d->re, d->content, d->content_len, src, a.len, &b);
			break;
		case TD_BYTEFALLBACK:
			v = byte_token(src, a.len);
			rc = v >= 0 ? isq_buf_putc(&b, (char)v) : isq_buf_append(&b, src, a.len);
			break;
		case TD_FUSE:
			fused = 1;
			rc = isq_buf_append(&b, src, a.len);
			break;
		case TD_STRIP:
			if (fused) {
				rc = isq_buf_append(&b, src, a.len);
			} else {
				struct slist o = { 0 };
				rc = strip_token(&o, src, a.len, d->cp, d->start, d->stop);
				if (!rc)
					rc = isq_buf_append(&b, S(&o, 0), o.len[0]);
				slist_release(&o);
			}
			break;
		case TD_BYTELEVEL:
			rc = byte_level_append(&b, src, a.len);
			break;
		case TD_METASPACE: {
			struct slist o = { 0 };
			rc = metaspace_token(&o, src, a.len, d->cp, first && d->prepend != PS_NEVER);
			if (!rc)
				rc = isq_buf_append(&b, S(&o, 0), o.len[0]);
			slist_release(&o);
			break;
		}
		}
		struct isq_buf tmp = a;
		a = b;
		b = tmp;
	}
	if (!rc && isq_buf_append(out, a.data ? a.data : "", a.len))
		rc = ISQ_ENOMEM;
	isq_buf_release(&a);
	isq_buf_release(&b);
	return rc;
}

int tok_build_pieces(struct isq_tokenizer *t)
{
	isq_buf_reset(&t->pieces);
	free(t->piece_off);
	t->piece_off = malloc((t->n_vocab + 1) * sizeof(*t->piece_off));
	if (!t->piece_off)
		return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
	t->stream_strip = 0;
	int fused = 0;
	for (size_t k = 0; k < t->n_dec && t->has_decoder; k++) {
		if (t->dec[k].kind == TD_FUSE)
			fused = 1;
		if (t->dec[k].kind == TD_STRIP && fused && !t->stream_strip) {
			t->stream_strip = 1;
			t->stream_strip_cp = t->dec[k].cp;
			t->stream_strip_n = t->dec[k].start;
		}
	}
	for (size_t i = 0; i < t->n_vocab; i++) {
		if (t->pieces.len > UINT32_MAX)
			return isq_errbuf_set(&t->err, ISQ_EUNSUPPORTED, "vocabulary text exceeds 4 GiB");
		t->piece_off[i] = (uint32_t)t->pieces.len;
		if (!(t->tok[i].flags & TF_PRESENT))
			continue;
		int rc = piece_of(t, t->strs.data + t->tok[i].dec_off, t->tok[i].dec_len, 0, &t->pieces);
		if (rc)
			return rc == ISQ_ENOMEM ? isq_errbuf_set(&t->err, rc, "out of memory") : rc;
	}
	t->piece_off[t->n_vocab] = (uint32_t)t->pieces.len;
	return 0;
}

int isq_tokenizer_piece(const struct isq_tokenizer *t, int32_t id, const char **bytes, size_t *len)
{
	if (id < 0 || (size_t)id >= t->n_vocab || !t->piece_off)
		return ISQ_EINVAL;
	*bytes = t->pieces.data ? t->pieces.data + t->piece_off[id] : "";
	*len = t->piece_off[id + 1] - t->piece_off[id];
	return 0;
}

void isq_tokenizer_stream_init(struct isq_tokenizer_stream *s, unsigned flags)
{
	memset(s, 0, sizeof(*s));
	s->flags = flags;
}

/* Append pending + p to out, keeping a UTF-8 character cut by the end pending. */
static int stream_emit(struct isq_tokenizer_stream *s, const char *p, size_t n, struct isq_buf *out)
{
	unsigned char tmp[8];
	size_t i = 0;
	/* complete the pending character first, one byte at a time */
	while (s->n_pending && i < n) {
		memcpy(tmp, s->pending, s->n_pending);
		tmp[s->n_pending] = (unsigned char)p[i];
		size_t bad, m = s->n_pending + 1;
		int trunc;
		size_t l = tok_utf8_valid(tmp, m, &bad, &trunc);
		if (l) {
			if (isq_buf_append(out, tmp, l))
				return ISQ_ENOMEM;
			s->n_pending = 0;
			i++;
		} else if (trunc) {
			s->pending[s->n_pending++] = (unsigned char)p[i++];
		} else {
			/* the pending bytes can never be a character: one U+FFFD, then retry this byte alone */
			if (isq_buf_append(out, "\xef\xbf\xbd", 3))
				return ISQ_ENOMEM;
			s->n_pending = 0;
		}
	}
	size_t run = i;
	while (i < n) {
		size_t bad;
		int trunc;
		size_t l = tok_utf8_valid((const unsigned char *)p + i, n - i, &bad, &trunc);
		if (l) {
			i += l;
			continue;
		}
		if (isq_buf_append(out, p + run, i - run))
			return ISQ_ENOMEM;
		if (trunc) {
			memcpy(s->pending, p + i, n - i);
			s->n_pending = n - i;
			return 0;
		}
		if (isq_buf_append(out, "\xef\xbf\xbd", 3))
			return ISQ_ENOMEM;
		i += bad;
		run = i;
	}
	return isq_buf_append(out, p + run, n - run) ? ISQ_ENOMEM : 0;
}

int isq_tokenizer_stream_put(struct isq_tokenizer *t, struct isq_tokenizer_stream *s, int32_t id,
			     struct isq_buf *out)
{
	if (id < 0 || (size_t)id >= t->n_vocab || !t->piece_off)
		return isq_errbuf_set(&t->err, ISQ_EINVAL, "token id %ld is out of range", (long)id);
	if (!(t->tok[id].flags & TF_PRESENT))
		return 0;
	if ((s->flags & ISQ_TOKENIZER_SKIP_SPECIAL) && (t->tok[id].flags & TF_SPECIAL))
		return 0;
	struct isq_buf first = ISQ_BUF_INIT;
	const char *p;
	size_t n;
	int rc = 0;
	if (!s->started) {
		s->started = 1;
		s->strip_left = t->stream_strip ? t->stream_strip_n : 0;
		rc = piece_of(t, t->strs.data + t->tok[id].dec_off, t->tok[id].dec_len, 1, &first);
		p = first.data ? first.data : "";
		n = first.len;
	} else {
		isq_tokenizer_piece(t, id, &p, &n);
	}
	if (!rc && s->strip_left) {
		char c[4];
		size_t cl = tok_utf8_encode(t->stream_strip_cp, c);
		while (s->strip_left && n >= cl && !memcmp(p, c, cl)) {
			p += cl;
			n -= cl;
			s->strip_left--;
		}
		if (n)
			s->strip_left = 0;
	}
	if (!rc)
		rc = stream_emit(s, p, n, out);
	isq_buf_release(&first);
	return rc ? isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory") : 0;
}

int isq_tokenizer_stream_flush(struct isq_tokenizer *t, struct isq_tokenizer_stream *s, struct isq_buf *out)
{
	if (!s->n_pending)
		return 0;
	s->n_pending = 0;
	return isq_buf_append(out, "\xef\xbf\xbd", 3) ? isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory") : 0;
}
