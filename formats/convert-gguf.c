/*
 * convert-gguf.c - a whole model to one GGUF file in one call, for tools
 * that quantize on the way to something else (isq-bench --sweep).  The
 * metadata rules are isq-quantize's.
 */
#include "convert.h"
#include "hparams.h"
#include "tokenizer.h"

#include <libgen.h>

static int gguf_sink(void *ctx, const void *data, size_t n)
{
	return isq_gguf_writer_write(ctx, data, n);
}

/* general.name: the model directory's or file's base name, without a known extension. */
static void model_name(const char *path, char *out, size_t n)
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
	static const char *const ext[] = { ".safetensors", ".gguf" };
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(ext); i++) {
		size_t a = strlen(out), b = strlen(ext[i]);
		if (a > b && !strcmp(out + a - b, ext[i])) {
			out[a - b] = '\0';
			break;
		}
	}
}

static int fallbacks_kv(struct isq_gguf_writer *w, const struct isq_plan *p)
{
	const char **list = calloc((size_t)p->n_fallbacks, sizeof(*list));
	int k = 0, rc = list ? 0 : ISQ_ENOMEM;
	for (size_t i = 0; i < p->n && !rc; i++) {
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

static int metadata(struct isq_gguf_writer *w, const struct isq_model *m, const struct isq_plan *p,
		    const struct isq_imatrix *im, const char *im_name)
{
	int rc = 0;
	if (m->gguf) {
		for (size_t i = 0; i < m->gguf->n_kv && !rc; i++) {
			const char *k = m->gguf->kv[i].key;
			if (strncmp(k, "split.", 6) && strcmp(k, "general.alignment"))
				rc = isq_gguf_set_kv(w, &m->gguf->kv[i]);
		}
	} else if (m->have_config) {
		char name[256];
		model_name(m->path, name, sizeof(name));
		rc = isq_hparams_to_gguf(&m->hp, name, w);
		if (!rc && m->tokenizer) {
			size_t nv = isq_tokenizer_n_vocab(m->tokenizer), want = (size_t)m->hp.vocab_size;
			rc = isq_tokenizer_to_gguf(m->tokenizer, w, want > nv ? want : 0);
			if (rc == ISQ_EUNSUPPORTED) /* isq-quantize warns; the weights are still worth measuring */
				rc = 0;
		}
	}
	rc = rc ? rc : isq_gguf_set_u32(w, "general.file_type", p->req.ftype);
	rc = rc ? rc : isq_gguf_set_u32(w, "general.quantization_version", 2);
	if (!rc && im) {
		rc = isq_gguf_set_str(w, "quantize.imatrix.file", im_name ? im_name : "");
		if (!rc && im->n_datasets)
			rc = isq_gguf_set_str(w, "quantize.imatrix.dataset", im->datasets[0]);
		rc = rc ? rc : isq_gguf_set_u32(w, "quantize.imatrix.entries_count", (uint32_t)im->n);
		rc = rc ? rc : isq_gguf_set_u32(w, "quantize.imatrix.chunks_count", (uint32_t)im->chunk_count);
	}
	if (!rc && p->n_fallbacks)
		rc = fallbacks_kv(w, p);
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
	rc = metadata(w, m, &plan, im, im_name);
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
