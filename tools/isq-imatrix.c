/* isq-imatrix - importance matrices from calibration text; merge and convert them. */
#include "imatrix-collect.h"
#include "progress.h"
#include "tool.h"

#include <cJSON.h>
#include <signal.h>
#include <unistd.h>

static const char *opt_model, *opt_file, *opt_output, *opt_format, *opt_convert, *opt_backend = "cpu";
static struct isq_strlist opt_in_files = ISQ_STRLIST_INIT;
static int64_t opt_ctx = 512, opt_chunks, opt_threads;
static int opt_merge, opt_process_output, opt_json, opt_force, opt_quiet, opt_verbose;

static const struct isq_opt options[] = {
	ISQ_OPT_STRING('m', "model", &opt_model, "MODEL", "HF directory, safetensors or GGUF file"),
	ISQ_OPT_STRING('f', "file", &opt_file, "FILE", "calibration text ('-' = stdin, .zst decompressed)"),
	ISQ_OPT_INT('c', "ctx", &opt_ctx, "N", "tokens per chunk (default 512)"),
	ISQ_OPT_INT(0, "chunks", &opt_chunks, "N", "use at most N chunks (default: all)"),
	ISQ_OPT_STRING('o', "output", &opt_output, "PATH", "output file ('-' = stdout, GGUF form)"),
	ISQ_OPT_STRING(0, "format", &opt_format, "F", "gguf, dat or cimatrix (default: by extension, else gguf)"),
	ISQ_OPT_LIST(0, "in-file", &opt_in_files, "FILE", "add an existing imatrix to the result (repeatable)"),
	ISQ_OPT_FLAG(0, "process-output", &opt_process_output, "also collect the output projection"),
	ISQ_OPT_FLAG(0, "merge", &opt_merge, "combine the imatrix files given as arguments"),
	ISQ_OPT_STRING(0, "convert", &opt_convert, "FILE", "rewrite an imatrix file in another format"),
	ISQ_OPT_STRING(0, "backend", &opt_backend, "B", "where to compute: cpu (default)"),
	ISQ_OPT_INT(0, "threads", &opt_threads, "N", "worker threads (default: all cores)"),
	ISQ_OPT_FLAG(0, "json", &opt_json, "summary as JSON on stdout (needs -o FILE)"),
	ISQ_OPT_FLAG(0, "force", &opt_force, "write binary output to a terminal"),
	ISQ_OPT_COUNT('q', "quiet", &opt_quiet, "print less on stderr"),
	ISQ_OPT_COUNT('v', "verbose", &opt_verbose, "print more on stderr"),
	ISQ_OPT_END(),
};

static const char *const usage[] = {
	"-m MODEL -f FILE [-c N] [--chunks N] -o OUT [options]",
	"--merge FILE... -o OUT [--format F]",
	"--convert FILE -o OUT [--format F]",
	NULL,
};

static const struct isq_cmd cmd = {
	.name = "isq-imatrix",
	.usage = usage,
	.summary = "Compute an importance matrix (llama.cpp's imatrix: per weight, the sum of squared inputs per\n"
		   "column and the number of token rows) by running calibration text through a model in chunks,\n"
		   "and write it as llama.cpp GGUF, legacy .dat or mistral.rs .cimatrix.",
	.opts = options,
};

struct summary {
	int64_t tokens, chunks;
	double seconds;
};

/* A chunk counter on a terminal; the shared bar speaks in bytes, this job in chunks. */
struct chunk_bar {
	int enabled;
	int64_t chunk_size;
	double start, last;
};

static void chunk_progress(void *ud, int64_t done, int64_t total)
{
	struct chunk_bar *b = ud;
	double now = isq_now();
	/* at most ten redraws a second; a job shorter than that never shows a bar */
	if (!b->enabled || (done < total && now - b->last < 0.1))
		return;
	if (done == total) {
		if (b->last > b->start)
			fprintf(stderr, "\r\033[K");
		return;
	}
	b->last = now;
	double el = now - b->start;
	double tps = el > 0 ? (double)(done * b->chunk_size) / el : 0;
	double eta = done ? el / (double)done * (double)(total - done) : 0;
	char bar[21];
	int fill = (int)(20 * done / total);
	for (int i = 0; i < 20; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[20] = '\0';
	fprintf(stderr, "\rimatrix [%s] chunk %lld/%lld  %.0f tok/s  ETA %d:%02d\033[K", bar, (long long)done,
		(long long)total, tps, (int)eta / 60, (int)eta % 60);
}

static void read_imatrix(struct isq_imatrix *dst, const char *path)
{
	struct isq_imatrix im;
	isq_imatrix_init(&im);
	if (isq_imatrix_read(&im, path))
		isq_die("%s", isq_errbuf_msg(&im.err));
	if (isq_imatrix_merge(dst, &im))
		isq_die("%s: %s", path, isq_errbuf_msg(&dst->err));
	isq_imatrix_release(&im);
}

/* Run the calibration text through the model. */
static void compute(struct isq_imatrix *im, struct summary *sum)
{
	struct isq_errbuf e = { 0 };
	if (strcmp(opt_backend, "cpu")) {
		/* the backend's own words for a name this build lacks or does not know */
		struct isq_backend *be;
		int rc = isq_backend_new(opt_backend, 1, &be, &e);
		if (rc == ISQ_EINVAL)
			isq_tool_usage_error(&cmd, "%s", isq_errbuf_msg(&e));
		if (rc)
			isq_die("%s", isq_errbuf_msg(&e));
		isq_backend_free(be);
		isq_die("the %s backend keeps activations off the host; use --backend cpu", opt_backend);
	}
	double t0 = isq_now();
	struct chunk_bar bar = { !opt_quiet && !opt_json && isq_fd_is_tty(2), opt_ctx, t0, t0 };
	struct isq_imatrix_params p = {
		.chunk_size = opt_ctx,
		.max_chunks = opt_chunks,
		.flags = opt_process_output ? ISQ_IMATRIX_COLLECT_OUTPUT : 0,
		.progress = chunk_progress,
		.progress_ud = &bar,
	};
	struct isq_imatrix_text_info info;
	if (isq_imatrix_from_text(im, opt_model, opt_file, isq_tool_threads(opt_threads), &p, &info, &e)) {
		if (bar.last > bar.start)
			fprintf(stderr, "\r\033[K");
		isq_die("%s", isq_errbuf_msg(&e));
	}
	sum->seconds = isq_now() - t0;
	sum->chunks = info.n_chunks;
	sum->tokens = info.n_chunks * opt_ctx;
	isq_debug("%zu tokens, %lld chunks of %lld, BOS %d, %d threads", info.n_tokens, (long long)info.n_chunks,
		  (long long)opt_ctx, (int)info.bos, info.n_threads);
	if (opt_ctx > info.n_ctx_train && info.n_ctx_train > 0)
		isq_warn("chunks of %lld tokens were longer than the model was trained for (%lld)", (long long)opt_ctx,
			 (long long)info.n_ctx_train);
}

static void write_output(const struct isq_imatrix *im, enum isq_imatrix_format fmt)
{
	struct isq_out out;
	struct isq_errbuf e = { 0 };
	if (isq_out_open(&out, opt_output))
		isq_die("%s", isq_errbuf_msg(&out.err));
	if (isq_imatrix_write(im, fmt, &out, &e)) {
		isq_out_abort(&out);
		isq_die("%s: %s", opt_output, isq_errbuf_msg(&e));
	}
	if (isq_out_commit(&out))
		isq_die("%s", isq_errbuf_msg(&out.err));
}

static void report(const struct isq_imatrix *im, enum isq_imatrix_format fmt, const struct summary *s)
{
	double tps = s->seconds > 0 ? (double)s->tokens / s->seconds : 0;
	if (!opt_json) {
		if (s->chunks)
			isq_info("%lld chunks of %lld tokens in %.2f s (%.0f tokens/s): %zu entries -> %s (%s)",
				 (long long)s->chunks, (long long)opt_ctx, s->seconds, tps, im->n, opt_output,
				 isq_imatrix_format_name(fmt));
		else
			isq_info("%zu entries, %lld chunks -> %s (%s)", im->n, (long long)im->chunk_count, opt_output,
				 isq_imatrix_format_name(fmt));
		return;
	}
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "output", opt_output);
	cJSON_AddStringToObject(j, "format", isq_imatrix_format_name(fmt));
	if (opt_model)
		cJSON_AddStringToObject(j, "model", opt_model);
	cJSON_AddNumberToObject(j, "chunk_count", (double)im->chunk_count);
	cJSON_AddNumberToObject(j, "chunk_size", (double)im->chunk_size);
	cJSON_AddNumberToObject(j, "tokens", (double)s->tokens);
	cJSON_AddNumberToObject(j, "seconds", s->seconds);
	cJSON_AddNumberToObject(j, "tokens_per_s", tps);
	cJSON *ds = cJSON_AddArrayToObject(j, "datasets");
	for (size_t i = 0; i < im->n_datasets; i++)
		cJSON_AddItemToArray(ds, cJSON_CreateString(im->datasets[i]));
	cJSON *arr = cJSON_AddArrayToObject(j, "entries");
	for (size_t i = 0; i < im->n; i++) {
		const struct isq_imatrix_entry *en = &im->entries[i];
		/* the mean importance (sum / count) is what a quantizer sees, whatever the file format */
		double mean = 0, count = 0;
		float *imp = isq_mallocarray((size_t)en->n_per_row, sizeof(float));
		if (!imp)
			isq_die("out of memory");
		for (int64_t m = 0; m < en->n_mat; m++) {
			isq_imatrix_importance(en, m, imp);
			for (int64_t c = 0; c < en->n_per_row; c++)
				mean += imp[c];
			count += en->counts[m];
		}
		free(imp);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", en->name);
		cJSON_AddNumberToObject(o, "columns", (double)en->n_per_row);
		cJSON_AddNumberToObject(o, "matrices", (double)en->n_mat);
		cJSON_AddNumberToObject(o, "count", count);
		cJSON_AddNumberToObject(o, "mean_importance", mean / (double)(en->n_per_row * en->n_mat));
		cJSON_AddItemToArray(arr, o);
	}
	char *txt = cJSON_PrintUnformatted(j);
	if (!txt)
		isq_die("out of memory");
	printf("%s\n", txt);
	free(txt);
	cJSON_Delete(j);
}

int main(int argc, char **argv)
{
	struct isq_strlist pos = ISQ_STRLIST_INIT;
	isq_tool_parse(&cmd, argc, argv, &pos);
	isq_set_verbosity(1 - opt_quiet + opt_verbose);
	int compute_mode = !opt_merge && !opt_convert;
	if (opt_merge && opt_convert)
		isq_tool_usage_error(&cmd, "--merge and --convert exclude each other");
	if (!opt_merge && pos.n)
		isq_tool_usage_error(&cmd, "unexpected argument '%s'", pos.items[0]);
	if (opt_merge && !pos.n)
		isq_tool_usage_error(&cmd, "--merge needs the imatrix files to combine");
	if (!compute_mode && (opt_model || opt_file || opt_in_files.n))
		isq_tool_usage_error(&cmd, "-m, -f and --in-file go with computing, not with --%s",
				     opt_merge ? "merge" : "convert");
	if (compute_mode && !opt_model)
		isq_tool_usage_error(&cmd, "no model given (-m)");
	if (compute_mode && !opt_file)
		isq_tool_usage_error(&cmd, "no calibration text given (-f)");
	if (!opt_output)
		isq_tool_usage_error(&cmd, "no output given (-o)");
	if (opt_ctx < 1 || opt_ctx > (1 << 20))
		isq_tool_usage_error(&cmd, "-c must be between 1 and 1048576");
	if (opt_chunks < 0)
		isq_tool_usage_error(&cmd, "--chunks must not be negative");
	enum isq_imatrix_format fmt = isq_imatrix_format_from_path(opt_output);
	if (opt_format && isq_imatrix_format_parse(opt_format, &fmt))
		isq_tool_usage_error(&cmd, "unknown format '%s' (gguf, dat, cimatrix)", opt_format);
	if (!opt_format && !strcmp(opt_output, "-"))
		fmt = ISQ_IMATRIX_GGUF;
	if (opt_json && !strcmp(opt_output, "-"))
		isq_tool_usage_error(&cmd, "--json needs -o FILE (stdout carries the imatrix)");
	if (!strcmp(opt_output, "-") && !opt_force && isq_fd_is_tty(1))
		isq_tool_usage_error(&cmd, "refusing to write binary output to a terminal (use --force)");
	/* a closed pipe is reported as an error, not a silent death by SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	isq_types_init();

	struct isq_imatrix im;
	isq_imatrix_init(&im);
	struct summary sum = { 0 };
	if (opt_convert)
		read_imatrix(&im, opt_convert);
	for (int i = 0; i < pos.n; i++)
		read_imatrix(&im, pos.items[i]);
	for (int i = 0; i < opt_in_files.n; i++)
		read_imatrix(&im, opt_in_files.items[i]);
	if (compute_mode)
		compute(&im, &sum);
	write_output(&im, fmt);
	report(&im, fmt, &sum);
	isq_imatrix_release(&im);
	isq_strlist_release(&pos);
	isq_strlist_release(&opt_in_files);
	return isq_tool_exit(0);
}
