/* topology.c - mistral.rs's topology YAML (rules in topology.h). */
#include "topology.h"
#include "io.h"

#include <ctype.h>
#include <yaml.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* Layers past this are surely a typo; it also keeps A-B far from overflowing an int. */
#define MAX_LAYER 1000000L

struct entry {
	int line;
	char *selector;
	pcre2_code *re;     /* a /RE/ selector; NULL for a range */
	long start, end;    /* [start, end) for a range */
	enum isq_type type; /* ISQ_TYPE_NONE: no `isq` */
};

struct isq_topology {
	struct entry *v;
	size_t n;
};

void isq_topology_free(struct isq_topology *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].selector);
		pcre2_code_free(t->v[i].re);
	}
	free(t->v);
	free(t);
}

size_t isq_topology_count(const struct isq_topology *t)
{
	return t ? t->n : 0;
}

/* ---- parsing ---------------------------------------------------------------------- */

struct parser {
	yaml_parser_t y;
	yaml_event_t ev;
	int have_ev;
	const char *name;
	enum isq_target target;
	struct isq_errbuf *e;
};

static int fail(struct parser *p, size_t line0, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct parser *p, size_t line0, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* one line, whatever the file held (a value quoted in the message may span lines) */
	for (char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return isq_errbuf_set(p->e, ISQ_EFORMAT, "%s:%zu: %s", p->name, line0 + 1, msg);
}

/* The next event into p->ev (the previous one is deleted). */
static int next(struct parser *p)
{
	if (p->have_ev)
		yaml_event_delete(&p->ev);
	p->have_ev = 0;
	if (!yaml_parser_parse(&p->y, &p->ev)) {
		if (p->y.error == YAML_MEMORY_ERROR)
			return isq_errbuf_set(p->e, ISQ_ENOMEM, NULL);
		return fail(p, p->y.problem_mark.line, "%s", p->y.problem ? p->y.problem : "YAML syntax error");
	}
	p->have_ev = 1;
	if (p->ev.type == YAML_ALIAS_EVENT)
		return fail(p, p->ev.start_mark.line, "YAML aliases are not supported here");
	return 0;
}

static const char *scalar(const struct parser *p)
{
	return (const char *)p->ev.data.scalar.value;
}

/* A plain ~, null or empty scalar: YAML's null. */
static int is_null_scalar(const struct parser *p)
{
	if (p->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	const char *s = scalar(p);
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* Shown in messages: at most 60 bytes, control bytes as '?'. */
static void shown(char *out, size_t n, const char *s)
{
	size_t k = 0;
	for (; *s && k + 4 < n && k < 60; s++)
		out[k++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
	if (*s && k + 4 < n)
		out[k++] = '.', out[k++] = '.', out[k++] = '.';
	out[k] = '\0';
}

/* All decimal digits, at most MAX_LAYER (so mistral.rs's usize parse would agree). */
static int parse_layer(const char *s, size_t len, long *v)
{
	if (!len || len > 7)
		return -1;
	long x = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		x = x * 10 + (s[i] - '0');
	}
	if (x > MAX_LAYER)
		return -1;
	*v = x;
	return 0;
}

static int parse_selector(struct parser *p, struct entry *en)
{
	const char *s = en->selector;
	size_t len = strlen(s);
	char sh[80];
	shown(sh, sizeof(sh), s);
	if (len >= 2 && s[0] == '/' && s[len - 1] == '/') {
		int code;
		PCRE2_SIZE off;
		en->re = pcre2_compile((PCRE2_SPTR)(s + 1), len - 2, 0, &code, &off, NULL);
		if (!en->re) {
			PCRE2_UCHAR why[160];
			if (code == PCRE2_ERROR_NOMEMORY)
				return isq_errbuf_set(p->e, ISQ_ENOMEM, NULL);
			pcre2_get_error_message(code, why, sizeof(why));
			return fail(p, (size_t)en->line - 1, "bad regular expression '%s': %s at offset %zu", sh, (char *)why,
				    (size_t)off);
		}
		return 0;
	}
	const char *dash = strchr(s, '-');
	if (dash) {
		if (parse_layer(s, (size_t)(dash - s), &en->start) || parse_layer(dash + 1, strlen(dash + 1), &en->end))
			return fail(p, (size_t)en->line - 1, "bad layer range '%s' (expected START-END, e.g. 0-16)", sh);
		if (en->end <= en->start)
			return fail(p, (size_t)en->line - 1, "layer range '%s': the end must be greater than the start (%ld <= %ld)",
				    sh, en->end, en->start);
		return 0;
	}
	if (parse_layer(s, len, &en->start))
		return fail(p, (size_t)en->line - 1, "bad selector '%s' (expected a layer N, a range A-B or /REGEX/)", sh);
	en->end = en->start + 1;
	return 0;
}

/* cpu, cuda[N], metal[N] */
static int device_ok(const char *s)
{
	if (!strcmp(s, "cpu"))
		return 1;
	const char *b = !strncmp(s, "cuda[", 5) ? s + 5 : !strncmp(s, "metal[", 6) ? s + 6 : NULL;
	if (!b || !isdigit((unsigned char)*b))
		return 0;
	while (isdigit((unsigned char)*b))
		b++;
	return b[0] == ']' && b[1] == '\0';
}

static int parse_value(struct parser *p, struct entry *en)
{
	char sel[80];
	shown(sel, sizeof(sel), en->selector);
	int rc = next(p);
	if (rc)
		return rc;
	if (p->ev.type == YAML_SCALAR_EVENT && is_null_scalar(p))
		return 0; /* "12:" alone: an entry with no settings */
	if (p->ev.type != YAML_MAPPING_START_EVENT)
		return fail(p, p->ev.start_mark.line, "selector '%s': expected a map with 'isq' and/or 'device'", sel);
	int seen_isq = 0, seen_dev = 0;
	for (;;) {
		if ((rc = next(p)))
			return rc;
		if (p->ev.type == YAML_MAPPING_END_EVENT)
			return 0;
		if (p->ev.type != YAML_SCALAR_EVENT)
			return fail(p, p->ev.start_mark.line, "selector '%s': expected a key ('isq' or 'device')", sel);
		char key[80];
		shown(key, sizeof(key), scalar(p));
		size_t kline = p->ev.start_mark.line;
		int is_isq = !strcmp(scalar(p), "isq"), is_dev = !strcmp(scalar(p), "device");
		if (!is_isq && !is_dev)
			return fail(p, kline, "unknown key '%s' (expected 'isq' or 'device')", key);
		if ((is_isq && seen_isq++) || (is_dev && seen_dev++))
			return fail(p, kline, "key '%s' given twice", key);
		if ((rc = next(p)))
			return rc;
		if (p->ev.type != YAML_SCALAR_EVENT)
			return fail(p, p->ev.start_mark.line, "'%s' takes a single value", key);
		size_t vline = p->ev.start_mark.line;
		char val[80];
		shown(val, sizeof(val), scalar(p));
		if (is_dev) {
			if (!device_ok(scalar(p)))
				return fail(p, vline, "bad device '%s' (cpu, cuda[N] or metal[N])", val);
			continue;
		}
		if (is_null_scalar(p))
			continue; /* isq: ~ is no type, as an absent key */
		struct isq_type_request r;
		struct isq_errbuf te = { 0 };
		if (isq_type_request_parse(scalar(p), p->target, &r, &te))
			return fail(p, vline, "%s", te.msg);
		if (r.mixture)
			return fail(p, vline, "'%s' is a llama.cpp mixture, not a type (a topology pins one type per tensor)", val);
		en->type = r.type;
	}
}

int isq_topology_parse(struct isq_topology **out, const char *text, size_t len, const char *name,
		       enum isq_target target, struct isq_errbuf *e)
{
	*out = NULL;
	struct isq_topology *t = calloc(1, sizeof(*t));
	struct parser p = { .name = name ? name : "<topology>", .target = target, .e = e };
	if (!t || !yaml_parser_initialize(&p.y)) {
		free(t);
		return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
	}
	yaml_parser_set_input_string(&p.y, (const unsigned char *)text, len);
	size_t cap = 0;
	int rc = next(&p); /* STREAM_START */
	rc = rc ? rc : next(&p);
	if (!rc && p.ev.type == YAML_DOCUMENT_START_EVENT) {
		rc = next(&p);
		if (!rc && p.ev.type == YAML_SCALAR_EVENT && is_null_scalar(&p)) {
			/* an empty document: no entries */
		} else if (!rc && p.ev.type != YAML_MAPPING_START_EVENT) {
			rc = fail(&p, p.ev.start_mark.line, "a topology is a map of selectors (layer ranges or /regex/)");
		} else {
			while (!rc) {
				if ((rc = next(&p)))
					break;
				if (p.ev.type == YAML_MAPPING_END_EVENT)
					break;
				if (p.ev.type != YAML_SCALAR_EVENT) {
					rc = fail(&p, p.ev.start_mark.line, "a selector must be a layer N, a range A-B or /REGEX/");
					break;
				}
				if (t->n == cap) {
					cap = cap ? 2 * cap : 16;
					struct entry *nv = realloc(t->v, cap * sizeof(*nv));
					if (!nv) {
						rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
						break;
					}
					t->v = nv;
				}
				struct entry *en = &t->v[t->n];
				memset(en, 0, sizeof(*en));
				en->type = ISQ_TYPE_NONE;
				en->line = (int)p.ev.start_mark.line + 1;
				en->selector = isq_strdup(scalar(&p));
				if (!en->selector) {
					rc = isq_errbuf_set(e, ISQ_ENOMEM, NULL);
					break;
				}
				t->n++;
				for (size_t k = 0; k + 1 < t->n && !rc; k++)
					if (!strcmp(t->v[k].selector, en->selector)) {
						char sh[80];
						shown(sh, sizeof(sh), en->selector);
						rc = fail(&p, (size_t)en->line - 1, "selector '%s' given twice (first on line %d)", sh,
							  t->v[k].line);
					}
				rc = rc ? rc : parse_selector(&p, en);
				rc = rc ? rc : parse_value(&p, en);
			}
		}
		/* one document only: mistral.rs reads one */
		rc = rc ? rc : next(&p); /* DOCUMENT_END */
		rc = rc ? rc : next(&p);
		if (!rc && p.ev.type != YAML_STREAM_END_EVENT)
			rc = fail(&p, p.ev.start_mark.line, "more than one YAML document");
	} else if (!rc && p.ev.type != YAML_STREAM_END_EVENT) {
		rc = fail(&p, p.ev.start_mark.line, "not a YAML document");
	}
	if (p.have_ev)
		yaml_event_delete(&p.ev);
	yaml_parser_delete(&p.y);
	if (rc) {
		isq_topology_free(t);
		return rc;
	}
	*out = t;
	return 0;
}

int isq_topology_load(struct isq_topology **out, const char *path, enum isq_target target, struct isq_errbuf *e)
{
	struct isq_buf b = ISQ_BUF_INIT;
	*out = NULL;
	int rc = isq_read_file(path, &b, e);
	if (!rc)
		rc = isq_topology_parse(out, b.data ? b.data : "", b.len, path, target, e);
	isq_buf_release(&b);
	return rc;
}

/* ---- lookup ------------------------------------------------------------------------ */

static int re_match(pcre2_code *re, const char *s)
{
	if (!s)
		return 0;
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	if (!md)
		return 0;
	int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
	pcre2_match_data_free(md);
	return rc >= 0;
}

int isq_topology_lookup(const struct isq_topology *t, const char *name, const char *alt, int layer,
			enum isq_type *type)
{
	*type = ISQ_TYPE_NONE;
	if (!t)
		return 0;
	/* regex entries first, the last one declared first */
	for (size_t i = t->n; i-- > 0;)
		if (t->v[i].re && (re_match(t->v[i].re, name) || re_match(t->v[i].re, alt))) {
			*type = t->v[i].type;
			return t->v[i].line;
		}
	if (layer < 0)
		return 0;
	const struct entry *best = NULL;
	for (size_t i = 0; i < t->n; i++) {
		const struct entry *en = &t->v[i];
		if (en->re || layer < en->start || layer >= en->end)
			continue;
		if (!best || en->end >= best->end) /* larger end wins; same end: the later one */
			best = en;
	}
	if (!best)
		return 0;
	*type = best->type;
	return best->line;
}

/* "(^|.)(layers|h|blk).N(.|$)" */
int isq_topology_layer_of(const char *name)
{
	static const char *const seg[] = { "layers.", "h.", "blk." };
	for (const char *p = name; *p; p++) {
		if (p != name && p[-1] != '.')
			continue;
		for (size_t k = 0; k < ISQ_ARRAY_SIZE(seg); k++) {
			size_t sl = strlen(seg[k]);
			if (strncmp(p, seg[k], sl))
				continue;
			const char *d = p + sl, *q = d;
			long v = 0;
			while (isdigit((unsigned char)*q) && q - d < 8)
				v = v * 10 + (*q++ - '0');
			if (q > d && (*q == '.' || *q == '\0') && !isdigit((unsigned char)*q))
				return (int)v;
		}
	}
	return -1;
}
