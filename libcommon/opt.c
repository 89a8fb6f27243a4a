/* opt.c - table-driven option parsing and generated --help. */
#include "opt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>

int isq_strlist_push(struct isq_strlist *l, const char *s)
{
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 8;
		const char **p = realloc(l->items, (size_t)cap * sizeof(*p));
		if (!p)
			return ISQ_ENOMEM;
		l->items = p;
		l->cap = cap;
	}
	l->items[l->n++] = s;
	return 0;
}

void isq_strlist_release(struct isq_strlist *l)
{
	free(l->items);
	l->items = NULL;
	l->n = l->cap = 0;
}

int isq_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 1000;
	int row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int up = row[j];
			int cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
			int v = diag + cost;
			if (row[j] + 1 < v)
				v = row[j] + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
			diag = up;
		}
	}
	return row[lb];
}

static const struct isq_opt *find_long(const struct isq_opt *o, const char *name, size_t len)
{
	for (; o->type != ISQ_OPT_T_END; o++)
		if (o->long_name && strlen(o->long_name) == len && !memcmp(o->long_name, name, len))
			return o;
	return NULL;
}

static const struct isq_opt *find_short(const struct isq_opt *o, int c)
{
	for (; o->type != ISQ_OPT_T_END; o++)
		if (o->short_name && o->short_name == c)
			return o;
	return NULL;
}

static int takes_arg(const struct isq_opt *o)
{
	return o->type != ISQ_OPT_T_FLAG && o->type != ISQ_OPT_T_COUNT;
}

static void optname(const struct isq_opt *o, int used_short, char *out, size_t n)
{
	if (used_short || !o->long_name)
		snprintf(out, n, "-%c", o->short_name);
	else
		snprintf(out, n, "--%s", o->long_name);
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)*s))
		return -1;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	unsigned shift = 0;
	if (*end) {
		switch (toupper((unsigned char)*end)) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		case 'T': shift = 40; break;
		default: return -1;
		}
		end++;
		if (toupper((unsigned char)*end) == 'I')
			end++;
		if (toupper((unsigned char)*end) == 'B')
			end++;
		if (*end)
			return -1;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int set_value(const struct isq_opt *o, const char *arg, const char *name, struct isq_errbuf *e)
{
	char *end;
	switch (o->type) {
	case ISQ_OPT_T_FLAG:
		*(int *)o->value = 1;
		return 0;
	case ISQ_OPT_T_COUNT:
		(*(int *)o->value)++;
		return 0;
	case ISQ_OPT_T_STRING:
		*(const char **)o->value = arg;
		return 0;
	case ISQ_OPT_T_LIST:
		return isq_strlist_push(o->value, arg);
	case ISQ_OPT_T_INT: {
		errno = 0;
		long long v = strtoll(arg, &end, 10);
		if (errno || end == arg || *end)
			return isq_errbuf_set(e, ISQ_EINVAL, "option '%s' expects an integer, got '%s'", name, arg);
		*(int64_t *)o->value = v;
		return 0;
	}
	case ISQ_OPT_T_SIZE:
		if (parse_size(arg, o->value))
			return isq_errbuf_set(e, ISQ_EINVAL, "option '%s' expects a size in bytes (e.g. 512M), got '%s'",
					      name, arg);
		return 0;
	case ISQ_OPT_T_DOUBLE: {
		errno = 0;
		double v = strtod(arg, &end);
		if (errno || end == arg || *end || !isfinite(v))
			return isq_errbuf_set(e, ISQ_EINVAL, "option '%s' expects a number, got '%s'", name, arg);
		*(double *)o->value = v;
		return 0;
	}
	default:
		return isq_errbuf_set(e, ISQ_EINVAL, "option '%s': bad table entry", name);
	}
}

static int unknown_long(const struct isq_cmd *cmd, const char *name, size_t len, struct isq_errbuf *e)
{
	char given[128];
	snprintf(given, sizeof(given), "%.*s", (int)(len < 100 ? len : 100), name);
	const char *best = NULL;
	int bestd = 3;
	for (const struct isq_opt *o = cmd->opts; o->type != ISQ_OPT_T_END; o++) {
		if (!o->long_name)
			continue;
		int d = isq_edit_distance(given, o->long_name);
		if (d < bestd) {
			bestd = d;
			best = o->long_name;
		}
	}
	if (best)
		return isq_errbuf_set(e, ISQ_EINVAL, "unknown option '--%s' (did you mean '--%s'?)", given, best);
	return isq_errbuf_set(e, ISQ_EINVAL, "unknown option '--%s'", given);
}

int isq_opt_parse(const struct isq_cmd *cmd, int argc, char **argv, struct isq_strlist *pos,
		  struct isq_errbuf *e)
{
	int result = ISQ_OPT_PARSED;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		char name[80];
		if (!strcmp(a, "--")) {
			for (i++; i < argc; i++)
				if (isq_strlist_push(pos, argv[i]))
					return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
			break;
		}
		if (a[0] != '-' || a[1] == '\0') {
			if (isq_strlist_push(pos, a))
				return isq_errbuf_set(e, ISQ_ENOMEM, NULL);
			continue;
		}
		if (a[1] == '-') {
			const char *n = a + 2, *eq = strchr(n, '=');
			size_t len = eq ? (size_t)(eq - n) : strlen(n);
			const struct isq_opt *o = find_long(cmd->opts, n, len);
			if (!o) {
				if (len == 4 && !memcmp(n, "help", 4)) {
					result = ISQ_OPT_HELP;
					continue;
				}
				if (len == 7 && !memcmp(n, "version", 7)) {
					if (result == ISQ_OPT_PARSED)
						result = ISQ_OPT_VERSION;
					continue;
				}
				return unknown_long(cmd, n, len, e);
			}
			optname(o, 0, name, sizeof(name));
			const char *arg = NULL;
			if (takes_arg(o)) {
				if (eq)
					arg = eq + 1;
				else if (i + 1 < argc)
					arg = argv[++i];
				else
					return isq_errbuf_set(e, ISQ_EINVAL, "option '%s' requires a value", name);
			} else if (eq) {
				return isq_errbuf_set(e, ISQ_EINVAL, "option '%s' takes no value", name);
			}
			int rc = set_value(o, arg, name, e);
			if (rc)
				return rc;
			continue;
		}
		/* one or more short options: -qv, -m MODEL, -mMODEL */
		for (const char *p = a + 1; *p; p++) {
			const struct isq_opt *o = find_short(cmd->opts, (unsigned char)*p);
			if (!o) {
				if (*p == 'h') {
					result = ISQ_OPT_HELP;
					continue;
				}
				if (*p == 'V') {
					if (result == ISQ_OPT_PARSED)
						result = ISQ_OPT_VERSION;
					continue;
				}
				return isq_errbuf_set(e, ISQ_EINVAL, "unknown option '-%c'", isprint((unsigned char)*p) ? *p : '?');
			}
			optname(o, 1, name, sizeof(name));
			if (takes_arg(o)) {
				const char *arg;
				if (p[1])
					arg = p + 1;
				else if (i + 1 < argc)
					arg = argv[++i];
				else
					return isq_errbuf_set(e, ISQ_EINVAL, "option '%s' requires a value", name);
				int rc = set_value(o, arg, name, e);
				if (rc)
					return rc;
				break;
			}
			int rc = set_value(o, NULL, name, e);
			if (rc)
				return rc;
		}
	}
	return result;
}

int isq_opt_synopsis(const struct isq_cmd *cmd, struct isq_buf *out)
{
	int rc = 0;
	for (int i = 0; cmd->usage && cmd->usage[i]; i++)
		rc |= isq_buf_printf(out, "%s %s %s\n", i ? "   or:" : "usage:", cmd->name, cmd->usage[i]);
	return rc ? ISQ_ENOMEM : 0;
}

/* Width of the option column in --help; longer entries wrap the help to the next line. */
#define HELP_COL 26

int isq_opt_help(const struct isq_cmd *cmd, struct isq_buf *out)
{
	int rc = isq_opt_synopsis(cmd, out);
	if (cmd->summary)
		rc |= isq_buf_printf(out, "\n%s\n", cmd->summary);
	rc |= isq_buf_puts(out, "\n");
	for (const struct isq_opt *o = cmd->opts; o->type != ISQ_OPT_T_END; o++) {
		if (o->type == ISQ_OPT_T_GROUP) {
			rc |= isq_buf_printf(out, "\n%s\n", o->help);
			continue;
		}
		struct isq_buf left = ISQ_BUF_INIT;
		rc |= isq_buf_puts(&left, "  ");
		if (o->short_name)
			rc |= isq_buf_printf(&left, "-%c", o->short_name);
		if (o->short_name && o->long_name)
			rc |= isq_buf_puts(&left, ", ");
		else if (!o->short_name)
			rc |= isq_buf_puts(&left, "    ");
		if (o->long_name)
			rc |= isq_buf_printf(&left, "--%s", o->long_name);
		if (o->argh)
			rc |= isq_buf_printf(&left, " %s", o->argh);
		if (left.len + 2 > HELP_COL)
			rc |= isq_buf_printf(out, "%s\n%*s%s\n", left.data, HELP_COL, "", o->help);
		else
			rc |= isq_buf_printf(out, "%-*s%s\n", HELP_COL, left.data, o->help);
		isq_buf_release(&left);
	}
	rc |= isq_buf_printf(out, "  -h, --help              show this help and exit\n");
	rc |= isq_buf_printf(out, "  -V, --version           show the version and exit\n");
	return rc ? ISQ_ENOMEM : 0;
}
