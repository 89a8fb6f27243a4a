/* tool.c - shared main() plumbing: parse, help, version, usage errors, exit. */
#include "tool.h"
#include "io.h"
#include "thread.h"

#include <errno.h>
#include <unistd.h>

static void print_synopsis(const struct isq_cmd *cmd, FILE *f)
{
	struct isq_buf b = ISQ_BUF_INIT;
	isq_opt_synopsis(cmd, &b);
	if (b.data)
		fputs(b.data, f);
	isq_buf_release(&b);
}

void isq_tool_usage_error(const struct isq_cmd *cmd, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	isq_warn("%s", msg);
	print_synopsis(cmd, stderr);
	fprintf(stderr, "Try '%s --help' for more information.\n", cmd->name);
	isq_out_abort_all();
	exit(2);
}

void isq_tool_parse(const struct isq_cmd *cmd, int argc, char **argv, struct isq_strlist *pos)
{
	struct isq_errbuf e = { 0 };
	isq_setprogname(cmd->name);
	isq_io_install_signal_handlers();
	int rc = isq_opt_parse(cmd, argc, argv, pos, &e);
	if (rc == ISQ_OPT_HELP) {
		struct isq_buf b = ISQ_BUF_INIT;
		isq_opt_help(cmd, &b);
		fputs(b.data ? b.data : "", stdout);
		isq_buf_release(&b);
		exit(isq_tool_exit(0));
	}
	if (rc == ISQ_OPT_VERSION) {
		printf("%s %s\n", cmd->name, ISQ_VERSION);
		exit(isq_tool_exit(0));
	}
	if (rc < 0)
		isq_tool_usage_error(cmd, "%s", isq_errbuf_msg(&e));
}

int isq_tool_exit(int status)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno != EPIPE) {
			isq_warn("write error on standard output: %s", strerror(errno));
			status = status ? status : 1;
		}
	}
	if (fclose(stdout) != 0 && errno != EPIPE && errno != EBADF) {
		isq_warn("write error on standard output: %s", strerror(errno));
		status = status ? status : 1;
	}
	return status;
}

int isq_tool_threads(int64_t requested)
{
	if (requested > 0)
		return requested > 1024 ? 1024 : (int)requested;
	return isq_cpu_count();
}
