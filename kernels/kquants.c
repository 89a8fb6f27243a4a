/* kquants.c - K-quant kernels (being written). */
#include "kquants.h"

void isq_kquants_register(struct isq_type_traits *tab, int use_ref)
{
	(void)tab;
	(void)use_ref;
}
