/*
 * buf.h - a growable byte buffer (git's strbuf, smaller).
 *
 *   struct isq_buf b = ISQ_BUF_INIT;
 *   isq_buf_printf(&b, "%d tensors", n);
 *   ... b.data is always NUL-terminated (b.len excludes the NUL) ...
 *   isq_buf_release(&b);
 *
 * Appending functions return 0 or ISQ_ENOMEM; after a failed append the
 * buffer keeps its old contents.
 */
#ifndef ISQ_BUF_H
#define ISQ_BUF_H

#include "isq.h"

struct isq_buf {
	char *data; /* NULL until the first append */
	size_t len;
	size_t cap;
};
#define ISQ_BUF_INIT { NULL, 0, 0 }

int isq_buf_grow(struct isq_buf *b, size_t extra);
int isq_buf_append(struct isq_buf *b, const void *p, size_t n);
int isq_buf_puts(struct isq_buf *b, const char *s);
int isq_buf_putc(struct isq_buf *b, char c);
int isq_buf_printf(struct isq_buf *b, const char *fmt, ...) ISQ_PRINTF(2, 3);
int isq_buf_vprintf(struct isq_buf *b, const char *fmt, va_list ap);
void isq_buf_reset(struct isq_buf *b);   /* len = 0, keeps the memory */
void isq_buf_release(struct isq_buf *b); /* frees, back to ISQ_BUF_INIT */
/* Hands the memory to the caller (free() it); the buffer is reset to empty. */
char *isq_buf_detach(struct isq_buf *b, size_t *len);

#endif
