/*
 * mrs.h - mistral.rs's own quantization formats (HQQ, AFQ, FP8, F8Q8, and
 * MXFP4 in UQFF's two-tensor encoding).
 */
#ifndef ISQ_MRS_H
#define ISQ_MRS_H

#include "types.h"

/* Fill in the mistral.rs rows of the type table (scalar kernels when use_ref). */
void isq_mrs_register(struct isq_type_traits *tab, int use_ref);

#endif
