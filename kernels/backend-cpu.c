/*
 * backend-cpu.c - the reference backend: host memory, the type table's
 * kernels, libcommon's thread pool.
 */
#include "backend.h"
#include "attn.h"
#include "fp.h"
#include "cpu.h"
#include "gemm.h"
#include "repack.h"
#include "sgemm.h"
#include "thread.h"

#include <math.h>

struct cpu {
	struct isq_pool *pool;
	int n_threads;
	/* activations quantized to a vec_dot_type: n_tok rows */
	uint8_t *xq;
	size_t xq_cap;
	/* per worker: attention scores (n_ctx) and a dequantized K/V row */
	float *scratch;
	size_t scratch_per_worker;
	/* per worker: 16 weight rows widened to F32, then transposed into a panel */
	float *tiles;
	size_t tile_per_worker;
	/* per token: 8 * code sums of the Q8_0 activation blocks (Q4_0x8 weights) */
	int32_t *xsums; /* isq_q8_act's per-block sums and scales of the quantized activations */
	float *xd;
	size_t xsums_cap;
	int n_tok_max;
	int64_t max_cols, n_ctx;
	int repack; /* rearrange weights at load (ISQ_NO_REPACK=1 turns it off, for comparisons) */
};

enum { LAYOUT_ROWS, LAYOUT_Q4_0X8, LAYOUT_IQ4_NLX8, LAYOUT_Q8_0X8, LAYOUT_Q4_KX8, LAYOUT_Q6_KX8 };

/* The eight-row layouts of repack.h, by fw_tensor.layout. */
static const struct repack_kind {
	enum isq_type type;
	int blck;	  /* elements per block of the layout's column */
	size_t col_bytes; /* bytes per block column of eight rows */
	void (*repack)(const void *src, size_t row_bytes, int64_t rows, int64_t nb, void *dst);
	void (*unpack_row)(const void *packed, int64_t nb, int64_t r, void *dst);
} repack_kinds[] = {
	[LAYOUT_Q4_0X8] = { ISQ_TYPE_Q4_0, 32, 144, isq_repack_q4_0x8, isq_unpack_q4_0x8_row },
	[LAYOUT_IQ4_NLX8] = { ISQ_TYPE_IQ4_NL, 32, 144, isq_repack_q4_0x8, isq_unpack_q4_0x8_row },
	[LAYOUT_Q8_0X8] = { ISQ_TYPE_Q8_0, 32, 272, isq_repack_q8_0x8, isq_unpack_q8_0x8_row },
	[LAYOUT_Q4_KX8] = { ISQ_TYPE_Q4_K, 256, 1184, isq_repack_q4_Kx8, isq_unpack_q4_Kx8_row },
	[LAYOUT_Q6_KX8] = { ISQ_TYPE_Q6_K, 256, 1680, isq_repack_q6_Kx8, isq_unpack_q6_Kx8_row },
};

static struct cpu *cpu_of(struct isq_backend *be)
{
	return be->priv;
}

/* Below this many multiply-adds a job costs less than waking the workers. */
#define PARALLEL_MIN_WORK 65536

/*
 * Prompts of at least SGEMM_MIN_TOK tokens multiply in F32 (sgemm.h): 16
 * weight rows at a time are widened to F32 and transposed into a panel that
 * every token of the batch passes over while it is in cache.  Decoding the
 * weights once per batch instead of once per token is what makes prompts
 * fast; OpenBLAS's sgemm measured 2-4x slower than these panels on this
 * shape (few tokens, long rows) and would not give per-lane determinism.
 * Repacked matrices stay in integers at every batch size
 * (repack.h): int8 products run about 1.7x the F32 multiply-add rate here,
 * and a prompt's products then equal a generated token's bit for bit.
 */
#define SGEMM_MIN_TOK 16
#define SGEMM_TILE 16

static int cpu_reserve(struct isq_backend *be, int n_tok, int64_t max_cols, int64_t n_ctx, struct isq_errbuf *e)
{
	struct cpu *c = cpu_of(be);
	if (n_tok < 1 || max_cols < 1 || n_ctx < 1)
		return isq_errbuf_set(e, ISQ_EINVAL, "backend reserve: bad sizes");
	n_tok = ISQ_MAX(n_tok, c->n_tok_max);
	max_cols = ISQ_MAX(max_cols, c->max_cols);
	n_ctx = ISQ_MAX(n_ctx, c->n_ctx);
	/* the widest activation row any vec_dot_type needs: F32 is the largest (4 bytes/element) */
	size_t xq = (size_t)n_tok * ((size_t)max_cols * 4 + 64);
	if (xq > c->xq_cap) {
		uint8_t *p = realloc(c->xq, xq);
		if (!p)
			return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory for %zu bytes of activations", xq);
		c->xq = p;
		c->xq_cap = xq;
	}
	size_t per = (size_t)n_ctx + (size_t)max_cols;
	if (per > c->scratch_per_worker) {
		float *p = isq_mallocarray(per * (size_t)c->n_threads, sizeof(float));
		if (!p)
			return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory for attention scratch");
		free(c->scratch);
		c->scratch = p;
		c->scratch_per_worker = per;
	}
	size_t ns = (size_t)n_tok * (size_t)(max_cols / 32 + 1);
	if (ns > c->xsums_cap) {
		int32_t *p = isq_mallocarray(ns, sizeof(int32_t));
		float *d = isq_mallocarray(ns, sizeof(float));
		if (!p || !d) {
			free(p);
			free(d);
			return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory for activation sums");
		}
		free(c->xsums);
		free(c->xd);
		c->xsums = p;
		c->xd = d;
		c->xsums_cap = ns;
	}
	/* the rows, then their panel */
	size_t tile = 2 * (size_t)SGEMM_TILE * (size_t)max_cols + 16;
	if (n_tok >= SGEMM_MIN_TOK && tile > c->tile_per_worker) {
		float *p = NULL;
		if (posix_memalign((void **)&p, 64, tile * sizeof(float) * (size_t)c->n_threads))
			return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory for %zu weight rows in F32",
					      tile * (size_t)c->n_threads);
		free(c->tiles);
		c->tiles = p;
		c->tile_per_worker = tile;
	}
	c->n_tok_max = n_tok;
	c->max_cols = max_cols;
	c->n_ctx = n_ctx;
	return 0;
}

static void *cpu_alloc(struct isq_backend *be, size_t n, struct isq_errbuf *e)
{
	(void)be;
	/* 64-byte alignment keeps SIMD loads on one cache line */
	void *p = NULL;
	if (posix_memalign(&p, 64, n ? n : 1)) {
		isq_errbuf_set(e, ISQ_ENOMEM, "out of memory for a %zu-byte buffer", n);
		return NULL;
	}
	memset(p, 0, n);
	return p;
}

static void cpu_free(struct isq_backend *be, void *buf)
{
	(void)be;
	free(buf);
}

static void cpu_copy(struct isq_backend *be, void *dst, const void *src, size_t n)
{
	(void)be;
	memcpy(dst, src, n);
}

static int cpu_weight_load(struct isq_backend *be, const struct isq_fw_tensor *host, struct isq_fw_tensor *dev,
			   struct isq_errbuf *e)
{
	(void)be;
	const struct isq_type_traits *tt = isq_type_traits(host->type);
	if (!tt || !tt->vec_dot || !tt->dequantize)
		return isq_errbuf_set(e, ISQ_EUNSUPPORTED, "type %s has no CPU dot product", isq_type_name(host->type));
	const struct isq_type_traits *vt = isq_type_traits(tt->vec_dot_type);
	if (!vt || !vt->from_float)
		return isq_errbuf_set(e, ISQ_EUNSUPPORTED, "type %s has no activation encoder",
				      isq_type_name(host->type));
	if (host->cols % vt->blck || host->cols % tt->blck)
		return isq_errbuf_set(e, ISQ_EUNSUPPORTED, "rows of %lld elements do not fit %s blocks",
				      (long long)host->cols, isq_type_name(host->type));
	*dev = *host;
	dev->layout = LAYOUT_ROWS;
	/*
	 * Q4_0, Q8_0, Q4_K and Q6_K in groups of eight rows (repack.h): the
	 * products then decode eight rows per activation load, with no
	 * horizontal adds (llama.cpp repacks Q4_0 and Q4_K alike).  The copy
	 * costs the tensor's size in memory once (Q4_K 2.8 % more, its scales
	 * unpacked); the mapped file's pages are no longer touched.
	 */
	int layout = LAYOUT_ROWS;
	for (int k = 1; k < (int)ISQ_ARRAY_SIZE(repack_kinds); k++)
		if (repack_kinds[k].type == host->type)
			layout = k;
	if (cpu_of(be)->repack && layout != LAYOUT_ROWS && host->rows % 8 == 0 && host->rows > 0) {
		const struct repack_kind *rk = &repack_kinds[layout];
		int64_t nb = host->cols / rk->blck;
		void *p = NULL;
		if (posix_memalign(&p, 64, rk->col_bytes * (size_t)nb * (size_t)(host->rows / 8)))
			return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory repacking a %lld x %lld %s matrix",
					      (long long)host->rows, (long long)host->cols, isq_type_name(host->type));
		rk->repack(host->data, host->row_bytes, host->rows, nb, p);
		dev->data = p;
		dev->layout = layout;
	}
	return 0;
}

static void cpu_weight_unload(struct isq_backend *be, struct isq_fw_tensor *dev)
{
	(void)be;
	if (dev->layout != LAYOUT_ROWS)
		free((void *)(uintptr_t)dev->data);
	memset(dev, 0, sizeof(*dev));
}

/* Row r of w in its file layout: w's own memory, or TMP (row_bytes) rebuilt from a repacked matrix. */
static const uint8_t *weight_row(const struct isq_fw_tensor *w, int64_t r, void *tmp)
{
	if (w->layout != LAYOUT_ROWS) {
		const struct repack_kind *rk = &repack_kinds[w->layout];
		rk->unpack_row(w->data, w->cols / rk->blck, r, tmp);
		return tmp;
	}
	return (const uint8_t *)w->data + (size_t)r * w->row_bytes;
}

static void cpu_get_rows(struct isq_backend *be, const struct isq_fw_tensor *w, const int32_t *ids, int n,
			 float *out)
{
	(void)be;
	const struct isq_type_traits *tt = isq_type_traits(w->type);
	void *tmp = w->layout != LAYOUT_ROWS ? malloc(w->row_bytes) : NULL;
	ISQ_ASSERT(w->layout == LAYOUT_ROWS || tmp);
	for (int i = 0; i < n; i++) {
		ISQ_ASSERT(ids[i] >= 0 && ids[i] < w->rows);
		tt->dequantize(weight_row(w, ids[i], tmp), out + (size_t)i * w->cols, w->cols);
	}
	free(tmp);
}

static void cpu_rms_norm(struct isq_backend *be, const float *x, const float *w, float *y, int64_t n, int64_t rows,
			 float eps)
{
	(void)be;
	for (int64_t r = 0; r < rows; r++) {
		const float *xr = x + r * n;
		float *yr = y + r * n;
		/* double accumulation, as ggml: long rows of small values lose bits in float */
		double ss = 0;
		for (int64_t i = 0; i < n; i++)
			ss += (double)xr[i] * xr[i];
		float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
		for (int64_t i = 0; i < n; i++)
			yr[i] = xr[i] * scale * w[i];
	}
}

struct mm_job {
	const struct isq_fw_tensor *w;
	const struct isq_type_traits *tt;
	const float *bias;
	const float *x;
	float *y;
	const uint8_t *xq;
	size_t xq_row;
	int n_tok;
	int tiled; /* isq_gemm_avx2 handles this type */
	int widen; /* BF16: rows widened to F32, activations kept in F32 */
	struct cpu *c;
	const struct isq_type_traits *vt;
};

static void mm_quantize(void *ctx, int64_t b, int64_t e, int worker)
{
	(void)worker;
	struct mm_job *j = ctx;
	int64_t nb = j->w->cols / 32;
	for (int64_t t = b; t < e; t++) {
		uint8_t *q = (uint8_t *)j->xq + t * j->xq_row;
		j->vt->from_float(j->x + t * j->w->cols, q, j->w->cols);
		if (j->w->layout == LAYOUT_Q4_KX8 || j->w->layout == LAYOUT_Q6_KX8)
			isq_q8k_act_prepare(q, j->xq_row, 1, nb / 8, (int16_t *)j->c->xsums + t * nb);
		else if (j->w->layout != LAYOUT_ROWS)
			isq_q8_act_prepare(q, j->xq_row, 1, nb, j->c->xd + t * nb, j->c->xsums + t * nb);
	}
}

static void mm_rows(void *ctx, int64_t b, int64_t e, int worker)
{
	struct mm_job *j = ctx;
	const struct isq_fw_tensor *w = j->w;
	const uint8_t *base = w->data;
	if (j->tiled) {
		isq_gemm_avx2(w->type, w->cols, e - b, j->n_tok, base + (size_t)b * w->row_bytes, w->row_bytes, j->xq,
			      j->xq_row, j->y + b, (size_t)w->rows);
		for (int t = 0; j->bias && t < j->n_tok; t++)
			for (int64_t r = b; r < e; r++)
				j->y[(size_t)t * w->rows + r] += j->bias[r];
		return;
	}
	float *wide = j->c->scratch + (size_t)worker * j->c->scratch_per_worker + j->c->n_ctx;
	/* one weight row stays in L1 while every token's activations pass over it */
	for (int64_t r = b; r < e; r++) {
		const uint8_t *row = base + (size_t)r * w->row_bytes;
		if (j->widen) {
			isq_bf16_to_fp32_row((const uint16_t *)(const void *)row, wide, (size_t)w->cols);
			row = (const uint8_t *)wide;
		}
		for (int t = 0; t < j->n_tok; t++) {
			float s;
			j->tt->vec_dot(w->cols, &s, row, j->xq + (size_t)t * j->xq_row);
			if (j->bias)
				s += j->bias[r];
			j->y[(size_t)t * w->rows + r] = s;
		}
	}
}

/* One panel of SGEMM_TILE weight rows for every token: Y[:, rows] = X W[rows]^T. */
static void mm_panels(void *ctx, int64_t b, int64_t e, int worker)
{
	struct mm_job *j = ctx;
	const struct isq_fw_tensor *w = j->w;
	const struct isq_type_traits *tt = isq_type_traits(w->type);
	int64_t k = w->cols;
	float *rows = j->c->tiles + (size_t)worker * j->c->tile_per_worker;
	/* 32-byte alignment for the panel's aligned loads */
	float *panel = (float *)(((uintptr_t)(rows + (size_t)SGEMM_TILE * k) + 31) & ~(uintptr_t)31);
	for (int64_t q = b; q < e; q++) {
		int64_t r0 = q * SGEMM_TILE;
		int nr = (int)ISQ_MIN((int64_t)SGEMM_TILE, w->rows - r0);
		if (w->type == ISQ_TYPE_F32 && w->layout == LAYOUT_ROWS) {
			const uint8_t *src = (const uint8_t *)w->data + (size_t)r0 * w->row_bytes;
			isq_panel16_pack((const float *)(const void *)src, w->row_bytes / sizeof(float), nr, k, panel);
		} else {
			/* a repacked row is rebuilt in the panel's space, which the pack overwrites afterwards */
			for (int r = 0; r < nr; r++)
				tt->dequantize(weight_row(w, r0 + r, panel), rows + (size_t)r * k, k);
			isq_panel16_pack(rows, (size_t)k, nr, k, panel);
		}
		isq_sgemm_panel16(k, j->n_tok, j->x, (size_t)k, panel, j->y + r0, (size_t)w->rows, nr);
		for (int t = 0; j->bias && t < j->n_tok; t++)
			for (int64_t r = r0; r < r0 + nr; r++)
				j->y[(size_t)t * w->rows + r] += j->bias[r];
	}
}

/* Rows [b, e) of an F32/F16/BF16 matrix for every token, activations kept in F32. */
static void mm_wide(void *ctx, int64_t b, int64_t e, int worker)
{
	(void)worker;
	struct mm_job *j = ctx;
	const struct isq_fw_tensor *w = j->w;
	for (int t = 0; t < j->n_tok; t++) {
		float *y = j->y + (size_t)t * w->rows;
		isq_gemv_wide(w->type, w->cols, (const uint8_t *)w->data + (size_t)b * w->row_bytes, w->row_bytes, e - b,
			      j->x + (size_t)t * w->cols, y + b);
		for (int64_t r = b; j->bias && r < e; r++)
			y[r] += j->bias[r];
	}
}

/* Groups [b, e) of a repacked matrix for every token (a group's codes stay in L1 across tokens). */
static void mm_x8(void *ctx, int64_t b, int64_t e, int worker)
{
	(void)worker;
	struct mm_job *j = ctx;
	const struct isq_fw_tensor *w = j->w;
	int64_t nb = w->cols / 32;
	struct isq_q8_act act = { .q = j->xq, .row_bytes = j->xq_row, .d = j->c->xd, .sums = j->c->xsums, .n = j->n_tok };
	/* Q8_K's sub-block sums (8 int16 per 256 columns) fit the Q8_0 sums' space */
	struct isq_q8k_act kact = { .q = j->xq, .row_bytes = j->xq_row, .bs = (const int16_t *)j->c->xsums, .n = j->n_tok };
	if (w->layout == LAYOUT_Q4_KX8)
		isq_gemm_q4_Kx8(w->data, nb / 8, b, e, &kact, j->y, (size_t)w->rows);
	else if (w->layout == LAYOUT_Q6_KX8)
		isq_gemm_q6_Kx8(w->data, nb / 8, b, e, &kact, j->y, (size_t)w->rows);
	else if (w->layout == LAYOUT_Q4_0X8)
		isq_gemm_q4_0x8(w->data, nb, b, e, &act, j->y, (size_t)w->rows);
	else if (w->layout == LAYOUT_IQ4_NLX8)
		isq_gemm_iq4_nlx8(w->data, nb, b, e, &act, j->y, (size_t)w->rows);
	else
		isq_gemm_q8_0x8(w->data, nb, b, e, &act, j->y, (size_t)w->rows);
	for (int t = 0; j->bias && t < j->n_tok; t++)
		for (int64_t r = 8 * b; r < 8 * e; r++)
			j->y[(size_t)t * w->rows + r] += j->bias[r];
}

static void cpu_matmul(struct isq_backend *be, const struct isq_fw_tensor *w, const float *bias, const float *x,
		       float *y, int n_tok)
{
	struct cpu *c = cpu_of(be);
	struct mm_job j = { .w = w, .tt = isq_type_traits(w->type), .bias = bias, .x = x, .y = y, .n_tok = n_tok, .c = c };
	/* repacked matrices multiply in integers at any token count (see the x8 branch below) */
	if (n_tok >= SGEMM_MIN_TOK && c->tiles && w->layout == LAYOUT_ROWS) {
		int64_t n_tiles = (w->rows + SGEMM_TILE - 1) / SGEMM_TILE;
		isq_pool_for(c->pool, n_tiles, 1, mm_panels, &j);
		return;
	}
	if (w->type == ISQ_TYPE_F32 || w->type == ISQ_TYPE_F16 || w->type == ISQ_TYPE_BF16) {
		/*
		 * Activations stay in F32: rounding them to F16 or BF16 (as ggml's
		 * vec_dot_type does) costs agreement with the F32 original and
		 * saves nothing, since the rows are widened on the fly anyway.
		 */
		struct isq_pool *pool = (int64_t)w->rows * w->cols * n_tok >= PARALLEL_MIN_WORK ? c->pool : NULL;
		int nt = isq_pool_size(pool);
		isq_pool_for(pool, w->rows, nt > 1 ? ISQ_MAX((int64_t)4, (w->rows / (16 * nt)) * 4) : w->rows,
			     mm_wide, &j);
		return;
	}
	/*
	 * BF16 activations keep 8 bits of mantissa, which costs BF16 checkpoints
	 * agreement with their F32 originals; widening the weights is exact.
	 */
	j.widen = w->type == ISQ_TYPE_BF16;
	if (j.widen)
		j.tt = isq_type_traits(ISQ_TYPE_F32);
	j.vt = isq_type_traits(j.tt->vec_dot_type);
	j.xq_row = (size_t)(w->cols / j.vt->blck) * j.vt->type_size;
	ISQ_ASSERT(n_tok <= c->n_tok_max && (size_t)n_tok * j.xq_row <= c->xq_cap);
	j.xq = c->xq;
	struct isq_pool *pool = (int64_t)w->rows * w->cols * n_tok >= PARALLEL_MIN_WORK ? c->pool : NULL;
	isq_pool_for(n_tok > 1 ? pool : NULL, n_tok, 1, mm_quantize, &j);
	int nt = isq_pool_size(pool);
	if (w->layout != LAYOUT_ROWS) {
		int64_t groups = w->rows / 8;
		isq_pool_for(pool, groups, nt > 1 ? ISQ_MAX((int64_t)1, groups / (4 * nt)) : groups, mm_x8, &j);
		return;
	}
	/* a few chunks per thread balance uneven cores without much handout traffic */
	int64_t grain = nt > 1 ? ISQ_MAX((int64_t)1, w->rows / (4 * nt)) : w->rows;
	j.tiled = n_tok > 1 && isq_gemm_supported(w->type);
	isq_pool_for(pool, w->rows, grain, mm_rows, &j);
}

static void cpu_rope(struct isq_backend *be, float *x, int n_tok, int n_head, int head_dim, int64_t pos0,
		     const float *inv_freq, int neox)
{
	(void)be;
	int half = head_dim / 2;
	for (int t = 0; t < n_tok; t++) {
		float p = (float)(pos0 + t);
		for (int i = 0; i < half; i++) {
			/* float, as HF and ggml compute the angle: matching them matters more than precision */
			float a = p * inv_freq[i];
			float cs = cosf(a), sn = sinf(a);
			for (int h = 0; h < n_head; h++) {
				float *v = x + ((size_t)t * n_head + h) * head_dim;
				int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
				float x0 = v[i0], x1 = v[i1];
				v[i0] = x0 * cs - x1 * sn;
				v[i1] = x0 * sn + x1 * cs;
			}
		}
	}
}

struct attn_job {
	struct cpu *c;
	const struct isq_attn_shape *s;
	const float *q;
	const void *kc, *vc;
	float *out;
};

static inline const float *kv_row(const void *cache, enum isq_type t, int64_t pos, int64_t stride, int64_t off,
				  int n, float *tmp)
{
	if (t == ISQ_TYPE_F32)
		return (const float *)cache + pos * stride + off;
	isq_fp16_to_fp32_row((const uint16_t *)cache + pos * stride + off, tmp, (size_t)n);
	return tmp;
}

static void attn_heads(void *ctx, int64_t b, int64_t e, int worker)
{
	struct attn_job *j = ctx;
	const struct isq_attn_shape *s = j->s;
	int hd = s->head_dim;
	int64_t kv_stride = (int64_t)s->n_head_kv * hd;
	float *scores = j->c->scratch + (size_t)worker * j->c->scratch_per_worker;
	float *tmp = scores + j->c->n_ctx;
	float scale = 1.0f / sqrtf((float)hd);
	int group = s->n_head / s->n_head_kv;
	int avx2 = isq_cpu_has_avx2();
	float (*dot)(const float *, const float *, int) = avx2 ? isq_attn_dot_avx2 : isq_attn_dot_ref;
	void (*axpy)(float *, float, const float *, int) = avx2 ? isq_attn_axpy_avx2 : isq_attn_axpy_ref;
	for (int64_t th = b; th < e; th++) {
		int t = (int)(th / s->n_head), h = (int)(th % s->n_head);
		int64_t n_pos = s->pos0 + t + 1;
		int64_t off = (int64_t)(h / group) * hd;
		const float *q = j->q + ((size_t)t * s->n_head + h) * hd;
		float mx = -INFINITY;
		for (int64_t p = 0; p < n_pos; p++) {
			const float *k = kv_row(j->kc, s->kv_type, p, kv_stride, off, hd, tmp);
			scores[p] = dot(q, k, hd) * scale;
			mx = scores[p] > mx ? scores[p] : mx;
		}
		float sum = 0;
		for (int64_t p = 0; p < n_pos; p++) {
			scores[p] = expf(scores[p] - mx);
			sum += scores[p];
		}
		float inv = 1.0f / sum;
		float *o = j->out + ((size_t)t * s->n_head + h) * hd;
		for (int i = 0; i < hd; i++)
			o[i] = 0;
		for (int64_t p = 0; p < n_pos; p++) {
			const float *v = kv_row(j->vc, s->kv_type, p, kv_stride, off, hd, tmp);
			axpy(o, scores[p] * inv, v, hd);
		}
	}
}

static void cpu_attention(struct isq_backend *be, const struct isq_attn_shape *s, const float *q, const float *k,
			  const float *v, void *k_cache, void *v_cache, float *out)
{
	struct cpu *c = cpu_of(be);
	ISQ_ASSERT(s->pos0 + s->n_tok <= s->n_ctx && s->n_ctx <= c->n_ctx && s->head_dim <= c->max_cols);
	ISQ_ASSERT(s->n_head_kv > 0 && s->n_head % s->n_head_kv == 0);
	size_t row = (size_t)s->n_head_kv * s->head_dim;
	size_t n = row * (size_t)s->n_tok;
	if (s->kv_type == ISQ_TYPE_F32) {
		memcpy((float *)k_cache + (size_t)s->pos0 * row, k, n * sizeof(float));
		memcpy((float *)v_cache + (size_t)s->pos0 * row, v, n * sizeof(float));
	} else {
		isq_fp32_to_fp16_row(k, (uint16_t *)k_cache + (size_t)s->pos0 * row, n);
		isq_fp32_to_fp16_row(v, (uint16_t *)v_cache + (size_t)s->pos0 * row, n);
	}
	struct attn_job j = { c, s, q, k_cache, v_cache, out };
	int64_t work = (int64_t)s->n_tok * s->n_head * (s->pos0 + s->n_tok) * s->head_dim;
	isq_pool_for(work >= PARALLEL_MIN_WORK ? c->pool : NULL, (int64_t)s->n_tok * s->n_head, 1, attn_heads, &j);
}

static void cpu_swiglu(struct isq_backend *be, float *gate, const float *up, int64_t n)
{
	(void)be;
	for (int64_t i = 0; i < n; i++)
		gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static void cpu_add(struct isq_backend *be, float *y, const float *x, int64_t n)
{
	(void)be;
	for (int64_t i = 0; i < n; i++)
		y[i] += x[i];
}

static void cpu_destroy(struct isq_backend *be)
{
	struct cpu *c = cpu_of(be);
	if (c) {
		isq_pool_free(c->pool);
		free(c->xq);
		free(c->scratch);
		free(c->tiles);
		free(c->xsums);
		free(c->xd);
		free(c);
	}
	free(be);
}

static const struct isq_backend_ops cpu_ops = {
	.reserve = cpu_reserve,
	.alloc = cpu_alloc,
	.free = cpu_free,
	.write = cpu_copy,
	.read = cpu_copy,
	.weight_load = cpu_weight_load,
	.weight_unload = cpu_weight_unload,
	.get_rows = cpu_get_rows,
	.rms_norm = cpu_rms_norm,
	.matmul = cpu_matmul,
	.rope = cpu_rope,
	.attention = cpu_attention,
	.swiglu = cpu_swiglu,
	.add = cpu_add,
	.destroy = cpu_destroy,
};

int isq_backend_cpu_new(int n_threads, struct isq_backend **out, struct isq_errbuf *e)
{
	*out = NULL;
	isq_types_init();
	struct isq_backend *be = calloc(1, sizeof(*be));
	struct cpu *c = calloc(1, sizeof(*c));
	if (!be || !c) {
		free(be);
		free(c);
		return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	}
	be->ops = &cpu_ops;
	be->name = "cpu";
	be->priv = c;
	c->pool = isq_pool_new(n_threads < 1 ? 1 : n_threads);
	if (!c->pool) {
		cpu_destroy(be);
		return isq_errbuf_set(e, ISQ_ENOMEM, "out of memory");
	}
	c->n_threads = isq_pool_size(c->pool);
	const char *nr = getenv("ISQ_NO_REPACK");
	c->repack = !(nr && *nr && strcmp(nr, "0"));
	be->n_threads = c->n_threads;
	*out = be;
	return 0;
}

/* ---- by name ------------------------------------------------------------- */

static const char *const known_backends[] = { "cpu", "cuda", "vulkan" };

const char *isq_backend_list(void)
{
	return "cpu";
}

int isq_backend_new(const char *name, int n_threads, struct isq_backend **out, struct isq_errbuf *e)
{
	*out = NULL;
	if (!strcmp(name, "cpu"))
		return isq_backend_cpu_new(n_threads, out, e);
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(known_backends); i++)
		if (!strcmp(name, known_backends[i]))
			return isq_errbuf_set(e, ISQ_EUNSUPPORTED,
					      "backend '%s' is not built in (available: %s)", name, isq_backend_list());
	return isq_errbuf_set(e, ISQ_EINVAL, "unknown backend '%s' (available: %s)", name, isq_backend_list());
}

void isq_backend_free(struct isq_backend *be)
{
	if (be)
		be->ops->destroy(be);
}
