/*
 * convert-gguf.c - a whole model to one GGUF file in one call, for tools
 * that quantize on the way to something else (isq-bench --sweep), and the
 * one copy of the metadata rules, which isq-quantize (streamed or not) and
 * isq-tune's size prediction use too.
 */
#include "convert.h"
#include "hparams.h"
#include "tokenizer.h"

#include <libgen.h>

static int gguf_sink(void *ctx, const void *data, size_t n)
{
	return isq_gguf_writer_write(ctx, data, n);
}

void isq_convert_model_name(const char *path, char *out, size_t n)
{
	char *copy = isq_strdup(path ? path : "model");
	if (!copy) {
		snprintf(out, n, "model");
		return;
	}
	size_t l = strlen(copy);
	while (l > 1 && copy[l - 1] == '/')
		copy[--l] = '\0';
	snprintf(out, n, "%s", basename(copy));
	free(copy);
	/* an archive of a directory names the model as the directory would */
	static const char *const ext[] = { ".safetensors", ".gguf", ".tar", ".tar.zst", ".tzst", ".tar.gz",
					   ".tgz", ".tar.xz", ".zip" };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(ext); i++) {
		size_t a = strlen(out), b = strlen(ext[i]);
		if (a > b && !strcmp(out + a - b, ext[i])) {
			out[a - b] = '\0';
			break;
		}
	}
}

/* every fallback is recorded: "name: requested -> stored (reason)" */
static int fallbacks_kv(struct isq_gguf_writer *w, const struct isq_plan *p)
{
	const char **list = calloc((size_t)p->n_fallbacks, sizeof(*list));
	int k = 0, rc = list ? 0 : ISQ_ENOMEM;
	for (size_t i = 0; i < p->n && k < p->n_fallbacks && !rc; i++) {
		const struct isq_plan_entry *en = &p->entries[i];
		if (!en->fallback[0])
			continue;
		struct isq_buf b = ISQ_BUF_INIT;
		if (isq_buf_printf(&b, "%s: %s -> %s (%s)", en->name, isq_type_name(en->requested),
				   isq_type_name(en->type), en->fallback))
			rc = ISQ_ENOMEM;
		else
			list[k++] = isq_buf_detach(&b, NULL);
	}
	if (!rc)
		rc = isq_gguf_set_arr_str(w, "quantize.fallbacks", list, (uint64_t)k);
	for (int i = 0; i < k; i++)
		free((void *)list[i]);
	free(list);
	return rc;
}

static void meta_warn(struct isq_gguf_meta *meta, const char *fmt, ...) ISQ_PRINTF(2, 3);

static void meta_warn(struct isq_gguf_meta *meta, const char *fmt, ...)
{
	if (!meta || meta->n_warnings >= (int)ISQ_ARRAY_SIZE(meta->warnings))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(meta->warnings[meta->n_warnings++], sizeof(meta->warnings[0]), fmt, ap);
	va_end(ap);
}

int isq_convert_gguf_metadata(struct isq_gguf_writer *w, const struct isq_model *m, const struct isq_plan *p,
			      struct isq_gguf_meta *meta, struct isq_errbuf *e)
{
	int rc = 0;
	if (meta)
		meta->n_warnings = 0;
	if (m->gguf) {
		/* a GGUF input keeps its metadata, as llama-quantize does */
		for (size_t i = 0; i < m->gguf->n_kv && !rc; i++) {
			const char *k = m->gguf->kv[i].key;
			if (strncmp(k, "split.", 6) && strcmp(k, "general.alignment"))
				rc = isq_gguf_set_kv(w, &m->gguf->kv[i]);
		}
	} else if (m->have_config) {
		char name[256];
		isq_convert_model_name(m->path, name, sizeof(name));
		rc = isq_hparams_to_gguf(&m->hp, name, w);
		if (!rc && m->tokenizer) {
			/* padded to the embedding's rows, as llama.cpp's converter pads to config vocab_size */
			size_t nv = isq_tokenizer_n_vocab(m->tokenizer), want = (size_t)m->hp.vocab_size;
			if (want < nv)
				meta_warn(meta, "%s: tokenizer has %zu tokens, config.json vocab_size is %zu", m->path, nv,
					  want);
			rc = isq_tokenizer_to_gguf(m->tokenizer, w, want > nv ? want : 0);
			if (rc == ISQ_EUNSUPPORTED) {
				/* the weights are still worth converting */
				meta_warn(meta, "%s: no tokenizer keys written: %s", m->path,
					  isq_tokenizer_errmsg(m->tokenizer));
				rc = 0;
			} else if (rc) {
				return isq_errbuf_set(e, rc, "tokenizer: %s", isq_tokenizer_errmsg(m->tokenizer));
			}
		}
	}
	rc = rc ? rc : isq_gguf_set_u32(w, "general.file_type", p->req.ftype);
	rc = rc ? rc : isq_gguf_set_u32(w, "general.quantization_version", 2);
	if (!rc && meta && meta->auto_type && meta->auto_type[0])
		rc = isq_gguf_set_str(w, "quantize.auto_type", meta->auto_type);
	const struct isq_imatrix *im = meta ? meta->imatrix : NULL;
	if (!rc && im) {
		rc = isq_gguf_set_str(w, "quantize.imatrix.file", meta->imatrix_name ? meta->imatrix_name : "");
		if (!rc && im->n_datasets)
			rc = isq_gguf_set_str(w, "quantize.imatrix.dataset", im->datasets[0]);
		rc = rc ? rc : isq_gguf_set_u32(w, "quantize.imatrix.entries_count", (uint32_t)im->n);
		rc = rc ? rc : isq_gguf_set_u32(w, "quantize.imatrix.chunks_count", (uint32_t)im->chunk_count);
	}
	if (!rc && p->n_fallbacks)
		rc = fallbacks_kv(w, p);
	if (rc)
		isq_errbuf_set(e, rc, "%s", rc == ISQ_ENOMEM ? "out of memory" : isq_gguf_writer_errmsg(w));
	return rc;
}

int isq_convert_gguf(const struct isq_model *m, const struct isq_plan_opts *po, const struct isq_imatrix *im,
		     const char *im_name, struct isq_pool *pool, const char *output,
		     struct isq_convert_gguf_result *res, struct isq_errbuf *e)
{
	memset(res, 0, sizeof(*res));
	if (m->streamed || po->format != ISQ_FORMAT_GGUF)
		return isq_errbuf_set(e, ISQ_EINVAL, "isq_convert_gguf: a mapped model and GGUF output only");
	struct isq_plan plan;
	int rc = isq_plan_build(m, po, &plan, e);
	if (rc)
		return rc;
	struct isq_gguf_writer *w = isq_gguf_writer_new();
	struct isq_out out = { 0 };
	int opened = 0;
	if (!w) {
		rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
		goto done;
	}
	struct isq_gguf_meta meta = { .imatrix = im, .imatrix_name = im_name };
	if ((rc = isq_convert_gguf_metadata(w, m, &plan, &meta, e))) {
		isq_errbuf_prefix(e, "%s", output);
		goto done;
	}
	for (size_t i = 0; i < plan.n && !rc; i++) {
		const struct isq_plan_entry *en = &plan.entries[i];
		rc = isq_gguf_writer_add_tensor(w, en->name, (uint32_t)en->type, en->n_dims, en->ne);
	}
	if (rc) {
		isq_errbuf_set(e, rc, "%s: %s", output, isq_gguf_writer_errmsg(w));
		goto done;
	}
	if ((rc = isq_out_open(&out, output))) {
		isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&out.err));
		goto done;
	}
	opened = 1;
	if ((rc = isq_gguf_writer_begin(w, &out))) {
		isq_errbuf_set(e, rc, "%s", out.err.code ? isq_errbuf_msg(&out.err) : isq_gguf_writer_errmsg(w));
		goto done;
	}
	struct isq_converter conv = { .model = m, .pool = pool, .imatrix = im };
	for (size_t i = 0; i < plan.n && !rc; i++)
		if ((rc = isq_convert_entry(&conv, &plan.entries[i], gguf_sink, w, NULL)))
			isq_errbuf_set(e, rc, "%s", out.err.code ? isq_errbuf_msg(&out.err) : isq_errbuf_msg(&conv.err));
	if (!rc && (rc = isq_gguf_writer_finish(w)))
		isq_errbuf_set(e, rc, "%s", out.err.code ? isq_errbuf_msg(&out.err) : isq_gguf_writer_errmsg(w));
	if (rc)
		goto done;
	res->bytes = out.written;
	opened = 0;
	if ((rc = isq_out_commit(&out))) {
		isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&out.err));
		goto done;
	}
	res->tensor_bytes = plan.total_bytes;
	res->params = plan.total_params;
	res->n_fallbacks = plan.n_fallbacks;
	snprintf(res->label, sizeof(res->label), "%s", plan.req.label);
done:
	if (opened)
		isq_out_abort(&out);
	isq_gguf_writer_free(w);
	isq_plan_release(&plan);
	return rc;
}
