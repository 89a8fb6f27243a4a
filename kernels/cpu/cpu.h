/*
 * cpu.h - what this CPU can do, asked once.  Kernels with SIMD variants are
 * chosen at run time from these answers; ISQ_FORCE_REF=1 in the environment
 * (or isq_types_force_ref) makes every answer "no".
 */
#ifndef ISQ_CPU_H
#define ISQ_CPU_H

/* AVX2 with FMA and F16C (the x86-64-v3 level our *-avx2.c files are built for). */
int isq_cpu_has_avx2(void);
/* AVX-512 F/BW/VL (reported for information; no kernel needs it yet). */
int isq_cpu_has_avx512(void);
/* A short description ("avx2 fma f16c"), for benchmarks and -v output. */
const char *isq_cpu_features(void);

#endif
