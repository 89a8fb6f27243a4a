/*
 * mrs.c - the layer-entry API of mrs.h (plan, quantize, open, dequantize),
 * scale-dtype helpers, and the registration of the mistral.rs rows of the
 * type table.  The formats themselves are in hqq.c, afq.c, fp8.c, f8q8.c
 * and mxfp4-uqff.c.
 */
#include "mrs-impl.h"

#include "cpu.h"

/* Largest element count accepted: keeps every byte count far from overflow. */
#define MRS_MAX_NUMEL ((uint64_t)1 << 48)

const struct mrs_kern isq_mrs_kern_ref = {
	.afq_eval = isq_mrs_afq_eval_ref,
	.afq_codes = isq_mrs_afq_codes_ref,
	.afq_sums = isq_mrs_afq_sums_ref,
	.hqq_step = isq_mrs_hqq_step_ref,
	.hqq_eval = isq_mrs_hqq_eval_ref,
	.fp8_err_row = isq_mrs_fp8_err_row_ref,
	.mx_eval = isq_mrs_mx_eval_ref,
	.q8_eval = isq_mrs_q8_eval_ref,
	.deq_hqq4 = isq_mrs_deq_hqq4_ref,
	.deq_hqq8 = isq_mrs_deq_hqq8_ref,
	.deq_f8q8 = isq_mrs_deq_f8q8_ref,
	.deq_fp8 = isq_mrs_deq_fp8_ref,
	.deq_afq = { [2] = isq_mrs_deq_afq2_ref, [3] = isq_mrs_deq_afq3_ref, [4] = isq_mrs_deq_afq4_ref,
		     [6] = isq_mrs_deq_afq6_ref, [8] = isq_mrs_deq_afq8_ref },
	.dot_hqq4 = isq_mrs_dot_hqq4_ref,
	.dot_hqq8 = isq_mrs_dot_hqq8_ref,
	.dot_f8q8 = isq_mrs_dot_f8q8_ref,
	.dot_fp8 = isq_mrs_dot_fp8_ref,
	.dot_afq = { [2] = isq_mrs_dot_afq2_ref, [3] = isq_mrs_dot_afq3_ref, [4] = isq_mrs_dot_afq4_ref,
		     [6] = isq_mrs_dot_afq6_ref, [8] = isq_mrs_dot_afq8_ref },
};

static const struct mrs_kern *current;

const struct mrs_kern *isq_mrs_kern(void)
{
	if (!current)
		isq_types_init(); /* registers, which sets current */
	return current ? current : &isq_mrs_kern_ref;
}

void isq_mrs_register(struct isq_type_traits *tab, int use_ref)
{
	int fast = !use_ref && MRS_X86 && isq_cpu_has_avx2();
	const struct mrs_kern *k = &isq_mrs_kern_ref;
#if MRS_X86
	if (fast)
		k = &isq_mrs_kern_avx2;
#endif
	current = k;
	isq_mrs_register_hqq(tab, k, fast);
	isq_mrs_register_afq(tab, k, fast);
	isq_mrs_register_fp8(tab, k, fast);
	isq_mrs_register_f8q8(tab, k, fast);
}

/* ---- dtypes ---- */

const char *isq_mrs_dtype_name(enum isq_mrs_dtype d)
{
	switch (d) {
	case ISQ_MRS_U8: return "U8";
	case ISQ_MRS_U32: return "U32";
	case ISQ_MRS_F32: return "F32";
	case ISQ_MRS_F16: return "F16";
	case ISQ_MRS_BF16: return "BF16";
	case ISQ_MRS_F8_E4M3: return "F8_E4M3";
	default: return "?";
	}
}

size_t isq_mrs_dtype_size(enum isq_mrs_dtype d)
{
	switch (d) {
	case ISQ_MRS_U8: case ISQ_MRS_F8_E4M3: return 1;
	case ISQ_MRS_F16: case ISQ_MRS_BF16: return 2;
	case ISQ_MRS_U32: case ISQ_MRS_F32: return 4;
	default: return 0;
	}
}

float isq_mrs_round_dtype(float v, enum isq_mrs_dtype dt)
{
	switch (dt) {
	case ISQ_MRS_F16:
		v = mrs_clamp(v, -65504.0f, 65504.0f);
		return isq_fp16_to_fp32(isq_fp32_to_fp16(v));
	case ISQ_MRS_BF16: {
		const float bmax = 3.38953139e38f; /* 0x7f7f */
		v = mrs_clamp(v, -bmax, bmax);
		return isq_bf16_to_fp32(isq_fp32_to_bf16(v));
	}
	default:
		return v;
	}
}

void isq_mrs_store_dtype(uint8_t *p, float v, enum isq_mrs_dtype dt)
{
	switch (dt) {
	case ISQ_MRS_F16: isq_put_le16(p, isq_fp32_to_fp16(v)); break;
	case ISQ_MRS_BF16: isq_put_le16(p, isq_fp32_to_bf16(v)); break;
	default: isq_put_le32(p, isq_f32_bits(v)); break;
	}
}

float isq_mrs_load_dtype(const uint8_t *p, enum isq_mrs_dtype dt)
{
	switch (dt) {
	case ISQ_MRS_F16: return isq_fp16_to_fp32(isq_le16(p));
	case ISQ_MRS_BF16: return isq_bf16_to_fp32(isq_le16(p));
	default: return mrs_f32(p);
	}
}

/* ---- plan ---- */

static void add(struct isq_mrs_layout *l, const char *suffix, enum isq_mrs_dtype dt, int rank,
		const uint64_t *shape)
{
	struct isq_mrs_tensor *t = &l->t[l->ntensors++];
	uint64_t n = 1;
	ISQ_ASSERT(l->ntensors <= ISQ_MRS_MAX_TENSORS);
	t->suffix = suffix;
	t->dtype = dt;
	t->rank = rank;
	for (int i = 0; i < rank; i++)
		n *= (t->shape[i] = shape[i]);
	t->nbytes = n * isq_mrs_dtype_size(dt);
	t->data = NULL;
}

static void add_scalar(struct isq_mrs_layout *l, const char *suffix, enum isq_mrs_dtype dt)
{
	add(l, suffix, dt, 0, NULL);
}

static int type_info(enum isq_type t, int *tag, int *bits)
{
	switch (t) {
	case ISQ_TYPE_HQQ4: *tag = 2, *bits = 4; return 0;
	case ISQ_TYPE_HQQ8: *tag = 2, *bits = 8; return 0;
	case ISQ_TYPE_FP8: *tag = 3, *bits = 8; return 0;
	case ISQ_TYPE_AFQ2: *tag = 4, *bits = 2; return 0;
	case ISQ_TYPE_AFQ3: *tag = 4, *bits = 3; return 0;
	case ISQ_TYPE_AFQ4: *tag = 4, *bits = 4; return 0;
	case ISQ_TYPE_AFQ6: *tag = 4, *bits = 6; return 0;
	case ISQ_TYPE_AFQ8: *tag = 4, *bits = 8; return 0;
	case ISQ_TYPE_F8Q8: *tag = 5, *bits = 8; return 0;
	case ISQ_TYPE_MXFP4: *tag = 6, *bits = 4; return 0;
	default: return -1;
	}
}

int isq_mrs_plan(struct isq_mrs_layout *l, enum isq_type type, int rank, const uint64_t *shape,
		 const struct isq_mrs_params *params, struct isq_errbuf *e)
{
	memset(l, 0, sizeof(*l));
	const char *tn = isq_type_name(type);
	if (type_info(type, &l->tag, &l->bits))
		return isq_errbuf_set(e, ISQ_EUNSUPPORTED, "type '%s' is not a mistral.rs format", tn);
	if (rank < 1 || rank > ISQ_MRS_MAX_RANK)
		return isq_errbuf_set(e, ISQ_EINVAL, "%s: rank %d is not 1..%d", tn, rank, ISQ_MRS_MAX_RANK);
	if (rank > 2 && (l->tag == 2 || l->tag == 3 || l->tag == 5))
		return isq_errbuf_set(e, ISQ_EUNSUPPORTED, "%s: stacked (rank %d) tensors are not loadable by mistral.rs",
				      tn, rank);
	uint64_t n = 1;
	for (int i = 0; i < rank; i++) {
		if (shape[i] < 1 || shape[i] > UINT32_MAX)
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: dimension %d is %llu", tn, i,
					      (unsigned long long)shape[i]);
		if (isq_mul_u64(n, shape[i], &n) || n > MRS_MAX_NUMEL)
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: tensor too large", tn);
		l->shape[i] = shape[i];
	}
	l->type = type;
	l->rank = rank;
	l->numel = n;
	l->cols = shape[rank - 1];
	l->rows = n / l->cols;
	int gs = params && params->group_size ? params->group_size : 64;
	enum isq_mrs_dtype sdt = params && params->scale_dtype ? params->scale_dtype : ISQ_MRS_BF16;
	uint64_t sh[ISQ_MRS_MAX_RANK], rk = (uint64_t)rank;
	memcpy(sh, shape, sizeof(uint64_t) * (size_t)rank);

	switch (l->tag) {
	case 2: { /* HQQ */
		if (gs != 32 && gs != 64 && gs != 128)
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: group size %d is not 32, 64 or 128", tn, gs);
		if (n % (uint64_t)gs)
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: %llu elements are not a multiple of the group size %d",
					      tn, (unsigned long long)n, gs);
		l->group_size = gs;
		uint64_t w[2] = { (uint64_t)(l->bits == 4 ? gs / 2 : gs), n / (uint64_t)gs };
		uint64_t m[2] = { 1, n / (uint64_t)gs };
		add(l, "weight", ISQ_MRS_U8, 2, w);
		add(l, "weight.scales", ISQ_MRS_F32, 2, m);
		add(l, "weight.zeros", ISQ_MRS_F32, 2, m);
		add(l, "weight.shape", ISQ_MRS_U32, 1, &rk);
		add_scalar(l, "weight.bits", ISQ_MRS_U8);
		add_scalar(l, "weight.group_size", ISQ_MRS_U32);
		add_scalar(l, "weight.axis", ISQ_MRS_U8);
		add_scalar(l, "weight.optimization_steps", ISQ_MRS_U32);
		add_scalar(l, "weight.round_zeros", ISQ_MRS_U8);
		add_scalar(l, "weight.channel_wise", ISQ_MRS_U8);
		break;
	}
	case 3: /* FP8 */
		add(l, "weight", ISQ_MRS_F8_E4M3, rank, sh);
		add_scalar(l, "weight.dequant_w_scale", ISQ_MRS_F32);
		add_scalar(l, "weight.dequant_x_scale", ISQ_MRS_F32);
		add_scalar(l, "weight.quant_scale", ISQ_MRS_F32);
		add_scalar(l, "weight.dtype", ISQ_MRS_U32);
		break;
	case 4: /* AFQ */
		if (gs != 32 && gs != 64 && gs != 128)
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: group size %d is not 32, 64 or 128", tn, gs);
		if (sdt != ISQ_MRS_F32 && sdt != ISQ_MRS_F16 && sdt != ISQ_MRS_BF16)
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: scales cannot be %s", tn, isq_mrs_dtype_name(sdt));
		if (l->cols % (uint64_t)gs)
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: row length %llu is not a multiple of the group size %d",
					      tn, (unsigned long long)l->cols, gs);
		l->group_size = gs;
		l->scale_dtype = sdt;
		sh[rank - 1] = l->cols * (uint64_t)l->bits / 32;
		add(l, "weight", ISQ_MRS_U32, rank, sh);
		sh[rank - 1] = l->cols / (uint64_t)gs;
		add(l, "weight.scales", sdt, rank, sh);
		add(l, "weight.biases", sdt, rank, sh);
		add_scalar(l, "weight.bits", ISQ_MRS_U8);
		add_scalar(l, "weight.group_size", ISQ_MRS_U8);
		break;
	case 5: { /* F8Q8 */
		uint64_t nb = (n + 31) / 32, bytes = 33 * nb;
		l->group_size = 32;
		add(l, "weight", ISQ_MRS_U8, 1, &bytes);
		add_scalar(l, "weight.num_blocks", ISQ_MRS_U32);
		add(l, "weight.shape", ISQ_MRS_U32, 1, &rk);
		if (nb > UINT32_MAX)
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: tensor too large", tn);
		break;
	}
	case 6: /* MXFP4 */
		if (l->cols % 32)
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: row length %llu is not a multiple of 32", tn,
					      (unsigned long long)l->cols);
		l->group_size = 32;
		sh[rank - 1] = l->cols / 2;
		add(l, "weight", ISQ_MRS_U8, rank, sh);
		sh[rank - 1] = l->cols / 32;
		add(l, "weight.scales", ISQ_MRS_U8, rank, sh);
		break;
	}
	add_scalar(l, "weight.format", ISQ_MRS_U8);
	return 0;
}

struct isq_mrs_tensor *isq_mrs_find(struct isq_mrs_layout *l, const char *suffix)
{
	for (int i = 0; i < l->ntensors; i++)
		if (!strcmp(l->t[i].suffix, suffix))
			return &l->t[i];
	return NULL;
}

uint64_t isq_mrs_nbytes(const struct isq_mrs_layout *l)
{
	uint64_t s = 0;
	for (int i = 0; i < l->ntensors; i++)
		s += l->t[i].nbytes;
	return s;
}

/* ---- quantize ---- */

static void put_scalar(struct isq_mrs_layout *l, const char *suffix, uint32_t v)
{
	struct isq_mrs_tensor *t = isq_mrs_find(l, suffix);
	ISQ_ASSERT(t && t->rank == 0);
	if (t->nbytes == 1)
		*(uint8_t *)t->data = (uint8_t)v;
	else
		isq_put_le32(t->data, v);
}

static void put_shape(struct isq_mrs_layout *l)
{
	struct isq_mrs_tensor *t = isq_mrs_find(l, "weight.shape");
	for (int i = 0; i < l->rank; i++)
		isq_put_le32((uint8_t *)t->data + 4 * i, (uint32_t)l->shape[i]);
}

int isq_mrs_quantize_begin(struct isq_mrs_layout *l, const float *src, const float *imatrix,
			   uint64_t imatrix_len, struct isq_errbuf *e)
{
	const char *tn = isq_type_name(l->type);
	if (!l->ntensors)
		return isq_errbuf_set(e, ISQ_EINVAL, "layout not planned");
	for (int i = 0; i < l->ntensors; i++)
		if (!l->t[i].data)
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: tensor '%s' has no buffer", tn, l->t[i].suffix);
	if (imatrix) {
		int ok = imatrix_len == l->cols ||
			 (l->rank == 3 && imatrix_len == l->shape[0] * l->cols);
		if (!ok)
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: %llu importance weights for rows of %llu", tn,
					      (unsigned long long)imatrix_len, (unsigned long long)l->cols);
		for (uint64_t j = 0; j < imatrix_len; j++)
			if (!(imatrix[j] >= 0.0f) || imatrix[j] - imatrix[j] != 0.0f)
				return isq_errbuf_set(e, ISQ_EINVAL, "%s: importance weight %g at %llu is negative or not finite",
						      tn, (double)imatrix[j], (unsigned long long)j);
	}
	for (uint64_t i = 0; i < l->numel; i++)
		if (src[i] - src[i] != 0.0f) /* NaN and Inf both give NaN */
			return isq_errbuf_set(e, ISQ_EINVAL, "%s: non-finite value %g at element %llu (row %llu, column %llu)",
					      tn, (double)src[i], (unsigned long long)i,
					      (unsigned long long)(i / l->cols), (unsigned long long)(i % l->cols));

	put_scalar(l, "weight.format", (uint32_t)l->tag);
	switch (l->tag) {
	case 2:
		put_shape(l);
		put_scalar(l, "weight.bits", (uint32_t)l->bits);
		put_scalar(l, "weight.group_size", (uint32_t)l->group_size);
		put_scalar(l, "weight.axis", 0);
		put_scalar(l, "weight.optimization_steps", 10);
		put_scalar(l, "weight.round_zeros", 0);
		put_scalar(l, "weight.channel_wise", 1);
		break;
	case 3: {
		const float *imp = imatrix;
		if (imp) { /* all-zero weights: unweighted, as for a group */
			float s = 0;
			for (uint64_t j = 0; j < l->cols; j++)
				s += imp[j];
			imp = s > 0 ? imp : NULL;
		}
		float qs = isq_mrs_fp8_choose(isq_mrs_kern(), src, (int64_t)l->rows, (int64_t)l->cols, imp);
		l->fp8_quant_scale = qs;
		put_scalar(l, "weight.dequant_w_scale", isq_f32_bits(1.0f / qs));
		put_scalar(l, "weight.dequant_x_scale", isq_f32_bits(1.0f / qs));
		put_scalar(l, "weight.quant_scale", isq_f32_bits(qs));
		put_scalar(l, "weight.dtype", 9);
		break;
	}
	case 4:
		put_scalar(l, "weight.bits", (uint32_t)l->bits);
		put_scalar(l, "weight.group_size", (uint32_t)l->group_size);
		break;
	case 5:
		put_scalar(l, "weight.num_blocks", (uint32_t)((l->numel + 31) / 32));
		put_shape(l);
		break;
	}
	return 0;
}

uint64_t isq_mrs_units(const struct isq_mrs_layout *l)
{
	switch (l->tag) {
	case 2: return l->numel / (uint64_t)l->group_size;
	case 5: return (l->numel + 31) / 32;
	default: return l->rows;
	}
}

void isq_mrs_quantize_units(const struct isq_mrs_layout *l, const float *src, const float *imatrix,
			    uint64_t imatrix_len, uint64_t u0, uint64_t u1)
{
	const struct mrs_kern *k = isq_mrs_kern();
	ISQ_ASSERT(u0 <= u1 && u1 <= isq_mrs_units(l));
	switch (l->tag) {
	case 2: isq_mrs_hqq_units(k, l, src, imatrix, imatrix_len, u0, u1); break;
	case 3: isq_mrs_fp8_units(l, src, u0, u1); break;
	case 4: isq_mrs_afq_units(k, l, src, imatrix, imatrix_len, u0, u1); break;
	case 5: isq_mrs_f8q8_units(k, l, src, imatrix, u0, u1); break;
	case 6: isq_mrs_mxfp4_units(k, l, src, imatrix, imatrix_len, u0, u1); break;
	}
}

int isq_mrs_quantize(struct isq_mrs_layout *l, const float *src, const float *imatrix, uint64_t imatrix_len,
		     struct isq_errbuf *e)
{
	int rc = isq_mrs_quantize_begin(l, src, imatrix, imatrix_len, e);
	if (rc)
		return rc;
	isq_mrs_quantize_units(l, src, imatrix, imatrix_len, 0, isq_mrs_units(l));
	return 0;
}

/* ---- open ---- */

static const struct isq_mrs_tensor *find_in(const struct isq_mrs_tensor *in, int n, const char *suffix)
{
	for (int i = 0; i < n; i++)
		if (in[i].suffix && !strcmp(in[i].suffix, suffix))
			return &in[i];
	return NULL;
}

/* A scalar metadata tensor's value; -1 (and a message) when absent or malformed. */
static int64_t scalar(const struct isq_mrs_tensor *in, int n, const char *suffix, enum isq_mrs_dtype dt,
		      struct isq_errbuf *e)
{
	const struct isq_mrs_tensor *t = find_in(in, n, suffix);
	if (!t) {
		isq_errbuf_set(e, ISQ_EFORMAT, "missing tensor '%s'", suffix);
		return -1;
	}
	if (t->dtype != dt || t->rank != 0 || t->nbytes != isq_mrs_dtype_size(dt) || !t->data) {
		isq_errbuf_set(e, ISQ_EFORMAT, "tensor '%s' is not a %s scalar", suffix, isq_mrs_dtype_name(dt));
		return -1;
	}
	return dt == ISQ_MRS_U8 ? *(const uint8_t *)t->data : (int64_t)isq_le32(t->data);
}

/* The logical shape from a U32 "weight.shape" tensor. */
static int shape_from(const struct isq_mrs_tensor *in, int n, int *rank, uint64_t *shape, struct isq_errbuf *e)
{
	const struct isq_mrs_tensor *t = find_in(in, n, "weight.shape");
	if (!t)
		return isq_errbuf_set(e, ISQ_EFORMAT, "missing tensor 'weight.shape'");
	if (t->dtype != ISQ_MRS_U32 || t->rank != 1 || t->shape[0] < 1 || t->shape[0] > ISQ_MRS_MAX_RANK ||
	    t->nbytes != 4 * t->shape[0] || !t->data)
		return isq_errbuf_set(e, ISQ_EFORMAT, "tensor 'weight.shape' is not a U32 vector of 1..%d dimensions",
				      ISQ_MRS_MAX_RANK);
	*rank = (int)t->shape[0];
	for (int i = 0; i < *rank; i++)
		shape[i] = isq_le32((const uint8_t *)t->data + 4 * i);
	return 0;
}

/* The payload's shape, with its last dimension converted back to elements (mul/div). */
static int shape_of_weight(const struct isq_mrs_tensor *in, int n, enum isq_mrs_dtype dt, uint64_t mul,
			   uint64_t div, int *rank, uint64_t *shape, struct isq_errbuf *e)
{
	const struct isq_mrs_tensor *t = find_in(in, n, "weight");
	if (!t)
		return isq_errbuf_set(e, ISQ_EFORMAT, "missing tensor 'weight'");
	if (t->dtype != dt || t->rank < 1 || t->rank > ISQ_MRS_MAX_RANK)
		return isq_errbuf_set(e, ISQ_EFORMAT, "tensor 'weight' is not %s of rank 1..%d",
				      isq_mrs_dtype_name(dt), ISQ_MRS_MAX_RANK);
	*rank = t->rank;
	memcpy(shape, t->shape, sizeof(uint64_t) * (size_t)t->rank);
	uint64_t last = shape[*rank - 1];
	if (last > UINT32_MAX || (last * mul) % div)
		return isq_errbuf_set(e, ISQ_EFORMAT, "tensor 'weight' has a last dimension of %llu",
				      (unsigned long long)last);
	shape[*rank - 1] = last * mul / div;
	return 0;
}

int isq_mrs_open(struct isq_mrs_layout *l, const struct isq_mrs_tensor *in, int n, struct isq_errbuf *e)
{
	int64_t tag = scalar(in, n, "weight.format", ISQ_MRS_U8, e), v;
	int rank = 0, rc;
	uint64_t shape[ISQ_MRS_MAX_RANK];
	struct isq_mrs_params p = { 0, ISQ_MRS_DTYPE_DEFAULT };
	enum isq_type type;
	memset(l, 0, sizeof(*l));
	if (tag < 0)
		return ISQ_EFORMAT;
	switch (tag) {
	case 0:
	case 1:
		return isq_errbuf_set(e, ISQ_EUNSUPPORTED, "format tag %d (%s) is not a mistral.rs-only format",
				      (int)tag, tag ? "unquantized" : "GGUF");
	case 2:
		if ((v = scalar(in, n, "weight.bits", ISQ_MRS_U8, e)) < 0)
			return ISQ_EFORMAT;
		if (v != 4 && v != 8)
			return isq_errbuf_set(e, ISQ_EFORMAT, "HQQ with %d bits", (int)v);
		type = v == 4 ? ISQ_TYPE_HQQ4 : ISQ_TYPE_HQQ8;
		if ((v = scalar(in, n, "weight.axis", ISQ_MRS_U8, e)) < 0)
			return ISQ_EFORMAT;
		if (v != 0)
			return isq_errbuf_set(e, v == 1 ? ISQ_EUNSUPPORTED : ISQ_EFORMAT, "HQQ along axis %d", (int)v);
		if ((v = scalar(in, n, "weight.group_size", ISQ_MRS_U32, e)) < 0)
			return ISQ_EFORMAT;
		if (v != 32 && v != 64 && v != 128)
			return isq_errbuf_set(e, ISQ_EFORMAT, "HQQ group size %lld", (long long)v);
		p.group_size = (int)v;
		if (scalar(in, n, "weight.optimization_steps", ISQ_MRS_U32, e) < 0 ||
		    scalar(in, n, "weight.round_zeros", ISQ_MRS_U8, e) < 0 ||
		    scalar(in, n, "weight.channel_wise", ISQ_MRS_U8, e) < 0)
			return ISQ_EFORMAT;
		if ((rc = shape_from(in, n, &rank, shape, e)))
			return rc;
		break;
	case 3:
		if ((v = scalar(in, n, "weight.dtype", ISQ_MRS_U32, e)) < 0)
			return ISQ_EFORMAT;
		if (v != 9)
			return isq_errbuf_set(e, ISQ_EFORMAT, "FP8 weight with dtype code %lld (want 9, F8E4M3)",
					      (long long)v);
		type = ISQ_TYPE_FP8;
		if ((rc = shape_of_weight(in, n, ISQ_MRS_F8_E4M3, 1, 1, &rank, shape, e)))
			return rc;
		break;
	case 4: {
		static const enum isq_type afq[9] = { [2] = ISQ_TYPE_AFQ2, [3] = ISQ_TYPE_AFQ3, [4] = ISQ_TYPE_AFQ4,
						      [6] = ISQ_TYPE_AFQ6, [8] = ISQ_TYPE_AFQ8 };
		if ((v = scalar(in, n, "weight.bits", ISQ_MRS_U8, e)) < 0)
			return ISQ_EFORMAT;
		if (v > 8 || !afq[v])
			return isq_errbuf_set(e, ISQ_EFORMAT, "AFQ with %d bits", (int)v);
		type = afq[v];
		int bits = (int)v;
		if ((v = scalar(in, n, "weight.group_size", ISQ_MRS_U8, e)) < 0)
			return ISQ_EFORMAT;
		p.group_size = (int)v;
		if (v != 32 && v != 64 && v != 128)
			return isq_errbuf_set(e, ISQ_EFORMAT, "AFQ group size %d", (int)v);
		const struct isq_mrs_tensor *s = find_in(in, n, "weight.scales");
		if (!s)
			return isq_errbuf_set(e, ISQ_EFORMAT, "missing tensor 'weight.scales'");
		p.scale_dtype = s->dtype;
		if ((rc = shape_of_weight(in, n, ISQ_MRS_U32, 32, (uint64_t)bits, &rank, shape, e)))
			return rc;
		break;
	}
	case 5:
		type = ISQ_TYPE_F8Q8;
		if ((rc = shape_from(in, n, &rank, shape, e)))
			return rc;
		if (scalar(in, n, "weight.num_blocks", ISQ_MRS_U32, e) < 0)
			return ISQ_EFORMAT;
		break;
	case 6:
		type = ISQ_TYPE_MXFP4;
		if ((rc = shape_of_weight(in, n, ISQ_MRS_U8, 2, 1, &rank, shape, e)))
			return rc;
		break;
	default:
		return isq_errbuf_set(e, ISQ_EFORMAT, "unknown format tag %d", (int)tag);
	}
	if (isq_mrs_plan(l, type, rank, shape, &p, e)) {
		if (e) {
			isq_errbuf_prefix(e, "entry does not describe a valid tensor");
			e->code = ISQ_EFORMAT;
		}
		return ISQ_EFORMAT;
	}
	/* every planned tensor present, as planned; nothing else under "weight" */
	for (int i = 0; i < l->ntensors; i++) {
		struct isq_mrs_tensor *t = &l->t[i];
		const struct isq_mrs_tensor *s = find_in(in, n, t->suffix);
		if (!s)
			return isq_errbuf_set(e, ISQ_EFORMAT, "missing tensor '%s'", t->suffix);
		int same = s->dtype == t->dtype && s->rank == t->rank && s->nbytes == t->nbytes && s->data;
		for (int d = 0; same && d < t->rank; d++)
			same = s->shape[d] == t->shape[d];
		if (!same)
			return isq_errbuf_set(e, ISQ_EFORMAT, "tensor '%s' is not %s of the expected shape",
					      t->suffix, isq_mrs_dtype_name(t->dtype));
		t->data = s->data;
	}
	for (int i = 0; i < n; i++) {
		const char *sfx = in[i].suffix;
		if (!sfx || strncmp(sfx, "weight", 6) || (sfx[6] && sfx[6] != '.'))
			continue; /* the bias and other keys are the caller's */
		int found = 0;
		for (int j = 0; j < l->ntensors; j++)
			found |= !strcmp(sfx, l->t[j].suffix);
		if (!found)
			return isq_errbuf_set(e, ISQ_EFORMAT, "unexpected tensor '%s' in a %s entry", sfx,
					      isq_type_name(type));
		for (int j = 0; j < i; j++)
			if (in[j].suffix && !strcmp(in[j].suffix, sfx))
				return isq_errbuf_set(e, ISQ_EFORMAT, "tensor '%s' appears twice", sfx);
	}
	if (tag == 5 && (uint64_t)scalar(in, n, "weight.num_blocks", ISQ_MRS_U32, e) != (l->numel + 31) / 32)
		return isq_errbuf_set(e, ISQ_EFORMAT, "F8Q8 block count does not match the shape");
	return 0;
}

/* ---- dequantize ---- */

void isq_mrs_dequantize_rows(const struct isq_mrs_layout *l, uint64_t row0, uint64_t nrows, float *dst)
{
	ISQ_ASSERT(row0 <= l->rows && nrows <= l->rows - row0);
	switch (l->tag) {
	case 2: isq_mrs_hqq_deq_rows(l, row0, nrows, dst); break;
	case 3: isq_mrs_fp8_deq_rows(l, row0, nrows, dst); break;
	case 4: isq_mrs_afq_deq_rows(l, row0, nrows, dst); break;
	case 5: isq_mrs_f8q8_deq_rows(l, row0, nrows, dst); break;
	case 6: isq_mrs_mxfp4_deq_rows(l, row0, nrows, dst); break;
	}
}

void isq_mrs_dequantize(const struct isq_mrs_layout *l, float *dst)
{
	isq_mrs_dequantize_rows(l, 0, l->rows, dst);
}

int isq_mrs_dequantize_any(enum isq_type t, const void *bytes, size_t n, float *dst, uint64_t dst_cap,
			   uint64_t *count, struct isq_errbuf *e)
{
	const uint8_t *b = bytes;
	struct isq_mrs_layout plan, l;
	uint64_t shape[ISQ_MRS_MAX_RANK];
	*count = 0;
	if (n < 1 || b[0] < 1 || b[0] > ISQ_MRS_MAX_RANK)
		return isq_errbuf_set(e, ISQ_EFORMAT, "bad rank");
	int rank = b[0];
	size_t off = 1;
	if (n < off + 4 * (size_t)rank + 2)
		return isq_errbuf_set(e, ISQ_EFORMAT, "truncated header");
	for (int i = 0; i < rank; i++, off += 4)
		shape[i] = isq_le32(b + off);
	struct isq_mrs_params p = { b[off], (enum isq_mrs_dtype)b[off + 1] };
	off += 2;
	if (p.scale_dtype > ISQ_MRS_F8_E4M3)
		return isq_errbuf_set(e, ISQ_EFORMAT, "bad scale dtype");
	int rc = isq_mrs_plan(&plan, t, rank, shape, &p, e);
	if (rc)
		return rc;
	for (int i = 0; i < plan.ntensors; i++) {
		if (plan.t[i].nbytes > n - off)
			return isq_errbuf_set(e, ISQ_EFORMAT, "truncated at tensor '%s'", plan.t[i].suffix);
		plan.t[i].data = (void *)(uintptr_t)(b + off); /* only read */
		off += plan.t[i].nbytes;
	}
	if ((rc = isq_mrs_open(&l, plan.t, plan.ntensors, e)))
		return rc;
	*count = l.numel;
	if (l.numel > dst_cap)
		return isq_errbuf_set(e, ISQ_EINVAL, "%llu elements do not fit", (unsigned long long)l.numel);
	isq_mrs_dequantize(&l, dst);
	return 0;
}
