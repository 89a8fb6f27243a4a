/*
 * toml.h - the subset of TOML that mistral.rs's config files use
 * (`mistralrs from-config`, `mistralrs tune --emit-config`), read into a
 * flat list of entries.
 *
 * Debian packages no C TOML library (only C++ ones), and these files need
 * little: comments; bare, "basic" and 'literal' keys, dotted in table
 * headers and keys; basic strings with escapes (\b \t \n \f \r \" \\
 * \uXXXX \UXXXXXXXX); literal strings; integers (with _ separators);
 * booleans; arrays of those, which may span lines; [tables] and
 * [[arrays.of.tables]].  Floats, dates, multi-line strings, inline tables
 * and nested arrays are refused as unsupported, never misread.
 *
 * Every error is one line starting with the file name and line:
 * "cfg.toml:4: duplicate key 'dtype'".
 */
#ifndef ISQ_TOML_H
#define ISQ_TOML_H

#include "isq.h"

#include <stddef.h>

enum isq_toml_kind { ISQ_TOML_NONE, ISQ_TOML_STRING, ISQ_TOML_INT, ISQ_TOML_BOOL, ISQ_TOML_ARRAY };

struct isq_toml_value {
	enum isq_toml_kind kind;
	char *s;			/* STRING: UTF-8, NUL-terminated */
	long long i;			/* INT; BOOL as 0 or 1 */
	struct isq_toml_value *items;	/* ARRAY: n scalars */
	int n;
};

/*
 * One header or one key = value, in file order.  A header has key NULL and
 * kind NONE.  table is the dotted header name ("" before the first
 * header); instance numbers the headers, so two entries with the same
 * instance live in the same table (an [[array]] element starts a new one).
 */
struct isq_toml_entry {
	char *table;
	char *key;
	int aot; /* the header was [[table]] */
	int instance;
	int line;
	struct isq_toml_value v;
};

struct isq_toml {
	struct isq_toml_entry *e;
	int n;
};

/* Parse text[0..len); name prefixes error messages.  On failure *t is empty. */
int isq_toml_parse(struct isq_toml *t, const char *text, size_t len, const char *name, struct isq_errbuf *e);
void isq_toml_free(struct isq_toml *t);
/* Control characters in e's message (from quoted keys and strings) become '?'. */
void isq_toml_oneline(struct isq_errbuf *e);

#endif
