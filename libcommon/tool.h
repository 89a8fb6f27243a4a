/*
 * tool.h - the part of main() every isq tool shares.  For tools only: these
 * print and exit.
 */
#ifndef ISQ_TOOL_H
#define ISQ_TOOL_H

#include "err.h"
#include "opt.h"

/*
 * Sets the program name, installs the signal handlers that remove pending
 * temporary outputs, parses argv.  On -h/--help prints the help on stdout and
 * exits 0; on -V/--version prints "isq-foo 0.1.0" and exits 0; on a usage
 * error prints "prog: reason" and the synopsis on stderr and exits 2.
 */
void isq_tool_parse(const struct isq_cmd *cmd, int argc, char **argv, struct isq_strlist *pos);

/* A usage error found after parsing (missing -o, conflicting options): exit 2. */
void isq_tool_usage_error(const struct isq_cmd *cmd, const char *fmt, ...) ISQ_PRINTF(2, 3) ISQ_NORETURN;

/*
 * Flush and close stdout and return the exit status: `return isq_tool_exit(status);`
 * A write error on stdout (ENOSPC, EIO) turns 0 into 1 with a message; EPIPE is quiet.
 */
int isq_tool_exit(int status);

/* Number of worker threads for --threads 0/unset: the online CPU count. */
int isq_tool_threads(int64_t requested);

#endif
