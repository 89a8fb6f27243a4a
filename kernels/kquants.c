/* kquants.c - the K-quant rows of the type table. */
#include "kquants.h"

#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#define KQ_X86 1
#else
#define KQ_X86 0
#endif

struct kq_kernels {
	enum isq_type type;
	isq_quantize_fn quantize_ref, quantize_avx2;
	isq_dequantize_fn dequantize;
	isq_vec_dot_fn vec_dot_ref, vec_dot_avx2;
};

#if KQ_X86
#define AVX2(f) f
#else
#define AVX2(f) NULL
#endif

static const struct kq_kernels kernels[] = {
	{ ISQ_TYPE_Q2_K, isq_quantize_q2_K_ref, AVX2(isq_quantize_q2_K_avx2), isq_dequantize_row_q2_K,
	  isq_vec_dot_q2_K_q8_K_ref, AVX2(isq_vec_dot_q2_K_q8_K_avx2) },
	{ ISQ_TYPE_Q3_K, isq_quantize_q3_K_ref, AVX2(isq_quantize_q3_K_avx2), isq_dequantize_row_q3_K,
	  isq_vec_dot_q3_K_q8_K_ref, AVX2(isq_vec_dot_q3_K_q8_K_avx2) },
	{ ISQ_TYPE_Q4_K, isq_quantize_q4_K_ref, AVX2(isq_quantize_q4_K_avx2), isq_dequantize_row_q4_K,
	  isq_vec_dot_q4_K_q8_K_ref, AVX2(isq_vec_dot_q4_K_q8_K_avx2) },
	{ ISQ_TYPE_Q5_K, isq_quantize_q5_K_ref, AVX2(isq_quantize_q5_K_avx2), isq_dequantize_row_q5_K,
	  isq_vec_dot_q5_K_q8_K_ref, AVX2(isq_vec_dot_q5_K_q8_K_avx2) },
	{ ISQ_TYPE_Q6_K, isq_quantize_q6_K_ref, AVX2(isq_quantize_q6_K_avx2), isq_dequantize_row_q6_K,
	  isq_vec_dot_q6_K_q8_K_ref, AVX2(isq_vec_dot_q6_K_q8_K_avx2) },
};

void isq_kquants_register(struct isq_type_traits *tab, int use_ref)
{
	const int fast = !use_ref && KQ_X86 && isq_cpu_has_avx2();
	for (size_t i = 0; i < ISQ_ARRAY_SIZE(kernels); i++) {
		const struct kq_kernels *k = &kernels[i];
		struct isq_type_traits *t = &tab[k->type];
		t->quantize_ref = k->quantize_ref;
		t->quantize = fast ? k->quantize_avx2 : k->quantize_ref;
		t->dequantize = k->dequantize;
		t->vec_dot_ref = k->vec_dot_ref;
		t->vec_dot = fast ? k->vec_dot_avx2 : k->vec_dot_ref;
		t->vec_dot_type = ISQ_TYPE_Q8_K;
		t->uses_imatrix = 1;
		t->backends = ISQ_BACKEND_CPU;
	}
	struct isq_type_traits *q8 = &tab[ISQ_TYPE_Q8_K];
	q8->quantize_ref = isq_quantize_q8_K_ref;
	q8->quantize = isq_quantize_q8_K_ref;
	q8->from_float = isq_quantize_row_q8_K_ref;
#if KQ_X86
	if (fast) {
		q8->quantize = isq_quantize_q8_K_avx2;
		q8->from_float = isq_quantize_row_q8_K_avx2;
	}
#endif
	q8->dequantize = isq_dequantize_row_q8_K;
	q8->uses_imatrix = 0;
}
