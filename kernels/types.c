/* types.c - the type-traits table and lookups. */
#include "types.h"

#include <ctype.h>
#include <pthread.h>

/* Row helper: geometry only; kernels are filled in below the table by their families. */
#define ROW(T, nm, gg, al, id, bl, sz, q) \
	[T] = { .type = T, .name = nm, .ggml_name = gg, .aliases = al, .ggml_id = id, .blck = bl, \
		.type_size = sz, .is_quantized = q, .vec_dot_type = ISQ_TYPE_NONE }

static struct isq_type_traits table[ISQ_TYPE_COUNT] = {
	ROW(ISQ_TYPE_F32, "f32", "f32", "float32 fp32", 0, 1, 4, 0),
	ROW(ISQ_TYPE_F16, "f16", "f16", "float16 fp16 half", 1, 1, 2, 0),
	ROW(ISQ_TYPE_Q4_0, "q4_0", "q4_0", "q40", 2, 32, 18, 1),
	ROW(ISQ_TYPE_Q4_1, "q4_1", "q4_1", "q41", 3, 32, 20, 1),
	ROW(ISQ_TYPE_Q5_0, "q5_0", "q5_0", "q50", 6, 32, 22, 1),
	ROW(ISQ_TYPE_Q5_1, "q5_1", "q5_1", "q51", 7, 32, 24, 1),
	ROW(ISQ_TYPE_Q8_0, "q8_0", "q8_0", "q80", 8, 32, 34, 1),
	ROW(ISQ_TYPE_Q8_1, "q8_1", "q8_1", "q81", 9, 32, 36, 1),
	ROW(ISQ_TYPE_Q2_K, "q2_k", "q2_K", "q2k", 10, 256, 84, 1),
	ROW(ISQ_TYPE_Q3_K, "q3_k", "q3_K", "q3k", 11, 256, 110, 1),
	ROW(ISQ_TYPE_Q4_K, "q4_k", "q4_K", "q4k", 12, 256, 144, 1),
	ROW(ISQ_TYPE_Q5_K, "q5_k", "q5_K", "q5k", 13, 256, 176, 1),
	ROW(ISQ_TYPE_Q6_K, "q6_k", "q6_K", "q6k", 14, 256, 210, 1),
	ROW(ISQ_TYPE_Q8_K, "q8_k", "q8_K", "q8k", 15, 256, 292, 1),
	ROW(ISQ_TYPE_IQ2_XXS, "iq2_xxs", "iq2_xxs", "", 16, 256, 66, 1),
	ROW(ISQ_TYPE_IQ2_XS, "iq2_xs", "iq2_xs", "", 17, 256, 74, 1),
	ROW(ISQ_TYPE_IQ3_XXS, "iq3_xxs", "iq3_xxs", "", 18, 256, 98, 1),
	ROW(ISQ_TYPE_IQ1_S, "iq1_s", "iq1_s", "", 19, 256, 50, 1),
	ROW(ISQ_TYPE_IQ4_NL, "iq4_nl", "iq4_nl", "iq4nl", 20, 32, 18, 1),
	ROW(ISQ_TYPE_IQ3_S, "iq3_s", "iq3_s", "", 21, 256, 110, 1),
	ROW(ISQ_TYPE_IQ2_S, "iq2_s", "iq2_s", "", 22, 256, 82, 1),
	ROW(ISQ_TYPE_IQ4_XS, "iq4_xs", "iq4_xs", "iq4xs", 23, 256, 136, 1),
	ROW(ISQ_TYPE_I8, "i8", "i8", "int8", 24, 1, 1, 0),
	ROW(ISQ_TYPE_I16, "i16", "i16", "int16", 25, 1, 2, 0),
	ROW(ISQ_TYPE_I32, "i32", "i32", "int32", 26, 1, 4, 0),
	ROW(ISQ_TYPE_I64, "i64", "i64", "int64", 27, 1, 8, 0),
	ROW(ISQ_TYPE_F64, "f64", "f64", "float64 fp64 double", 28, 1, 8, 0),
	ROW(ISQ_TYPE_IQ1_M, "iq1_m", "iq1_m", "", 29, 256, 56, 1),
	ROW(ISQ_TYPE_BF16, "bf16", "bf16", "bfloat16", 30, 1, 2, 0),
	ROW(ISQ_TYPE_TQ1_0, "tq1_0", "tq1_0", "", 34, 256, 54, 1),
	ROW(ISQ_TYPE_TQ2_0, "tq2_0", "tq2_0", "", 35, 256, 66, 1),
	ROW(ISQ_TYPE_MXFP4, "mxfp4", "mxfp4", "mxfp4_moe", 39, 32, 17, 1),
	ROW(ISQ_TYPE_NVFP4, "nvfp4", "nvfp4", "", 40, 64, 36, 1),
	ROW(ISQ_TYPE_Q1_0, "q1_0", "q1_0", "", 41, 128, 18, 1),
	ROW(ISQ_TYPE_Q2_0, "q2_0", "q2_0", "", 42, 64, 18, 1),
	/*
	 * mistral.rs formats: geometry describes the elements only (blck 1 and the
	 * packed bits); their per-group metadata lives in separate UQFF tensors and
	 * is accounted for by their kernels in [3/9].
	 */
	ROW(ISQ_TYPE_HQQ4, "hqq4", NULL, "", -1, 1, 0, 1),
	ROW(ISQ_TYPE_HQQ8, "hqq8", NULL, "", -1, 1, 0, 1),
	ROW(ISQ_TYPE_FP8, "fp8", NULL, "f8e4m3 fp8_e4m3 f8_e4m3", -1, 1, 1, 1),
	ROW(ISQ_TYPE_F8Q8, "f8q8", NULL, "", -1, 32, 33, 1),
	ROW(ISQ_TYPE_AFQ2, "afq2", NULL, "", -1, 1, 0, 1),
	ROW(ISQ_TYPE_AFQ3, "afq3", NULL, "", -1, 1, 0, 1),
	ROW(ISQ_TYPE_AFQ4, "afq4", NULL, "", -1, 1, 0, 1),
	ROW(ISQ_TYPE_AFQ6, "afq6", NULL, "", -1, 1, 0, 1),
	ROW(ISQ_TYPE_AFQ8, "afq8", NULL, "", -1, 1, 0, 1),
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int force_ref;

/* Implemented in kernels/register.c: each kernel family fills in its rows. */
void isq_kernels_register(struct isq_type_traits *tab, int use_ref);

static void do_init(void)
{
	const char *env = getenv("ISQ_FORCE_REF");
	if (env && *env && strcmp(env, "0"))
		force_ref = 1;
	isq_kernels_register(table, force_ref);
}

void isq_types_init(void)
{
	pthread_once(&init_once, do_init);
}

void isq_types_force_ref(int on)
{
	isq_types_init();
	force_ref = on;
	isq_kernels_register(table, force_ref);
}

const struct isq_type_traits *isq_type_traits(enum isq_type t)
{
	if ((int)t < 0 || t >= ISQ_TYPE_COUNT || !table[t].name)
		return NULL;
	isq_types_init();
	return &table[t];
}

const struct isq_type_traits *isq_type_from_ggml(uint32_t id)
{
	if (id >= ISQ_GGML_TYPE_COUNT)
		return NULL;
	return isq_type_traits((enum isq_type)id);
}

const char *isq_type_name(enum isq_type t)
{
	const struct isq_type_traits *tt = isq_type_traits(t);
	return tt ? tt->name : "?";
}

static int name_eq(const char *a, const char *b, size_t blen)
{
	size_t i;
	for (i = 0; i < blen; i++)
		if (!a[i] || tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
			return 0;
	return a[i] == '\0';
}

int isq_type_parse(const char *s, enum isq_type *out, const char **suggest)
{
	int best = 1000;
	const char *bestname = NULL;
	for (int t = 0; t < ISQ_TYPE_COUNT; t++) {
		const struct isq_type_traits *tt = &table[t];
		if (!tt->name)
			continue;
		if (name_eq(s, tt->name, strlen(tt->name)) ||
		    (tt->ggml_name && name_eq(s, tt->ggml_name, strlen(tt->ggml_name)))) {
			*out = (enum isq_type)t;
			return 0;
		}
		for (const char *a = tt->aliases; a && *a;) {
			size_t len = strcspn(a, " ");
			if (len && name_eq(s, a, len)) {
				*out = (enum isq_type)t;
				return 0;
			}
			a += len;
			while (*a == ' ')
				a++;
		}
		int d = isq_edit_distance(s, tt->name);
		if (d < best) {
			best = d;
			bestname = tt->name;
		}
	}
	if (suggest)
		*suggest = best <= 2 ? bestname : NULL;
	return ISQ_ENOTFOUND;
}

int isq_type_row_size(enum isq_type t, uint64_t n, uint64_t *bytes)
{
	const struct isq_type_traits *tt = isq_type_traits(t);
	if (!tt || tt->blck <= 0 || n % (uint64_t)tt->blck)
		return ISQ_EINVAL;
	if (isq_mul_u64(n / (uint64_t)tt->blck, tt->type_size, bytes))
		return ISQ_EINVAL;
	return 0;
}

double isq_type_bpw(enum isq_type t)
{
	const struct isq_type_traits *tt = isq_type_traits(t);
	if (!tt || !tt->blck)
		return 0;
	return 8.0 * (double)tt->type_size / (double)tt->blck;
}

int isq_quantize(enum isq_type t, const float *src, void *dst, int64_t nrows, int64_t n_per_row,
		 const float *imatrix, size_t *written, struct isq_errbuf *e)
{
	const struct isq_type_traits *tt = isq_type_traits(t);
	if (!tt || !tt->quantize)
		return isq_errbuf_set(e, ISQ_EUNSUPPORTED, "type '%s' cannot be quantized to",
				      tt ? tt->name : "?");
	if (n_per_row <= 0 || nrows < 0 || n_per_row % tt->blck)
		return isq_errbuf_set(e, ISQ_EINVAL, "row length %lld is not a multiple of %s's block size %lld",
				      (long long)n_per_row, tt->name, (long long)tt->blck);
	int64_t n = nrows * n_per_row;
	/*
	 * An all-ones exponent is Inf or NaN.  The test is on the bits, OR-ed
	 * over the block with no early exit, so that it vectorizes: a scalar
	 * check with a branch per element cost a fifth of q4_0's time.  The
	 * offending element is looked for only once one is known to exist.
	 */
	typedef uint32_t u32x4 __attribute__((vector_size(16)));
	u32x4 acc = { 0, 0, 0, 0 };
	int64_t i0 = 0;
	for (; i0 + 4 <= n; i0 += 4) {
		u32x4 b;
		memcpy(&b, &src[i0], sizeof(b));
		/* carries into bit 31 exactly when the exponent is all ones */
		acc |= (b & 0x7f800000u) + 0x00800000u;
	}
	uint32_t bad = acc[0] | acc[1] | acc[2] | acc[3];
	for (; i0 < n; i0++) {
		uint32_t b;
		memcpy(&b, &src[i0], sizeof(b));
		bad |= (b & 0x7f800000u) + 0x00800000u;
	}
	for (int64_t i = 0; (bad & 0x80000000u) && i < n; i++) {
		if (src[i] - src[i] != 0.0f)
			return isq_errbuf_set(e, ISQ_EINVAL, "non-finite value %g at element %lld (row %lld, column %lld)",
					      (double)src[i], (long long)i, (long long)(i / n_per_row),
					      (long long)(i % n_per_row));
	}
	if (imatrix)
		for (int64_t j = 0; j < n_per_row; j++)
			if (!(imatrix[j] >= 0.0f) || imatrix[j] - imatrix[j] != 0.0f)
				return isq_errbuf_set(e, ISQ_EINVAL, "importance weight %g at column %lld is negative or not finite",
						      (double)imatrix[j], (long long)j);
	size_t w = tt->quantize(src, dst, nrows, n_per_row, tt->uses_imatrix ? imatrix : NULL);
	if (written)
		*written = w;
	return 0;
}
