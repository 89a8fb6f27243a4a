/*
 * tokenizer-norm.c - normalizers, pre-tokenizers and the regexes they use.
 *
 * Regexes are PCRE2 in UTF + UCP mode, so \p{L}, \s and \w are Unicode-aware
 * as in Oniguruma, which the tokenizers library uses.  The text reaching
 * here is always valid UTF-8 (encode sanitizes it first), hence
 * PCRE2_NO_UTF_CHECK.
 */
#include "tokenizer-impl.h"

#include <utf8proc.h>

const char tok_re_gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char tok_re_qwen2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
			    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char tok_re_llama3[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
			     "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/*
 * PCRE2's \s and \w are not Oniguruma's (nor Rust regex's): PCRE2's \s
 * also takes U+180E, its \w takes every number (No, e.g. "²") but no mark.
 * Spell both out as the Unicode properties the tokenizers library sees:
 * \s = White_Space, \w = Alphabetic, marks, Nd, Pc and the two joiners.
 * Inside a class the sets are inlined; a negated \S or \W inside a class
 * cannot be, and is left to PCRE2.
 */
static const char ws_set[] = "\\t-\\r\\x{85}\\p{Z}";
static const char word_set[] = "\\p{L}\\p{M}\\p{Nd}\\p{Nl}\\p{Pc}\\x{200C}\\x{200D}";

static int translate(const char *p, size_t n, struct isq_buf *o)
{
	int in_class = 0, rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		char c = p[i];
		if (c == '\\' && i + 1 < n) {
			char e = p[++i];
			const char *set = e == 's' || e == 'S' ? ws_set : e == 'w' || e == 'W' ? word_set : NULL;
			if (!set || (in_class && (e == 'S' || e == 'W'))) {
				rc = isq_buf_putc(o, c) || isq_buf_putc(o, e);
			} else if (in_class) {
				rc = isq_buf_puts(o, set);
			} else {
				rc = isq_buf_puts(o, e == 's' || e == 'w' ? "[" : "[^") || isq_buf_puts(o, set) ||
				     isq_buf_putc(o, ']');
			}
			continue;
		}
		if (c == '[' && !in_class) {
			in_class = 1;
			rc = isq_buf_putc(o, c);
			/* a ']' right after '[' or '[^' is a literal */
			if (!rc && i + 1 < n && p[i + 1] == '^')
				rc = isq_buf_putc(o, p[++i]);
			if (!rc && i + 1 < n && p[i + 1] == ']')
				rc = isq_buf_putc(o, p[++i]);
			continue;
		}
		if (c == '[' && in_class && i + 1 < n && p[i + 1] == ':') { /* [:alpha:] */
			const char *end = memmem(p + i, n - i, ":]", 2);
			size_t l = end ? (size_t)(end - (p + i)) + 2 : 1;
			rc = isq_buf_append(o, p + i, l);
			i += l - 1;
			continue;
		}
		if (c == ']' && in_class)
			in_class = 0;
		rc = isq_buf_putc(o, c);
	}
	return rc ? ISQ_ENOMEM : 0;
}

int tok_regex_compile(struct isq_tokenizer *t, struct tok_regex *re, const char *pat, size_t len, const char *what)
{
	int errcode;
	PCRE2_SIZE erroff;
	struct isq_buf x = ISQ_BUF_INIT;
	if (translate(pat, len, &x)) {
		isq_buf_release(&x);
		return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
	}
	re->code = pcre2_compile((PCRE2_SPTR)(x.data ? x.data : ""), x.len, PCRE2_UTF | PCRE2_UCP, &errcode, &erroff,
				 NULL);
	isq_buf_release(&x);
	if (!re->code) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(errcode, msg, sizeof(msg));
		return isq_errbuf_set(&t->err, ISQ_EUNSUPPORTED, "%s: regex '%.*s' not supported: %s", what,
				      (int)ISQ_MIN(len, (size_t)60), pat, (const char *)msg);
	}
	/* JIT makes the pre-tokenizer several times faster; without it PCRE2 still works */
	pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
	re->src = malloc(len + 1);
	if (!re->src)
		return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
	memcpy(re->src, pat, len);
	re->src[len] = '\0';
	if (!t->md && !(t->md = pcre2_match_data_create(1, NULL)))
		return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
	return 0;
}

void tok_regex_release(struct tok_regex *re)
{
	if (re->code)
		pcre2_code_free(re->code);
	free(re->src);
	re->code = NULL;
	re->src = NULL;
}

/*
 * Non-empty matches left to right.  After an empty match the search moves on
 * one character, as Oniguruma's find_iter does; empty matches split nothing
 * in the tokenizers library (empty pieces are dropped), so they are skipped.
 */
int tok_regex_each(struct isq_tokenizer *t, const struct tok_regex *re, const char *s, size_t n,
		   int (*fn)(void *ctx, size_t start, size_t end), void *ctx)
{
	size_t pos = 0;
	while (pos <= n) {
		int rc = pcre2_match(re->code, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, t->md, NULL);
		if (rc == PCRE2_ERROR_NOMATCH)
			return 0;
		if (rc < 0) {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(rc, msg, sizeof(msg));
			return isq_errbuf_set(&t->err, ISQ_EUNSUPPORTED, "regex match failed: %s", (const char *)msg);
		}
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
		size_t ms = ov[0], me = ov[1];
		if (me <= ms) {
			if (ms >= n)
				return 0;
			pos = ms + tok_utf8_len((unsigned char)s[ms]);
			continue;
		}
		int r = fn(ctx, ms, me);
		if (r)
			return r;
		pos = me;
	}
	return 0;
}

static void pre_release(struct tok_pre *p)
{
	tok_regex_release(&p->re);
	free(p->literal);
}

void tok_pipeline_release(struct isq_tokenizer *t)
{
	for (size_t i = 0; i < t->n_norm; i++) {
		free(t->norm[i].str);
		free(t->norm[i].content);
		tok_regex_release(&t->norm[i].re);
	}
	free(t->norm);
	for (size_t i = 0; i < t->n_pre; i++)
		pre_release(&t->pre[i]);
	free(t->pre);
	for (size_t i = 0; i < t->n_dec; i++) {
		free(t->dec[i].str);
		free(t->dec[i].content);
		tok_regex_release(&t->dec[i].re);
	}
	free(t->dec);
	t->norm = NULL;
	t->pre = NULL;
	t->dec = NULL;
	t->n_norm = t->n_pre = t->n_dec = 0;
}

/* ---- normalizers ------------------------------------------------------------- */

struct repl_ctx {
	struct isq_buf *dst;
	const char *s;
	size_t last;
	const char *content;
	size_t content_len;
};

static int repl_match(void *p, size_t start, size_t end)
{
	struct repl_ctx *c = p;
	if (isq_buf_append(c->dst, c->s + c->last, start - c->last) ||
	    isq_buf_append(c->dst, c->content, c->content_len))
		return ISQ_ENOMEM;
	c->last = end;
	return 0;
}

/* Replace every non-overlapping occurrence (a literal, or a regex when re->code is set). */
int tok_replace_all(struct isq_tokenizer *t, const char *pat, size_t pat_len, const struct tok_regex *re,
		    const char *content, size_t content_len, const char *s, size_t n, struct isq_buf *dst)
{
	struct repl_ctx c = { dst, s, 0, content, content_len };
	if (re->code) {
		int rc = tok_regex_each(t, re, s, n, repl_match, &c);
		if (rc)
			return rc;
	} else if (pat_len) {
		size_t i = 0;
		while (i + pat_len <= n) {
			const char *hit = memmem(s + i, n - i, pat, pat_len);
			if (!hit)
				break;
			size_t at = (size_t)(hit - s);
			if (repl_match(&c, at, at + pat_len))
				return ISQ_ENOMEM;
			i = at + pat_len;
		}
	}
	return isq_buf_append(dst, s + c.last, n - c.last) ? ISQ_ENOMEM : 0;
}

static int is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 0;
	return 1;
}

static int unicode_form(struct isq_tokenizer *t, int opts, const char *s, size_t n, struct isq_buf *dst)
{
	if (is_ascii(s, n)) /* every normalization form leaves ASCII as it is */
		return isq_buf_append(dst, s, n) ? ISQ_ENOMEM : 0;
	utf8proc_uint8_t *out = NULL;
	utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &out,
					  (utf8proc_option_t)(UTF8PROC_STABLE | opts));
	if (r < 0)
		return isq_errbuf_set(&t->err, r == UTF8PROC_ERROR_NOMEM ? ISQ_ENOMEM : ISQ_EINVAL,
				      "unicode normalization failed: %s", utf8proc_errmsg(r));
	int rc = isq_buf_append(dst, out, (size_t)r) ? ISQ_ENOMEM : 0;
	free(out);
	return rc;
}

static int lowercase(const char *s, size_t n, struct isq_buf *dst)
{
	for (size_t i = 0; i < n;) {
		size_t adv;
		uint32_t cp = tok_utf8_decode(s + i, n - i, &adv);
		char o[8];
		size_t l;
		if (cp == 0x130) { /* the one character whose lowercase is two: "i" + U+0307 */
			memcpy(o, "i\xcc\x87", 3);
			l = 3;
		} else {
			l = tok_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), o);
		}
		if (isq_buf_append(dst, o, l))
			return ISQ_ENOMEM;
		i += adv;
	}
	return 0;
}

/* Leading/trailing whitespace bounds of s[0..n). */
static void strip_bounds(const char *s, size_t n, int left, int right, size_t *b, size_t *e)
{
	size_t i = 0, j = n;
	if (left)
		while (i < n) {
			size_t adv;
			if (!tok_is_whitespace(tok_utf8_decode(s + i, n - i, &adv)))
				break;
			i += adv;
		}
	if (right)
		while (j > i) {
			size_t k = j - 1;
			while (k > i && ((unsigned char)s[k] & 0xc0) == 0x80)
				k--;
			size_t adv;
			if (!tok_is_whitespace(tok_utf8_decode(s + k, j - k, &adv)))
				break;
			j = k;
		}
	*b = i;
	*e = j;
}

static int norm_step(struct isq_tokenizer *t, const struct tok_norm *nm, const char *s, size_t n, struct isq_buf *d)
{
	switch (nm->kind) {
	case TN_NFC:
		return unicode_form(t, UTF8PROC_COMPOSE, s, n, d);
	case TN_NFD:
		return unicode_form(t, UTF8PROC_DECOMPOSE, s, n, d);
	case TN_NFKC:
		return unicode_form(t, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, s, n, d);
	case TN_NFKD:
		return unicode_form(t, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, s, n, d);
	case TN_LOWERCASE:
		return lowercase(s, n, d);
	case TN_PREPEND:
		if (n && isq_buf_append(d, nm->str, nm->str_len)) /* HF: nothing is prepended to "" */
			return ISQ_ENOMEM;
		return isq_buf_append(d, s, n) ? ISQ_ENOMEM : 0;
	case TN_REPLACE:
		return tok_replace_all(t, nm->str, nm->str_len, &nm->re, nm->content, nm->content_len, s, n, d);
	case TN_STRIP: {
		size_t b, e;
		strip_bounds(s, n, nm->left, nm->right, &b, &e);
		return isq_buf_append(d, s + b, e - b) ? ISQ_ENOMEM : 0;
	}
	}
	return ISQ_EINVAL;
}

int tok_normalize(struct isq_tokenizer *t, const char *s, size_t n, const char **out, size_t *out_len)
{
	const char *cur = s;
	size_t len = n;
	for (size_t i = 0; i < t->n_norm; i++) {
		struct isq_buf *d = &t->nbuf[i & 1];
		isq_buf_reset(d);
		if (isq_buf_grow(d, len + 16))
			return isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory");
		int rc = norm_step(t, &t->norm[i], cur, len, d);
		if (rc)
			return rc == ISQ_ENOMEM ? isq_errbuf_set(&t->err, rc, "out of memory") : rc;
		cur = d->data ? d->data : "";
		len = d->len;
	}
	*out = cur;
	*out_len = len;
	return 0;
}

int tok_normalize_into(struct isq_tokenizer *t, const char *s, size_t n, struct isq_buf *dst)
{
	const char *o;
	size_t l;
	int rc = tok_normalize(t, s, n, &o, &l);
	if (rc)
		return rc;
	isq_buf_reset(dst);
	return isq_buf_append(dst, o, l) ? isq_errbuf_set(&t->err, ISQ_ENOMEM, "out of memory") : 0;
}

/* ---- pre-tokenizers ------------------------------------------------------------ */

static int span_push(struct tok_depth *d, size_t start, size_t end, int match)
{
	if (tok_grow((void **)&d->spans, &d->alloc_spans, d->n_spans + 1, sizeof(*d->spans)))
		return ISQ_ENOMEM;
	d->spans[d->n_spans++] = (struct tok_span){ start, end, match };
	return 0;
}

struct span_ctx {
	struct tok_depth *d;
	size_t last;
};

static int span_match(void *p, size_t start, size_t end)
{
	struct span_ctx *c = p;
	if (start > c->last && span_push(c->d, c->last, start, 0))
		return ISQ_ENOMEM;
	if (span_push(c->d, start, end, 1))
		return ISQ_ENOMEM;
	c->last = end;
	return 0;
}

/* Cover s[0..n) with match / non-match spans of a regex. */
static int spans_regex(struct isq_tokenizer *t, struct tok_depth *d, const struct tok_regex *re, const char *s,
		       size_t n)
{
	struct span_ctx c = { d, 0 };
	d->n_spans = 0;
	int rc = tok_regex_each(t, re, s, n, span_match, &c);
	if (rc)
		return rc;
	if (c.last < n && span_push(d, c.last, n, 0))
		return ISQ_ENOMEM;
	return 0;
}

static int spans_literal(struct tok_depth *d, const char *pat, size_t pl, const char *s, size_t n)
{
	struct span_ctx c = { d, 0 };
	d->n_spans = 0;
	for (size_t i = 0; pl && i + pl <= n;) {
		const char *hit = memmem(s + i, n - i, pat, pl);
		if (!hit)
			break;
		size_t at = (size_t)(hit - s);
		if (span_match(&c, at, at + pl))
			return ISQ_ENOMEM;
		i = at + pl;
	}
	if (c.last < n && span_push(d, c.last, n, 0))
		return ISQ_ENOMEM;
	return 0;
}

/* Every character for which PRED holds is a match of its own (the library's char patterns). */
static int spans_pred(struct tok_depth *d, int (*pred)(uint32_t, const void *), const void *arg, const char *s,
		      size_t n)
{
	struct span_ctx c = { d, 0 };
	d->n_spans = 0;
	for (size_t i = 0; i < n;) {
		size_t adv;
		uint32_t cp = tok_utf8_decode(s + i, n - i, &adv);
		if (pred(cp, arg) && span_match(&c, i, i + adv))
			return ISQ_ENOMEM;
		i += adv;
	}
	if (c.last < n && span_push(d, c.last, n, 0))
		return ISQ_ENOMEM;
	return 0;
}

static int pred_numeric(uint32_t cp, const void *a)
{
	(void)a;
	return tok_is_numeric(cp);
}

static int pred_whitespace(uint32_t cp, const void *a)
{
	(void)a;
	return tok_is_whitespace(cp);
}

static int pred_punct(uint32_t cp, const void *a)
{
	(void)a;
	return tok_is_punct(cp);
}

static int pred_equal(uint32_t cp, const void *a)
{
	return cp == *(const uint32_t *)a;
}

/* The tokenizers library's SplitDelimiterBehavior, applied in place to d->spans. */
static void apply_behavior(struct tok_depth *d, enum tok_behavior b, int invert, size_t *first, size_t *count)
{
	struct tok_span *sp = d->spans;
	size_t n = d->n_spans, w = 0;
	if (invert)
		for (size_t i = 0; i < n; i++)
			sp[i].match = !sp[i].match;
	int prev = 0;
	switch (b) {
	case SB_ISOLATED:
		*first = 0;
		*count = n;
		return;
	case SB_REMOVED:
		for (size_t i = 0; i < n; i++)
			if (!sp[i].match)
				sp[w++] = sp[i];
		break;
	case SB_CONTIGUOUS:
		for (size_t i = 0; i < n; i++) {
			if (w && sp[i].match == prev)
				sp[w - 1].end = sp[i].end;
			else
				sp[w++] = sp[i];
			prev = sp[i].match;
		}
		break;
	case SB_MERGED_PREV:
		for (size_t i = 0; i < n; i++) {
			if (w && sp[i].match && !prev)
				sp[w - 1].end = sp[i].end;
			else
				sp[w++] = sp[i];
			prev = sp[i].match;
		}
		break;
	case SB_MERGED_NEXT: {
		/* the library folds from the right; written back from the end in place */
		size_t o = n;
		for (size_t i = n; i-- > 0;) {
			if (o < n && sp[i].match && !prev)
				sp[o].start = sp[i].start;
			else
				sp[--o] = sp[i];
			prev = sp[i].match;
		}
		*first = o;
		*count = n - o;
		return;
	}
	}
	*first = 0;
	*count = w;
}

static int pre_run(struct isq_tokenizer *t, size_t i, const char *s, size_t n, int origin);

static int recurse_spans(struct isq_tokenizer *t, size_t i, struct tok_depth *d, const char *s, size_t first,
			 size_t count, int origin)
{
	for (size_t k = first; k < first + count; k++) {
		struct tok_span sp = d->spans[k];
		int rc = pre_run(t, i + 1, s + sp.start, sp.end - sp.start, origin && sp.start == 0);
		if (rc)
			return rc;
	}
	return 0;
}

static int byte_level(struct isq_tokenizer *t, size_t i, const struct tok_pre *p, const char *s, size_t n,
		      int origin)
{
	struct tok_depth *d = &t->depth[i];
	if (p->add_prefix_space && s[0] != ' ') {
		isq_buf_reset(&d->a);
		if (isq_buf_putc(&d->a, ' ') || isq_buf_append(&d->a, s, n))
			return ISQ_ENOMEM;
		s = d->a.data;
		n = d->a.len;
	}
	size_t first = 0, count = 1;
	if (p->use_regex) {
		int rc = spans_regex(t, d, &p->re, s, n);
		if (rc)
			return rc;
		count = d->n_spans;
	} else {
		d->n_spans = 0;
		if (span_push(d, 0, n, 0))
			return ISQ_ENOMEM;
	}
	for (size_t k = first; k < first + count; k++) {
		struct tok_span sp = d->spans[k];
		isq_buf_reset(&d->b);
		if (isq_buf_grow(&d->b, 2 * (sp.end - sp.start)))
			return ISQ_ENOMEM;
		for (size_t j = sp.start; j < sp.end; j++) {
			char o[4];
			size_t l = tok_utf8_encode(tok_byte_to_cp((uint8_t)s[j]), o);
			isq_buf_append(&d->b, o, l); /* cannot fail: grown above */
		}
		int rc = pre_run(t, i + 1, d->b.data, d->b.len, origin && sp.start == 0);
		if (rc)
			return rc;
	}
	return 0;
}

static int metaspace(struct isq_tokenizer *t, size_t i, const struct tok_pre *p, const char *s, size_t n, int origin)
{
	struct tok_depth *d = &t->depth[i];
	isq_buf_reset(&d->a);
	int starts = n >= p->rep_len && !memcmp(s, p->rep, p->rep_len);
	/* replace first: a leading space becomes the replacement, and then nothing is prepended */
	int lead_space = s[0] == ' ';
	if (!starts && !lead_space &&
	    (p->prepend == PS_ALWAYS || (p->prepend == PS_FIRST && origin)) && isq_buf_append(&d->a, p->rep, p->rep_len))
		return ISQ_ENOMEM;
	for (size_t j = 0; j < n; j++) {
		if (s[j] == ' ' ? isq_buf_append(&d->a, p->rep, p->rep_len) : isq_buf_putc(&d->a, s[j]))
			return ISQ_ENOMEM;
	}
	const char *m = d->a.data;
	size_t mn = d->a.len;
	if (!p->split)
		return pre_run(t, i + 1, m, mn, origin);
	int rc = spans_pred(d, pred_equal, &p->rep_cp, m, mn);
	if (rc)
		return rc;
	size_t first, count;
	apply_behavior(d, SB_MERGED_NEXT, 0, &first, &count);
	return recurse_spans(t, i, d, m, first, count, origin);
}

static int pre_run(struct isq_tokenizer *t, size_t i, const char *s, size_t n, int origin)
{
	if (!n) /* the library drops empty pieces */
		return 0;
	if (i == t->n_pre)
		return tok_model_word(t, s, n);
	const struct tok_pre *p = &t->pre[i];
	struct tok_depth *d = &t->depth[i];
	size_t first, count;
	int rc;
	switch (p->kind) {
	case TP_SPLIT:
		rc = p->re.code ? spans_regex(t, d, &p->re, s, n) : spans_literal(d, p->literal, p->literal_len, s, n);
		if (rc)
			return rc;
		apply_behavior(d, p->behavior, p->invert, &first, &count);
		return recurse_spans(t, i, d, s, first, count, origin);
	case TP_WHITESPACE: /* \w+|[^\w\s]+, keeping the matches */
		if ((rc = spans_regex(t, d, &p->re, s, n)))
			return rc;
		apply_behavior(d, SB_REMOVED, 1, &first, &count);
		return recurse_spans(t, i, d, s, first, count, origin);
	case TP_WSSPLIT:
		if (spans_pred(d, pred_whitespace, NULL, s, n))
			return ISQ_ENOMEM;
		apply_behavior(d, SB_REMOVED, 0, &first, &count);
		return recurse_spans(t, i, d, s, first, count, origin);
	case TP_DIGITS:
		if (spans_pred(d, pred_numeric, NULL, s, n))
			return ISQ_ENOMEM;
		apply_behavior(d, p->individual ? SB_ISOLATED : SB_CONTIGUOUS, 0, &first, &count);
		return recurse_spans(t, i, d, s, first, count, origin);
	case TP_PUNCT:
		if (spans_pred(d, pred_punct, NULL, s, n))
			return ISQ_ENOMEM;
		apply_behavior(d, p->behavior, 0, &first, &count);
		return recurse_spans(t, i, d, s, first, count, origin);
	case TP_BYTELEVEL:
		return byte_level(t, i, p, s, n, origin);
	case TP_METASPACE:
		return metaspace(t, i, p, s, n, origin);
	}
	return ISQ_EINVAL;
}

int tok_pretokenize(struct isq_tokenizer *t, const char *s, size_t n, int origin)
{
	int rc = pre_run(t, 0, s, n, origin);
	if (rc == ISQ_ENOMEM)
		return isq_errbuf_set(&t->err, rc, "out of memory");
	return rc;
}
