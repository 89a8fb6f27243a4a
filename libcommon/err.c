/* err.c - program-name-prefixed diagnostics for tools. */
#include "err.h"
#include "io.h"

static const char *progname = "isq";
static int verbosity = 1;

void isq_setprogname(const char *name)
{
	const char *slash = strrchr(name, '/');
	progname = slash ? slash + 1 : name;
}

const char *isq_getprogname(void) { return progname; }
void isq_set_verbosity(int level) { verbosity = level; }
int isq_get_verbosity(void) { return verbosity; }

static void vmsg(const char *fmt, va_list ap)
{
	/* One write per line so that lines from two processes in a pipe do not interleave. */
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s: ", progname);
	if (n < 0)
		return;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	size_t len = strlen(line);
	if (len + 1 < sizeof(line)) {
		line[len++] = '\n';
		line[len] = '\0';
	}
	fputs(line, stderr);
}

void isq_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void isq_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
	isq_out_abort_all();
	exit(1);
}

void isq_info(const char *fmt, ...)
{
	if (verbosity < 1)
		return;
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}

void isq_debug(const char *fmt, ...)
{
	if (verbosity < 2)
		return;
	va_list ap;
	va_start(ap, fmt);
	vmsg(fmt, ap);
	va_end(ap);
}
