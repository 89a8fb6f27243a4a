/* quants.c - the table rows of the types in quants.h. */
#include "quants.h"

#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#define AVX2(f) f
#else
#define AVX2(f) NULL
#endif

struct row {
	enum isq_type type;
	isq_quantize_fn quantize_ref, quantize_avx2;
	isq_dequantize_fn dequantize;
	isq_from_float_fn from_float_ref, from_float_avx2;
	isq_vec_dot_fn vec_dot_ref, vec_dot_avx2;
	enum isq_type vec_dot_type;
	int uses_imatrix;
};

/*
 * uses_imatrix: every encoder here searches against the weighted error,
 * MXFP4 included (ggml ignores the imatrix for MXFP4 and Q8_0); Q8_1 is an
 * activation type and keeps ggml's encoder.
 */
static const struct row rows[] = {
	{ ISQ_TYPE_F32, isq_quantize_f32, isq_quantize_f32, isq_dequantize_row_f32, isq_from_float_f32,
	  isq_from_float_f32, isq_vec_dot_f32_f32_ref, AVX2(isq_vec_dot_f32_f32_avx2), ISQ_TYPE_F32, 0 },
	{ ISQ_TYPE_F16, isq_quantize_f16, isq_quantize_f16, isq_dequantize_row_f16, isq_from_float_f16,
	  isq_from_float_f16, isq_vec_dot_f16_f16_ref, AVX2(isq_vec_dot_f16_f16_avx2), ISQ_TYPE_F16, 0 },
	{ ISQ_TYPE_BF16, isq_quantize_bf16, isq_quantize_bf16, isq_dequantize_row_bf16, isq_from_float_bf16,
	  isq_from_float_bf16, isq_vec_dot_bf16_bf16_ref, AVX2(isq_vec_dot_bf16_bf16_avx2), ISQ_TYPE_BF16, 0 },
	{ ISQ_TYPE_Q4_0, isq_quantize_q4_0_ref, AVX2(isq_quantize_q4_0_avx2), isq_dequantize_row_q4_0, NULL, NULL,
	  isq_vec_dot_q4_0_q8_0_ref, AVX2(isq_vec_dot_q4_0_q8_0_avx2), ISQ_TYPE_Q8_0, 1 },
	{ ISQ_TYPE_Q4_1, isq_quantize_q4_1_ref, AVX2(isq_quantize_q4_1_avx2), isq_dequantize_row_q4_1, NULL, NULL,
	  isq_vec_dot_q4_1_q8_1_ref, AVX2(isq_vec_dot_q4_1_q8_1_avx2), ISQ_TYPE_Q8_1, 1 },
	{ ISQ_TYPE_Q5_0, isq_quantize_q5_0_ref, AVX2(isq_quantize_q5_0_avx2), isq_dequantize_row_q5_0, NULL, NULL,
	  isq_vec_dot_q5_0_q8_0_ref, AVX2(isq_vec_dot_q5_0_q8_0_avx2), ISQ_TYPE_Q8_0, 1 },
	{ ISQ_TYPE_Q5_1, isq_quantize_q5_1_ref, AVX2(isq_quantize_q5_1_avx2), isq_dequantize_row_q5_1, NULL, NULL,
	  isq_vec_dot_q5_1_q8_1_ref, AVX2(isq_vec_dot_q5_1_q8_1_avx2), ISQ_TYPE_Q8_1, 1 },
	{ ISQ_TYPE_Q8_0, isq_quantize_q8_0_ref, AVX2(isq_quantize_q8_0_avx2), isq_dequantize_row_q8_0,
	  isq_quantize_row_q8_0_ref, AVX2(isq_quantize_row_q8_0_avx2), isq_vec_dot_q8_0_q8_0_ref,
	  AVX2(isq_vec_dot_q8_0_q8_0_avx2), ISQ_TYPE_Q8_0, 1 },
	{ ISQ_TYPE_Q8_1, isq_quantize_q8_1_ref, AVX2(isq_quantize_q8_1_avx2), isq_dequantize_row_q8_1,
	  isq_quantize_row_q8_1_ref, AVX2(isq_quantize_row_q8_1_avx2), isq_vec_dot_q8_1_q8_1_ref,
	  AVX2(isq_vec_dot_q8_1_q8_1_avx2), ISQ_TYPE_Q8_1, 0 },
	{ ISQ_TYPE_IQ4_NL, isq_quantize_iq4_nl_ref, AVX2(isq_quantize_iq4_nl_avx2), isq_dequantize_row_iq4_nl, NULL,
	  NULL, isq_vec_dot_iq4_nl_q8_0_ref, AVX2(isq_vec_dot_iq4_nl_q8_0_avx2), ISQ_TYPE_Q8_0, 1 },
	{ ISQ_TYPE_IQ4_XS, isq_quantize_iq4_xs_ref, AVX2(isq_quantize_iq4_xs_avx2), isq_dequantize_row_iq4_xs, NULL,
	  NULL, isq_vec_dot_iq4_xs_q8_K_ref, AVX2(isq_vec_dot_iq4_xs_q8_K_avx2), ISQ_TYPE_Q8_K, 1 },
	{ ISQ_TYPE_MXFP4, isq_quantize_mxfp4_ref, AVX2(isq_quantize_mxfp4_avx2), isq_dequantize_row_mxfp4, NULL, NULL,
	  isq_vec_dot_mxfp4_q8_0_ref, AVX2(isq_vec_dot_mxfp4_q8_0_avx2), ISQ_TYPE_Q8_0, 1 },
};

void isq_quants_register(struct isq_type_traits *tab, int use_ref)
{
	int fast = !use_ref && isq_cpu_has_avx2();
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(rows); i++) {
		const struct row *r = &rows[i];
		struct isq_type_traits *t = &tab[r->type];
		t->quantize_ref = r->quantize_ref;
		t->quantize = fast && r->quantize_avx2 ? r->quantize_avx2 : r->quantize_ref;
		t->dequantize = r->dequantize;
		t->from_float = fast && r->from_float_avx2 ? r->from_float_avx2 : r->from_float_ref;
		t->vec_dot_ref = r->vec_dot_ref;
		t->vec_dot = fast && r->vec_dot_avx2 ? r->vec_dot_avx2 : r->vec_dot_ref;
		t->vec_dot_type = r->vec_dot_type;
		t->uses_imatrix = r->uses_imatrix;
		t->backends = ISQ_BACKEND_CPU;
	}
}
