/* tensor-error.c - quantize, dequantize and compare each weight tensor; time the quantizers. */
#include "tensor-error.h"

#include "convert.h"
#include "progress.h"

#include <math.h>

/* About this many elements per block of rows: a few MB of float scratch per thread. */
#define BLOCK_ELEMS ((int64_t)1 << 20)

struct job {
	const struct isq_model *m;
	const struct isq_imatrix *im;
	struct isq_pool *pool; /* speed: rows of one tensor across it */
	const struct isq_plan *plan;
	const size_t *idx;     /* plan entries measured */
	struct isq_tensor_row *rows;
	int *rc;
	char (*msg)[256];
	unsigned flags;
};

static const struct isq_imatrix_entry *find_importance(const struct isq_imatrix *im, const struct isq_plan_entry *en)
{
	if (!im)
		return NULL;
	const struct isq_imatrix_entry *ie = isq_imatrix_find(im, en->name);
	return ie ? ie : isq_imatrix_find(im, en->src_name);
}

struct quant_rows {
	const struct isq_type_traits *tt;
	const float *x, *imp;
	uint8_t *out;
	size_t row_bytes;
	int64_t row_len;
};

static void quant_worker(void *ctx, int64_t b, int64_t e, int worker)
{
	struct quant_rows *q = ctx;
	(void)worker;
	q->tt->quantize(q->x + b * q->row_len, q->out + (size_t)b * q->row_bytes, e - b, q->row_len, q->imp);
}

/* Rows [0, nr) of X must be finite before a kernel sees them: the kernels assert it. */
static int64_t first_bad(const float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return i;
	return -1;
}

/* One plan entry: every source (expert), in blocks of rows. */
static int measure_entry(const struct job *j, const struct isq_plan_entry *en, struct isq_tensor_row *row,
			 char *msg, size_t msg_len)
{
	const struct isq_type_traits *tt = isq_type_traits(en->type);
	int64_t row_len = en->ne[0];
	int64_t rows_per_src = en->ne[1] * (en->n_src > 1 ? 1 : en->ne[2]) * en->ne[3];
	uint64_t rb;
	if (!tt || !tt->quantize || !tt->dequantize) {
		snprintf(msg, msg_len, "tensor '%s': isq cannot quantize to %s", en->name, isq_type_name(en->type));
		return ISQ_EUNSUPPORTED;
	}
	if (isq_type_row_size(en->type, (uint64_t)row_len, &rb)) {
		snprintf(msg, msg_len, "tensor '%s': row of %lld does not fit %s", en->name, (long long)row_len,
			 isq_type_name(en->type));
		return ISQ_EINVAL;
	}
	const struct isq_imatrix_entry *ie = find_importance(j->im, en);
	if (ie && (ie->n_per_row != row_len || (ie->n_mat != 1 && ie->n_mat != en->n_src))) {
		snprintf(msg, msg_len, "tensor '%s': imatrix entry '%s' has %lld x %lld values, the tensor has rows of %lld",
			 en->name, ie->name, (long long)ie->n_mat, (long long)ie->n_per_row, (long long)row_len);
		return ISQ_EINVAL;
	}
	int64_t block = ISQ_MAX((int64_t)1, BLOCK_ELEMS / row_len);
	block = ISQ_MIN(block, rows_per_src);
	float *x = isq_mallocarray((size_t)(block * row_len), 2 * sizeof(float));
	uint8_t *qb = isq_mallocarray((size_t)block, (size_t)rb);
	float *imp = ie ? isq_mallocarray((size_t)row_len, sizeof(float)) : NULL;
	if (!x || !qb || (ie && !imp)) {
		free(x);
		free(qb);
		free(imp);
		snprintf(msg, msg_len, "out of memory");
		return ISQ_ENOMEM;
	}
	float *y = x + block * row_len;
	int rc = 0;
	row->weighted = ie != NULL;
	for (int e = 0; e < en->n_src && !rc; e++) {
		const struct isq_model_tensor *src = &j->m->tensors[en->n_src > 1 ? en->srcs[e] : en->src];
		if (ie)
			isq_imatrix_importance(ie, ie->n_mat == 1 ? 0 : e, imp);
		for (int64_t r0 = 0; r0 < rows_per_src && !rc; r0 += block) {
			int64_t nr = ISQ_MIN(block, rows_per_src - r0), n = nr * row_len;
			if ((rc = isq_tensor_rows_to_f32(src, r0, nr, x))) {
				snprintf(msg, msg_len, "tensor '%s': cannot read %s data", en->src_name, src->type_name);
				break;
			}
			int64_t bad = first_bad(x, n);
			if (bad >= 0) {
				snprintf(msg, msg_len, "tensor '%s': non-finite value %g at row %lld, column %lld",
					 en->src_name, x[bad], (long long)(r0 + bad / row_len), (long long)(bad % row_len));
				rc = ISQ_EINVAL;
				break;
			}
			struct quant_rows q = { tt, x, tt->uses_imatrix && !(j->flags & ISQ_TENSOR_WEIGH_ONLY) ? imp : NULL, qb,
						(size_t)rb, row_len };
			if (j->flags & ISQ_TENSOR_SPEED) {
				double t0 = isq_now();
				int64_t grain = ISQ_MAX((int64_t)1, (int64_t)16384 / row_len);
				if (j->pool && nr > grain)
					isq_pool_for(j->pool, nr, grain, quant_worker, &q);
				else
					quant_worker(&q, 0, nr, 0);
				row->seconds += isq_now() - t0;
			} else {
				quant_worker(&q, 0, nr, 0);
			}
			if (!(j->flags & ISQ_TENSOR_ERROR))
				continue;
			tt->dequantize(qb, y, n);
			double se = 0, wse = 0, ws = 0, xx = 0, qq = 0, xq = 0;
			for (int64_t i = 0; i < n; i++) {
				double a = x[i], b = y[i], d = a - b, w = imp ? imp[i % row_len] : 1;
				se += d * d;
				wse += w * d * d;
				ws += w;
				xx += a * a;
				qq += b * b;
				xq += a * b;
			}
			row->se += se, row->wse += wse, row->wsum += ws;
			row->xx += xx, row->qq += qq, row->xq += xq;
		}
	}
	row->n = (uint64_t)(rows_per_src * row_len * en->n_src);
	row->bytes = (uint64_t)rb * (uint64_t)(rows_per_src * en->n_src);
	free(imp);
	free(qb);
	free(x);
	return rc;
}

static void entry_worker(void *ctx, int64_t b, int64_t e, int worker)
{
	const struct job *j = ctx;
	(void)worker;
	for (int64_t i = b; i < e; i++)
		j->rc[i] = measure_entry(j, &j->plan->entries[j->idx[i]], &j->rows[i], j->msg[i], sizeof(j->msg[i]));
}

int isq_tensor_error_measure(const struct isq_model *m, const char *type, const struct isq_imatrix *im,
			     struct isq_pool *pool, unsigned flags, struct isq_tensor_report *r,
			     struct isq_errbuf *e)
{
	memset(r, 0, sizeof(*r));
	if (m->streamed)
		return isq_errbuf_set(e, ISQ_EINVAL, "%s: an archive cannot be measured tensor by tensor; unpack it",
				      m->path ? m->path : "model");
	int rc = isq_type_request_parse(type, ISQ_TARGET_CPU, &r->req, e);
	if (rc)
		return rc;
	/* types without a ggml id exist only in UQFF; the plan refuses them in GGUF */
	const struct isq_type_traits *bt = isq_type_traits(r->req.type);
	struct isq_plan_opts po = { .type = type, .pure = r->req.mixture == ISQ_MIX_NONE,
				    .format = bt && bt->ggml_id < 0 ? ISQ_FORMAT_UQFF : ISQ_FORMAT_GGUF,
				    .target = ISQ_TARGET_CPU };
	struct isq_plan plan;
	if ((rc = isq_plan_build(m, &po, &plan, e)))
		return rc;
	size_t n = 0;
	for (size_t i = 0; i < plan.n; i++)
		n += plan.entries[i].quantize != 0;
	if (!n) {
		isq_plan_release(&plan);
		return isq_errbuf_set(e, ISQ_EINVAL, "%s: no weight tensor to quantize", m->path ? m->path : "model");
	}
	size_t *idx = isq_mallocarray(n, sizeof(*idx));
	int *rcs = calloc(n, sizeof(*rcs));
	char (*msg)[256] = calloc(n, sizeof(*msg));
	r->rows = calloc(n, sizeof(*r->rows));
	if (!idx || !rcs || !msg || !r->rows) {
		rc = isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
		goto out;
	}
	r->n = n;
	for (size_t i = 0, k = 0; i < plan.n; i++) {
		const struct isq_plan_entry *en = &plan.entries[i];
		if (!en->quantize)
			continue;
		idx[k] = i;
		snprintf(r->rows[k].name, sizeof(r->rows[k].name), "%s", en->name);
		r->rows[k].type = en->type;
		r->rows[k].fallback = en->type != en->requested;
		k++;
	}
	struct job j = { m, im, NULL, &plan, idx, r->rows, rcs, msg, flags };
	if (flags & ISQ_TENSOR_SPEED) {
		/* one tensor at a time, its rows over the pool: the clock then times only the quantizer */
		j.pool = pool;
		entry_worker(&j, 0, (int64_t)n, 0);
	} else if (pool) {
		isq_pool_for(pool, (int64_t)n, 1, entry_worker, &j);
	} else {
		entry_worker(&j, 0, (int64_t)n, 0);
	}
	struct isq_tensor_row *t = &r->total;
	snprintf(t->name, sizeof(t->name), "total");
	t->type = r->req.type;
	for (size_t i = 0; i < n && !rc; i++) {
		if (rcs[i]) {
			rc = isq_errbuf_set(e, rcs[i], "%s", msg[i]);
			break;
		}
		const struct isq_tensor_row *w = &r->rows[i];
		t->n += w->n, t->bytes += w->bytes, t->seconds += w->seconds;
		t->se += w->se;
		/* w = 1 for a tensor the imatrix does not cover would put it on an arbitrary scale: leave it out */
		if (w->weighted || !im)
			t->wse += w->wse, t->wsum += w->wsum;
		t->xx += w->xx, t->qq += w->qq, t->xq += w->xq;
		t->cos_sum += (double)w->n * isq_tensor_cosine(w);
		t->fallback |= w->fallback;
		r->n_weighted += w->weighted;
	}
	t->weighted = r->n_weighted > 0;
out:
	free(msg);
	free(rcs);
	free(idx);
	isq_plan_release(&plan);
	if (rc)
		isq_tensor_report_release(r);
	return rc;
}

void isq_tensor_report_release(struct isq_tensor_report *r)
{
	free(r->rows);
	r->rows = NULL;
	r->n = 0;
}

double isq_tensor_rmse(const struct isq_tensor_row *t)
{
	return t->n ? sqrt(t->se / (double)t->n) : 0;
}

double isq_tensor_wrmse(const struct isq_tensor_row *t)
{
	return t->wsum > 0 ? sqrt(t->wse / t->wsum) : 0;
}

double isq_tensor_cosine(const struct isq_tensor_row *t)
{
	if (t->cos_sum != 0)
		return t->n ? t->cos_sum / (double)t->n : 0;
	/* an all-zero tensor quantizes exactly: call that agreement, not 0/0 */
	if (t->xx == 0 && t->qq == 0)
		return 1;
	return t->xx > 0 && t->qq > 0 ? t->xq / sqrt(t->xx * t->qq) : 0;
}

double isq_tensor_bpw(const struct isq_tensor_row *t)
{
	return t->n ? 8.0 * (double)t->bytes / (double)t->n : 0;
}

double isq_tensor_mb_per_s(const struct isq_tensor_row *t)
{
	return t->seconds > 0 ? 2.0 * (double)t->n / 1e6 / t->seconds : 0;
}
