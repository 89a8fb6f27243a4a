/* isq-quantize - stream a model through the quantizers into GGUF. */
#include "convert.h"
#include "tool.h"
#include "uqff.h"
#include "imatrix-collect.h"
#include "topology.h"
#include "tune.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <strings.h>
#include <unistd.h>

static const char *opt_model, *opt_type, *opt_output, *opt_format, *opt_imatrix, *opt_calib, *opt_topology;
static const char *opt_org, *opt_out_type, *opt_tok_type, *opt_target;
static struct isq_strlist opt_tensor_types = ISQ_STRLIST_INIT;
static int opt_pure, opt_json, opt_force, opt_quiet, opt_verbose;
static int64_t opt_threads;
static char auto_type[32]; /* -t auto's choice, once made */
static struct isq_topology *topology; /* --topology, parsed */
static enum isq_organization organization;

static const struct isq_opt options[] = {
	ISQ_OPT_STRING('m', "model", &opt_model, "MODEL", "HF directory, safetensors or GGUF file, or archive"),
	ISQ_OPT_STRING('t', "type", &opt_type, "TYPE", "type, shorthand 2-8, or mixture (q4_k_m ...)"),
	ISQ_OPT_STRING('o', "output", &opt_output, "PATH", "output file ('-' = stdout)"),
	ISQ_OPT_STRING(0, "format", &opt_format, "F", "gguf (default) or uqff"),
	ISQ_OPT_STRING(0, "imatrix", &opt_imatrix, "FILE", "importance matrix (gguf, dat, cimatrix; '-' = stdin)"),
	ISQ_OPT_STRING(0, "calibration-file", &opt_calib, "FILE", "compute an imatrix from this text first"),
	ISQ_OPT_STRING(0, "topology", &opt_topology, "FILE", "mistral.rs topology YAML (per-layer types)"),
	ISQ_OPT_STRING(0, "organization", &opt_org, "ORG", "default, or moqe (experts only)"),
	ISQ_OPT_LIST(0, "tensor-type", &opt_tensor_types, "RE=TYPE", "type for tensors matching RE (repeatable)"),
	ISQ_OPT_STRING(0, "output-tensor-type", &opt_out_type, "TYPE", "type of output.weight (lm_head)"),
	ISQ_OPT_STRING(0, "token-embedding-type", &opt_tok_type, "TYPE", "type of token_embd.weight"),
	ISQ_OPT_FLAG(0, "pure", &opt_pure, "same type everywhere: no promotion, no mixture rules"),
	ISQ_OPT_STRING(0, "target", &opt_target, "T", "cpu, cuda, vulkan or metal (resolves shorthands)"),
	ISQ_OPT_INT(0, "threads", &opt_threads, "N", "worker threads (default: all cores)"),
	ISQ_OPT_FLAG(0, "json", &opt_json, "summary as JSON on stdout (needs -o FILE)"),
	ISQ_OPT_FLAG(0, "force", &opt_force, "write binary output to a terminal"),
	ISQ_OPT_COUNT('q', "quiet", &opt_quiet, "print less on stderr"),
	ISQ_OPT_COUNT('v', "verbose", &opt_verbose, "print more on stderr"),
	ISQ_OPT_END(),
};

static const char *const usage[] = { "-m MODEL -t TYPE -o OUT [options]", NULL };

static const struct isq_cmd cmd = {
	.name = "isq-quantize",
	.usage = usage,
	.summary = "Quantize a model (HF directory or its .tar/.tar.zst/.zip, safetensors or F32/F16/BF16 GGUF)\n"
		   "into a GGUF file that llama.cpp loads, streaming: the model is never held in memory.",
	.opts = options,
};

static int gguf_sink(void *ctx, const void *data, size_t n)
{
	return isq_gguf_writer_write(ctx, data, n);
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

/*
 * An archive is read once, front to back, so tensors are converted in the
 * order their data arrives, and each lands at its final offset in the GGUF
 * (the layout is known from the plan before any data): pwrite into the
 * output's temporary file, or, when the output is not a regular file we
 * create (stdout, a device), into an unlinked spool file in $TMPDIR that is
 * then copied out.  Bytes are the same as from the unpacked directory.
 */
struct place_sink {
	int fd;
	uint64_t off;
	const char *path;
	int err; /* errno of the failed write */
};

static int place_write(struct place_sink *ps, const void *data, size_t n)
{
	const uint8_t *p = data;
	while (n) {
		ssize_t k = pwrite(ps->fd, p, n, (off_t)ps->off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			ps->err = k < 0 ? errno : ENOSPC;
			return ps->err == ENOSPC || ps->err == EDQUOT ? ISQ_ENOSPC : ISQ_EIO;
		}
		p += k;
		n -= (size_t)k;
		ps->off += (uint64_t)k;
	}
	return 0;
}

static int place_sink_fn(void *ctx, const void *data, size_t n)
{
	return place_write(ctx, data, n);
}

static void place_die(const struct place_sink *ps)
{
	if (ps->err == ENOSPC || ps->err == EDQUOT)
		isq_die("%s: no space left on device", ps->path);
	isq_die("%s: %s", ps->path, strerror(ps->err));
}

struct work_item {
	size_t entry, src;
	int part;
};

static int work_cmp(const void *a, const void *b)
{
	const struct work_item *x = a, *y = b;
	return x->src < y->src ? -1 : x->src > y->src;
}

static uint64_t convert_streamed(struct isq_converter *conv, const struct isq_plan *plan, struct isq_gguf_writer *w,
				 struct isq_out *out, struct isq_convert_stats *stats)
{
	struct isq_buf head = ISQ_BUF_INIT;
	struct isq_out mem;
	isq_out_open_memory(&mem, &head);
	if (isq_gguf_writer_begin(w, &mem))
		isq_die("%s: %s", opt_output, isq_gguf_writer_errmsg(w));
	uint64_t total = isq_gguf_writer_size(w), at = head.len;
	uint64_t *off = calloc(plan->n + 1, sizeof(*off));
	size_t n_items = 0;
	for (size_t i = 0; i < plan->n; i++)
		n_items += (size_t)plan->entries[i].n_src;
	struct work_item *items = calloc(n_items + 1, sizeof(*items));
	if (!off || !items)
		isq_die("out of memory");
	/* GGUF's default alignment: a GGUF input (the one kind that may set another) is never streamed */
	for (size_t i = 0, k = 0; i < plan->n; i++) {
		const struct isq_plan_entry *en = &plan->entries[i];
		off[i] = at;
		at += (en->nbytes + 31) / 32 * 32;
		for (int e = 0; e < en->n_src; e++)
			items[k++] = (struct work_item){ i, en->n_src > 1 ? en->srcs[e] : en->src, e };
	}
	if (at != total)
		isq_die("%s: internal error: GGUF layout of %llu bytes, the writer says %llu", opt_output,
			(unsigned long long)at, (unsigned long long)total);
	qsort(items, n_items, sizeof(*items), work_cmp);
	for (size_t k = 1; k < n_items; k++)
		if (items[k].src == items[k - 1].src)
			isq_die("%s: tensor '%s' is needed twice, and an archive is read once; unpack it first", opt_model,
				conv->model->tensors[items[k].src].name);

	struct place_sink ps = { .fd = out->fd, .path = out->path };
	int spool = out->kind != ISQ_OUT_FILE || !out->tmp;
	if (spool) {
		const char *dir = getenv("TMPDIR");
		struct isq_buf tmpl = ISQ_BUF_INIT;
		isq_buf_printf(&tmpl, "%s/isq-quantize.XXXXXX", dir && dir[0] ? dir : "/tmp");
		ps.fd = tmpl.data ? mkstemp(tmpl.data) : -1;
		if (ps.fd < 0)
			isq_die("%s: cannot create a spool file: %s", tmpl.data ? tmpl.data : "TMPDIR", strerror(errno));
		unlink(tmpl.data); /* nothing is left behind, however the run ends */
		isq_buf_release(&tmpl);
	}
	if (place_write(&ps, head.data, head.len))
		place_die(&ps);
	if (ftruncate(ps.fd, (off_t)total)) {
		ps.err = errno;
		place_die(&ps);
	}
	for (size_t k = 0; k < n_items; k++) {
		const struct isq_plan_entry *en = &plan->entries[items[k].entry];
		ps.off = off[items[k].entry] + (uint64_t)items[k].part * (en->nbytes / (uint64_t)en->n_src);
		if (isq_convert_part(conv, en, items[k].part, place_sink_fn, &ps, &stats[items[k].entry])) {
			isq_progress_end(conv->progress);
			if (ps.err)
				place_die(&ps);
			isq_die("%s: %s", opt_model, isq_errbuf_msg(&conv->err));
		}
	}
	if (spool) {
		/* out of the spool in large sequential reads; isq_out reports a closed pipe or a full disk */
		size_t cap = 8u << 20;
		uint8_t *buf = malloc(cap);
		if (!buf)
			isq_die("out of memory");
		for (uint64_t pos = 0; pos < total;) {
			ssize_t k = pread(ps.fd, buf, (size_t)ISQ_MIN((uint64_t)cap, total - pos), (off_t)pos);
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				isq_die("spool file: %s", k < 0 ? strerror(errno) : "cut short");
			if (isq_out_write(out, buf, (size_t)k))
				isq_die("%s", isq_errbuf_msg(&out->err));
			pos += (uint64_t)k;
		}
		free(buf);
		close(ps.fd);
	}
	free(items);
	free(off);
	isq_buf_release(&head);
	return total;
}

/* -t auto: isq-tune's balanced recommendation for the target, reported on stderr. */
static void resolve_auto(const struct isq_model *m, enum isq_target target)
{
	if (strcasecmp(opt_type, "auto"))
		return;
	struct isq_errbuf e = { 0 };
	int rc = isq_tune_recommend(m, target, auto_type, sizeof(auto_type), &e);
	if (rc == ISQ_ENOTFOUND)
		isq_die("%s: -t auto: no type fits this machine's memory (see isq-tune -m %s)", opt_model, opt_model);
	if (rc)
		isq_die("%s: -t auto: %s", opt_model, isq_errbuf_msg(&e));
	isq_warn("-t auto: %s (isq-tune's balanced choice for this machine)", auto_type);
	opt_type = auto_type;
}

/* The importance matrix: read from --imatrix, or computed from --calibration-file's text first. */
static void load_imatrix(struct isq_imatrix *im)
{
	if (opt_imatrix && isq_imatrix_read(im, opt_imatrix))
		isq_die("%s", isq_errbuf_msg(&im->err));
	if (opt_calib) {
		struct isq_errbuf e = { 0 };
		struct isq_imatrix_params p = { .chunk_size = 512 };
		struct isq_imatrix_text_info info = { 0 };
		if (isq_imatrix_from_text(im, opt_model, opt_calib, isq_tool_threads(opt_threads), &p, &info, &e))
			isq_die("%s", isq_errbuf_msg(&e));
		isq_info("imatrix from %s: %lld chunks of 512 tokens", opt_calib, (long long)info.n_chunks);
	}
}

/* --format uqff: the same plan, written as mistral.rs's UQFF directory by formats/uqff.c. */
static int quantize_uqff(enum isq_target target)
{
	signal(SIGPIPE, SIG_IGN);
	isq_types_init();
	struct isq_model m;
	if (isq_model_open(&m, opt_model))
		isq_die("%s", isq_errbuf_msg(&m.err));
	if (m.format == ISQ_MODEL_SAFETENSORS && (isq_is_dir(opt_model) || m.config_rc != ISQ_ENOTFOUND) && !m.have_config)
		isq_die("%s: %s", opt_model, m.config_err);
	struct isq_imatrix im;
	isq_imatrix_init(&im);
	load_imatrix(&im);
	struct isq_errbuf e = { 0 };
	resolve_auto(&m, target);
	struct isq_plan plans[2];
	const struct isq_plan *pp[2] = { &plans[0], &plans[1] };
	int np = 0;
	struct isq_plan_opts po = { .type = opt_type, .pure = opt_pure, .token_embd_type = opt_tok_type,
				    .output_type = opt_out_type, .tensor_types = &opt_tensor_types,
				    .format = ISQ_FORMAT_UQFF, .target = target, .topology = topology,
				    .organization = organization };
	int rc = isq_uqff_plans_build(&m, &po, plans, &np, &e);
	if (rc == ISQ_EINVAL && strstr(e.msg, "unknown type"))
		isq_tool_usage_error(&cmd, "%s", e.msg);
	if (rc)
		isq_die("%s: %s", opt_model, isq_errbuf_msg(&e));
	for (int k = 0; k < np; k++)
		for (size_t i = 0; i < plans[k].n; i++)
			if (plans[k].entries[i].fallback[0])
				isq_info("tensor '%s': %s -> %s: %s", plans[k].entries[i].name,
					 isq_type_name(plans[k].entries[i].requested), isq_type_name(plans[k].entries[i].type),
					 plans[k].entries[i].fallback);
	struct isq_pool *pool = isq_uqff_pool_new(isq_tool_threads(opt_threads));
	if (!pool)
		isq_die("out of memory");
	uint64_t total = 0;
	for (int k = 0; k < np; k++)
		for (size_t i = 0; i < plans[k].n; i++)
			total += plans[k].entries[i].quantize ? m.tensors[plans[k].entries[i].src].nbytes : 0;
	struct isq_progress pr;
	isq_progress_begin(&pr, "quantize", total, isq_get_verbosity() > 0);
	char name[256];
	isq_convert_model_name(opt_model, name, sizeof(name));
	struct isq_uqff_write_opts wo = { .model = &m, .plans = pp, .n_plans = np, .output = opt_output, .pool = pool,
					  .imatrix = (opt_imatrix || opt_calib) ? &im : NULL, .progress = &pr, .base_model = name };
	struct isq_uqff_write_result res;
	double t0 = isq_now();
	rc = isq_uqff_write(&wo, &res, &e);
	isq_progress_end(&pr);
	if (rc)
		isq_die("%s", isq_errbuf_msg(&e));
	double secs = isq_now() - t0;
	isq_info("%s: %zu layers, %d fallbacks, %.2f MiB, %.2f s", res.dir, res.n_layers, res.n_fallbacks,
		 (double)res.bytes / 1048576.0, secs);
	if (opt_json) {
		cJSON *root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "model", opt_model);
		cJSON_AddStringToObject(root, "output", res.dir);
		cJSON_AddStringToObject(root, "format", "uqff");
		cJSON_AddStringToObject(root, "type", plans[0].req.label);
		cJSON_AddNumberToObject(root, "bytes", (double)res.bytes);
		cJSON_AddNumberToObject(root, "layers", (double)res.n_layers);
		cJSON_AddNumberToObject(root, "fallbacks", res.n_fallbacks);
		cJSON_AddNumberToObject(root, "seconds", secs);
		char *text = cJSON_PrintUnformatted(root);
		puts(text);
		free(text);
		cJSON_Delete(root);
	}
	isq_pool_free(pool);
	for (int k = 0; k < np; k++)
		isq_plan_release(&plans[k]);
	isq_imatrix_release(&im);
	isq_model_release(&m);
	isq_strlist_release(&opt_tensor_types);
	isq_topology_free(topology);
	return isq_tool_exit(0);
}

int main(int argc, char **argv)
{
	struct isq_strlist pos = ISQ_STRLIST_INIT;
	isq_tool_parse(&cmd, argc, argv, &pos);
	/* a signal also removes the UQFF staging directory, then the temporaries (io.c) */
	isq_uqff_install_signal_handlers();
	isq_set_verbosity(1 - opt_quiet + opt_verbose);
	if (pos.n)
		isq_tool_usage_error(&cmd, "unexpected argument '%s'", pos.items[0]);
	if (!opt_model)
		isq_tool_usage_error(&cmd, "no model given (-m)");
	if (!opt_type)
		isq_tool_usage_error(&cmd, "no type given (-t)");
	if (!opt_output)
		isq_tool_usage_error(&cmd, "no output given (-o)");
	enum isq_target target = ISQ_TARGET_CPU;
	if (opt_target && isq_target_parse(opt_target, &target))
		isq_tool_usage_error(&cmd, "unknown target '%s' (cpu, cuda, vulkan, metal)", opt_target);
	enum isq_out_format format = ISQ_FORMAT_GGUF;
	if (opt_format) {
		if (!strcmp(opt_format, "uqff"))
			format = ISQ_FORMAT_UQFF;
		else if (strcmp(opt_format, "gguf"))
			isq_tool_usage_error(&cmd, "unknown format '%s' (gguf, uqff)", opt_format);
	} else if (ends_with(opt_output, ".uqff") || ends_with(opt_output, "/") || isq_is_dir(opt_output)) {
		format = ISQ_FORMAT_UQFF;
	}
	if (opt_imatrix && opt_calib)
		isq_tool_usage_error(&cmd, "--imatrix and --calibration-file exclude each other");
	if (opt_json && !strcmp(opt_output, "-"))
		isq_tool_usage_error(&cmd, "--json needs -o FILE (stdout carries the GGUF)");
	if (!strcmp(opt_output, "-") && !opt_force && isq_fd_is_tty(1))
		isq_tool_usage_error(&cmd, "refusing to write binary output to a terminal (use --force)");
	if (format == ISQ_FORMAT_UQFF && !strcmp(opt_output, "-"))
		isq_tool_usage_error(&cmd, "a UQFF output is a directory, not standard output");
	if (opt_org) {
		if (!strcmp(opt_org, "moqe"))
			organization = ISQ_ORG_MOQE;
		else if (strcmp(opt_org, "default"))
			isq_tool_usage_error(&cmd, "unknown organization '%s' (default, moqe)", opt_org);
	}
	if (opt_topology) {
		/* a bad topology is bad input (exit 1), with the file's line: "topo.yml:7: unknown key 'isqq'" */
		struct isq_errbuf te = { 0 };
		isq_types_init();
		if (isq_topology_load(&topology, opt_topology, target, &te))
			isq_die("%s", isq_errbuf_msg(&te));
	}
	if (format == ISQ_FORMAT_UQFF) {
		isq_strlist_release(&pos);
		return quantize_uqff(target);
	}

	/* a closed pipe is reported as an error, not a silent death by SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	isq_types_init();
	struct isq_model m;
	if (isq_model_open_stream(&m, opt_model))
		isq_die("%s", isq_errbuf_msg(&m.err));
	/* a model directory needs its config.json; a lone safetensors file may go without */
	if (m.format == ISQ_MODEL_SAFETENSORS && (isq_is_dir(opt_model) || m.streamed || m.config_rc != ISQ_ENOTFOUND) &&
	    !m.have_config)
		isq_die("%s: %s", opt_model, m.config_err);
	/* the tensors are still worth converting; llama.cpp will want a vocabulary from elsewhere */
	if (m.have_config && m.tokenizer_rc && m.tokenizer_rc != ISQ_ENOTFOUND)
		isq_warn("warning: %s: tokenizer.json not converted: %s", opt_model, m.tokenizer_err);
	for (size_t i = 0; i < m.n_tensors; i++) {
		int t = m.tensors[i].type;
		if (t != ISQ_TYPE_F32 && t != ISQ_TYPE_F16 && t != ISQ_TYPE_BF16 && t != ISQ_TYPE_F64 && t != ISQ_TYPE_NONE &&
		    m.tensors[i].n_dims >= 2)
			isq_die("%s: tensor '%s' is already quantized (%s); isq-quantize needs F32, F16 or BF16 weights",
				opt_model, m.tensors[i].name, m.tensors[i].type_name);
	}

	struct isq_imatrix im;
	isq_imatrix_init(&im);
	load_imatrix(&im);

	struct isq_errbuf e = { 0 };
	resolve_auto(&m, target);
	struct isq_plan plan;
	struct isq_plan_opts po = { .type = opt_type, .pure = opt_pure, .token_embd_type = opt_tok_type,
				    .output_type = opt_out_type, .tensor_types = &opt_tensor_types, .format = format,
				    .target = target, .topology = topology, .organization = organization };
	int rc = isq_plan_build(&m, &po, &plan, &e);
	if (rc == ISQ_EINVAL && strstr(e.msg, "unknown type"))
		isq_tool_usage_error(&cmd, "%s", e.msg);
	if (rc)
		isq_die("%s: %s", opt_model, isq_errbuf_msg(&e));

	if (opt_imatrix || opt_calib) {
		size_t used = 0;
		for (size_t i = 0; i < plan.n; i++)
			if (plan.entries[i].quantize && (isq_imatrix_find(&im, plan.entries[i].name) ||
							 isq_imatrix_find(&im, plan.entries[i].src_name)))
				used++;
		if (!used)
			isq_die("%s: the imatrix matches no tensor of %s (an imatrix for another model?)", opt_imatrix ? opt_imatrix : opt_calib, opt_model);
	}

	for (size_t i = 0; i < plan.n; i++) {
		const struct isq_plan_entry *en = &plan.entries[i];
		if (en->fallback[0])
			isq_info("tensor '%s': %s -> %s: %s", en->name, isq_type_name(en->requested), isq_type_name(en->type),
				 en->fallback);
	}
	if (plan.req.type == ISQ_TYPE_Q8_1 || plan.req.type == ISQ_TYPE_Q8_K)
		isq_warn("warning: %s is an activation type in llama.cpp; llama.cpp will not run GGUF weights stored in it",
			 isq_type_name(plan.req.type));

	struct isq_gguf_writer *w = isq_gguf_writer_new();
	if (!w)
		isq_die("out of memory");
	struct isq_gguf_meta meta = { .imatrix = (opt_imatrix || opt_calib) ? &im : NULL,
				      .imatrix_name = opt_imatrix ? opt_imatrix : opt_calib, .auto_type = auto_type };
	rc = isq_convert_gguf_metadata(w, &m, &plan, &meta, &e);
	for (int i = 0; i < meta.n_warnings; i++)
		isq_warn("warning: %s", meta.warnings[i]);
	if (rc)
		isq_die("%s: %s", opt_output, isq_errbuf_msg(&e));
	for (size_t i = 0; i < plan.n; i++) {
		const struct isq_plan_entry *en = &plan.entries[i];
		if (isq_gguf_writer_add_tensor(w, en->name, (uint32_t)en->type, en->n_dims, en->ne))
			isq_die("%s: %s", opt_output, isq_gguf_writer_errmsg(w));
	}

	struct isq_out out;
	if (isq_out_open(&out, opt_output))
		isq_die("%s", isq_errbuf_msg(&out.err));
	if (!m.streamed && isq_gguf_writer_begin(w, &out))
		isq_die("%s", out.err.code ? isq_errbuf_msg(&out.err) : isq_gguf_writer_errmsg(w));

	struct isq_pool *pool = isq_uqff_pool_new(isq_tool_threads(opt_threads));
	if (!pool)
		isq_die("out of memory");
	uint64_t src_total = 0;
	for (size_t i = 0; i < plan.n; i++)
		src_total += m.tensors[plan.entries[i].src].nbytes * (uint64_t)plan.entries[i].n_src;
	struct isq_progress pr;
	isq_progress_begin(&pr, "quantize", src_total, isq_get_verbosity() > 0);
	struct isq_converter conv = { .model = &m, .pool = pool, .imatrix = (opt_imatrix || opt_calib) ? &im : NULL,
				      .measure_error = opt_json, .progress = &pr, .stream = m.streamed ? &m : NULL };
	struct isq_convert_stats *stats = calloc(plan.n ? plan.n : 1, sizeof(*stats));
	if (!stats)
		isq_die("out of memory");
	double t0 = isq_now();
	uint64_t written;
	if (m.streamed) {
		written = convert_streamed(&conv, &plan, w, &out, stats);
	} else {
		for (size_t i = 0; i < plan.n; i++)
			if (isq_convert_entry(&conv, &plan.entries[i], gguf_sink, w, &stats[i])) {
				isq_progress_end(&pr);
				if (out.err.code) /* the message names the output already */
					isq_die("%s", isq_errbuf_msg(&out.err));
				isq_die("%s: %s", opt_model, isq_errbuf_msg(&conv.err));
			}
		if (isq_gguf_writer_finish(w))
			isq_die("%s", out.err.code ? isq_errbuf_msg(&out.err) : isq_gguf_writer_errmsg(w));
		written = out.written;
	}
	if (isq_out_commit(&out))
		isq_die("%s", isq_errbuf_msg(&out.err));
	double secs = isq_now() - t0;
	isq_progress_end(&pr);
	isq_info("%s: %zu tensors, %d fallbacks, %.2f MiB, %.2f bpw, %.2f s (%.1f MB/s of input)", opt_output, plan.n,
		 plan.n_fallbacks, (double)written / 1048576.0,
		 plan.total_params ? 8.0 * (double)plan.total_bytes / (double)plan.total_params : 0.0, secs,
		 secs > 0 ? (double)src_total / 1e6 / secs : 0.0);

	if (opt_json) {
		cJSON *root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "model", opt_model);
		cJSON_AddStringToObject(root, "output", opt_output);
		cJSON_AddStringToObject(root, "format", "gguf");
		cJSON_AddStringToObject(root, "type", plan.req.label);
		cJSON_AddNumberToObject(root, "bytes", (double)written);
		cJSON_AddNumberToObject(root, "parameters", (double)plan.total_params);
		cJSON_AddNumberToObject(root, "bits_per_weight",
					plan.total_params ? 8.0 * (double)plan.total_bytes / (double)plan.total_params : 0.0);
		cJSON_AddNumberToObject(root, "fallbacks", plan.n_fallbacks);
		cJSON_AddNumberToObject(root, "seconds", secs);
		if (opt_imatrix)
			cJSON_AddStringToObject(root, "imatrix", opt_imatrix);
		cJSON *arr = cJSON_AddArrayToObject(root, "tensors");
		for (size_t i = 0; i < plan.n; i++) {
			const struct isq_plan_entry *en = &plan.entries[i];
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "name", en->name);
			cJSON_AddStringToObject(o, "source", en->src_name);
			cJSON_AddStringToObject(o, "source_type", isq_type_name(en->src_type));
			cJSON_AddStringToObject(o, "type", isq_type_name(en->type));
			cJSON *shape = cJSON_AddArrayToObject(o, "shape");
			for (int d = en->n_dims - 1; d >= 0; d--)
				cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)en->ne[d]));
			cJSON_AddNumberToObject(o, "bytes", (double)en->nbytes);
			if (en->fallback[0]) {
				cJSON_AddStringToObject(o, "requested", isq_type_name(en->requested));
				cJSON_AddStringToObject(o, "fallback", en->fallback);
			} else {
				cJSON_AddNullToObject(o, "fallback");
			}
			/* relative weighted RMSE: sqrt(sum w (x-q)^2 / sum w x^2) */
			if (stats[i].ref_sum > 0)
				cJSON_AddNumberToObject(o, "weighted_error", sqrt(stats[i].err_sum / stats[i].ref_sum));
			else
				cJSON_AddNumberToObject(o, "weighted_error", 0);
			cJSON_AddItemToArray(arr, o);
		}
		char *text = cJSON_PrintUnformatted(root);
		puts(text);
		free(text);
		cJSON_Delete(root);
	}

	free(stats);
	isq_pool_free(pool);
	isq_gguf_writer_free(w);
	isq_plan_release(&plan);
	isq_imatrix_release(&im);
	isq_model_release(&m);
	isq_strlist_release(&pos);
	isq_strlist_release(&opt_tensor_types);
	isq_topology_free(topology);
	return isq_tool_exit(0);
}
