/*
 * err.h - diagnostics for tools (the lafe_err model): every line on stderr
 * starts with the program name, "isq-quantize: model.gguf: message".
 * Only tools call these; library code returns messages through isq_errbuf.
 */
#ifndef ISQ_ERR_H
#define ISQ_ERR_H

#include "isq.h"

/* Set the name printed before every message (basename of argv[0] is fine). */
void isq_setprogname(const char *name);
const char *isq_getprogname(void);

/* Verbosity for isq_info/isq_debug: 0 = -q, 1 = default, 2+ = -v. */
void isq_set_verbosity(int level);
int isq_get_verbosity(void);

/* "prog: message\n" on stderr. */
void isq_warn(const char *fmt, ...) ISQ_PRINTF(1, 2);
/* Same as isq_warn, then exit(1) after removing pending temporary outputs. */
void isq_die(const char *fmt, ...) ISQ_PRINTF(1, 2) ISQ_NORETURN;
/* Informational line, suppressed by -q (level < 1). */
void isq_info(const char *fmt, ...) ISQ_PRINTF(1, 2);
/* Printed only with -v (level >= 2). */
void isq_debug(const char *fmt, ...) ISQ_PRINTF(1, 2);

#endif
