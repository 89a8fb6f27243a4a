/* sweep.c - quantize a model to several types and measure each against it (see sweep.h). */
#include "sweep.h"
#include "convert.h"
#include "imatrix.h"
#include "io.h"
#include "thread.h"

#include <ctype.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bits per weight over the tensors the file holds, as isq-quantize reports it. */
static double tensor_bpw(const struct isq_model *m)
{
	uint64_t bytes = 0, n = 0;
	for (size_t i = 0; i < m->n_tensors; i++) {
		bytes += m->tensors[i].nbytes;
		n += m->tensors[i].n_elements;
	}
	return n ? 8.0 * (double)bytes / (double)n : 0;
}

static uint64_t path_bytes(const char *path, const struct isq_model *m)
{
	struct stat st;
	if (!isq_is_dir(path) && !stat(path, &st))
		return (uint64_t)st.st_size;
	return isq_model_bytes(m);
}

/* A peer's GGUF is named after its type by convention (stories260K-Q4_K_M.gguf): take that. */
static void peer_label(const char *path, char *out, size_t n)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	const char *dash = strrchr(b, '-');
	snprintf(out, n, "%s", dash ? dash + 1 : b);
	char *dot = strstr(out, ".gguf");
	if (dot)
		*dot = '\0';
	for (char *p = out; *p; p++)
		*p = (char)tolower((unsigned char)*p);
}

int isq_sweep_parse(struct isq_sweep *sw, const char *list, int with_imatrix, struct isq_errbuf *e)
{
	memset(sw, 0, sizeof(*sw));
	size_t n_items = 1;
	for (const char *p = list; *p; p++)
		n_items += *p == ',';
	sw->list = isq_strdup(list);
	sw->rows = calloc(2 * n_items + 1, sizeof(*sw->rows));
	if (!sw->list || !sw->rows)
		return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	struct isq_sweep_row *rows = sw->rows;
	snprintf(rows[0].label, sizeof(rows[0].label), "%s", "base");
	rows[0].series = "base";
	size_t n = 1;
	for (char *tok = sw->list, *next; tok; tok = next) {
		next = strchr(tok, ',');
		if (next)
			*next++ = '\0';
		if (!*tok)
			return isq_errbuf_set(e, ISQ_EINVAL, "an empty entry in '%s'", list);
		struct isq_sweep_row *row = &rows[n++];
		if (isq_path_exists(tok)) {
			row->path = tok;
			row->series = "llama.cpp";
			peer_label(tok, row->label, sizeof(row->label));
			continue;
		}
		struct isq_errbuf te = { 0 };
		if (isq_type_request_parse(tok, ISQ_TARGET_CPU, &row->req, &te))
			return isq_errbuf_set(e, ISQ_EINVAL, "%s (or no such file)", isq_errbuf_msg(&te));
		row->series = "isq";
		snprintf(row->label, sizeof(row->label), "%s", row->req.label);
		if (with_imatrix) {
			rows[n] = *row;
			rows[n].imatrix = 1;
			rows[n++].series = "isq + imatrix";
		}
	}
	sw->n_rows = n;
	return 0;
}

void isq_sweep_release(struct isq_sweep *sw)
{
	free(sw->rows);
	free(sw->list);
	memset(sw, 0, sizeof(*sw));
}

/* The temporary directory and the one GGUF in it at a time; removed whichever way the run ends. */
struct scratch {
	char dir[4096], file[4200];
};

static void scratch_remove(struct scratch *s)
{
	if (s->file[0])
		unlink(s->file);
	if (s->dir[0])
		rmdir(s->dir);
	s->file[0] = s->dir[0] = '\0';
}

/* Quantize the base into a temporary GGUF for ROW along isq-quantize's plan; its path in s->file. */
static int quantize_row(struct scratch *s, const struct isq_eval_model *base, struct isq_sweep_row *row,
			const struct isq_imatrix *im, struct isq_pool *pool, const struct isq_sweep_params *p,
			struct isq_errbuf *e)
{
	if (!s->dir[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(s->dir, sizeof(s->dir), "%s/isq-bench.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
		if (!mkdtemp(s->dir)) {
			int err = errno;
			s->dir[0] = '\0';
			return isq_errbuf_set(e, ISQ_EIO, "cannot create a temporary directory in %s: %s",
					      tmp && tmp[0] ? tmp : "/tmp", strerror(err));
		}
	}
	snprintf(s->file, sizeof(s->file), "%s/%s%s.gguf", s->dir, row->label, row->imatrix ? "-imatrix" : "");
	struct isq_plan_opts po = { .type = row->label, .format = ISQ_FORMAT_GGUF, .target = ISQ_TARGET_CPU };
	struct isq_convert_gguf_result res;
	struct isq_errbuf ce = { 0 };
	int rc = isq_convert_gguf(&base->w.model, &po, row->imatrix ? im : NULL, p->imatrix, pool, s->file, &res, &ce);
	if (rc)
		return isq_errbuf_set(e, rc, "%s: -t %s: %s", p->model, row->label, isq_errbuf_msg(&ce));
	row->fallbacks = res.n_fallbacks;
	return 0;
}

/* Open PATH and tell the caller, who may warn about its context. */
static int open_model(struct isq_eval_model *m, const char *path, const struct isq_sweep_params *p,
		      struct isq_errbuf *e)
{
	int rc = isq_eval_model_open(m, path, p->be, p->eval.n_ctx, p->eval.kv_type, e);
	if (!rc && p->on_model)
		p->on_model(p->ud, m);
	return rc;
}

static int check_unquantized(const struct isq_model *m, const char *path, struct isq_errbuf *e)
{
	for (size_t i = 0; i < m->n_tensors; i++) {
		int t = m->tensors[i].type;
		if (t != ISQ_TYPE_F32 && t != ISQ_TYPE_F16 && t != ISQ_TYPE_BF16 && m->tensors[i].n_dims >= 2)
			return isq_errbuf_set(e, ISQ_EUNSUPPORTED,
					      "%s: tensor '%s' is already quantized (%s); --sweep needs F32, F16 or BF16 weights",
					      path, m->tensors[i].name, m->tensors[i].type_name);
	}
	return 0;
}

int isq_sweep_run(struct isq_sweep *sw, const struct isq_sweep_params *p, struct isq_errbuf *e)
{
	struct isq_eval_model base;
	struct isq_eval_text t = { 0 };
	struct isq_imatrix im;
	struct isq_pool *pool = NULL;
	struct scratch s = { { 0 }, { 0 } };
	isq_imatrix_init(&im);
	int rc = open_model(&base, p->model, p, e);
	if (rc)
		goto out_im;
	if ((rc = check_unquantized(&base.w.model, p->model, e)))
		goto out;
	if (p->imatrix && (rc = isq_imatrix_read(&im, p->imatrix))) {
		isq_errbuf_set(e, rc, "%s", isq_errbuf_msg(&im.err));
		goto out;
	}
	if (!(pool = isq_pool_new(p->threads))) {
		rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = isq_eval_text_load(&t, &base, p->eval.text_path, p->eval.per_doc, e)))
		goto out;

	struct isq_sweep_row *rows = sw->rows;
	rows[0].bytes = path_bytes(p->model, &base.w.model);
	rows[0].bpw = tensor_bpw(&base.w.model);
	if ((rc = isq_eval_measure(&base, NULL, &t, &p->eval, &rows[0].r, e)))
		goto out;
	if (p->on_row)
		p->on_row(p->ud, sw, 0);
	for (size_t i = 1; i < sw->n_rows; i++) {
		struct isq_sweep_row *row = &rows[i];
		if (!row->path && (rc = quantize_row(&s, &base, row, &im, pool, p, e)))
			goto out;
		const char *path = row->path ? row->path : s.file;
		struct isq_eval_model q;
		if ((rc = open_model(&q, path, p, e)))
			goto out;
		row->bytes = path_bytes(path, &q.w.model);
		row->bpw = tensor_bpw(&q.w.model);
		rc = isq_eval_measure(&q, &base, &t, &p->eval, &row->r, e);
		isq_eval_model_close(&q);
		if (rc)
			goto out;
		if (!row->path) {
			unlink(s.file);
			s.file[0] = '\0';
		}
		if (p->on_row)
			p->on_row(p->ud, sw, i);
	}
out:
	scratch_remove(&s);
	isq_eval_text_release(&t);
	isq_pool_free(pool);
	isq_eval_model_close(&base);
out_im:
	isq_imatrix_release(&im);
	return rc;
}
