/*
 * kquants.h - the K-quant family (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K):
 * quantizers, dequantizers and dot products against Q8_K activations.
 */
#ifndef ISQ_KQUANTS_H
#define ISQ_KQUANTS_H

#include "types.h"

/* Fill in the K-quant rows of the type table (scalar kernels when use_ref). */
void isq_kquants_register(struct isq_type_traits *tab, int use_ref);

#endif
