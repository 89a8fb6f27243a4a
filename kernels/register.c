/*
 * register.c - wires the kernel families into the type table.  Each family
 * exports one isq_<family>_register() that fills in the rows it implements.
 */
#include "kquants.h"
#include "mrs.h"
#include "quants.h"

void isq_kernels_register(struct isq_type_traits *tab, int use_ref);

void isq_kernels_register(struct isq_type_traits *tab, int use_ref)
{
	isq_quants_register(tab, use_ref);
	isq_kquants_register(tab, use_ref);
	isq_mrs_register(tab, use_ref);
}
