/*
 * isq.h - the first include of every isq source file.
 *
 * Standard headers, the status codes every library function returns, and the
 * few macros the whole tree shares.  Library functions return 0 on success or
 * a negative enum isq_status; handles carry a human-readable message for the
 * last failure (see struct isq_errbuf).  The library never prints or exits:
 * the one exception is ISQ_ASSERT, which aborts on a programmer error.
 */
#ifndef ISQ_H
#define ISQ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ISQ_VERSION "0.1.0"

/* Status codes.  Stable: tools and tests compare against them. */
enum isq_status {
	ISQ_OK = 0,
	ISQ_EIO = -1,          /* read/write/open failed; errno is kept */
	ISQ_ENOMEM = -2,       /* allocation failed */
	ISQ_EFORMAT = -3,      /* input is malformed or corrupt */
	ISQ_EUNSUPPORTED = -4, /* valid input we do not handle (yet) */
	ISQ_EINVAL = -5,       /* bad argument (caller or user error) */
	ISQ_ENOSPC = -6,       /* disk full */
	ISQ_EPIPE = -7,        /* reader of our output went away */
	ISQ_ENOTFOUND = -8,    /* named thing does not exist */
};

/* A short fixed description of a status code ("malformed input"). */
const char *isq_strerror(int code);

/*
 * The last error of a handle.  Embed one in every reader/writer struct and
 * set it with isq_errbuf_set(), which returns the code so that a failure is
 * one line: `return isq_errbuf_set(&g->err, ISQ_EFORMAT, "tensor '%s': ...", n);`
 * Messages follow git's rules: lowercase, no final period, names in '...'.
 */
struct isq_errbuf {
	int code;
	char msg[512];
};

#if defined(__GNUC__)
#define ISQ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define ISQ_NORETURN __attribute__((noreturn))
#define ISQ_UNUSED __attribute__((unused))
#else
#define ISQ_PRINTF(a, b)
#define ISQ_NORETURN
#define ISQ_UNUSED
#endif

int isq_errbuf_set(struct isq_errbuf *e, int code, const char *fmt, ...) ISQ_PRINTF(3, 4);
/* Prefix the current message with "PREFIX: " (adds context on the way up); returns e->code. */
int isq_errbuf_prefix(struct isq_errbuf *e, const char *fmt, ...) ISQ_PRINTF(2, 3);
void isq_errbuf_clear(struct isq_errbuf *e);
/* The message, or isq_strerror(code) when none was set. */
const char *isq_errbuf_msg(const struct isq_errbuf *e);

void isq_assert_fail(const char *expr, const char *file, int line) ISQ_NORETURN;
#define ISQ_ASSERT(x) ((x) ? (void)0 : isq_assert_fail(#x, __FILE__, __LINE__))
#define ISQ_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ISQ_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ISQ_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Overflow-checked arithmetic on sizes: return 0 on success, -1 on overflow. */
static inline int isq_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}
static inline int isq_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
	return __builtin_add_overflow(a, b, out) ? -1 : 0;
}

/* Little-endian loads and stores (every on-disk format we read is LE). */
static inline uint16_t isq_le16(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] | b[1] << 8);
}
static inline uint32_t isq_le32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t isq_le64(const void *p)
{
	return (uint64_t)isq_le32(p) | (uint64_t)isq_le32((const uint8_t *)p + 4) << 32;
}
static inline void isq_put_le16(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}
static inline void isq_put_le32(void *p, uint32_t v)
{
	uint8_t *b = p;
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}
static inline void isq_put_le64(void *p, uint64_t v)
{
	isq_put_le32(p, (uint32_t)v);
	isq_put_le32((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

/* malloc/calloc/realloc that return NULL on overflow of n*size too. */
void *isq_mallocarray(size_t n, size_t size);
char *isq_strdup(const char *s);

/* Case-insensitive Levenshtein distance, for "did you mean" suggestions. */
int isq_edit_distance(const char *a, const char *b);

#endif
