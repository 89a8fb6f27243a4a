/* status.c - status codes, per-handle error messages, checked allocation. */
#include "isq.h"

#include <errno.h>

const char *isq_strerror(int code)
{
	switch (code) {
	case ISQ_OK: return "success";
	case ISQ_EIO: return "input/output error";
	case ISQ_ENOMEM: return "out of memory";
	case ISQ_EFORMAT: return "malformed input";
	case ISQ_EUNSUPPORTED: return "not supported";
	case ISQ_EINVAL: return "invalid argument";
	case ISQ_ENOSPC: return "no space left on device";
	case ISQ_EPIPE: return "broken pipe";
	case ISQ_ENOTFOUND: return "not found";
	}
	return "unknown error";
}

int isq_errbuf_set(struct isq_errbuf *e, int code, const char *fmt, ...)
{
	if (!e)
		return code;
	e->code = code;
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	} else {
		snprintf(e->msg, sizeof(e->msg), "%s", isq_strerror(code));
	}
	return code;
}

int isq_errbuf_prefix(struct isq_errbuf *e, const char *fmt, ...)
{
	char pre[256], old[sizeof(e->msg)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	const char *rest = old[0] ? old : isq_strerror(e->code);
	size_t n = strlen(pre);
	if (n > sizeof(e->msg) - 3)
		n = sizeof(e->msg) - 3;
	memcpy(e->msg, pre, n);
	memcpy(e->msg + n, ": ", 2);
	size_t room = sizeof(e->msg) - n - 3, rl = strlen(rest);
	if (rl > room)
		rl = room;
	memcpy(e->msg + n + 2, rest, rl);
	e->msg[n + 2 + rl] = '\0';
	return e->code;
}

void isq_errbuf_clear(struct isq_errbuf *e)
{
	e->code = 0;
	e->msg[0] = '\0';
}

const char *isq_errbuf_msg(const struct isq_errbuf *e)
{
	return e->msg[0] ? e->msg : isq_strerror(e->code);
}

void isq_assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "isq: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
	abort();
}

void *isq_mallocarray(size_t n, size_t size)
{
	size_t total;
	if (__builtin_mul_overflow(n, size, &total)) {
		errno = ENOMEM;
		return NULL;
	}
	return malloc(total ? total : 1);
}

char *isq_strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}
