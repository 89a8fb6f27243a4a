/* buf.c - growable byte buffer. */
#include "buf.h"

int isq_buf_grow(struct isq_buf *b, size_t extra)
{
	size_t need;
	if (__builtin_add_overflow(b->len, extra, &need) || need == SIZE_MAX)
		return ISQ_ENOMEM;
	need += 1; /* room for the terminating NUL */
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need) {
		if (cap > SIZE_MAX / 2) {
			cap = need;
			break;
		}
		cap *= 2;
	}
	char *p = realloc(b->data, cap);
	if (!p)
		return ISQ_ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int isq_buf_append(struct isq_buf *b, const void *p, size_t n)
{
	if (isq_buf_grow(b, n))
		return ISQ_ENOMEM;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int isq_buf_puts(struct isq_buf *b, const char *s) { return isq_buf_append(b, s, strlen(s)); }
int isq_buf_putc(struct isq_buf *b, char c) { return isq_buf_append(b, &c, 1); }

int isq_buf_vprintf(struct isq_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return ISQ_EINVAL;
	if (isq_buf_grow(b, (size_t)n))
		return ISQ_ENOMEM;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int isq_buf_printf(struct isq_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = isq_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void isq_buf_reset(struct isq_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void isq_buf_release(struct isq_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *isq_buf_detach(struct isq_buf *b, size_t *len)
{
	char *p = b->data;
	if (!p)
		p = calloc(1, 1);
	if (len)
		*len = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}
