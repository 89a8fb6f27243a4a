/*
 * toml.c - the TOML subset of toml.h: one pass over the text with a line
 * counter; keys and strings are decoded into isq_buf scratch space.
 */
#include "toml.h"

#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct p {
	const char *s, *end, *name;
	int line;
	struct isq_errbuf *e;
};

static int fail(struct p *p, const char *fmt, ...) ISQ_PRINTF(2, 3);
static int fail(struct p *p, const char *fmt, ...)
{
	char m[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	return isq_errbuf_set(p->e, ISQ_EFORMAT, "%s:%d: %s", p->name, p->line, m);
}

static int peek(struct p *p)
{
	return p->s < p->end ? (unsigned char)*p->s : -1;
}

static void skip_ws(struct p *p)
{
	while (p->s < p->end && (*p->s == ' ' || *p->s == '\t'))
		p->s++;
}

static void skip_comment(struct p *p)
{
	if (peek(p) == '#')
		while (p->s < p->end && *p->s != '\n')
			p->s++;
}

/* Spaces, comments and newlines (inside arrays). */
static void skip_space_lines(struct p *p)
{
	for (;;) {
		skip_ws(p);
		skip_comment(p);
		if (peek(p) == '\r' && p->s + 1 < p->end && p->s[1] == '\n')
			p->s++;
		if (peek(p) != '\n')
			return;
		p->s++;
		p->line++;
	}
}

static int put_utf8(struct isq_buf *b, unsigned long c)
{
	char u[4];
	int n;
	if (c < 0x80)
		u[0] = (char)c, n = 1;
	else if (c < 0x800)
		u[0] = (char)(0xc0 | c >> 6), u[1] = (char)(0x80 | (c & 63)), n = 2;
	else if (c < 0x10000)
		u[0] = (char)(0xe0 | c >> 12), u[1] = (char)(0x80 | (c >> 6 & 63)), u[2] = (char)(0x80 | (c & 63)), n = 3;
	else
		u[0] = (char)(0xf0 | c >> 18), u[1] = (char)(0x80 | (c >> 12 & 63)), u[2] = (char)(0x80 | (c >> 6 & 63)),
		u[3] = (char)(0x80 | (c & 63)), n = 4;
	return isq_buf_append(b, u, (size_t)n);
}

/* A "basic" or 'literal' string at p->s into b (NUL-terminated). */
static int string(struct p *p, struct isq_buf *b)
{
	char q = *p->s++;
	if (p->end - p->s >= 2 && p->s[0] == q && p->s[1] == q)
		return fail(p, "multi-line strings are not supported");
	isq_buf_reset(b);
	for (;;) {
		int c = peek(p);
		if (c < 0 || c == '\n')
			return fail(p, "unterminated string");
		p->s++;
		if (c == q)
			break;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(p, "control character in a string");
		if (c != '\\' || q == '\'') {
			if (isq_buf_putc(b, (char)c))
				return isq_errbuf_set(p->e, ISQ_ENOMEM, "out of memory");
			continue;
		}
		int x = peek(p), rc = 0;
		p->s++;
		switch (x) {
		case 'b': rc = isq_buf_putc(b, '\b'); break;
		case 't': rc = isq_buf_putc(b, '\t'); break;
		case 'n': rc = isq_buf_putc(b, '\n'); break;
		case 'f': rc = isq_buf_putc(b, '\f'); break;
		case 'r': rc = isq_buf_putc(b, '\r'); break;
		case '"': rc = isq_buf_putc(b, '"'); break;
		case '\\': rc = isq_buf_putc(b, '\\'); break;
		case 'u':
		case 'U': {
			int nd = x == 'u' ? 4 : 8;
			unsigned long v = 0;
			for (int i = 0; i < nd; i++, p->s++) {
				int d = peek(p);
				int h = d >= '0' && d <= '9' ? d - '0' : d >= 'a' && d <= 'f' ? d - 'a' + 10
								 : d >= 'A' && d <= 'F' ? d - 'A' + 10 : -1;
				if (h < 0)
					return fail(p, "bad \\%c escape", x);
				v = v * 16 + (unsigned long)h;
			}
			if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
				return fail(p, "escape \\%c names no Unicode scalar value", x);
			rc = put_utf8(b, v);
			break;
		}
		default:
			return fail(p, "unknown escape in a string");
		}
		if (rc)
			return isq_errbuf_set(p->e, ISQ_ENOMEM, "out of memory");
	}
	if (isq_buf_putc(b, 0))
		return isq_errbuf_set(p->e, ISQ_ENOMEM, "out of memory");
	b->len--;
	return 0;
}

static int is_bare(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* A dotted key into b: parts joined by '.'. */
static int key(struct p *p, struct isq_buf *b)
{
	struct isq_buf part = ISQ_BUF_INIT;
	int rc = 0;
	isq_buf_reset(b);
	for (;;) {
		skip_ws(p);
		int c = peek(p);
		if (c == '"' || c == '\'') {
			rc = string(p, &part);
			if (!rc)
				rc = isq_buf_append(b, part.data, part.len) ? isq_errbuf_set(p->e, ISQ_ENOMEM, "out of memory") : 0;
		} else if (is_bare(c)) {
			const char *k = p->s;
			while (is_bare(peek(p)))
				p->s++;
			rc = isq_buf_append(b, k, (size_t)(p->s - k)) ? isq_errbuf_set(p->e, ISQ_ENOMEM, "out of memory") : 0;
		} else {
			rc = fail(p, "expected a key");
		}
		if (rc)
			break;
		skip_ws(p);
		if (peek(p) != '.')
			break;
		p->s++;
		if (isq_buf_putc(b, '.')) {
			rc = isq_errbuf_set(p->e, ISQ_ENOMEM, "out of memory");
			break;
		}
	}
	isq_buf_release(&part);
	if (!rc && isq_buf_putc(b, 0))
		rc = isq_errbuf_set(p->e, ISQ_ENOMEM, "out of memory");
	if (!rc)
		b->len--;
	return rc;
}

void isq_toml_oneline(struct isq_errbuf *e)
{
	/* keys and values quoted in messages may hold escaped newlines */
	for (char *c = e->msg; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

static void value_free(struct isq_toml_value *v)
{
	free(v->s);
	for (int i = 0; i < v->n; i++)
		value_free(&v->items[i]);
	free(v->items);
	memset(v, 0, sizeof(*v));
}

static int scalar(struct p *p, struct isq_toml_value *v, struct isq_buf *scratch)
{
	int c = peek(p);
	if (c == '"' || c == '\'') {
		int rc = string(p, scratch);
		if (rc)
			return rc;
		v->kind = ISQ_TOML_STRING;
		v->s = isq_strdup(scratch->data ? scratch->data : "");
		return v->s ? 0 : isq_errbuf_set(p->e, ISQ_ENOMEM, "out of memory");
	}
	const char *t = p->s;
	while (p->s < p->end && (is_bare(*p->s) || *p->s == '+' || *p->s == '.' || *p->s == ':'))
		p->s++;
	size_t n = (size_t)(p->s - t);
	if ((n == 4 && !memcmp(t, "true", 4)) || (n == 5 && !memcmp(t, "false", 5))) {
		v->kind = ISQ_TOML_BOOL;
		v->i = n == 4;
		return 0;
	}
	/* an integer: [+-]digits with single underscores between digits */
	size_t i = (n && (t[0] == '+' || t[0] == '-')) ? 1 : 0;
	long long x = 0;
	int ok = i < n, prev_digit = 0;
	for (; ok && i < n; i++) {
		if (t[i] >= '0' && t[i] <= '9') {
			if (x > (9223372036854775807LL - (t[i] - '0')) / 10)
				return fail(p, "integer out of range");
			x = x * 10 + (t[i] - '0');
			prev_digit = 1;
		} else if (t[i] == '_' && prev_digit && i + 1 < n) {
			prev_digit = 0;
		} else {
			ok = 0;
		}
	}
	if (!ok || !prev_digit) {
		if (n == 0)
			return fail(p, "expected a value");
		return fail(p, "unsupported value '%.*s' (strings, integers, booleans and arrays only)", (int)(n > 40 ? 40 : n), t);
	}
	v->kind = ISQ_TOML_INT;
	v->i = t[0] == '-' ? -x : x;
	return 0;
}

static int value(struct p *p, struct isq_toml_value *v, struct isq_buf *scratch)
{
	if (peek(p) == '{')
		return fail(p, "inline tables are not supported");
	if (peek(p) != '[')
		return scalar(p, v, scratch);
	p->s++;
	v->kind = ISQ_TOML_ARRAY;
	for (;;) {
		skip_space_lines(p);
		if (peek(p) == ']') {
			p->s++;
			return 0;
		}
		if (peek(p) == '[' || peek(p) == '{')
			return fail(p, "nested arrays and inline tables are not supported");
		struct isq_toml_value *items = realloc(v->items, sizeof(*items) * (size_t)(v->n + 1));
		if (!items)
			return isq_errbuf_set(p->e, ISQ_ENOMEM, "out of memory");
		v->items = items;
		memset(&items[v->n], 0, sizeof(*items));
		int rc = scalar(p, &items[v->n++], scratch);
		if (rc)
			return rc;
		if (items[0].kind != items[v->n - 1].kind)
			return fail(p, "array mixes types");
		skip_space_lines(p);
		if (peek(p) == ',')
			p->s++;
		else if (peek(p) != ']')
			return fail(p, "expected ',' or ']' in an array");
	}
}

static int add(struct isq_toml *t, struct p *p, struct isq_toml_entry *en)
{
	struct isq_toml_entry *e = realloc(t->e, sizeof(*e) * (size_t)(t->n + 1));
	if (!e)
		return isq_errbuf_set(p->e, ISQ_ENOMEM, "out of memory");
	t->e = e;
	e[t->n++] = *en;
	return 0;
}

static void entry_free(struct isq_toml_entry *en)
{
	free(en->table);
	free(en->key);
	value_free(&en->v);
}

void isq_toml_free(struct isq_toml *t)
{
	for (int i = 0; i < t->n; i++)
		entry_free(&t->e[i]);
	free(t->e);
	t->e = NULL;
	t->n = 0;
}

/* The header [name] or [[name]]: a plain table may be defined once per enclosing [[array]] element. */
static int header(struct isq_toml *t, struct p *p, struct isq_buf *kb, int *instance, char **table)
{
	int aot = p->end - p->s >= 2 && p->s[1] == '[';
	p->s += aot ? 2 : 1;
	int rc = key(p, kb);
	if (rc)
		return rc;
	skip_ws(p);
	if (peek(p) != ']' || (aot && (p->end - p->s < 2 || p->s[1] != ']')))
		return fail(p, "expected '%s' after the table name", aot ? "]]" : "]");
	p->s += aot ? 2 : 1;
	for (int i = t->n - 1; i >= 0 && !aot; i--) {
		const struct isq_toml_entry *o = &t->e[i];
		if (o->key || strcmp(o->table, kb->data))
			continue;
		/* the same name again: fine only if an [[array]] element began in between and encloses it */
		int reopened = 0;
		for (int j = i + 1; j < t->n; j++)
			if (!t->e[j].key && t->e[j].aot && !strncmp(kb->data, t->e[j].table, strlen(t->e[j].table)) &&
			    kb->data[strlen(t->e[j].table)] == '.')
				reopened = 1;
		if (!reopened || o->aot)
			return fail(p, "table [%s] defined twice (first on line %d)", kb->data, o->line);
		break;
	}
	struct isq_toml_entry en = { isq_strdup(kb->data), NULL, aot, ++*instance, p->line, { 0 } };
	if (!en.table || add(t, p, &en)) {
		free(en.table);
		return isq_errbuf_set(p->e, ISQ_ENOMEM, "out of memory");
	}
	*table = t->e[t->n - 1].table;
	return 0;
}

int isq_toml_parse(struct isq_toml *t, const char *text, size_t len, const char *name, struct isq_errbuf *e)
{
	struct p p = { text, text + len, name, 1, e };
	struct isq_buf kb = ISQ_BUF_INIT, sb = ISQ_BUF_INIT;
	int instance = 0, rc = 0;
	char *table = "";
	t->e = NULL;
	t->n = 0;
	if (memchr(text, 0, len))
		rc = isq_errbuf_set(e, ISQ_EFORMAT, "%s: NUL byte in a text file", name);
	while (!rc && p.s < p.end) {
		skip_ws(&p);
		skip_comment(&p);
		int c = peek(&p);
		if (c == '\r' && p.s + 1 < p.end && p.s[1] == '\n')
			c = *++p.s;
		if (c == '\n') {
			p.s++;
			p.line++;
			continue;
		}
		if (c < 0)
			break;
		if (c == '[') {
			rc = header(t, &p, &kb, &instance, &table);
		} else {
			int line = p.line;
			rc = key(&p, &kb);
			skip_ws(&p);
			if (!rc && peek(&p) != '=')
				rc = fail(&p, "expected '=' after key '%s'", kb.data);
			if (rc)
				break;
			p.s++;
			skip_ws(&p);
			struct isq_toml_entry en = { NULL, NULL, 0, instance, line, { 0 } };
			rc = value(&p, &en.v, &sb);
			for (int i = 0; !rc && i < t->n; i++)
				if (t->e[i].instance == instance && t->e[i].key && !strcmp(t->e[i].key, kb.data)) {
					p.line = line;
					rc = fail(&p, "duplicate key '%s' (first on line %d)", kb.data, t->e[i].line);
				}
			if (!rc) {
				en.table = isq_strdup(table);
				en.key = isq_strdup(kb.data);
				if (!en.table || !en.key)
					rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
			}
			if (!rc)
				rc = add(t, &p, &en);
			if (rc)
				entry_free(&en);
		}
		if (rc)
			break;
		skip_ws(&p);
		skip_comment(&p);
		if (peek(&p) == '\r' && p.s + 1 < p.end && p.s[1] == '\n')
			p.s++;
		if (p.s < p.end && *p.s != '\n')
			rc = fail(&p, "unexpected text after a value");
	}
	isq_buf_release(&kb);
	isq_buf_release(&sb);
	if (rc)
		isq_toml_free(t);
	if (rc)
		isq_toml_oneline(e);
	return rc;
}
