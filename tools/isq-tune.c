/* isq-tune - which quantization of a model fits this machine, from its files alone. */
#include "tool.h"
#include "tune.h"

#include <cJSON.h>

static const char *opt_model, *opt_backend, *opt_profile, *opt_type, *opt_emit;
static int64_t opt_ctx = -1, opt_device, opt_threads;
static int opt_json, opt_measure, opt_quiet, opt_verbose;

static const struct isq_opt options[] = {
	ISQ_OPT_STRING('m', "model", &opt_model, "MODEL", "HF directory, safetensors or GGUF file, or archive"),
	ISQ_OPT_STRING(0, "backend", &opt_backend, "B", "cpu (default), cuda or vulkan: whose memory to fit"),
	ISQ_OPT_INT(0, "device", &opt_device, "N", "which device of that backend (default 0)"),
	ISQ_OPT_STRING(0, "profile", &opt_profile, "P", "quality, balanced (default) or fast"),
	ISQ_OPT_INT('c', "ctx", &opt_ctx, "N", "context to reserve (default: 4096, at most the model's)"),
	ISQ_OPT_STRING('t', "type", &opt_type, "TYPE", "prefer these types (comma-separated; added to the candidates)"),
	ISQ_OPT_FLAG(0, "measure", &opt_measure, "quality measured on sampled rows, not the fixed tiers"),
	ISQ_OPT_INT(0, "threads", &opt_threads, "N", "worker threads for --measure (default: all cores)"),
	ISQ_OPT_FLAG(0, "json", &opt_json, "one JSON document on stdout instead of the table"),
	ISQ_OPT_STRING(0, "emit-config", &opt_emit, "FILE", "write the recommendation as a mistral.rs-style TOML"),
	ISQ_OPT_COUNT('q', "quiet", &opt_quiet, "print less on stderr"),
	ISQ_OPT_COUNT('v', "verbose", &opt_verbose, "print more on stderr"),
	ISQ_OPT_END(),
};

static const char *const usage[] = { "-m MODEL [--backend B] [--profile P] [--ctx N] [-t TYPE] [--json] "
				     "[--emit-config FILE]",
				     NULL };

static const struct isq_cmd cmd = {
	.name = "isq-tune",
	.usage = usage,
	.summary = "Size every quantization of a model exactly (the GGUF isq-quantize would write), check it\n"
		   "against this machine's memory and recommend one; reads only config.json and the headers.",
	.opts = options,
};

static void human_bytes(uint64_t b, char *out, size_t n)
{
	if (b >= 1000000000)
		snprintf(out, n, "%.2f GB", (double)b / 1e9);
	else if (b >= 1000000)
		snprintf(out, n, "%.2f MB", (double)b / 1e6);
	else
		snprintf(out, n, "%.1f KB", (double)b / 1e3);
}

static void context_str(const struct isq_tune_candidate *c, char *out, size_t n)
{
	if (c->max_context >= 1024)
		snprintf(out, n, "%lluk%s", (unsigned long long)(c->max_context / 1024), c->context_is_model_max ? " (max)" : "");
	else
		snprintf(out, n, "%llu%s", (unsigned long long)c->max_context, c->context_is_model_max ? " (max)" : "");
}

static const char *status_str(const struct isq_tune_candidate *c)
{
	if (c->recommended)
		return c->fit == ISQ_TUNE_HYBRID ? "Recommended (Hybrid)" : "Recommended";
	return c->fit == ISQ_TUNE_FITS ? "Fits" : c->fit == ISQ_TUNE_HYBRID ? "Hybrid" : "Too Large";
}

static const char *quality_label(enum isq_tune_quality q)
{
	static const char *const l[] = { "Baseline", "Near-lossless", "Good", "Acceptable", "Degraded" };
	return l[q];
}

/* A word the shell passes through unchanged, or the word in single quotes. */
static void shell_word(struct isq_buf *b, const char *s)
{
	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./,:=+@%") == strlen(s)) {
		isq_buf_puts(b, s);
		return;
	}
	isq_buf_putc(b, '\'');
	for (; *s; s++)
		isq_buf_puts(b, *s == '\'' ? "'\\''" : (char[]){ *s, 0 });
	isq_buf_putc(b, '\'');
}

static void recommended_command(const struct isq_tune_report *r, struct isq_buf *b)
{
	isq_buf_puts(b, "isq-run -m ");
	shell_word(b, opt_model);
	if (r->mem.backend != ISQ_TUNE_CPU)
		isq_buf_printf(b, " --backend %s", isq_tune_backend_name(r->mem.backend));
	if (r->mem.backend != ISQ_TUNE_CPU && opt_device)
		isq_buf_printf(b, " --device %lld", (long long)opt_device);
	if (r->recommended >= 0 && !r->c[r->recommended].is_none)
		isq_buf_printf(b, " --isq %s", r->c[r->recommended].label);
}

/* mistral.rs's ORD:LAYERS; the layers not named stay on the CPU. */
static void device_layers(const struct isq_tune_candidate *c, char *out, size_t n)
{
	out[0] = '\0';
	if (c->fit == ISQ_TUNE_HYBRID && c->device_layers >= 0)
		snprintf(out, n, "%lld:%d", (long long)opt_device, c->device_layers);
}

static void print_table(const struct isq_tune_report *r)
{
	const struct isq_tune_memory *mem = &r->mem;
	char a[32], b[32];
	printf("Tuning Analysis\n");
	printf("  Model:    %s\n", opt_model);
	printf("  Profile:  %s\n", isq_tune_profile_name(r->profile));
	if (mem->have_device) {
		human_bytes(mem->device_total, a, sizeof(a));
		human_bytes(mem->device_free, b, sizeof(b));
		printf("  Backend:  %s, %s (Total VRAM: %s, free: %s)\n", isq_tune_backend_name(mem->backend), mem->device_name, a,
		       mem->free_is_total ? "unknown" : b);
	} else {
		human_bytes(mem->ram_total, a, sizeof(a));
		human_bytes(mem->ram_free, b, sizeof(b));
		printf("  Backend:  cpu (RAM: %s, %s available)\n", a, b);
	}
	human_bytes(r->kv_bytes, a, sizeof(a));
	printf("  Context:  %lld tokens (KV cache %s)\n", (long long)r->ctx, a);
	for (int i = 0; i < r->n_notes; i++)
		printf("[INFO] %s\n", r->notes[i]);
	printf("\n");

	static const char *const head[] = { "Quant", "Est. Size", "VRAM %", "Context Room", "Quality", "Status" };
	int w[6];
	for (int j = 0; j < 6; j++)
		w[j] = (int)strlen(head[j]);
	char cells[32][6][40];
	size_t rows = ISQ_MIN(r->n, (size_t)32);
	for (size_t i = 0; i < rows; i++) {
		const struct isq_tune_candidate *c = &r->c[i];
		snprintf(cells[i][0], 40, "%s", c->isq_name);
		human_bytes(c->size.file_bytes, cells[i][1], 40);
		snprintf(cells[i][2], 40, "%.0f%%", 100.0 * c->vram_fraction);
		context_str(c, cells[i][3], 40);
		if (c->measured_error > 0)
			snprintf(cells[i][4], 40, "%s (%.2f%%)", quality_label(c->quality), 100.0 * c->measured_error);
		else
			snprintf(cells[i][4], 40, "%s", quality_label(c->quality));
		snprintf(cells[i][5], 40, "%s", status_str(c));
		for (int j = 0; j < 6; j++)
			w[j] = ISQ_MAX(w[j], (int)strlen(cells[i][j]));
	}
	for (int j = 0; j < 6; j++)
		printf("%s%-*s", j ? " | " : "", j == 5 ? 0 : w[j], head[j]);
	printf("\n");
	for (int j = 0; j < 6; j++) {
		printf("%s", j ? "-|-" : "");
		for (int k = 0; k < w[j]; k++)
			putchar('-');
	}
	printf("\n");
	for (size_t i = 0; i < rows; i++) {
		for (int j = 0; j < 6; j++)
			printf("%s%-*s", j ? " | " : "", j == 5 ? 0 : w[j], cells[i][j]);
		printf("\n");
	}
	printf("\n");
	for (int i = 0; i < r->n_warnings; i++)
		printf("[WARN] %s\n", r->warnings[i]);
	if (r->recommended >= 0) {
		struct isq_buf cmdl = ISQ_BUF_INIT;
		recommended_command(r, &cmdl);
		printf("Recommended command:\n  %s\n", cmdl.data);
		isq_buf_release(&cmdl);
	}
}

static void print_json(const struct isq_tune_report *r)
{
	cJSON *root = cJSON_CreateObject();
	char dl[64];
	cJSON_AddStringToObject(root, "model_id", opt_model);
	cJSON_AddStringToObject(root, "profile", isq_tune_profile_name(r->profile));
	cJSON_AddStringToObject(root, "backend", isq_tune_backend_name(r->mem.backend));
	cJSON *arr = cJSON_AddArrayToObject(root, "candidates");
	for (size_t i = 0; i < r->n; i++) {
		const struct isq_tune_candidate *c = &r->c[i];
		cJSON *o = cJSON_CreateObject();
		if (c->is_none)
			cJSON_AddNullToObject(o, "isq");
		else
			cJSON_AddStringToObject(o, "isq", c->isq);
		cJSON_AddStringToObject(o, "isq_name", c->isq_name);
		cJSON_AddStringToObject(o, "type", c->label);
		cJSON_AddNumberToObject(o, "estimated_size_bytes", (double)c->size.file_bytes);
		cJSON_AddNumberToObject(o, "vram_usage_percent", c->vram_fraction);
		cJSON_AddNumberToObject(o, "max_context_tokens", (double)c->max_context);
		cJSON_AddBoolToObject(o, "context_is_model_max", c->context_is_model_max);
		cJSON_AddStringToObject(o, "quality", isq_tune_quality_name(c->quality));
		if (c->measured_error >= 0)
			cJSON_AddNumberToObject(o, "measured_error", c->measured_error);
		cJSON_AddStringToObject(o, "fit_status", isq_tune_fit_name(c->fit));
		device_layers(c, dl, sizeof(dl));
		if (dl[0])
			cJSON_AddStringToObject(o, "device_layers_cli", dl);
		cJSON_AddBoolToObject(o, "recommended", c->recommended);
		cJSON_AddNumberToObject(o, "fallbacks", c->size.n_fallbacks);
		cJSON_AddItemToArray(arr, o);
	}
	const struct isq_tune_candidate *rec = r->recommended >= 0 ? &r->c[r->recommended] : NULL;
	if (rec && !rec->is_none)
		cJSON_AddStringToObject(root, "recommended_isq", rec->isq);
	else
		cJSON_AddNullToObject(root, "recommended_isq");
	if (rec)
		cJSON_AddStringToObject(root, "recommended_type", rec->label);
	else
		cJSON_AddNullToObject(root, "recommended_type");
	cJSON_AddNullToObject(root, "device_layers");
	if (rec)
		device_layers(rec, dl, sizeof(dl));
	if (rec && dl[0])
		cJSON_AddStringToObject(root, "device_layers_cli", dl);
	else
		cJSON_AddNullToObject(root, "device_layers_cli");
	cJSON_AddStringToObject(root, "paged_attn_mode", "off");
	struct isq_buf cmdl = ISQ_BUF_INIT;
	recommended_command(r, &cmdl);
	if (rec)
		cJSON_AddStringToObject(root, "recommended_command", cmdl.data);
	else
		cJSON_AddNullToObject(root, "recommended_command");
	isq_buf_release(&cmdl);
	cJSON_AddNumberToObject(root, "total_vram_bytes", (double)r->mem.device_total);
	cJSON_AddNumberToObject(root, "available_vram_bytes", (double)r->mem.device_free);
	cJSON_AddNumberToObject(root, "total_ram_bytes", (double)r->mem.ram_total);
	cJSON_AddNumberToObject(root, "available_ram_bytes", (double)r->mem.ram_free);
	cJSON_AddNumberToObject(root, "context_length", (double)r->ctx);
	cJSON_AddNumberToObject(root, "kv_cache_bytes", (double)r->kv_bytes);
	cJSON_AddNumberToObject(root, "activation_bytes", (double)r->act_bytes);
	cJSON *wa = cJSON_AddArrayToObject(root, "warnings");
	for (int i = 0; i < r->n_warnings; i++)
		cJSON_AddItemToArray(wa, cJSON_CreateString(r->warnings[i]));
	cJSON *na = cJSON_AddArrayToObject(root, "notes");
	for (int i = 0; i < r->n_notes; i++)
		cJSON_AddItemToArray(na, cJSON_CreateString(r->notes[i]));
	char *text = cJSON_PrintUnformatted(root);
	if (text)
		puts(text);
	free(text);
	cJSON_Delete(root);
}

static void toml_string(struct isq_buf *b, const char *s)
{
	isq_buf_putc(b, '"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			isq_buf_printf(b, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			isq_buf_printf(b, "\\u%04x", ch);
		else
			isq_buf_putc(b, (char)ch);
	}
	isq_buf_putc(b, '"');
}

/* mistral.rs's `from-config` shape (notes §3.9), which isq-run --config reads too. */
static int emit_config(const struct isq_tune_report *r, const char *path, struct isq_errbuf *e)
{
	struct isq_buf b = ISQ_BUF_INIT;
	const struct isq_tune_candidate *rec = &r->c[r->recommended];
	char dl[64];
	isq_buf_puts(&b, "command = \"serve\"\n\n[server]\nhost = \"0.0.0.0\"\nport = 1234\n\n[runtime]\nmax_seqs = 32\n\n");
	isq_buf_puts(&b, "[[models]]\nkind = \"text\"\nmodel_id = ");
	toml_string(&b, opt_model);
	isq_buf_puts(&b, "\ndtype = \"auto\"\n");
	if (!rec->is_none) {
		isq_buf_puts(&b, "\n[models.quantization]\nin_situ_quant = ");
		toml_string(&b, rec->isq);
		isq_buf_putc(&b, '\n');
	}
	device_layers(rec, dl, sizeof(dl));
	if (dl[0]) {
		isq_buf_puts(&b, "\n[models.device]\ndevice_layers = [");
		toml_string(&b, dl);
		isq_buf_puts(&b, "]\n");
	}
	struct isq_out out;
	int rc = isq_out_open(&out, path);
	if (!rc)
		rc = isq_out_write(&out, b.data, b.len);
	if (!rc)
		rc = isq_out_commit(&out);
	else
		isq_out_abort(&out);
	if (rc)
		isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&out.err));
	isq_buf_release(&b);
	return rc;
}

int main(int argc, char **argv)
{
	struct isq_strlist pos = ISQ_STRLIST_INIT;
	isq_tool_parse(&cmd, argc, argv, &pos);
	isq_set_verbosity(1 - opt_quiet + opt_verbose);
	if (pos.n)
		isq_tool_usage_error(&cmd, "unexpected argument '%s'", pos.items[0]);
	if (!opt_model)
		isq_tool_usage_error(&cmd, "no model given (-m)");
	enum isq_tune_backend backend = ISQ_TUNE_CPU;
	if (opt_backend && isq_tune_backend_parse(opt_backend, &backend))
		isq_tool_usage_error(&cmd, "unknown backend '%s' (cpu, cuda, vulkan)", opt_backend);
	struct isq_tune_opts o = { .profile = ISQ_TUNE_BALANCED };
	if (opt_profile && isq_tune_profile_parse(opt_profile, &o.profile))
		isq_tool_usage_error(&cmd, "unknown profile '%s' (quality, balanced, fast)", opt_profile);
	if (opt_ctx != -1 && (opt_ctx <= 0 || opt_ctx > ((int64_t)1 << 30)))
		isq_tool_usage_error(&cmd, "--ctx %lld: must be between 1 and 1073741824", (long long)opt_ctx);
	o.ctx = opt_ctx > 0 ? opt_ctx : 0;
	if (opt_device < 0 || opt_device > 1024)
		isq_tool_usage_error(&cmd, "--device %lld: not a device number", (long long)opt_device);
	o.target = backend == ISQ_TUNE_CUDA ? ISQ_TARGET_CUDA : backend == ISQ_TUNE_VULKAN ? ISQ_TARGET_VULKAN
											     : ISQ_TARGET_CPU;
	char *types_copy = opt_type ? isq_strdup(opt_type) : NULL;
	const char *types[16];
	if (types_copy) {
		for (char *s = strtok(types_copy, ","); s; s = strtok(NULL, ",")) {
			if (o.n_types == (int)ISQ_ARRAY_SIZE(types))
				isq_tool_usage_error(&cmd, "-t: more than %d types", (int)ISQ_ARRAY_SIZE(types));
			if (!strcmp(s, "auto"))
				isq_tool_usage_error(&cmd, "-t auto: isq-tune is what resolves 'auto'; give types to prefer");
			types[o.n_types++] = s;
		}
		if (!o.n_types)
			isq_tool_usage_error(&cmd, "-t: no type given");
		o.types = types;
	}

	/* an archive is read front to back once: its headers are all isq-tune needs, but --measure samples rows */
	struct isq_model m;
	int archive = isq_model_is_archive(opt_model) && !isq_is_dir(opt_model);
	if (archive && opt_measure)
		isq_die("%s: --measure needs random access to the weights; unpack the archive first", opt_model);
	if (archive ? isq_model_open_stream(&m, opt_model) : isq_model_open(&m, opt_model))
		isq_die("%s", isq_errbuf_msg(&m.err));
	struct isq_errbuf e = { 0 };
	struct isq_tune_memory mem;
	if (isq_tune_memory_probe(backend, (int)opt_device, &mem, &e))
		isq_die("%s", isq_errbuf_msg(&e));
	if (mem.note[0])
		isq_info("%s; sizing for CPU memory", mem.note);
	struct isq_tune_report r;
	int rc = isq_tune_run(&m, &o, &mem, &r, &e);
	/* only -t can make the run itself invalid: a misspelt type, or one GGUF cannot hold */
	if (rc == ISQ_EINVAL && o.n_types)
		isq_tool_usage_error(&cmd, "%s", e.msg);
	if (rc)
		isq_die("%s: %s", opt_model, isq_errbuf_msg(&e));
	/* 32 rows of every tensor, tensors shared out over the threads: a 1B model takes about a second */
	if (opt_measure) {
		struct isq_pool *pool = isq_pool_new(isq_tool_threads(opt_threads));
		if (!pool)
			isq_die("out of memory");
		if (isq_tune_measure(&m, &r, 32, pool, &e))
			isq_die("%s: %s", opt_model, isq_errbuf_msg(&e));
		isq_pool_free(pool);
	}

	if (opt_emit && r.recommended >= 0) {
		if (emit_config(&r, opt_emit, &e))
			isq_die("%s", isq_errbuf_msg(&e));
		isq_info("wrote config to %s", opt_emit);
	}
	if (opt_json)
		print_json(&r);
	else
		print_table(&r);
	int status = 0;
	if (r.recommended < 0) {
		isq_warn("%s: %s", opt_model, r.warnings[0]);
		status = 1;
	}
	isq_tune_report_release(&r);
	isq_model_release(&m);
	isq_strlist_release(&pos);
	free(types_copy);
	return isq_tool_exit(status);
}
