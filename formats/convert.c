/* convert.c - stream tensors through the quantizers in row chunks. */
#include "convert.h"
#include "fp.h"
#include "stats.h"

#include <math.h>

int isq_tensor_rows_to_f32(const struct isq_model_tensor *t, int64_t row, int64_t nrows, float *dst)
{
	int64_t row_len = t->n_dims ? t->shape[t->n_dims - 1] : 1;
	uint64_t first = (uint64_t)(row * row_len), n = (uint64_t)(nrows * row_len);
	uint64_t off;
	if (isq_type_row_size((enum isq_type)t->type, first, &off))
		return ISQ_EINVAL;
	const uint8_t *p = t->data + off;
	switch (t->type) {
	case ISQ_TYPE_F32:
		memcpy(dst, p, n * sizeof(float));
		return 0;
	case ISQ_TYPE_F16:
		isq_fp16_to_fp32_row((const uint16_t *)(const void *)p, dst, n);
		return 0;
	case ISQ_TYPE_BF16:
		isq_bf16_to_fp32_row((const uint16_t *)(const void *)p, dst, n);
		return 0;
	default:
		return isq_decode_to_float((enum isq_type)t->type, p, dst, n);
	}
}

/* Output row r of a permuted Q/K tensor comes from this source row (see plan.h). */
static int64_t perm_row(int64_t r, int64_t rows, int heads)
{
	if (heads <= 0 || rows % heads || rows / heads < 2)
		return r; /* no whole heads to permute: leave the order (never divide by zero) */
	int64_t hd = rows / heads, h = r / hd, j = r % hd;
	return h * hd + (j % 2 ? j / 2 + hd / 2 : j / 2);
}

struct sub_result {
	int rc;
	char msg[256];
	double err, ref, w;
};

struct chunk_job {
	struct isq_converter *c;
	const struct isq_plan_entry *en;
	const struct isq_model_tensor *src;
	const struct isq_type_traits *tt;
	int64_t rows_total, row_len, row0, nrows, grain;
	size_t row_bytes;
	uint8_t *out;
	const float *imp;
	float *scratch;   /* per worker: grain * row_len floats, twice when measuring */
	struct sub_result *subs;
	int64_t win_row0; /* first source row held by src when it is a read window, else 0 */
};

static void encode_rows(struct chunk_job *j, const float *x, uint8_t *dst, int64_t nr, struct sub_result *res)
{
	size_t n = (size_t)(nr * j->row_len);
	switch (j->tt->type) {
	case ISQ_TYPE_F32:
		memcpy(dst, x, n * sizeof(float));
		return;
	case ISQ_TYPE_F16:
		isq_fp32_to_fp16_row(x, (uint16_t *)(void *)dst, n);
		return;
	case ISQ_TYPE_BF16:
		isq_fp32_to_bf16_row(x, (uint16_t *)(void *)dst, n);
		return;
	default: {
		struct isq_errbuf e = { 0 };
		res->rc = isq_quantize(j->tt->type, x, dst, nr, j->row_len, j->imp, NULL, &e);
		if (res->rc)
			snprintf(res->msg, sizeof(res->msg), "%s", isq_errbuf_msg(&e));
	}
	}
}

static void chunk_worker(void *ctx, int64_t begin, int64_t end, int worker)
{
	struct chunk_job *j = ctx;
	int measure = j->c->measure_error;
	float *x = j->scratch + (size_t)worker * (size_t)(j->grain * j->row_len) * (measure ? 2 : 1);
	float *y = x + j->grain * j->row_len;
	for (int64_t s = begin; s < end; s++) {
		struct sub_result *res = &j->subs[s];
		int64_t r0 = j->row0 + s * j->grain;
		int64_t nr = ISQ_MIN(j->grain, j->row0 + j->nrows - r0);
		memset(res, 0, sizeof(*res));
		if (j->en->permute_heads && j->rows_total == 1) {
			/* a 1-D q/k bias: its elements are the rows the permutation moves */
			float *tmp = malloc((size_t)j->row_len * sizeof(float));
			res->rc = tmp ? isq_tensor_rows_to_f32(j->src, r0 - j->win_row0, 1, tmp) : ISQ_ENOMEM;
			for (int64_t i = 0; !res->rc && i < j->row_len; i++)
				x[i] = tmp[perm_row(i, j->row_len, j->en->permute_heads)];
			free(tmp);
		} else if (j->en->permute_heads) {
			for (int64_t r = 0; r < nr && !res->rc; r++)
				res->rc = isq_tensor_rows_to_f32(
					j->src, perm_row(r0 + r, j->rows_total, j->en->permute_heads) - j->win_row0, 1,
					x + r * j->row_len);
		} else {
			res->rc = isq_tensor_rows_to_f32(j->src, r0 - j->win_row0, nr, x);
		}
		if (res->rc) {
			snprintf(res->msg, sizeof(res->msg), "cannot decode source type %s", j->src->type_name);
			continue;
		}
		uint8_t *dst = j->out + (size_t)(s * j->grain) * j->row_bytes;
		encode_rows(j, x, dst, nr, res);
		if (res->rc)
			continue;
		if (res->rc == 0 && measure) {
			if (j->tt->type == ISQ_TYPE_F32)
				memcpy(y, x, (size_t)(nr * j->row_len) * sizeof(float));
			else if (j->tt->type == ISQ_TYPE_F16 || j->tt->type == ISQ_TYPE_BF16 || j->tt->dequantize)
				isq_decode_to_float(j->tt->type, dst, y, (uint64_t)(nr * j->row_len));
			else
				continue;
			for (int64_t r = 0; r < nr; r++)
				for (int64_t c = 0; c < j->row_len; c++) {
					double w = j->imp ? j->imp[c] : 1.0, xv = x[r * j->row_len + c];
					double d = xv - y[r * j->row_len + c];
					res->err += w * d * d;
					res->ref += w * xv * xv;
					res->w += w;
				}
		}
	}
}

static const struct isq_imatrix_entry *find_importance(const struct isq_converter *c, const struct isq_plan_entry *en)
{
	if (!c->imatrix)
		return NULL;
	const struct isq_imatrix_entry *ie = isq_imatrix_find(c->imatrix, en->name);
	return ie ? ie : isq_imatrix_find(c->imatrix, en->src_name);
}

static int64_t gcd64(int64_t a, int64_t b)
{
	while (b) {
		int64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

/* Sources e0..e1-1 of en (the expert slices of a stacked tensor), statistics added to *st. */
static int convert_range(struct isq_converter *c, const struct isq_plan_entry *en, int e0, int e1, isq_sink_fn sink,
			 void *sink_ctx, struct isq_convert_stats *st)
{
	const struct isq_model *m = c->model;
	const struct isq_type_traits *tt = isq_type_traits(en->type);
	int64_t row_len = en->ne[0];
	int64_t rows_per_src = en->ne[1] * (en->n_src > 1 ? 1 : en->ne[2]) * en->ne[3];
	uint64_t rb;
	if (!tt || isq_type_row_size(en->type, (uint64_t)row_len, &rb))
		return isq_errbuf_set(&c->err, ISQ_EINVAL, "tensor '%s': row of %lld does not fit %s", en->name,
				      (long long)row_len, isq_type_name(en->type));
	const struct isq_imatrix_entry *ie = find_importance(c, en);
	float *imp = NULL;
	if (ie && en->quantize && tt->uses_imatrix) {
		if (ie->n_per_row != row_len || (ie->n_mat != 1 && ie->n_mat != en->n_src))
			return isq_errbuf_set(&c->err, ISQ_EINVAL,
					      "tensor '%s': imatrix entry '%s' has %lld x %lld values, the tensor has rows of %lld%s",
					      en->name, ie->name, (long long)ie->n_mat, (long long)ie->n_per_row,
					      (long long)row_len, en->n_src > 1 ? " per expert" : "");
		imp = malloc((size_t)row_len * sizeof(float));
		if (!imp)
			return isq_errbuf_set(&c->err, ISQ_ENOMEM, NULL);
	}

	int nthreads = c->pool ? isq_pool_size(c->pool) : 1;
	int64_t grain = ISQ_MAX((int64_t)1, (int64_t)65536 / row_len);
	size_t chunk_bytes = c->chunk_bytes ? c->chunk_bytes : (size_t)8 << 20;
	int64_t rows_per_chunk = ISQ_MAX(grain * nthreads, (int64_t)(chunk_bytes / rb));
	rows_per_chunk = (rows_per_chunk + grain - 1) / grain * grain;
	/*
	 * A streamed source is read a chunk at a time into a window, so the Q/K
	 * permutation must find every row it needs inside the chunk: chunks then
	 * hold whole heads (the permutation never leaves a head).
	 */
	int64_t unit = grain;
	if (c->stream && en->permute_heads > 0) {
		int64_t hd = rows_per_src % en->permute_heads ? 0 : rows_per_src / en->permute_heads;
		unit = hd ? grain / gcd64(grain, hd) * hd : rows_per_src; /* odd heads: the whole tensor at once */
	}
	rows_per_chunk = (rows_per_chunk + unit - 1) / unit * unit;
	rows_per_chunk = ISQ_MIN(rows_per_chunk, (rows_per_src + grain - 1) / grain * grain);
	int64_t max_subs = (rows_per_chunk + grain - 1) / grain;

	struct chunk_job j = { .c = c, .en = en, .tt = tt, .rows_total = rows_per_src, .row_len = row_len,
			       .grain = grain, .row_bytes = (size_t)rb };
	j.out = malloc((size_t)rows_per_chunk * (size_t)rb);
	j.scratch = malloc((size_t)nthreads * (size_t)(grain * row_len) * sizeof(float) * (c->measure_error ? 2 : 1));
	j.subs = calloc((size_t)max_subs, sizeof(*j.subs));
	uint8_t *window = NULL;
	struct isq_model_tensor view;
	int rc = 0;
	if (!j.out || !j.scratch || !j.subs) {
		rc = isq_errbuf_set(&c->err, ISQ_ENOMEM, NULL);
		goto done;
	}
	for (int e = e0; e < e1 && rc == 0; e++) {
		size_t si = en->n_src > 1 ? en->srcs[e] : en->src;
		j.src = &m->tensors[si];
		if (c->stream) {
			uint64_t wb = j.src->nbytes / (uint64_t)(rows_per_src ? rows_per_src : 1) * (uint64_t)rows_per_chunk;
			free(window);
			window = malloc(wb ? (size_t)wb : 1);
			if (!window) {
				rc = isq_errbuf_set(&c->err, ISQ_ENOMEM, NULL);
				break;
			}
			view = *j.src;
			view.data = window;
		}
		if (imp) {
			isq_imatrix_importance(ie, ie->n_mat == 1 ? 0 : e, imp);
			j.imp = imp;
		}
		uint64_t src_row_bytes = j.src->nbytes / (uint64_t)(rows_per_src ? rows_per_src : 1);
		for (int64_t r0 = 0; r0 < rows_per_src && rc == 0; r0 += rows_per_chunk) {
			j.row0 = r0;
			j.nrows = ISQ_MIN(rows_per_chunk, rows_per_src - r0);
			if (c->stream) {
				const struct isq_model_tensor *t = &m->tensors[si];
				rc = isq_model_read(c->stream, t, (uint64_t)r0 * src_row_bytes, window,
						    (size_t)((uint64_t)j.nrows * src_row_bytes));
				if (rc) {
					isq_errbuf_set(&c->err, rc, "%s", isq_errbuf_msg(&c->stream->err));
					break;
				}
				j.src = &view;
				j.win_row0 = r0;
			}
			int64_t nsubs = (j.nrows + grain - 1) / grain;
			if (c->pool && nsubs > 1)
				isq_pool_for(c->pool, nsubs, 1, chunk_worker, &j);
			else
				chunk_worker(&j, 0, nsubs, 0);
			for (int64_t s = 0; s < nsubs; s++) {
				struct sub_result *res = &j.subs[s];
				if (res->rc) {
					rc = isq_errbuf_set(&c->err, res->rc, "tensor '%s': %s", en->src_name, res->msg);
					break;
				}
				if (st) {
					st->err_sum += res->err;
					st->ref_sum += res->ref;
					st->wsum += res->w;
				}
			}
			if (rc)
				break;
			rc = sink(sink_ctx, j.out, (size_t)j.nrows * (size_t)rb);
			if (rc) {
				isq_errbuf_set(&c->err, rc, "tensor '%s': write failed", en->name);
				break;
			}
			if (!en->permute_heads)
				isq_model_drop(m, j.src, (uint64_t)r0 * src_row_bytes, (uint64_t)j.nrows * src_row_bytes);
			if (c->progress) {
				c->progress_done += (uint64_t)j.nrows * src_row_bytes;
				isq_progress_update(c->progress, c->progress_done);
			}
		}
		if (rc == 0 && en->permute_heads)
			isq_model_drop(m, j.src, 0, j.src->nbytes);
	}
	if (st)
		st->n += (uint64_t)(rows_per_src * row_len * (e1 - e0));
done:
	free(window);
	free(imp);
	free(j.out);
	free(j.scratch);
	free(j.subs);
	return rc;
}

int isq_convert_entry(struct isq_converter *c, const struct isq_plan_entry *en, isq_sink_fn sink, void *sink_ctx,
		      struct isq_convert_stats *st)
{
	if (st)
		memset(st, 0, sizeof(*st));
	return convert_range(c, en, 0, en->n_src, sink, sink_ctx, st);
}

int isq_convert_part(struct isq_converter *c, const struct isq_plan_entry *en, int e, isq_sink_fn sink,
		     void *sink_ctx, struct isq_convert_stats *st)
{
	if (e < 0 || e >= en->n_src)
		return isq_errbuf_set(&c->err, ISQ_EINVAL, "tensor '%s': no source %d", en->name, e);
	return convert_range(c, en, e, e + 1, sink, sink_ctx, st);
}
