/*
 * opt.h - one option table per tool drives both parsing and --help
 * (git's parse-options model).
 *
 *   static const char *model;
 *   static int json, quiet;
 *   static const struct isq_opt opts[] = {
 *       ISQ_OPT_STRING('m', "model", &model, "MODEL", "the model to read"),
 *       ISQ_OPT_FLAG(0, "json", &json, "one JSON document on stdout"),
 *       ISQ_OPT_END(),
 *   };
 *
 * Parsing is GNU-style: "--opt=v" or "--opt v", "-m v" or "-mv", bundled
 * short flags ("-qv"), options anywhere among positional arguments, "--" ends
 * options and a lone "-" is a positional argument (stdin/stdout).
 * -h/--help and -V/--version are always understood and need no table entry.
 */
#ifndef ISQ_OPT_H
#define ISQ_OPT_H

#include "buf.h"

enum isq_opt_type {
	ISQ_OPT_T_END = 0,
	ISQ_OPT_T_GROUP,  /* a heading in --help; no option */
	ISQ_OPT_T_FLAG,   /* int: set to 1 */
	ISQ_OPT_T_COUNT,  /* int: incremented each time (-v -v) */
	ISQ_OPT_T_STRING, /* const char *: points into argv */
	ISQ_OPT_T_INT,    /* int64_t: decimal, may be negative */
	ISQ_OPT_T_SIZE,   /* uint64_t: bytes, with optional K M G T suffix (powers of 1024) */
	ISQ_OPT_T_DOUBLE, /* double */
	ISQ_OPT_T_LIST,   /* struct isq_strlist: every occurrence appended */
};

struct isq_opt {
	enum isq_opt_type type;
	int short_name;        /* 0 when there is none */
	const char *long_name; /* without the leading "--" */
	void *value;
	const char *argh;      /* name of the argument in --help, NULL for flags */
	const char *help;
};

#define ISQ_OPT_END() { ISQ_OPT_T_END, 0, NULL, NULL, NULL, NULL }
#define ISQ_OPT_GROUP(h) { ISQ_OPT_T_GROUP, 0, NULL, NULL, NULL, (h) }
#define ISQ_OPT_FLAG(s, l, v, h) { ISQ_OPT_T_FLAG, (s), (l), (v), NULL, (h) }
#define ISQ_OPT_COUNT(s, l, v, h) { ISQ_OPT_T_COUNT, (s), (l), (v), NULL, (h) }
#define ISQ_OPT_STRING(s, l, v, a, h) { ISQ_OPT_T_STRING, (s), (l), (v), (a), (h) }
#define ISQ_OPT_INT(s, l, v, a, h) { ISQ_OPT_T_INT, (s), (l), (v), (a), (h) }
#define ISQ_OPT_SIZE(s, l, v, a, h) { ISQ_OPT_T_SIZE, (s), (l), (v), (a), (h) }
#define ISQ_OPT_DOUBLE(s, l, v, a, h) { ISQ_OPT_T_DOUBLE, (s), (l), (v), (a), (h) }
#define ISQ_OPT_LIST(s, l, v, a, h) { ISQ_OPT_T_LIST, (s), (l), (v), (a), (h) }

/* A list of borrowed strings (they point into argv). */
struct isq_strlist {
	const char **items;
	int n, cap;
};
#define ISQ_STRLIST_INIT { NULL, 0, 0 }
int isq_strlist_push(struct isq_strlist *l, const char *s);
void isq_strlist_release(struct isq_strlist *l);

/* What a tool is: its name, synopsis lines and one-paragraph summary. */
struct isq_cmd {
	const char *name;     /* "isq-inspect" */
	const char *const *usage; /* NULL-terminated synopsis lines, without the name */
	const char *summary;  /* printed after the synopsis in --help */
	const struct isq_opt *opts;
};

enum {
	ISQ_OPT_PARSED = 0,
	ISQ_OPT_HELP = 1,    /* -h/--help was given */
	ISQ_OPT_VERSION = 2, /* -V/--version was given */
};

/*
 * Parse argv[1..argc-1] against cmd->opts.  Positional arguments are appended
 * to *pos (borrowed from argv).  Returns ISQ_OPT_PARSED, ISQ_OPT_HELP,
 * ISQ_OPT_VERSION, or ISQ_EINVAL with a one-line reason in *e (unknown option,
 * missing or malformed argument; a close misspelling gets a suggestion).
 */
int isq_opt_parse(const struct isq_cmd *cmd, int argc, char **argv, struct isq_strlist *pos,
		  struct isq_errbuf *e);

/* "usage: isq-foo ..." lines (one per synopsis line). */
int isq_opt_synopsis(const struct isq_cmd *cmd, struct isq_buf *out);
/* The whole --help text: synopsis, summary, the option table. */
int isq_opt_help(const struct isq_cmd *cmd, struct isq_buf *out);

#endif
