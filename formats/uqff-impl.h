/*
 * uqff-impl.h - what uqff.c (names, reading) and uqff-write.c share.
 * Not installed.
 */
#ifndef ISQ_UQFF_IMPL_H
#define ISQ_UQFF_IMPL_H

#include "uqff.h"

/* "uqff.version.major", ".minor", ".patch": the three U32 scalars of a set's first shard. */
extern const char *const isq_uqff_version_keys[3];

int isq_uqff_ends_with(const char *s, const char *suffix);
/* "<stem>-<n>.uqff" -> a malloc'd stem and n; n = -1 for a name outside that scheme. */
char *isq_uqff_split_shard_name(const char *name, long *n);
/* F16 -> F16, BF16 -> BF16, anything else -> F32. */
enum isq_st_dtype isq_uqff_st_of_float(enum isq_type t);
/* F32/F16/BF16 -> the isq type, else ISQ_TYPE_NONE. */
enum isq_type isq_uqff_float_of_st(enum isq_st_dtype d);
/* The safetensors dtype of an mrs.h dtype; ISQ_ST_DTYPE_COUNT for none. */
enum isq_st_dtype isq_uqff_st_of_mrs(enum isq_mrs_dtype d);

#endif
